"""Registration tokens: sign-up needs one; they are shown once and tied to groups."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from bots.devserver.synapse_config import registrations_dir
from provisioning.tokens import token_ref
from tests.support.community import make_community
from tests.support.homeserver import Homeserver
from tests.support.registration import register

pytestmark = pytest.mark.integration

HEARTH = str(Path(sys.executable).with_name("hearth"))


async def hearth(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        HEARTH, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_tokens_gate_registration_and_remember_their_group(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    community = await make_community(homeserver, tmp_path, [{"key": "carers", "name": "Carers"}])
    cfg = str(community.path)
    status, data, _ = await register(homeserver.base_url, None)
    assert status == 401, "registration must be refused without a token"

    code, out, err = await hearth(
        "tokens", "--config", cfg, "create", "--uses", "1", "--expires", "14d", "--group", "carers"
    )
    assert code == 0, err
    token = out.strip()
    assert len(token) == 24
    assert "it is not shown again" in err
    assert token not in err

    code, out, _ = await hearth("tokens", "--config", cfg, "list")
    assert code == 0
    assert token not in out, "list must not show whole tokens"
    assert f"{token[:4]}…{token[-2:]}" in out
    assert "valid" in out
    assert "group carers" in out

    status, data, _ = await register(homeserver.base_url, "wrong-token")
    assert status == 401
    status, data, _ = await register(homeserver.base_url, token)
    assert status == 200, data
    assert data["user_id"].startswith("@newcomer-")
    code, out, _ = await hearth("tokens", "--config", cfg, "list")
    assert "used up" in out
    assert "used 1/1" in out

    code, out, _ = await hearth("tokens", "--config", cfg, "revoke", token)
    assert code == 0
    assert "revoked" in out
    code, out, _ = await hearth("tokens", "--config", cfg, "list")
    assert f"{token[:4]}…" not in out

    code, _, err = await hearth("tokens", "--config", cfg, "create", "--group", "nope")
    assert code == 2
    assert "no group with key 'nope'" in err
    code, _, err = await hearth("tokens", "--config", cfg, "create", "--expires", "soon")
    assert code == 2
    assert "not a duration" in err


async def test_synapse_tells_hearth_who_registered_with_which_token(
    homeserver: Homeserver, state: Path
) -> None:
    """hearth_synapse, loaded by the test homeserver, writes one entry per
    account registered through the client API, with its token's reference."""
    spool = registrations_dir(homeserver.dir)
    before = set(spool.glob("*.json")) if spool.exists() else set()
    community = await make_community(homeserver, state, [{"key": "carers", "name": "Carers"}])
    cfg = str(community.path)
    code, out, err = await hearth("tokens", "--config", cfg, "create", "--group", "carers")
    assert code == 0, err
    token = out.strip()
    status, data, _ = await register(homeserver.base_url, token)
    assert status == 200, data
    staff = await homeserver.user("staff")  # made with the shared secret: not written
    new = sorted(set(spool.glob("*.json")) - before)
    entries = [json.loads(p.read_text()) for p in new]
    assert [e["user_id"] for e in entries] == [data["user_id"]]
    assert entries[0]["token_ref"] == token_ref(token)
    assert staff.user_id not in {e["user_id"] for e in entries}
    assert all(p.stat().st_mode & 0o077 == 0 for p in new)
