"""Features defined only in the tests: the runtime runs them unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bots.framework.actions import (
    Action,
    Invite,
    Kick,
    React,
    Reply,
    ScheduleJob,
    SendDirect,
    SendNotice,
    SendPoll,
    SetState,
    UploadFile,
)
from bots.framework.commands.spec import MODERATOR, Arg, ArgType, Command, Invocation
from bots.framework.events import PollResponse, Reaction
from bots.framework.feature import (
    Context,
    EventHandler,
    Feature,
    FeatureConfig,
    Job,
    JobSpec,
    Running,
    Service,
)
from bots.framework.storage import Migration


async def _slow(inv: Invocation, ctx: Context[FeatureConfig]) -> Sequence[Action]:
    seconds = inv.args.get("seconds")
    await asyncio.sleep(float(seconds) if isinstance(seconds, int) else 3.0)
    return [Reply(inv.room_id, inv.event_id, "slow done")]


def slow_feature() -> Feature[FeatureConfig]:
    """`!slow [seconds]`: a handler that takes its time, to stop the bot in."""
    return Feature(
        "slow",
        "a slow command",
        FeatureConfig,
        commands=(
            Command(
                "slow",
                "Answer after a pause",
                _slow,
                (Arg("seconds", "how long", ArgType.INT, required=False),),
            ),
        ),
    )


class NotesConfig(FeatureConfig):
    greeting: str = "hello"
    nudge_after_s: float = 1.0


async def _remind(inv: Invocation, ctx: Context[NotesConfig]) -> Sequence[Action]:
    config = ctx.config
    await ctx.db.write("INSERT OR IGNORE INTO notes_asked VALUES (?)", (inv.sender,))
    return [
        Reply(inv.room_id, inv.event_id, f"{config.greeting}: I'll nudge you"),
        ScheduleJob(
            "notes",
            "nudge",
            ctx.now + config.nudge_after_s,
            key=f"nudge:{inv.event_id}",
            payload={"room_id": inv.room_id, "user_id": inv.sender},
        ),
    ]


async def _boom(inv: Invocation, ctx: Context[NotesConfig]) -> Sequence[Action]:
    raise RuntimeError(f"handler bug while reading {inv.args}")


async def _whisper(inv: Invocation, ctx: Context[NotesConfig]) -> Sequence[Action]:
    return [SendDirect(inv.sender, "a private word")]


async def _on_reaction(event: Reaction, ctx: Context[NotesConfig]) -> Sequence[Action]:
    return [Reply(event.room_id, event.relates_to, f"you reacted with {event.key}")]


def _parse_nudge(payload: Mapping[str, Any]) -> tuple[str, str]:
    room, user = payload["room_id"], payload["user_id"]
    if not isinstance(room, str) or not isinstance(user, str):
        raise ValueError("room_id and user_id must be strings")
    return room, user


async def _nudge(job: Job[None], ctx: Context[NotesConfig]) -> Sequence[Action]:
    room, user = job.parsed
    rows = await ctx.db.fetch("SELECT COUNT(*) FROM notes_asked")
    asked = rows[0][0] if rows else 0
    return [SendNotice(room, f"nudge for {user} ({asked} asked)", mentions=(user,))]


def notes_feature() -> Feature[NotesConfig]:
    """Commands, an event handler, a scheduled job, a migration and a config
    section, none of which the runtime knows about."""
    return Feature(
        "notes",
        "test feature",
        commands=(
            Command("remind", "Nudge me in a moment", _remind),
            Command("whisper", "Say something in private", _whisper),
            Command("boom", "Fail", _boom, (Arg("what", "anything", rest=True),)),
        ),
        handlers=(EventHandler(Reaction, _on_reaction),),
        migrations=(
            Migration(
                1, "who asked", "CREATE TABLE notes_asked (user_id TEXT PRIMARY KEY)", "notes"
            ),
        ),
        jobs=(JobSpec("nudge", _nudge, grace_s=600, parse=_parse_nudge),),
        config_model=NotesConfig,
    )


class GadgetsConfig(FeatureConfig):
    attachment: str = ""


async def _poll(inv: Invocation, ctx: Context[GadgetsConfig]) -> Sequence[Action]:
    return [SendPoll(inv.room_id, "Which day suits you?", ("Monday", "Tuesday"))]


async def _on_vote(event: PollResponse, ctx: Context[GadgetsConfig]) -> Sequence[Action]:
    return [Reply(event.room_id, event.poll_id, f"vote counted: {', '.join(event.answers)}")]


async def _file(inv: Invocation, ctx: Context[GadgetsConfig]) -> Sequence[Action]:
    return [UploadFile(inv.room_id, ctx.config.attachment, "notes.txt", "text/plain")]


async def _tidy(inv: Invocation, ctx: Context[GadgetsConfig]) -> Sequence[Action]:
    who = str(inv.args["who"])
    return [
        Kick(inv.room_id, who, "tidy test"),
        SetState(inv.room_id, "m.room.topic", {"topic": "tidied"}),
        React(inv.room_id, inv.event_id, "✅"),
    ]


def gadgets_feature() -> Feature[GadgetsConfig]:
    """Polls, encrypted files, kicks, state and reactions, end to end."""
    return Feature(
        "gadgets",
        "test feature for the effector's actions",
        commands=(
            Command("poll", "Ask which day", _poll),
            Command("file", "Share the notes", _file),
            Command("tidy", "Remove someone", _tidy, (Arg("who", "member", ArgType.USER),)),
        ),
        handlers=(EventHandler(PollResponse, _on_vote),),
        config_model=GadgetsConfig,
    )


async def _invite(inv: Invocation, ctx: Context[FeatureConfig]) -> Sequence[Action]:
    user = str(inv.args["user"])
    return [Invite(inv.room_id, user), Reply(inv.room_id, inv.event_id, f"Invited {user}.")]


def doorkeeper_feature() -> Feature[FeatureConfig]:
    """`!invite @user`: a moderator has the bot invite someone into the room
    (what onboarding's approval and moderation's invite will do)."""
    return Feature(
        "doorkeeper",
        "invites on a moderator's word",
        FeatureConfig,
        commands=(
            Command(
                "invite",
                "Invite someone into this room",
                _invite,
                (Arg("user", "who", ArgType.USER),),
                power_level=MODERATOR,
            ),
        ),
    )


async def _tally(inv: Invocation, ctx: Context[FeatureConfig]) -> Sequence[Action]:
    count = int(((await ctx.record("tally", inv.sender)) or {}).get("count", 0)) + 1
    return [
        ctx.put("tally", inv.sender, {"count": count}),
        Reply(inv.room_id, inv.event_id, f"tally {count}"),
    ]


def tally_feature() -> Feature[FeatureConfig]:
    """`!tally`: a count per member, kept as a record written with the reply."""
    return Feature(
        "tally", "counts", FeatureConfig, commands=(Command("tally", "Count one more", _tally),)
    )


class MailboxConfig(FeatureConfig):
    folder: str
    room_id: str
    poll_s: float = 0.2


async def _watch_mailbox(run: Running[MailboxConfig], ctx: Context[MailboxConfig]) -> None:
    """Each file dropped in the folder becomes one notice, even if the file
    is dropped again or the bot restarts before deleting it."""
    config = ctx.config
    folder = Path(config.folder)
    while True:
        for path in sorted(folder.glob("*.txt")):
            await run.submit(path.stem, [SendNotice(config.room_id, path.read_text())])
            path.unlink()
        await asyncio.sleep(config.poll_s)


def mailbox_feature() -> Feature[MailboxConfig]:
    """A service: watches a folder (as onboarding watches for registrations)."""
    return Feature(
        "mailbox",
        "notices from a folder",
        config_model=MailboxConfig,
        services=(Service("watch", _watch_mailbox),),
    )
