"""The one redacting processor in front of every log renderer.

It removes, by key, message bodies, display names, tokens, passwords and key
material; it masks any registered secret found inside free text; it replaces
Matrix user IDs (plain or URL-encoded) with a keyed hash so a log can
correlate one member's events without naming them; and it keeps only a
plain-words prefix of text Hearth did not write. Tracebacks are rendered
here too, each exception's message judged by who wrote it.
`bots/framework/logging.py` puts this in front of every renderer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from structlog.typing import EventDict, WrappedLogger

REDACTED = "[redacted]"

# Keys whose values are never written, wherever they appear in an event.
# fmt: off
SENSITIVE_KEYS = frozenset({
    # What members write and what they are called.
    "body", "formatted_body", "content", "message", "text",
    "displayname", "display_name", "name", "topic",
    # Credentials and key material.
    "password", "new_password", "access_token", "refresh_token", "token",
    "registration_token", "shared_secret", "pickle_key", "key", "keys",
    "private_key", "session_key", "ciphertext", "signatures", "authorization",
    # Call arguments, which can be any of the above.
    "args", "arguments",
})
# fmt: on

# Longest string value written; a whole payload in one field is never useful.
MAX_FIELD_CHARS = 2000
# Deeper nesting is cut: it bounds the work on self-referencing structures.
_MAX_DEPTH = 12
_HASH_HEX = 12

# Matrix user IDs in free text, also URL-encoded as in request paths
# (%40alice%3Aexample.org, %40alice:example.org, @alice%3aexample.org). The
# localpart may carry escapes other than %3A (the separator) and %40 (which
# starts the next ID: stopping there keeps the scan linear on any input).
_MXID = re.compile(
    r"(?:@|%40)(?:[A-Za-z0-9._=\-/+]|%(?!3[Aa]|40)[0-9A-Fa-f]{2})+"
    r"(?::|%3[Aa])[A-Za-z0-9.\-]+(?:(?::|%3[Aa])\d+)?"
)
# Bearer tokens and access_token query parameters in URLs and headers.
_TOKENISH = re.compile(r"(access_token=|Bearer\s+)[^\s&\"']+", re.IGNORECASE)
# Text Hearth did not write keeps only its leading run of plain words (and
# the hashes and masks the redactor put there), at most _FOREIGN_MAX chars.
_PLAIN_PREFIX = re.compile(
    rf"(?:user:[0-9a-f]{{{_HASH_HEX}}}|{re.escape(REDACTED)}"
    r"|[A-Za-z0-9 .,()_/+\-]|(?<=[A-Za-z])'(?=[A-Za-z]))*"
)
_FOREIGN_MAX = 80
# Loggers and exception types whose text Hearth writes itself.
_OWN_PACKAGES = frozenset({"bots", "provisioning", "bridge", "hearth"})


def is_own(dotted_name: str) -> bool:
    return dotted_name.split(".", 1)[0] in _OWN_PACKAGES


class Redactor:
    """The single processor that decides what may reach a log."""

    def __init__(self, salt: bytes | None = None) -> None:
        # Random until the install's salt is loaded (use_salt_file): a fixed
        # default would let anyone who knows a user ID recompute its hash.
        self._salt = salt if salt is not None else secrets.token_bytes(32)
        self._secrets: set[str] = set()

    def set_salt(self, salt: bytes) -> None:
        self._salt = salt

    def register_secret(self, value: str | None) -> None:
        """Mask *value* wherever it appears in free text from now on."""
        if value and len(value) >= 6:
            self._secrets.add(value)

    def hash_user(self, user_id: str) -> str:
        digest = hmac.new(self._salt, user_id.encode(), hashlib.sha256).hexdigest()
        return f"user:{digest[:_HASH_HEX]}"

    def scrub_text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _TOKENISH.sub(lambda m: m.group(1) + REDACTED, text)
        # Hash the decoded ID: one member gets one hash in every spelling.
        return _MXID.sub(lambda m: self.hash_user(unquote(m.group(0))), text)

    def foreign_text(self, text: str) -> str:
        """Scrub text Hearth did not write, keeping only its plain prefix.

        Libraries put what they hold into messages and exceptions (nio:
        f"Error validating event: {e}", the jsonschema error quoting the
        decrypted event). Scrubbing from the first '{' would not do:
        jsonschema also quotes bare values ("'my words' is not of type
        'object'") and reprs nest anything. So we keep the leading plain
        words, up to the first ':', quote, bracket, '#', '!', '=' or newline,
        and at most 80 characters: "Error validating event" survives, as
        does "Got 429 response (ratelimited), sleeping for 500ms". A value a
        library puts unquoted into its text can still show, 80 chars at most.
        """
        text = self.scrub_text(text)
        match = _PLAIN_PREFIX.match(text)
        head = (match.group(0) if match else "")[:_FOREIGN_MAX]
        rest = text[len(head) :]
        if not rest:
            return head
        sep = ":" if rest.startswith(":") else ""
        return f"{head.rstrip()}{sep} {REDACTED}".lstrip()

    def exception_text(self, exc: BaseException) -> str:
        """``Type: message``; the message is trusted only if Hearth defined the type."""
        kind = type(exc)
        name = kind.__qualname__
        if kind.__module__ not in ("builtins", "__main__"):
            name = f"{kind.__module__}.{name}"
        try:
            if is_own(kind.__module__):
                message = self.scrub_text(str(exc))
            elif isinstance(exc, OSError) and exc.strerror:
                # Keep the errno and its description, drop the file names.
                message = f"[Errno {exc.errno}] {self.foreign_text(exc.strerror)}"
            else:
                message = self.foreign_text(str(exc))
        except Exception:
            message = "<unprintable>"
        return f"{name}: {message}" if message else name

    def scrub(self, value: Any) -> Any:
        return self._scrub(value, 0, set())

    def _scrub(self, value: Any, depth: int, active: set[int]) -> Any:
        if isinstance(value, str):
            # Scrub before shortening: a cut must never split a user ID.
            return _shorten(self.scrub_text(value))
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, bytes | bytearray):
            # Raw bytes are key material or ciphertext or plaintext: size only.
            return f"<{len(value)} bytes>"
        if isinstance(value, BaseException):
            return _shorten(self.exception_text(value))
        if isinstance(value, Path):
            return _shorten(self.scrub_text(str(value)))
        if depth >= _MAX_DEPTH or id(value) in active:
            return "[nested too deep]"
        active.add(id(value))
        try:
            return self._scrub_container(value, depth + 1, active)
        finally:
            active.discard(id(value))

    def _scrub_container(self, value: Any, depth: int, active: set[int]) -> Any:
        if isinstance(value, Mapping):
            # Keys are scrubbed too: user IDs key power-level and device maps.
            return {
                _shorten(self.scrub_text(str(k))): self._scrub_field(str(k), v, depth, active)
                for k, v in value.items()
            }
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            # A logged event object: judge its fields by name, like a dict.
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return self._scrub_container(fields, depth, active)
        if isinstance(value, list | tuple | set | frozenset):
            return [self._scrub(v, depth, active) for v in value]
        # Any other object: its repr is free text, trusted only if ours.
        text = repr(value)
        if is_own(type(value).__module__):
            return _shorten(self.scrub_text(text))
        return self.foreign_text(text)

    def _scrub_field(self, key: str, value: Any, depth: int, active: set[int]) -> Any:
        if key.lower() in SENSITIVE_KEYS and value is not None:
            return REDACTED
        return self._scrub(value, depth, active)

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        out: EventDict = {}
        for key, value in event_dict.items():
            if key == "event":
                out[key] = self.scrub(value)
            elif key == "exception" and isinstance(value, str):
                # A rendered traceback: masked, but not shortened.
                out[key] = self.scrub_text(value)
            elif key in ("exc_info", "_record", "_from_structlog"):
                out[key] = value
            else:
                out[key] = self._scrub_field(key, value, 0, set())
        return out


def _shorten(text: str) -> str:
    if len(text) <= MAX_FIELD_CHARS:
        return text
    return f"{text[:MAX_FIELD_CHARS]}…[{len(text) - MAX_FIELD_CHARS} more characters]"


REDACTOR = Redactor()


def _exception_of(exc_info: Any) -> BaseException | None:
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        exc_info = exc_info[1]
    return exc_info if isinstance(exc_info, BaseException) else None


def _traceback_lines(exc: BaseException, seen: set[int]) -> list[str]:
    """Like traceback.format_exception, with each message through exception_text."""
    seen.add(id(exc))
    lines: list[str] = []
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        lines += _traceback_lines(cause, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        lines += _traceback_lines(context, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if exc.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_tb(exc.__traceback__)
    lines.append(REDACTOR.exception_text(exc) + "\n")
    if isinstance(exc, BaseExceptionGroup):
        for i, sub in enumerate(exc.exceptions, 1):
            lines.append(f"  +---- {i} ----\n")
            lines += [
                f"  | {line}" for line in "".join(_traceback_lines(sub, seen)).splitlines(True)
            ]
    return lines


def render_exception_redacted(logger: WrappedLogger, method: str, ev: EventDict) -> EventDict:
    # Exception messages can quote request bodies and events: render the
    # traceback ourselves so each message is judged by who wrote it.
    exc = _exception_of(ev.pop("exc_info", None))
    if exc is not None:
        ev["exception"] = REDACTOR.scrub_text("".join(_traceback_lines(exc, set())).rstrip())
    return ev
