"""structlog set-up with one redacting processor in front of every renderer.

Hearth's own events and the stdlib records of its libraries (nio, aiohttp)
pass through the same chain, so a single processor decides what may be
written. It removes, by key, message bodies, display names, tokens,
passwords and key material; it masks any registered secret found inside
free text; and it replaces Matrix user IDs with a keyed hash so a log can
correlate one member's events without naming them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"

# Keys whose values are never written, wherever they appear in an event.
SENSITIVE_KEYS = frozenset(
    {
        "body",
        "formatted_body",
        "content",
        "message",
        "text",
        "displayname",
        "display_name",
        "name",
        "topic",
        "password",
        "new_password",
        "access_token",
        "refresh_token",
        "token",
        "registration_token",
        "shared_secret",
        "pickle_key",
        "key",
        "keys",
        "private_key",
        "session_key",
        "ciphertext",
        "signatures",
        "args",
        "arguments",
        "authorization",
    }
)

# Matrix user IDs in free text (nio's messages, exception strings).
_MXID = re.compile(r"@[A-Za-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d+)?")
# Bearer tokens and access_token query parameters in URLs and headers.
_TOKENISH = re.compile(r"(access_token=|Bearer\s+)[^\s&\"']+", re.IGNORECASE)
# Loggers of libraries we use that describe sync payloads at DEBUG.
_NOISY_LIBRARIES = ("nio", "aiohttp", "asyncio")
# SQL tracers: at DEBUG they print every statement's parameters, including
# the crypto store's pickled sessions. Never useful to an operator.
_SQL_TRACERS = ("peewee", "aiosqlite")


class Redactor:
    """The single processor that decides what may reach a log."""

    def __init__(self, salt: bytes = b"hearth") -> None:
        self._salt = salt
        self._secrets: set[str] = set()

    def set_salt(self, salt: bytes) -> None:
        self._salt = salt

    def register_secret(self, value: str | None) -> None:
        """Mask *value* wherever it appears in free text from now on."""
        if value and len(value) >= 6:
            self._secrets.add(value)

    def hash_user(self, user_id: str) -> str:
        digest = hmac.new(self._salt, user_id.encode(), hashlib.sha256).hexdigest()
        return f"user:{digest[:12]}"

    def scrub_text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _TOKENISH.sub(lambda m: m.group(1) + REDACTED, text)
        return _MXID.sub(lambda m: self.hash_user(m.group(0)), text)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, MutableMapping):
            # Keys are scrubbed too: user IDs key power-level and device maps.
            return {self.scrub_text(str(k)): self._scrub_field(str(k), v) for k, v in value.items()}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            # A logged event object: judge its fields by name, like a dict.
            return self.scrub({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub(v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.scrub_text(repr(value))

    def _scrub_field(self, key: str, value: Any) -> Any:
        if key.lower() in SENSITIVE_KEYS and value is not None:
            return REDACTED
        return self.scrub(value)

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        out: EventDict = {}
        for key, value in event_dict.items():
            if key == "event":
                out[key] = self.scrub(value)
            elif key in ("exc_info", "_record", "_from_structlog"):
                out[key] = value
            else:
                out[key] = self._scrub_field(key, value)
        return out


REDACTOR = Redactor()


class _ScrubRecordArgs(logging.Filter):
    """Redact the structured arguments of stdlib records before formatting.

    Libraries log payloads as ``%s`` arguments (nio: "Validating response
    schema %r: %s" with the whole sync response). Scrubbing the arguments by
    key, before they are flattened into text, keeps the key-based rules
    working for them too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(REDACTOR.scrub(a) for a in record.args)
        elif isinstance(record.args, MutableMapping):
            record.args = REDACTOR.scrub(record.args)
        if not isinstance(record.msg, str):
            record.msg = REDACTOR.scrub(record.msg)
        return True


def _render_exception_redacted(logger: WrappedLogger, method: str, ev: EventDict) -> EventDict:
    # Tracebacks carry exception messages, which can quote request bodies:
    # format them first, then let the redactor see the text.
    ev = structlog.processors.format_exc_info(logger, method, ev)
    if "exception" in ev:
        ev["exception"] = REDACTOR.scrub_text(ev["exception"])
    return ev


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _render_exception_redacted,
        REDACTOR,
    ]


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    library_level: str = "warning",
) -> None:
    """Route structlog and stdlib logging through one redacting chain.

    Args:
        level: Hearth's own level.
        fmt: ``console`` (coloured), ``json`` (one object a line) or ``auto``,
            which picks console on a terminal and JSON otherwise.
        stream: Where to write; stderr by default.
        library_level: Level for nio/aiohttp, which describe whole sync
            payloads at DEBUG.
    """
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()

    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared[:-2],
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared[:-2],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _render_exception_redacted,
            REDACTOR,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.addFilter(_ScrubRecordArgs())
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _SQL_TRACERS:
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    for name in _NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(
            max(root.level, logging.getLevelName(library_level.upper()))
        )


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        REDACTOR.register_secret(value)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


# Until configure_logging() runs (library use, tests), structlog's default
# chain would print events unredacted: put the redactor in it from import on.
if not structlog.is_configured():
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            _render_exception_redacted,
            REDACTOR,
            structlog.dev.ConsoleRenderer(),
        ]
    )
