"""Staff first, on a real Synapse: a moderator's `!ping` sent while a
member's messages are still queued in the room is answered before the bot
has got through them, and the member's messages are still each handled
once, in the order sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from bots.core.feature import FEATURE as CORE
from bots.framework.actions import Action, Reply
from bots.framework.commands.spec import Command, Invocation
from bots.framework.events import Message, Reaction
from bots.framework.feature import Context, EventHandler, Feature, FeatureConfig
from tests.support.homeserver import Cast, Homeserver, cast, member, running_bot, wait_joined
from tests.support.member_client import MemberClient, body, reply_target

pytestmark = pytest.mark.integration

FLOOD = 10
# Each ordinary message keeps the room's worker busy this long, so the
# flood is still queued when the moderator's command arrives.
HANDLING_S = 0.4


async def _seen(event: Message, ctx: Context[FeatureConfig]) -> Sequence[Action]:
    if event.body.startswith("!"):
        return []
    await asyncio.sleep(HANDLING_S)
    return [Reply(event.room_id, event.event_id, f"seen {event.body}")]


def slow_reader() -> Feature[FeatureConfig]:
    """Answers every ordinary message, slowly (as moderation's checks and
    removals do during a flood)."""
    return Feature(
        "reader",
        "answers every message, slowly",
        FeatureConfig,
        handlers=(EventHandler(Message, _seen),),
    )


@contextlib.asynccontextmanager
async def bot_alice_and_mod(
    homeserver: Homeserver, state: Path, feature: Feature[FeatureConfig]
) -> AsyncIterator[tuple[Cast, MemberClient, MemberClient]]:
    """The bot with *feature*, and Alice and a moderator in its room."""
    c = await cast(homeserver, state)
    async with (
        running_bot(c.config, [CORE, feature]),
        member(homeserver, c.alice, state / "alice") as alice,
        member(homeserver, c.mod, state / "mod") as mod,
    ):
        await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
        await alice.join(c.room)
        await mod.sync_until_joined(c.room)
        yield c, alice, mod


async def test_a_moderator_s_ping_is_answered_ahead_of_a_queued_flood(
    homeserver: Homeserver, state: Path
) -> None:
    async with bot_alice_and_mod(homeserver, state, slow_reader()) as (c, alice, mod):
        # The bot reads the room before the flood (its keys are shared).
        warm = await alice.send(c.room, "hello")
        await alice.wait_for_reply(warm)

        flood = [await alice.send(c.room, f"flood {i}") for i in range(FLOOD)]
        ping = await mod.send(c.room, "!ping")
        pong = await mod.wait_for_reply(ping, timeout=60)
        await mod.wait_for_reply(flood[-1], timeout=60)

        # What the room shows, in its order: the bot's answer to the
        # moderator comes before its answer to the flood's last message...
        answers = [ev for ev in mod.received if ev.sender == c.bot.user_id]
        order = [reply_target(ev.content) for ev in answers]
        assert "pong" in body(pong).lower()
        assert order.index(ping) < order.index(flood[-1])
        # ...and the flood's messages were each answered once, in the order sent.
        assert [t for t in order if t in flood] == flood


def tally_feature(seen: list[str]) -> Feature[FeatureConfig]:
    """Counts reactions, slowly; a moderator's `!tally` says how many."""

    async def on_reaction(event: Reaction, ctx: Context[FeatureConfig]) -> Sequence[Action]:
        await asyncio.sleep(HANDLING_S)
        seen.append(event.event_id)
        return []

    async def tally(inv: Invocation, ctx: Context[FeatureConfig]) -> Sequence[Action]:
        return [Reply(inv.room_id, inv.event_id, f"{len(seen)} reactions")]

    return Feature(
        "tally",
        "counts reactions",
        FeatureConfig,
        commands=(Command("tally", "How many reactions so far", tally),),
        handlers=(EventHandler(Reaction, on_reaction),),
    )


async def test_a_moderator_s_command_does_not_pass_what_its_own_feature_was_sent_first(
    homeserver: Homeserver, state: Path
) -> None:
    """Members' reactions are queued when the moderator asks for the tally:
    the tally's feature acts on them, so it waits for them (as a staff
    count of a poll must see the votes cast before it)."""
    seen: list[str] = []
    async with bot_alice_and_mod(homeserver, state, tally_feature(seen)) as (c, alice, mod):
        warm = await mod.send(c.room, "!ping")
        await mod.wait_for_reply(warm)
        post = await alice.send(c.room, "a post to react to")
        for key in ("👍", "❤️", "🙏"):
            await alice.send_event(
                c.room,
                "m.reaction",
                {"m.relates_to": {"rel_type": "m.annotation", "event_id": post, "key": key}},
            )
        asked = await mod.send(c.room, "!tally")
        told = await mod.wait_for_reply(asked, timeout=60)
        assert body(told) == "3 reactions"
