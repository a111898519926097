"""History for newcomers (MSC4268), with Element's crypto on both sides.

A member on matrix-js-sdk with its Rust crypto (what Element uses) posts in a
group; a newcomer, on a fresh js-sdk device, is invited by the bot and reads
what was said before they came, or, in a group that keeps its history to
those who were there, reads none of it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bots.framework.feature import Feature
from bots.framework.outbox.membership import HISTORY_NOT_SHARED_NOTE
from bots.framework.runtime import BotRuntime
from bots.framework.trust.history import HistoryOutcome, HistorySharer
from tests.support.features import doorkeeper_feature
from tests.support.homeserver import Homeserver, User, member, running_bot, wait_joined
from tests.support.js_client import JsMember, run_js_client

pytestmark = [pytest.mark.integration, pytest.mark.interop]

POSTS = 20


def features() -> list[Feature]:
    from bots.core.feature import FEATURE as core

    return [core, doorkeeper_feature()]


async def newcomer_after_posts(
    hs: Homeserver, state: Path, history: str
) -> tuple[dict[str, Any], BotRuntime, User]:
    """20 posts by a member, then the bot invites a newcomer, who reads back."""
    bot, mod, poster, newcomer = await hs.users("bot", "mod", "poster", "newcomer")
    room = await hs.encrypted_room(mod, [bot, poster], power={bot.user_id: 100}, history=history)
    async with (
        running_bot(hs.bot_config(bot, state / "bot"), features()) as runtime,
        member(hs, mod, state / "mod") as m,
    ):
        await wait_joined(hs, mod, room, bot.user_id)
        posted = await run_js_client(
            hs, poster, room, bot, sends=tuple(f"story {i}" for i in range(POSTS)), expect="none"
        )
        assert posted["ok"], posted
        js = JsMember(
            hs, newcomer, room, bot.user_id,
            history_from=poster.user_id, history_count=POSTS, timeout=120,
        )  # fmt: skip
        await js.start()
        assert (await js.step()).get("ready"), "the newcomer's device did not start"
        invited = await m.wait_for_reply(await m.send(room, f"!invite {newcomer.user_id}"))
        assert invited.sender == bot.user_id
        result = await js.result()
    return result, runtime, poster


async def test_newcomer_reads_the_groups_history(homeserver: Homeserver, state: Path) -> None:
    result, runtime, _ = await newcomer_after_posts(homeserver, state, "shared")
    assert result["ok"], result
    assert result["inviter"] == runtime.config.user_id
    history = result["history"]
    assert history["failures"] == []
    assert history["bodies"] == [f"story {i}" for i in range(POSTS)]
    # And the bot's messages after joining: the newcomer's own !ping is answered.
    assert result["reply_body"] == "pong"
    assert runtime.history is not None
    assert runtime.history.bundles_sent == 1


async def test_no_history_in_a_group_that_keeps_it(homeserver: Homeserver, state: Path) -> None:
    result, runtime, _ = await newcomer_after_posts(homeserver, state, "joined")
    assert result["ok"], result
    assert result["history"]["bodies"] == []
    assert result["reply_body"] == "pong"
    assert runtime.history is not None
    assert runtime.history.bundles_sent == 0


async def test_without_the_bundle_the_history_stays_unreadable(
    homeserver: Homeserver, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: were the bot to send no bundle, nothing would be readable,
    # so what the first test reads came through the bundle.
    async def no_bundle(self: HistorySharer, room_id: str, invitee: str) -> HistoryOutcome:
        return HistoryOutcome.NOT_SHARED_HERE

    monkeypatch.setattr(HistorySharer, "before_invite", no_bundle)
    result, _, _ = await newcomer_after_posts(homeserver, state, "shared")
    assert result["history"]["found"] == POSTS
    assert result["history"]["bodies"] == []
    assert len(result["history"]["failures"]) == POSTS


async def test_invitee_without_a_verified_device_is_invited_with_a_note(
    homeserver: Homeserver, state: Path
) -> None:
    bot, mod, newcomer = await homeserver.users("bot", "mod", "newcomer")
    room = await homeserver.encrypted_room(mod, [bot], power={bot.user_id: 100}, history="shared")
    async with (
        running_bot(homeserver.bot_config(bot, state / "bot"), features()) as runtime,
        member(homeserver, mod, state / "mod") as m,
        member(homeserver, newcomer, state / "newcomer", cross_sign=False),
    ):
        await wait_joined(homeserver, mod, room, bot.user_id)
        answer = await m.wait_for_reply(await m.send(room, f"!invite {newcomer.user_id}"))
        assert answer.content["body"] == f"Invited {newcomer.user_id}."
        invite = await (await homeserver.api(mod)).state(room, "m.room.member", newcomer.user_id)
    assert invite["membership"] == "invite"
    assert invite["reason"] == HISTORY_NOT_SHARED_NOTE
    assert runtime.history is not None
    assert runtime.history.bundles_sent == 0


async def test_group_switched_to_private_history_shares_nothing_more(
    homeserver: Homeserver, state: Path
) -> None:
    bot, mod, newcomer = await homeserver.users("bot", "mod", "newcomer")
    room = await homeserver.encrypted_room(mod, [bot], power={bot.user_id: 100}, history="shared")
    api = await homeserver.api(mod)
    async with (
        running_bot(homeserver.bot_config(bot, state / "bot"), features()) as runtime,
        member(homeserver, mod, state / "mod") as m,
        member(homeserver, newcomer, state / "newcomer"),
    ):
        await wait_joined(homeserver, mod, room, bot.user_id)
        before = await m.wait_for_reply(await m.send(room, "!ping"))
        # The YAML now says history_before_joining: false; provisioning applies it.
        await api.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{room}/state/m.room.history_visibility/",
            {"history_visibility": "joined"},
        )
        client = runtime.session.client
        assert client is not None
        for _ in range(100):
            if client.rooms[room].history_visibility == "joined":
                break
            await asyncio.sleep(0.1)
        after = await m.wait_for_reply(await m.send(room, "!ping"))
        # Inviting someone already there, and then a newcomer: no bundle either way.
        await m.wait_for_reply(await m.send(room, f"!invite {mod.user_id}"))
        await m.wait_for_reply(await m.send(room, f"!invite {newcomer.user_id}"))
        assert runtime.history is not None
        assert runtime.history.bundles_sent == 0
        invite = await api.state(room, "m.room.member", newcomer.user_id)
        assert invite["membership"] == "invite"
        sessions = {}
        for event in (before, after):
            raw = await api.request(
                "GET", f"/_matrix/client/v3/rooms/{room}/event/{event.event_id}"
            )
            sessions[event.event_id] = raw["content"]["session_id"]
        assert runtime.storage is not None
        async with runtime.storage.db.execute(
            "SELECT session_id, shareable FROM shareable_sessions WHERE room_id = ?", (room,)
        ) as cur:
            flags = {str(row[0]): int(row[1]) for row in await cur.fetchall()}
    # The bot's messages after the switch are in a new session, not shareable.
    assert sessions[before.event_id] != sessions[after.event_id]
    assert flags[sessions[before.event_id]] == 1
    assert flags[sessions[after.event_id]] == 0
