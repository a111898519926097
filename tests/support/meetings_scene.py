"""A group with meetings in Berlin's zone, its moderator and the bot, on
the test Synapse, and how tests of meetings ask, vote and wait: shared by
the integration and browser tests."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bots.meetings.config import MeetingsConfig
from provisioning.provision import provision
from tests.support.community import make_community
from tests.support.homeserver import Homeserver, User, member, running_bot, wait_joined
from tests.support.member_client import MemberClient, Received, body
from tests.support.moderation_scene import Scene

ZONE = "Europe/Berlin"


BERLIN = ZoneInfo(ZONE)


POLL_START = "org.matrix.msc3381.poll.start"


POLL_RESPONSE = "org.matrix.msc3381.poll.response"


POLL_END = "org.matrix.msc3381.poll.end"


async def set_up(hs: Homeserver, state: Path, max_per_room: int = 50) -> Scene:
    mod, bot = await hs.users("mod", "bot")
    groups = [{"key": "carers", "name": "Carers", "timezone": ZONE}]
    community = await make_community(hs, state, groups, moderators=[mod], bots=[bot])
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    config = hs.bot_config(
        bot,
        state / "bot",
        feature_sections={
            "meetings": MeetingsConfig(community=community.path, max_per_room=max_per_room)
        },
        # The bot's clock runs up to two days ahead of the server's here.
        max_event_age_s=3 * 86400,
    )
    return Scene(community, ids, bot, mod, config)


@contextlib.asynccontextmanager
async def in_group(
    hs: Homeserver, scene: Scene, user: User, store: Path
) -> AsyncIterator[MemberClient]:
    await (await hs.api(scene.community.admin)).invite(scene.room, user.user_id)
    async with member(hs, user, store) as m:
        await m.join(scene.room)
        yield m


@contextlib.asynccontextmanager
async def bot_at(scene: Scene, hs: Homeserver, ahead_s: float = 0) -> AsyncIterator[str]:
    """The bot running with its clock *ahead_s* seconds ahead of the real
    one; yields its device ID."""
    clock: Callable[[], float] = lambda: time.time() + ahead_s  # noqa: E731
    async with running_bot(scene.config, clock=clock) as runtime:
        await wait_joined(hs, scene.community.admin, scene.room, scene.bot.user_id)
        yield str(runtime.session.client.device_id)


async def bot_joined(scene: Scene, hs: Homeserver) -> str:
    """Start the bot once, so it has joined the group's room; its device."""
    async with bot_at(scene, hs) as device:
        return device


async def know_bot(scene: Scene, device: str, *clients: MemberClient) -> None:
    """Each client knows the bot's device before writing: a message sent
    before that would carry its room key to the others only."""
    for m in clients:
        await m.knows_device(scene.bot.user_id, device)


def from_bot(scene: Scene, predicate: Callable[[Received], bool]) -> Callable[[Received], bool]:
    return lambda ev: ev.sender == scene.bot.user_id and ev.room_id == scene.room and predicate(ev)


async def ask(m: MemberClient, scene: Scene, text: str) -> str:
    """Send a command; the bot's reply to it."""
    sent = await m.send(scene.room, text)
    return body(await m.wait_for_reply(sent, timeout=60))


def poll_of(ev: Received) -> dict[str, Any]:
    poll = ev.content.get(POLL_START)
    return poll if isinstance(poll, dict) else {}


def mentions(ev: Received) -> list[str]:
    found = ev.content.get("m.mentions", {}).get("user_ids", [])
    return sorted(found) if isinstance(found, list) else []


def tomorrow_at(hours_ahead: float) -> datetime:
    """A whole minute about *hours_ahead* from now, in Berlin."""
    t = datetime.now(BERLIN) + timedelta(hours=hours_ahead)
    return t.replace(second=0, microsecond=0) + timedelta(minutes=1)


async def vote(m: MemberClient, scene: Scene, poll: Received, answer: str) -> None:
    """Tap an answer in Element: a poll response referencing the poll."""
    ids = {a["id"] for a in poll_of(poll)["answers"]}
    chosen = next(i for i in ids if i.endswith("." + answer))
    await m.send_event(
        scene.room,
        POLL_RESPONSE,
        {
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll.event_id},
            POLL_RESPONSE: {"answers": [chosen]},
        },
    )


async def until_said(m: MemberClient, scene: Scene, text: str, needle: str) -> str:
    """Ask again until the answer says *needle*: a vote the bot has not
    decrypted yet (its key still on the way) is counted a moment later."""
    async with asyncio.timeout(60):
        while needle not in (said := await ask(m, scene, text)):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    return said
