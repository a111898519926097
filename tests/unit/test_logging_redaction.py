"""What reaches a log: no bodies, names or secrets; user IDs only as stable hashes."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hashlib
import hmac
import io
import json
import logging
import re
import secrets
import stat
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from nio.events.misc import validate_or_badevent
from nio.schemas import Schemas

from bots.base.errors import HomeserverError
from bots.framework.events import IncomingMessage
from bots.framework.logging import (
    configure_logging,
    get_logger,
    install_asyncio_handler,
    register_secrets,
    use_salt_file,
)
from bots.framework.redaction import MAX_FIELD_CHARS, REDACTED, REDACTOR, Redactor
from provisioning.cli import LOG_SALT_FILE, use_install_salt
from provisioning.schema import load_community

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
_HASHED = re.compile(r"^user:[0-9a-f]+$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REPO = Path(__file__).resolve().parents[2]
# Stands for anything a member wrote: it must never reach a log.
MARKER = "MARKER-7f3a"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back after each test."""
    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    libraries = ("nio", "aiohttp", "asyncio", "peewee", "aiosqlite")
    saved_library_levels = {name: logging.getLogger(name).level for name in libraries}
    saved_salt = REDACTOR._salt
    saved_hooks = sys.excepthook, threading.excepthook, sys.unraisablehook
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    sys.excepthook, threading.excepthook, sys.unraisablehook = saved_hooks
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


# --- libraries' free text: only a plain prefix survives ---


def _private_event() -> dict[str, Any]:
    """A decrypted message nio finds invalid (no body): its content is in the error text."""
    return {
        "type": "m.room.message",
        "event_id": "$e",
        "sender": ALICE,
        "origin_server_ts": 1,
        "content": {"msgtype": "m.text", "formatted_body": f"<b>{MARKER}</b>"},
    }


def test_nio_validation_warning_keeps_its_prefix_only(out: io.StringIO) -> None:
    validate_or_badevent(_private_event(), Schemas.room_message_text)
    record = only(out)
    assert MARKER not in out.getvalue()
    assert record["logger"] == "nio.events.misc"
    assert record["event"] == f"Error validating event: {REDACTED}"


def test_library_quoted_value_is_dropped(out: io.StringIO) -> None:
    logging.getLogger("nio.crypto").warning(f"'{MARKER}' is not of type 'object'")
    assert MARKER not in out.getvalue()
    assert only(out)["event"] == REDACTED


def test_library_rate_limit_message_reads_in_full(out: io.StringIO) -> None:
    logging.getLogger("nio.client").warning(
        "Got 429 response (ratelimited), sleeping for %dms", 1500
    )
    assert only(out)["event"] == "Got 429 response (ratelimited), sleeping for 1500ms"


def test_library_user_id_before_the_cut_is_hashed(out: io.StringIO) -> None:
    logging.getLogger("nio.crypto").warning(
        f"Error validating decrypted Olm event from {ALICE}: {{'body': '{MARKER}'}}"
    )
    event = only(out)["event"]
    assert MARKER not in event
    assert ALICE not in event
    assert re.fullmatch(
        r"Error validating decrypted Olm event from user:[0-9a-f]+: \[redacted\]", event
    )


def test_library_plain_text_is_cut_at_80_characters(out: io.StringIO) -> None:
    logging.getLogger("aiohttp.client").warning("word " * 30 + MARKER)
    event = only(out)["event"]
    assert MARKER not in event
    assert event.startswith("word word")
    assert len(event) <= 80 + len(f" {REDACTED}")


def test_library_object_message_is_cut(out: io.StringIO) -> None:
    logging.getLogger("nio.crypto").warning(ValueError(f"{{'body': '{MARKER}'}}"))
    assert MARKER not in out.getvalue()


def test_library_dict_message_is_cut(out: io.StringIO) -> None:
    logging.getLogger("nio.client").warning({"unsigned": {"reason": MARKER}})
    assert MARKER not in out.getvalue()


def test_own_stdlib_text_is_not_cut(out: io.StringIO) -> None:
    logging.getLogger("bots.something").warning("plan: 3 rooms {kept}")
    assert only(out)["event"] == "plan: 3 rooms {kept}"


def test_foreign_exception_message_is_cut_in_a_traceback(out: io.StringIO) -> None:
    try:
        raise ValueError(f"{{'content': {{'body': '{MARKER}'}}}} is not valid")
    except ValueError:
        log.exception("handling failed")
    exception = only(out)["exception"]
    assert MARKER not in out.getvalue()
    assert exception.splitlines()[-1] == f"ValueError: {REDACTED}"
    assert "Traceback (most recent call last)" in exception


