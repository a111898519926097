"""Trust in members' devices, against a real Synapse, with Element's crypto.

The js-sdk devices run matrix-js-sdk with its Rust crypto, the stack Element
uses; the nio members are cross-signed like a person who set up Element.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nio import EncryptionError, MegolmEvent

from bots.framework.commands.authorize import UNVERIFIED_REFUSAL
from bots.framework.markdown import render
from tests.support.homeserver import Homeserver, cast, member, running_bot, wait_joined
from tests.support.js_client import JsMember, run_js_client

pytestmark = [pytest.mark.integration, pytest.mark.interop]


async def test_unsigned_device_is_told_the_key_is_withheld(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    bot, mod, alice, room = c.bot, c.mod, c.alice, c.room
    async with running_bot(c.config), member(homeserver, alice, state / "alice") as signed:
        await wait_joined(homeserver, mod, room, bot.user_id)
        await signed.join(room)
        # Alice's second device, a login she never verified, asks for a pong.
        result = await run_js_client(
            homeserver, alice, room, bot,
            cross_signing="none", isolation="all", expect="withheld", timeout=60,
        )  # fmt: skip
        assert result["ok"], result
        assert result["withheld_reason"] == "MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE"
        # Her verified device reads the same reply.
        reply = await signed.wait_for_reply(result["sent_event_id"])
    assert reply.content["body"] == "pong"
    assert reply.decrypted


async def test_moderator_command_from_unsigned_device_is_refused(
    homeserver: Homeserver, state: Path
) -> None:
    # The moderator created the room: a room version 12 creator outranks
    # everyone. It is the bot's moderators' room, where !trust is accepted.
    c = await cast(homeserver, state)
    bot, mod, alice, room = c.bot, c.mod, c.alice, c.room
    config = c.config.model_copy(update={"moderators_room": room})
    async with (
        running_bot(config),
        member(homeserver, mod, state / "mod") as signed,
        member(homeserver, alice, state / "alice") as a,
    ):
        await wait_joined(homeserver, mod, room, bot.user_id)
        await a.join(room)
        result = await run_js_client(
            homeserver, mod, room, bot, sends=(f"!trust {alice.user_id}",),
            cross_signing="none", isolation="all", expect="withheld", timeout=60,
        )  # fmt: skip
        assert result["ok"], result
        refusal = await signed.wait_for_reply(result["sent_event_id"])
        assert refusal.content["body"] == render(UNVERIFIED_REFUSAL).body
        # The same command from the moderator's verified device works.
        answer = await signed.wait_for_reply(await signed.send(room, f"!trust {alice.user_id}"))
    assert answer.content["body"].startswith(f"Trusted {alice.user_id}")


async def test_moderator_identity_reset_is_refused_until_another_moderator_trusts_it(
    homeserver: Homeserver, state: Path
) -> None:
    bot, mod, mod2, alice = await homeserver.users("bot", "mod", "mod2", "alice")
    room = await homeserver.encrypted_room(
        mod, [bot, mod2, alice], power={bot.user_id: 100, mod2.user_id: 50}
    )
    config = homeserver.bot_config(bot, state / "bot", moderators_room=room)
    command = f"!trust {alice.user_id}"
    async with (
        running_bot(config),
        member(homeserver, mod, state / "mod") as first,
        member(homeserver, mod2, state / "mod2") as other,
        member(homeserver, alice, state / "alice") as a,
    ):
        await wait_joined(homeserver, mod, room, bot.user_id)
        for m in (other, a):
            await m.join(room)
        # The bot pins the moderator's identity when it first sees it.
        ok = await first.wait_for_reply(await first.send(room, command))
        assert ok.content["body"].startswith("Trusted")
        # Element resets the identity (a new recovery key) and tries again.
        js = JsMember(
            homeserver, mod, room, bot.user_id, sends=(command, command),
            cross_signing="new", go_file=state / "go", timeout=90,
        )  # fmt: skip
        await js.start()
        refused = await js.step()
        assert refused["ok"], refused
        assert "security identity has changed" in refused["reply_body"]
        assert f"!trust {mod.user_id}" in refused["reply_body"]
        notice = await other.wait_for(
            lambda r: (
                r.sender == bot.user_id
                and "security identity changed" in str(r.content.get("body"))
            )
        )
        assert mod.user_id in notice.content["body"]
        # Another moderator, having checked with them, confirms the change.
        confirmed = await other.wait_for_reply(await other.send(room, f"!trust {mod.user_id}"))
        assert confirmed.content["body"].startswith(f"Trusted {mod.user_id}")
        js.go(1)
        accepted = await js.step()
        assert accepted["ok"], accepted
        assert accepted["reply_body"].startswith(f"Trusted {alice.user_id}")
        assert (await js.result())["ok"]


async def test_member_who_left_cannot_read_what_follows(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    bot, mod, alice, room = c.bot, c.mod, c.alice, c.room
    api = await homeserver.api(mod)
    async with (
        running_bot(c.config),
        member(homeserver, mod, state / "mod") as m,
        member(homeserver, alice, state / "alice") as a,
    ):
        await wait_joined(homeserver, mod, room, bot.user_id)
        await a.join(room)
        before = await m.wait_for_reply(await m.send(room, "!ping"))
        await a.wait_for(lambda r: r.event_id == before.event_id)
        await (await homeserver.api(alice)).request(
            "POST", f"/_matrix/client/v3/rooms/{room}/leave", {}
        )
        after = await m.wait_for_reply(await m.send(room, "!ping"))
        assert after.content["body"] == "pong"
        raw = {}
        for event_id in (before.event_id, after.event_id):
            raw[event_id] = await api.request(
                "GET", f"/_matrix/client/v3/rooms/{room}/event/{event_id}"
            )
        # Alice's device still reads the reply from before she left ...
        earlier = MegolmEvent.from_dict(raw[before.event_id])
        assert a.client.decrypt_event(earlier).source["content"]["body"] == "pong"
        # ... but holds no key for the one after: the bot started a new session.
        later = MegolmEvent.from_dict(raw[after.event_id])
        assert later.session_id != earlier.session_id
        with pytest.raises(EncryptionError):
            a.client.decrypt_event(later)
