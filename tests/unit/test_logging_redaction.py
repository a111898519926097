"""What reaches a log: no bodies, names or secrets; user IDs only as stable hashes."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from bots.framework.events import IncomingMessage
from bots.framework.logging import (
    REDACTED,
    REDACTOR,
    configure_logging,
    get_logger,
    register_secrets,
)

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
_HASHED = re.compile(r"^user:[0-9a-f]+$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back after each test."""
    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    libraries = ("nio", "aiohttp", "asyncio", "peewee", "aiosqlite")
    saved_library_levels = {name: logging.getLogger(name).level for name in libraries}
    saved_salt = REDACTOR._salt
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    REDACTOR.set_salt(saved_salt)
    structlog.configure(**saved_config)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)
    for name, level in saved_library_levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def out() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=stream)
    return stream


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def only(stream: io.StringIO) -> dict[str, Any]:
    (record,) = records(stream)
    return record


def _unique(label: str) -> str:
    return f"{label}-{secrets.token_hex(8)}"


log = get_logger("hearth.test")


# --- removed by key ---


@pytest.mark.parametrize(
    "key",
    ["body", "formatted_body", "displayname", "password", "access_token", "token", "key"],
)
def test_sensitive_field_value_is_removed(out: io.StringIO, key: str) -> None:
    value = _unique("private")
    log.info("something happened", **{key: value})
    assert value not in out.getvalue()
    assert only(out)[key] == REDACTED


def test_sensitive_keys_match_regardless_of_case(out: io.StringIO) -> None:
    value = _unique("private")
    log.info("login", Password=value)
    assert value not in out.getvalue()


def test_sensitive_keys_in_nested_dicts_and_lists_are_removed(out: io.StringIO) -> None:
    name, text = _unique("Alice Liddell"), _unique("I feel low today")
    log.info("sync", rooms=[{"members": [{"displayname": name}], "last": {"body": text}}])
    assert name not in out.getvalue()
    assert text not in out.getvalue()
    rooms = only(out)["rooms"]
    assert rooms[0]["members"][0]["displayname"] == REDACTED
    assert rooms[0]["last"]["body"] == REDACTED


def test_other_fields_are_kept(out: io.StringIO) -> None:
    log.info("command handled", command="ping", outcome="ok", ms=1.5)
    record = only(out)
    assert (record["command"], record["outcome"], record["ms"]) == ("ping", "ok", 1.5)
    assert record["event"] == "command handled"


def test_empty_sensitive_value_is_written_as_none(out: io.StringIO) -> None:
    log.info("no body", body=None)
    assert only(out)["body"] is None


# --- secrets in free text ---


def test_registered_secret_is_masked_in_the_message(out: io.StringIO) -> None:
    secret = _unique("pickle")
    register_secrets([secret])
    log.warning(f"store opened with {secret} as key")
    assert secret not in out.getvalue()
    assert only(out)["event"] == f"store opened with {REDACTED} as key"


def test_registered_secret_is_masked_in_any_field(out: io.StringIO) -> None:
    secret = _unique("pw")
    register_secrets([secret])
    log.info("request failed", detail=f"server said: bad {secret}", items=[f"x{secret}y"])
    assert secret not in out.getvalue()


def test_access_token_in_a_url_is_masked(out: io.StringIO) -> None:
    token = _unique("syt_abc")
    log.info(f"GET https://hs.example.org/sync?access_token={token}&since=s1")
    event = only(out)["event"]
    assert token not in event
    assert event == f"GET https://hs.example.org/sync?access_token={REDACTED}&since=s1"


def test_bearer_token_is_masked(out: io.StringIO) -> None:
    token = _unique("syt_xyz")
    log.info("headers", detail=f"Authorization: Bearer {token}")
    assert token not in out.getvalue()
    assert only(out)["detail"] == f"Authorization: Bearer {REDACTED}"


# --- user IDs ---


def test_user_id_in_a_field_is_hashed(out: io.StringIO) -> None:
    log.info("logged in", user_id=ALICE)
    assert ALICE not in out.getvalue()
    assert _HASHED.match(only(out)["user_id"])


def test_user_id_in_the_message_is_hashed(out: io.StringIO) -> None:
    log.info(f"invited by {ALICE} to the lounge")
    event = only(out)["event"]
    assert ALICE not in event
    assert re.fullmatch(r"invited by user:[0-9a-f]+ to the lounge", event)


def test_same_user_id_gets_the_same_hash_everywhere(out: io.StringIO) -> None:
    log.info(f"from {ALICE}", sender=ALICE, extra={"who": [ALICE]})
    record = only(out)
    hashed = record["sender"]
    assert record["event"] == f"from {hashed}"
    assert record["extra"]["who"] == [hashed]


def test_different_user_ids_get_different_hashes(out: io.StringIO) -> None:
    log.info("pair", a=ALICE, b=BOB)
    record = only(out)
    assert record["a"] != record["b"]


