"""The bot's device is cross-signed, and Element's crypto stack talks to it.

The interop test drives matrix-js-sdk with its Rust crypto (what Element
uses) in "only signed devices" isolation mode: it shares room keys only with
devices their owner has cross-signed. A control bot without cross-signing
must be refused, which shows the mode is really in force.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bots.framework import session as session_module
from bots.framework.cross_signing import canonical_json, device_is_signed
from tests.support.homeserver import Homeserver, User, cast, running_bot, wait_joined
from tests.support.js_client import run_js_client

pytestmark = pytest.mark.integration


async def keys_of(hs: Homeserver, asker: User, user_id: str) -> dict[str, Any]:
    api = await hs.api(asker)
    return await api.request(
        "POST", "/_matrix/client/v3/keys/query", {"device_keys": {user_id: []}}
    )


async def test_bot_device_is_signed_by_its_self_signing_key(
    homeserver: Homeserver, state: Path
) -> None:
    bot, alice = await homeserver.users("bot", "alice")
    async with running_bot(homeserver.bot_config(bot, state / "bot")):
        query = await keys_of(homeserver, alice, bot.user_id)
    creds = json.loads((state / "bot" / "credentials.json").read_text())
    device = query["device_keys"][bot.user_id][creds["device_id"]]
    self_signing = query["self_signing_keys"][bot.user_id]
    master = query["master_keys"][bot.user_id]
    ssk_public = next(iter(self_signing["keys"].values()))
    assert device_is_signed(device, bot.user_id, ssk_public)
    # The self-signing key is itself signed by the master key.
    master_public = next(iter(master["keys"].values()))
    assert f"ed25519:{master_public}" in self_signing["signatures"][bot.user_id]
    assert canonical_json(self_signing)  # well-formed
    # Private keys are kept owner-only.
    assert (state / "bot" / "cross_signing.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.interop
async def test_element_crypto_in_only_signed_mode_gets_an_answer(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    bot = c.bot
    async with running_bot(c.config):
        await wait_joined(homeserver, c.mod, c.room, bot.user_id)
        result = await run_js_client(homeserver, c.alice, c.room, bot, timeout=60)
    assert result["ok"], json.dumps(result)
    assert result["reply_body"] == "pong"
    assert result["reply_msgtype"] == "m.notice"
    assert result["reply_encrypted"] is True


@pytest.mark.interop
async def test_control_uncross_signed_bot_is_refused_keys(
    homeserver: Homeserver, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def skip_cross_signing(*_: object) -> None:
        return None

    monkeypatch.setattr(session_module, "ensure_cross_signed", skip_cross_signing)
    c = await cast(homeserver, state)
    bot = c.bot
    async with running_bot(c.config):
        await wait_joined(homeserver, c.mod, c.room, bot.user_id)
        result = await run_js_client(homeserver, c.alice, c.room, bot, timeout=15)
    assert result["ok"] is False
    assert result["sent"] is True
    assert any(d.startswith(bot.user_id) for d in result["withheld_devices"]), result
