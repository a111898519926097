"""What the bot does about a protections decision, as actions. Pure: the
room's names, power levels and the community's texts come in as values.

Nothing said here quotes the member's message: moderators get a link to it
(their own client decrypts it), and the member is told which rule, not what
they wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from bots.base.spans import span_words
from bots.framework.actions import (
    Action,
    Redact,
    ScheduleJob,
    SendDirect,
    SendNotice,
    SetPower,
    SetState,
)
from bots.framework.event_types import JOIN_RULES
from bots.framework.markdown import Md, md
from bots.moderation.protections.checks import Rule
from bots.moderation.protections.decide import Decision
from provisioning.protections import Protections, Step

FEATURE = "moderation"

WHY = {
    Rule.FLOOD: "you sent a lot of messages in a short time",
    Rule.MENTIONS: "you mentioned a lot of people in a short time",
    Rule.FIRST_MESSAGE: "a link or media can't be a newcomer's first message here",
    Rule.WORDS: "it contained a word or phrase this group doesn't allow",
    Rule.SLOW_MODE: "slow mode is on in this room",
}

# What the member can do next time, for each rule a mute can follow.
AVOID = {
    Rule.FLOOD: "wait a little between messages, or put several thoughts into one message",
    Rule.MENTIONS: "mention only the people you need, a few at a time",
    Rule.FIRST_MESSAGE: "say hello in words first; links and pictures are welcome after that",
    Rule.WORDS: "check the group's guidelines in the pinned message before you post",
    Rule.SLOW_MODE: "wait between messages while slow mode is on",
}


def next_time(decision: Decision) -> Md:
    """The paragraph of advice ("**Next time**, …") for the rules *decision*
    found; empty if none applies."""
    avoid = "; ".join(AVOID[f.rule] for f in decision.findings if f.rule in AVOID)
    return md("\n\n**Next time**, {}.", avoid) if avoid else Md("")


def warning_notice(label: str, why: str, decision: Decision) -> Md:
    """A first offence: why, and how to avoid it next time."""
    return md(
        "A gentle note about your message in **{}**: {}. "
        "Please keep to the group's guidelines; thank you.{}",
        label,
        why,
        next_time(decision),
    )


def mute_notice(label: str, minutes: float, why: str, decision: Decision) -> Md:
    """What a muted member reads: why, for how long, what still works, and
    how to avoid it next time. The limits are the group's, never their words."""
    limits = "; ".join(f.detail for f in decision.findings if f.rule in (Rule.FLOOD,))
    return md(
        "You've been muted in **{}** for **{}**: {}{}. "
        "You can still read the room; you'll be able to post again after that.{}",
        label,
        span_words(timedelta(minutes=minutes)),
        why,
        md(": {}", limits) if limits else Md(""),
        next_time(decision),
    )


@dataclass(frozen=True)
class Where:
    """The room a decision is about, as the bot knows it."""

    room_id: str
    label: str  # "Newly diagnosed · General"
    power_levels: Mapping[str, Any]  # the room's m.room.power_levels content
    moderators_room: str | None
    crisis_resources: str


def link(room_id: str, event_id: str) -> str:
    return f"https://matrix.to/#/{quote(room_id, safe='!:')}/{quote(event_id, safe='$')}"


def message_link(room_id: str, event_id: str) -> Md:
    """A link to the message, for moderators: their own client decrypts it."""
    return md(" [The message]({})", Md(link(room_id, event_id)))


def muted_level(power_levels: Mapping[str, Any]) -> int:
    default = power_levels.get("events_default", 0)
    return (default if isinstance(default, int) else 0) - 1


def respond(
    decision: Decision,
    where: Where,
    user: str,
    event_id: str | None,
    ts: float,
    cfg: Protections,
) -> list[Action]:
    if not decision.acts:
        return []
    out: list[Action] = []
    tell = where.moderators_room
    if decision.crisis:
        if tell and event_id:
            out.append(
                SendNotice(
                    tell,
                    md(
                        "{} may need support: a message in **{}** suggests self-harm. "
                        "It was not removed and they were not warned.{}",
                        user,
                        where.label,
                        message_link(where.room_id, event_id),
                    ),
                )
            )
        if cfg.crisis.send_resources:
            out.append(
                SendDirect(
                    user,
                    md(
                        "It sounds like things are very hard right now, and you don't have to "
                        "face that alone.\n\n{}\n\n"
                        "A moderator may reach out to you. This message is only for you.",
                        Md(where.crisis_resources),
                    ),
                )
            )
        return out
    details = "; ".join(f.detail for f in decision.findings)
    if decision.close_room:
        out.append(SetState(where.room_id, JOIN_RULES, {"join_rule": "knock"}))
        if tell:
            out.append(
                SendNotice(
                    tell,
                    md(
                        "Join wave in **{}** ({}): I've switched it to ask-to-join. "
                        "Switch it back in the room's settings once things have calmed down.",
                        where.label,
                        details,
                    ),
                )
            )
        return out
    why = "; ".join(WHY[f.rule] for f in decision.findings if f.rule in WHY)
    if decision.redact and event_id:
        out.append(Redact(where.room_id, event_id, f"Removed by the group's protections: {why}"))
    match decision.step:
        case Step.WARN:
            out.append(SendDirect(user, warning_notice(where.label, why, decision)))
        case Step.MUTE:
            minutes = cfg.mute_minutes
            previous = (where.power_levels.get("users") or {}).get(user)
            out += [
                SetPower(where.room_id, user, muted_level(where.power_levels)),
                ScheduleJob(
                    FEATURE,
                    "unmute",
                    ts + minutes * 60,
                    f"unmute:{where.room_id}:{user}:{event_id or ts}",
                    {"room_id": where.room_id, "user_id": user, "level": previous},
                ),
                SendDirect(user, mute_notice(where.label, minutes, why, decision)),
            ]
            if tell:
                out.append(
                    SendNotice(
                        tell,
                        md(
                            "Muted {} in **{}** for {}: {}.",
                            user,
                            where.label,
                            span_words(timedelta(minutes=minutes)),
                            details,
                        ),
                    )
                )
        case Step.ALERT:
            if tell:
                where_link = message_link(where.room_id, event_id) if event_id else Md("")
                out.append(
                    SendNotice(
                        tell,
                        md(
                            "{} keeps breaking **{}**'s rules ({}). Please decide what to do.{}",
                            user,
                            where.label,
                            details,
                            where_link,
                        ),
                    )
                )
    return out
