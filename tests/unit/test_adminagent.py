"""The admin agent's allow-list and audit log, without a homeserver."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from bots.adminagent.audit import AuditLog
from bots.adminagent.requests import CreateToken, EraseAccount, parse_request, subject_of


@pytest.mark.parametrize(
    "user_id",
    [
        "@a/../../../v2/users/x:example.org",  # a path out of the allow-list
        "@a+b:example.org",
        "@Alice:example.org",
        "alice:example.org",
        "@alice",
    ],
)
def test_user_ids_that_could_bend_an_admin_path_are_refused(user_id: str) -> None:
    with pytest.raises(ValidationError):
        parse_request({"type": "erase_account", "user_id": user_id, "requested_by": user_id})


def test_an_allowed_request_is_typed() -> None:
    request = parse_request({"type": "create_token", "uses": 2, "expires_s": 3600})
    assert request == CreateToken(uses=2, expires_s=3600)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "make_admin", "user_id": "@x:example.org"},
        {"type": "list_tokens", "extra": 1},
        {"type": "create_token", "uses": 0, "expires_s": 3600},
        {"type": "create_token", "uses": 1, "expires_s": 91 * 86400},
        {"user_id": "@x:example.org"},
    ],
)
def test_anything_else_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        parse_request(body)


def test_the_subject_of_an_erasure_is_the_account() -> None:
    request = EraseAccount(user_id="@a:example.org", requested_by="@a:example.org")
    assert subject_of(request) == "@a:example.org"


def test_the_audit_log_is_private_and_names_nobody(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "agent" / "audit.log")
    audit.record("erase_account", 1000, "@alice:example.org", "ok", "")
    assert audit.path.stat().st_mode & 0o777 == 0o600
    text = audit.path.read_text()
    assert "@alice" not in text
    line = json.loads(text)
    assert line["subject"].startswith("user:")
    assert line["caller_uid"] == 1000


def test_only_recent_successes_count_towards_the_daily_limit(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    audit.record("erase_account", 1, "@a:x.org", "ok", "")
    audit.record("erase_account", 1, "@b:x.org", "refused", "staff")
    audit.record("exempt_from_rate_limits", 1, "@bot:x.org", "ok", "")
    old = {"time": time.time() - 2 * 86400, "request": "erase_account", "outcome": "ok"}
    with audit.path.open("a") as fh:
        fh.write(json.dumps(old) + "\n")
    assert audit.count_ok("erase_account", within_s=86400) == 1
