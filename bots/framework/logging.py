"""structlog set-up with one redacting processor in front of every renderer.

Hearth's own events, the stdlib records of its libraries (nio, aiohttp) and
uncaught exceptions pass through the same chain, so a single processor
(`bots/framework/redaction.py`) decides what may be written.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

from bots.framework.redaction import REDACTOR, is_own, render_exception_redacted
from bots.framework.secrets import ensure_secret

# Loggers of libraries we use that describe sync payloads at DEBUG.
_NOISY_LIBRARIES = ("nio", "aiohttp", "asyncio")
# SQL tracers: at DEBUG they print every statement's parameters, including
# the crypto store's pickled sessions. Never useful to an operator.
_SQL_TRACERS = ("peewee", "aiosqlite")


class _ScrubRecordArgs(logging.Filter):
    """Redact stdlib records before they are formatted.

    Hearth's own records: their structured arguments are scrubbed by key
    before being flattened into text. Libraries' records: the whole message
    (nio: "Validating response schema %r: %s" with a sync response, or an
    f-string quoting a decrypted event) is untrusted, see foreign_text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "_logger" in record.__dict__:
            return True  # a structlog event: the processor chain redacts it
        if isinstance(record.args, tuple):
            record.args = tuple(REDACTOR.scrub(a) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = REDACTOR.scrub(record.args)
        if is_own(record.name):
            if not isinstance(record.msg, str):
                record.msg = REDACTOR.scrub(record.msg)
            return True
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        record.msg, record.args = REDACTOR.foreign_text(text), None
        return True


# --- uncaught exceptions: Python's default hooks print them unredacted ---

_UNCAUGHT = logging.getLogger("hearth.uncaught")


def _log_uncaught(level: int, what: str, exc: BaseException | None) -> None:
    try:
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        _UNCAUGHT.log(level, what, exc_info=exc_info)
    except Exception:
        # Never fall back to the default hook, which would print the text.
        print(f"{what}: {type(exc).__name__} (not logged)", file=sys.__stderr__)


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _log_uncaught(logging.CRITICAL, "uncaught exception", exc)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is not SystemExit:  # as threading's own hook does
        _log_uncaught(logging.ERROR, "uncaught exception in a thread", args.exc_value)


def _unraisablehook(args: sys.UnraisableHookArgs) -> None:
    # args.object's repr (e.g. a coroutine's or a __del__ owner's) is dropped.
    _log_uncaught(logging.WARNING, "exception ignored", args.exc_value)


def _asyncio_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # asyncio's default handler writes the reprs of the task, future or
    # callback, whose arguments can be events. The message goes out through
    # the "asyncio" logger, so it is cut like any library's text.
    exc = context.get("exception")
    exc_info = (type(exc), exc, exc.__traceback__) if isinstance(exc, BaseException) else None
    message = str(context.get("message") or "unhandled error in the event loop")
    logging.getLogger("asyncio").error(message, exc_info=exc_info)


def install_asyncio_handler(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Send *loop*'s unhandled errors (the running loop's by default) through the redactor."""
    (loop or asyncio.get_running_loop()).set_exception_handler(_asyncio_handler)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        render_exception_redacted,
        REDACTOR,
    ]


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    library_level: str = "warning",
) -> None:
    """Route structlog, stdlib logging and uncaught exceptions through one redacting chain.

    Args:
        level: Hearth's own level.
        fmt: ``console`` (coloured), ``json`` (one object a line) or ``auto``,
            which picks console on a terminal and JSON otherwise.
        stream: Where to write; stderr by default.
        library_level: Level for nio/aiohttp, which describe whole sync
            payloads at DEBUG.

    Event loops need one more call each: install_asyncio_handler().
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
            render_exception_redacted,
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
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    sys.unraisablehook = _unraisablehook


def use_salt_file(path: Path) -> None:
    """Hash user IDs with the secret salt kept at *path*, created 0600 on first use.

    One file gives the same hashes across restarts, so an operator can follow
    one member through days of logs; another install's logs do not match.
    """
    REDACTOR.set_salt(ensure_secret(path, what="log salt").encode())


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
            render_exception_redacted,
            REDACTOR,
            structlog.dev.ConsoleRenderer(),
        ]
    )