def test_hash_is_stable_across_log_lines(out: io.StringIO) -> None:
    log.info("first", sender=ALICE)
    log.info("second", sender=ALICE)
    first, second = records(out)
    assert first["sender"] == second["sender"]


def test_different_salt_gives_a_different_hash(out: io.StringIO) -> None:
    log.info("before", sender=ALICE)
    REDACTOR.set_salt(b"another community's salt")
    log.info("after", sender=ALICE)
    before, after = records(out)
    assert before["sender"] != after["sender"]
    assert _HASHED.match(after["sender"])


def test_user_ids_used_as_keys_are_hashed(out: io.StringIO) -> None:
    log.info("power levels", users={ALICE: 100, BOB: 0})
    assert ALICE not in out.getvalue()


def test_message_object_logged_as_a_value_does_not_leak_its_body(out: io.StringIO) -> None:
    text = _unique("I have not slept in days")
    msg = IncomingMessage("$e", "!r:example.org", ALICE, text, "m.text", 0, True)
    log.debug("ignored", msg=msg)
    assert text not in out.getvalue()


# --- library records ---


def test_library_records_are_redacted(out: io.StringIO) -> None:
    secret, token = _unique("pickle"), _unique("syt")
    register_secrets([secret])
    logging.getLogger("nio.crypto").warning(
        "key %s for %s failed at /sync?access_token=%s", secret, ALICE, token
    )
    written = out.getvalue()
    for clear in (secret, token, ALICE):
        assert clear not in written
    record = only(out)
    assert record["logger"] == "nio.crypto"
    assert record["level"] == "warning"


def test_library_payload_arguments_are_redacted_by_key(out: io.StringIO) -> None:
    text, name = _unique("my private words"), _unique("Alice Liddell")
    payload = {"rooms": {"join": [{"content": {"body": text}, "displayname": name}]}}
    logging.getLogger("nio.responses").warning("Validating response schema %s", payload)
    assert text not in out.getvalue()
    assert name not in out.getvalue()


def test_library_debug_records_are_not_written(out: io.StringIO) -> None:
    logging.getLogger("nio.responses").debug("whole sync payload")
    logging.getLogger("aiohttp.client").info("request")
    assert out.getvalue() == ""


def test_own_stdlib_debug_records_are_written_redacted(out: io.StringIO) -> None:
    logging.getLogger("bots.something").debug(f"detail about {ALICE}")
    record = only(out)
    assert record["level"] == "debug"
    assert ALICE not in record["event"]


# --- exceptions ---


def _raise_with(text: str) -> None:
    raise RuntimeError(text)


def test_exception_text_is_redacted(out: io.StringIO) -> None:
    secret = _unique("pw")
    register_secrets([secret])
    try:
        _raise_with(f"login of {ALICE} with {secret} failed")
    except RuntimeError:
        log.exception("handling failed")
    record = only(out)
    assert "RuntimeError" in record["exception"]
    assert secret not in out.getvalue()
    assert ALICE not in out.getvalue()


def test_library_exception_text_is_redacted(out: io.StringIO) -> None:
    token = _unique("syt")
    try:
        _raise_with(f"GET /sync?access_token={token} failed")
    except RuntimeError:
        logging.getLogger("nio.client").exception("sync failed")
    assert "RuntimeError" in only(out)["exception"]
    assert token not in out.getvalue()


def test_exception_is_redacted_before_logging_is_configured() -> None:
    secret = _unique("pw")
    script = (
        "from bots.framework.logging import get_logger, register_secrets\n"
        f"register_secrets([{secret!r}])\n"
        "try:\n"
        f"    raise RuntimeError('bad password ' + {secret!r})\n"
        "except RuntimeError:\n"
        "    get_logger('t').exception('failed')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    written = _ANSI.sub("", done.stdout + done.stderr)
    assert "failed" in written
    assert secret not in written


# --- console format ---


def test_console_format_is_redacted_too() -> None:
    stream = io.StringIO()
    configure_logging(level="debug", fmt="console", stream=stream)
    text, secret = _unique("my private words"), _unique("pw")
    register_secrets([secret])
    log.info(f"message from {ALICE}", body=text, detail=f"with {secret}")
    written = stream.getvalue()
    assert "message from user:" in written
    for clear in (text, secret, ALICE):
        assert clear not in written


def test_console_exception_is_redacted() -> None:
    stream = io.StringIO()
    configure_logging(level="debug", fmt="console", stream=stream)
    secret = _unique("pw")
    register_secrets([secret])
    try:
        _raise_with(f"{ALICE} {secret}")
    except RuntimeError:
        log.exception("handling failed")
    written = stream.getvalue()
    assert "RuntimeError" in written
    assert secret not in written
    assert ALICE not in written


def test_level_filters_hearth_events() -> None:
    stream = io.StringIO()
    configure_logging(level="warning", fmt="json", stream=stream)
    log.info("chatty")
    log.warning("important")
    assert [r["event"] for r in records(stream)] == ["important"]