def test_chained_foreign_exception_is_cut_too(out: io.StringIO) -> None:
    try:
        try:
            raise KeyError(MARKER)
        except KeyError as exc:
            raise HomeserverError("login failed: HTTP 403 M_FORBIDDEN") from exc
    except HomeserverError:
        log.exception("login failed")
    exception = only(out)["exception"]
    assert MARKER not in out.getvalue()
    assert "direct cause" in exception
    # Hearth's own exception messages are written by us: kept whole.
    assert "bots.base.errors.HomeserverError: login failed: HTTP 403 M_FORBIDDEN" in exception


def test_os_error_keeps_its_description_but_not_the_file_name(out: io.StringIO) -> None:
    try:
        open(f"/nonexistent/{MARKER}")  # noqa: SIM115
    except OSError:
        log.exception("open failed")
    exception = only(out)["exception"]
    assert MARKER not in exception
    assert "FileNotFoundError: [Errno 2] No such file or directory" in exception


def test_exception_group_members_are_cut(out: io.StringIO) -> None:
    try:
        raise ExceptionGroup("tasks failed", [ValueError(f"'{MARKER}'"), KeyError(MARKER)])
    except ExceptionGroup:
        log.exception("group failed")
    exception = only(out)["exception"]
    assert MARKER not in exception
    assert "ValueError" in exception
    assert "KeyError" in exception


# --- uncaught exceptions ---


def _exception_with_marker() -> RuntimeError:
    try:
        raise RuntimeError(f"{ALICE} sent {{'body': '{MARKER}'}}")
    except RuntimeError as exc:
        return exc


def test_sys_excepthook_goes_through_the_redactor(out: io.StringIO) -> None:
    exc = _exception_with_marker()
    sys.excepthook(type(exc), exc, exc.__traceback__)
    record = only(out)
    assert record["level"] == "critical"
    assert record["event"] == "uncaught exception"
    assert "RuntimeError" in record["exception"]
    assert MARKER not in out.getvalue()
    assert ALICE not in out.getvalue()


def test_uncaught_exception_in_a_process_is_redacted() -> None:
    script = (
        "from bots.framework.logging import configure_logging\n"
        "configure_logging(level='info', fmt='json')\n"
        f"raise RuntimeError({ALICE!r} + ' sent ' + repr({{'body': {MARKER!r}}}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=_REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "uncaught exception" in done.stderr
    assert "RuntimeError" in done.stderr
    assert MARKER not in done.stderr
    assert ALICE not in done.stderr


def test_thread_exception_goes_through_the_redactor(out: io.StringIO) -> None:
    def fail() -> None:
        raise _exception_with_marker()

    thread = threading.Thread(target=fail)
    thread.start()
    thread.join()
    record = only(out)
    assert record["event"] == "uncaught exception in a thread"
    assert "RuntimeError" in record["exception"]
    assert MARKER not in out.getvalue()


def test_unraisable_exception_goes_through_the_redactor(out: io.StringIO) -> None:
    class Holder:
        def __repr__(self) -> str:
            return f"Holder({MARKER})"

        def __del__(self) -> None:
            raise _exception_with_marker()

    Holder()
    gc.collect()
    record = only(out)
    assert record["event"] == "exception ignored"
    assert MARKER not in out.getvalue()


def test_asyncio_handler_drops_task_reprs(out: io.StringIO) -> None:
    loop = asyncio.new_event_loop()
    try:
        install_asyncio_handler(loop)
        loop.call_exception_handler(
            {
                "message": "Task exception was never retrieved",
                "exception": _exception_with_marker(),
                "future": types.SimpleNamespace(body=MARKER),
            }
        )
    finally:
        loop.close()
    record = only(out)
    assert record["event"] == "Task exception was never retrieved"
    assert "RuntimeError" in record["exception"]
    assert MARKER not in out.getvalue()


# --- the salt ---


def _hmac_hash(salt: bytes, user_id: str) -> str:
    return "user:" + hmac.new(salt, user_id.encode(), hashlib.sha256).hexdigest()[:12]


def test_default_salt_is_random_not_fixed() -> None:
    first, second = Redactor(), Redactor()
    assert first.hash_user(ALICE) != second.hash_user(ALICE)
    assert first.hash_user(ALICE) != _hmac_hash(b"hearth", ALICE)


def test_salt_file_is_created_private_and_used(tmp_path: Path) -> None:
    path = tmp_path / "log-salt"
    use_salt_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert REDACTOR.hash_user(ALICE) == _hmac_hash(path.read_text().strip().encode(), ALICE)


def test_salt_file_gives_the_same_hash_next_time(tmp_path: Path) -> None:
    use_salt_file(tmp_path / "log-salt")
    first = REDACTOR.hash_user(ALICE)
    REDACTOR.set_salt(b"something else")
    use_salt_file(tmp_path / "log-salt")
    assert REDACTOR.hash_user(ALICE) == first


def _community(tmp_path: Path, token_file: str) -> Path:
    path = tmp_path / "community.yaml"
    path.write_text(
        "community:\n  key: c\n  name: C\n  homeserver: http://127.0.0.1:8008\n"
        f"  admin: {{user_id: '@admin:localhost', access_token_file: {token_file}}}\n"
        "  code_of_conduct: ok\n  crisis_resources: ok\n"
    )
    return path


def test_provisioning_uses_the_salt_beside_the_admin_token(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir(mode=0o700)
    use_install_salt(load_community(_community(tmp_path, "secrets/admin.token")))
    salt_file = tmp_path / "secrets" / LOG_SALT_FILE
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    assert REDACTOR.hash_user(ALICE) == _hmac_hash(salt_file.read_text().strip().encode(), ALICE)


def test_provisioning_creates_no_folder_for_the_salt(tmp_path: Path) -> None:
    use_install_salt(load_community(_community(tmp_path, "missing/admin.token")))
    assert not (tmp_path / "missing").exists()


# --- URL-encoded user IDs ---


@pytest.mark.parametrize(
    "spelling",
    [
        "%40alice%3Aexample.org",
        "%40alice%3aexample.org",
        "%40alice:example.org",
        "@alice%3Aexample.org",
    ],
)
def test_url_encoded_user_id_is_hashed_like_the_plain_one(out: io.StringIO, spelling: str) -> None:
    log.info(f"PUT /_matrix/client/v3/profile/{spelling}/displayname failed", user_id=ALICE)
    record = only(out)
    assert "alice" not in record["event"]
    assert (
        record["event"] == f"PUT /_matrix/client/v3/profile/{record['user_id']}/displayname failed"
    )


def test_url_encoded_user_id_with_a_port_is_hashed(out: io.StringIO) -> None:
    log.info("request", url="/profile/%40alice%3Ahs.example.org%3A8448/avatar_url")
    assert "alice" not in only(out)["url"]


# --- values of every shape ---


@pytest.mark.parametrize("blob", [MARKER.encode(), bytearray(MARKER.encode())])
def test_bytes_are_written_as_their_size(out: io.StringIO, blob: bytes | bytearray) -> None:
    log.info("received", payload=blob)
    assert MARKER not in out.getvalue()
    assert only(out)["payload"] == f"<{len(MARKER)} bytes>"


def test_very_long_string_is_shortened_after_scrubbing(out: io.StringIO) -> None:
    # The user ID straddles the cut: it must be hashed, not half-written.
    log.info("payload", detail="x" * (MAX_FIELD_CHARS - 8) + " " + ALICE + " tail" * 1000)
    detail = only(out)["detail"]
    assert "alice" not in detail
    assert len(detail) < MAX_FIELD_CHARS + 40
    assert detail.endswith("more characters]")


def test_nested_tuples_and_sets_are_scrubbed(out: io.StringIO) -> None:
    log.info("nested", data=(("k", ({"displayname": MARKER},)),), who=frozenset({ALICE}))
    record = only(out)
    assert MARKER not in out.getvalue()
    assert ALICE not in out.getvalue()
    assert record["data"] == [["k", [{"displayname": REDACTED}]]]


def test_read_only_mapping_is_scrubbed_by_key(out: io.StringIO) -> None:
    log.info("state", data=types.MappingProxyType({"body": MARKER}))
    assert only(out)["data"] == {"body": REDACTED}
    assert MARKER not in out.getvalue()


@dataclasses.dataclass
class _Inner:
    displayname: str
    sender: str


@dataclasses.dataclass
class _Outer:
    room_id: str
    members: tuple[_Inner, ...]


def test_nested_dataclasses_are_scrubbed_by_field(out: io.StringIO) -> None:
    log.info("room", room=_Outer("!r:example.org", (_Inner(MARKER, ALICE),)))
    record = only(out)
    assert MARKER not in out.getvalue()
    assert ALICE not in out.getvalue()
    assert record["room"]["members"][0]["displayname"] == REDACTED


def test_self_referencing_structure_is_written(out: io.StringIO) -> None:
    loop: list[Any] = [MARKER]
    loop.append(loop)
    log.info("loop", data=loop)
    assert only(out)["data"][1] == "[nested too deep]"


def test_foreign_object_repr_is_cut(out: io.StringIO) -> None:
    class Foreign:
        def __repr__(self) -> str:
            return f"Foreign(body={MARKER!r})"

    log.info("object", thing=Foreign())
    assert MARKER not in out.getvalue()


def test_exception_as_a_value_is_cut(out: io.StringIO) -> None:
    log.warning("request failed", error=ValueError(f"{{'body': '{MARKER}'}}"))
    assert MARKER not in out.getvalue()
    assert only(out)["error"].startswith("ValueError")
