"""!meeting add|skip|move|cancel|edit, !meetings, !meetings ics, !rsvp, !tz.

Moderators' commands are declared at a moderator's level in the room they
are typed in (a group's moderators hold it in their group's rooms), so
the framework refuses them to members and to unverified devices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bots.dates.reading import (
    Unclear,
    parse_add,
    parse_changes,
    parse_day,
    parse_move,
    zone_name,
)
from bots.dates.recurrence import (
    Occurrence,
    iter_occurrences,
    occurrence,
    occurrences,
    on_day,
    place,
    wall_time_problem,
)
from bots.framework.actions import Action, Reply, SendNotice, UploadFile
from bots.framework.commands.spec import MODERATOR, Arg, ArgType, Command, Invocation
from bots.framework.feature import Context
from bots.meetings import texts
from bots.meetings.calendar import calendar
from bots.meetings.config import MeetingsConfig
from bots.meetings.model import (
    ANSWER_WORDS,
    TZ_KIND,
    Answer,
    Meeting,
    answered_kind,
    meetings_kind,
    poll_kind,
    rsvp_kind,
)
from bots.meetings.plan import announce_job, close_polls, forget_unpolled, next_occurrence
from provisioning.schema import cached_community

NOT_A_GROUP = "Meetings belong to a group's rooms: use this in one of them."
LIST_DAYS = 60
LIST_MAX = 15


@dataclass(frozen=True)
class Here:
    """The group room a command was typed in, and its meetings."""

    ctx: Context
    config: MeetingsConfig
    group: str
    group_name: str
    zone: str
    meetings: dict[int, Meeting]

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ctx.now, UTC)

    @property
    def horizon(self) -> timedelta:
        """How far ahead a typed date may be."""
        return self.config.horizon


async def here(inv: Invocation) -> Here | None:
    ctx = inv.context
    assert isinstance(ctx, Context)
    config = ctx.config
    assert isinstance(config, MeetingsConfig)
    cfg = cached_community(config.community)
    group = ctx.community.group_of(inv.room_id)
    decl = cfg.group(group) if group else None
    if group is None or decl is None:
        return None
    found = await ctx.records(meetings_kind(inv.room_id))
    meetings = {int(k): Meeting.from_record(v) for k, v in found.items()}
    zone = decl.timezone or cfg.community.timezone
    return Here(ctx, config, group, decl.name, zone, meetings)


def _reply(inv: Invocation, text: str) -> list[Action]:
    return [Reply(inv.room_id, inv.event_id, text)]


def _store(ctx: Context, m: Meeting) -> Action:
    return ctx.put(meetings_kind(m.room), str(m.number), m.to_record())


def _meeting(h: Here, inv: Invocation) -> Meeting | str:
    number = inv.args.get("id")
    m = h.meetings.get(number) if isinstance(number, int) else None
    if m is None:
        return f"There's no meeting {number} in this room. !meetings lists them."
    if m.cancelled:
        return f"Meeting {number} ({m.title}) was cancelled."
    return m


async def goers(ctx: Context, m: Meeting, occ: str) -> list[str]:
    """Members who said they are going to a date, and are still in the room."""
    answers = await ctx.records(rsvp_kind(m.room, m.number, occ))
    members = ctx.members(m.room)
    return sorted(u for u, v in answers.items() if v.get("answer") == "yes" and u in members)


async def answered(
    ctx: Context, room: str, number: int, polls: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Who answered each still-open poll's date: forgotten when it closes."""
    return {
        key: list(await ctx.records(rsvp_kind(room, number, key)))
        for key, poll in polls.items()
        if not poll.get("ended")
    }


async def dated(ctx: Context, room: str, number: int) -> dict[str, list[str]]:
    """Who answered each date of a meeting that has answers, polled or not."""
    return {
        key: list(await ctx.records(rsvp_kind(room, number, key)))
        for key in await ctx.records(answered_kind(room, number))
    }


# --- moderators ---


async def add(inv: Invocation) -> Sequence[Action]:
    h = await here(inv)
    if h is None:
        return _reply(inv, NOT_A_GROUP)
    active = [m for m in h.meetings.values() if not m.cancelled]
    if len(active) >= h.config.max_per_room:
        return _reply(
            inv,
            f"This room already has {len(active)} meetings, the most it can hold. "
            "Cancel one first (!meetings lists them).",
        )
    try:
        spec = parse_add(str(inv.args.get("details") or ""), h.now, h.zone, h.horizon)
    except Unclear as exc:
        return _reply(inv, str(exc))
    # Chat meetings count from 1; the file's are numbered from 101.
    chat = [n for n, m in h.meetings.items() if m.source == "chat"]
    number = max(chat, default=0) + 1
    if number in h.meetings:  # past 100 chat meetings: after every number in use
        number = max(h.meetings) + 1
    m = Meeting(inv.room_id, number, spec.title, spec.schedule, spec.reminders, spec.link)
    nxt = occurrences(m.schedule, h.now, 3)
    return [
        _store(h.ctx, m),
        Reply(inv.room_id, inv.event_id, texts.confirm(m, nxt)),
        announce_job(m, h.ctx.now, f"added:{inv.event_id}"),
    ]


async def skip(inv: Invocation) -> Sequence[Action]:
    return await _change(inv, _skip)


async def move(inv: Invocation) -> Sequence[Action]:
    return await _change(inv, _move)


async def edit(inv: Invocation) -> Sequence[Action]:
    return await _change(inv, _edit)


async def cancel(inv: Invocation) -> Sequence[Action]:
    return await _change(inv, _cancel)


@dataclass(frozen=True)
class Change:
    """A moderator's change: the meeting after it, what to tell the room,
    and the date whose goers are told (pinged)."""

    meeting: Meeting
    said: str
    affected: Occurrence | None


async def _change(inv: Invocation, decide: Any) -> Sequence[Action]:
    h = await here(inv)
    if h is None:
        return _reply(inv, NOT_A_GROUP)
    m = _meeting(h, inv)
    if isinstance(m, str):
        return _reply(inv, m)
    try:
        change: Change = decide(h, m, str(inv.args.get("details") or ""))
    except Unclear as exc:
        return _reply(inv, str(exc))
    going = await goers(h.ctx, m, change.affected.key) if change.affected else []
    pings = f" ({', '.join(going)})" if going else ""
    actions: list[Action] = [
        _store(h.ctx, change.meeting),
        Reply(inv.room_id, inv.event_id, "Done."),
        SendNotice(inv.room_id, change.said + pings, mentions=tuple(going)),
    ]
    polls = await h.ctx.records(poll_kind(m.room, m.number))
    if change.meeting.cancelled:
        # Its open polls close now, and who answered them is forgotten, as
        # when a date begins.
        who = await answered(h.ctx, m.room, m.number, polls)
        actions += close_polls(change.meeting, h.now, polls, who)
    # Answers to a date that will now never be polled (skipped, or the
    # meeting cancelled) are forgotten with the change.
    actions += forget_unpolled(change.meeting, h.now, polls, await dated(h.ctx, m.room, m.number))
    if not change.meeting.cancelled:
        # Re-plan now: the next date's poll and reminders follow the change.
        actions.append(announce_job(change.meeting, h.ctx.now, f"changed:{inv.event_id}"))
    return actions


def _started(occ: Occurrence, now: datetime) -> bool:
    return occ.start <= now


def _skip(h: Here, m: Meeting, text: str) -> Change:
    day = parse_day(text, h.now.astimezone(m.schedule.tz).date(), h.horizon)
    occ = on_day(m.schedule, day)
    if occ is None:
        if day in m.schedule.skips:
            raise Unclear(f"{m.title} on {day:%a %-d %b} is already skipped.")
        raise Unclear(f"{m.title} has no date on {day:%a %-d %b %Y}.")
    if _started(occ, h.now):
        raise Unclear(f"{m.title} on {texts.day(occ)} has already begun.")
    s = m.schedule
    moved = {d: t for d, t in s.moves.items() if d != day}
    new = m.with_schedule(replace(s, skips=s.skips | {day}, moves=moved))
    return Change(new, f"{m.title} on {texts.day(occ)} will not take place.", occ)


def _find(m: Meeting, day: date, now: datetime) -> Occurrence:
    """The date a moderator means: where it is now (moved or not), else its
    original date."""
    s = m.schedule
    # Looked for from the day before (a zone's offset is less than a day),
    # not from today: a date far ahead costs what tomorrow does.
    since = now
    if day > now.astimezone(s.tz).date() + timedelta(days=1):
        since = max(now, place(datetime.combine(day - timedelta(days=1), time()), s.tz))
    for occ in iter_occurrences(s, since):
        if occ.start.date() == day:
            return occ
        if occ.start.date() > day:
            break
    found = on_day(s, day)
    if found is None:
        raise Unclear(f"{m.title} has no date on {day:%a %-d %b %Y}.")
    return found


def _move(h: Here, m: Meeting, text: str) -> Change:
    s = m.schedule
    day, new_day, at = parse_move(text, h.now.astimezone(s.tz).date(), h.horizon)
    occ = _find(m, day, h.now)
    if _started(occ, h.now):
        raise Unclear(f"{m.title} on {texts.day(occ)} has already begun.")
    local = datetime.combine(new_day, at)
    problem = wall_time_problem(local, s.zone)
    if problem is not None:
        raise Unclear(problem)
    if place(local, s.tz) <= h.now:
        raise Unclear(f"{local:%-d %B %Y, %H:%M} is in the past.")
    moves = {**s.moves, occ.day: local}
    new = m.with_schedule(replace(s, moves=moves))
    moved = occurrence(new.schedule, occ.key)
    assert moved is not None
    said = f"{m.title} on {texts.day(occ)} moves to {texts.when(moved)}."
    return Change(new, said, occ)


def _from_the_file(m: Meeting) -> None:
    """A declared meeting is the community file's: changed there, so what
    hearth provision shows is what the bot does. Single dates (skip, move)
    are the moderators' in chat."""
    if m.source != "chat":
        raise Unclear(
            f"{m.title} comes from the community file (meeting {m.source!r}): change or "
            "remove it there and run hearth provision. Single dates can be skipped or "
            "moved here."
        )


def _edit(h: Here, m: Meeting, text: str) -> Change:
    _from_the_file(m)
    c = parse_changes(text, h.now)
    s = m.schedule
    schedule = s
    if c.at is not None or c.zone is not None:
        start = datetime.combine(s.start.date(), c.at or s.start.time())
        schedule = replace(s, start=start, zone=c.zone or s.zone)
        nxt = next(iter_occurrences(schedule, h.now), None)
        if nxt is not None and not nxt.moved:
            problem = wall_time_problem(nxt.start.replace(tzinfo=None), schedule.zone)
            if problem is not None:
                raise Unclear(problem)
    schedule = replace(schedule, duration=c.duration or s.duration)
    new = replace(
        m.with_schedule(schedule),
        title=c.title or m.title,
        reminders=m.reminders if c.reminders is None else c.reminders,
        link=None if c.clear_link else (c.link or m.link),
    )
    was, now_ = next_occurrence(m, h.now), next_occurrence(new, h.now)
    lines = [f"Meeting {m.number} changed: {new.title}."]
    if now_ is not None and (was is None or (was.start, was.end) != (now_.start, now_.end)):
        lines.append(f"Next: {texts.when(now_)}.")
    if new.link != m.link:
        lines.append(f"Link: {new.link}" if new.link else "The link was removed.")
    if new.reminders != m.reminders:
        shown = ", ".join(texts.before(d) for d in new.reminders) or "none"
        lines.append(f"Reminders: {shown} before.")
    timed = was is not None and now_ is not None and (was.start, was.end) != (now_.start, now_.end)
    return Change(new, " ".join(lines), was if timed else None)


def _cancel(h: Here, m: Meeting, text: str) -> Change:
    _from_the_file(m)
    if text.strip():
        raise Unclear(
            "!meeting cancel <id> cancels the whole series. To call off one date: "
            "!meeting skip <id> <date>"
        )
    nxt = next_occurrence(m, h.now)
    return Change(replace(m, cancelled=True), f"{m.title} is cancelled.", nxt)


# --- members ---


async def _zone_for(ctx: Context, user: str, default: str) -> str:
    mine = await ctx.record(TZ_KIND, user)
    return str(mine["zone"]) if mine else default


async def list_meetings(inv: Invocation) -> Sequence[Action]:
    h = await here(inv)
    if h is None:
        return _reply(inv, NOT_A_GROUP)
    zone = await _zone_for(h.ctx, inv.sender, h.zone)
    ahead = h.now.timestamp() + LIST_DAYS * 86400
    rows: list[tuple[Occurrence, Meeting]] = []
    for m in h.meetings.values():
        if m.cancelled:
            continue
        for occ in iter_occurrences(m.schedule, h.now):
            if occ.start_ts > ahead or len(rows) > 10 * LIST_MAX:
                break
            rows.append((occ, m))
    if not rows:
        return _reply(inv, "No meetings coming up here. Moderators add them with !meeting add.")
    rows.sort(key=lambda r: r[0].start)
    lines = []
    for occ, m in rows[:LIST_MAX]:
        going = len(await goers(h.ctx, m, occ.key))
        count = f" · {going} going" if going else ""
        link = f" · {m.link}" if m.link else ""
        lines.append(f"  {m.number} · {m.title} · {texts.when(occ, zone)}{count}{link}")
    more = "\n  …and more: !meetings ics gives the whole calendar." if len(rows) > LIST_MAX else ""
    head = f"Coming up (times in {zone}; set yours with !tz <zone>):"
    return _reply(inv, "\n".join([head, *lines]) + more)


async def ics(inv: Invocation) -> Sequence[Action]:
    h = await here(inv)
    if h is None:
        return _reply(inv, NOT_A_GROUP)
    active = [m for m in h.meetings.values() if not m.cancelled]
    if not active:
        return _reply(inv, "No meetings here to put in a calendar yet.")
    text = calendar(sorted(active, key=lambda m: m.number), h.now, h.group_name)
    return [
        UploadFile(inv.room_id, "", f"{h.group}-meetings.ics", "text/calendar", text=text),
        Reply(
            inv.room_id,
            inv.event_id,
            "Here is the calendar (encrypted like everything here). Open it on your phone "
            "to add the meetings to your calendar.",
        ),
    ]


async def rsvp(inv: Invocation) -> Sequence[Action]:
    h = await here(inv)
    if h is None:
        return _reply(inv, NOT_A_GROUP)
    m = _meeting(h, inv)
    if isinstance(m, str):
        return _reply(inv, m)
    answer = ANSWER_WORDS.get(str(inv.args.get("answer") or "").lower())
    if answer is None:
        return _reply(inv, f"Answer yes, maybe or no: !rsvp {m.number} yes")
    when = inv.args.get("date")
    try:
        if isinstance(when, str) and when.strip():
            day = parse_day(when, h.now.astimezone(m.schedule.tz).date(), h.horizon)
            occ = _find(m, day, h.now)
        else:
            found = next_occurrence(m, h.now)
            if found is None:
                return _reply(inv, f"{m.title} has no more dates.")
            occ = found
    except Unclear as exc:
        return _reply(inv, str(exc))
    if occ.start <= h.now:
        return _reply(inv, f"{m.title} on {texts.day(occ)} has already begun.")
    zone = await _zone_for(h.ctx, inv.sender, h.zone)
    said = {Answer.YES: "you're going to", Answer.MAYBE: "you might come to"}
    verb = said.get(answer, "you can't make")
    return [
        h.ctx.put(
            rsvp_kind(m.room, m.number, occ.key),
            inv.sender,
            {"answer": answer.value, "ts": h.ctx.now * 1000},
        ),
        h.ctx.put(answered_kind(m.room, m.number), occ.key, {}),
        Reply(inv.room_id, inv.event_id, f"Noted: {verb} {m.title}, {texts.when(occ, zone)}."),
    ]


async def tz(inv: Invocation) -> Sequence[Action]:
    ctx = inv.context
    assert isinstance(ctx, Context)
    text = str(inv.args.get("zone") or "").strip()
    if not text:
        mine = await ctx.record(TZ_KIND, inv.sender)
        shown = f"Your time zone is {mine['zone']}." if mine else "You haven't set a time zone."
        return _reply(inv, f"{shown} Set it with !tz <zone> (like America/Chicago), or !tz clear.")
    if text.lower() == "clear":
        return [
            ctx.delete(TZ_KIND, inv.sender),
            Reply(inv.room_id, inv.event_id, "Your time zone is forgotten."),
        ]
    try:
        zone = zone_name(text)
    except Unclear as exc:
        return _reply(inv, str(exc))
    return [
        ctx.put(TZ_KIND, inv.sender, {"zone": zone}),
        Reply(
            inv.room_id,
            inv.event_id,
            f"Your time zone is now {zone}: !meetings shows times in it. "
            "Only you and this bot know it; !tz clear forgets it.",
        ),
    ]


ID = Arg("id", "the meeting's number (from !meetings)", type=ArgType.INT)

COMMANDS = (
    Command(
        "meeting add",
        "Schedule a meeting in this group's room",
        add,
        (Arg("details", '"<title>" every <weekday> <time> [zone] ...', rest=True),),
        power_level=MODERATOR,
        details=(
            'Examples: !meeting add "Tuesday check-in" every tuesday 19:00 Europe/Berlin '
            "for 60m remind 1d,15m link https://meet.example/room · "
            '!meeting add "Coffee" on 2026-12-12 10:30 · '
            '!meeting add "Monthly" every month on the first monday 18:00 until 2027-06-30'
        ),
    ),
    Command(
        "meeting skip",
        "Call off one date of a meeting",
        skip,
        (ID, Arg("details", "the date", rest=True)),
        power_level=MODERATOR,
    ),
    Command(
        "meeting move",
        "Move one date of a meeting: <date> <time>, or <date> <new date> <time>",
        move,
        (ID, Arg("details", "<date> [<new date>] <time>", rest=True)),
        power_level=MODERATOR,
    ),
    Command(
        "meeting edit",
        "Change a meeting: title, at <time> [zone], for <length>, remind, link",
        edit,
        (
            ID,
            Arg("details", 'title "..." | at 19:30 | for 90m | remind 1h | link <url>', rest=True),
        ),
        power_level=MODERATOR,
    ),
    Command(
        "meeting cancel",
        "Cancel a meeting and all its dates",
        cancel,
        (ID, Arg("details", "", required=False, rest=True)),
        power_level=MODERATOR,
    ),
    Command("meetings", "List the meetings coming up here", list_meetings),
    Command("meetings ics", "Get this group's meetings as a calendar file", ics),
    Command(
        "rsvp",
        "Say whether you're coming to a meeting",
        rsvp,
        (
            ID,
            Arg("answer", "yes, maybe or no"),
            Arg("date", "which date (the next one if left out)", required=False, rest=True),
        ),
    ),
    Command(
        "tz",
        "Set the time zone meetings are shown to you in (!tz clear forgets it)",
        tz,
        (Arg("zone", "like America/Chicago, or clear", required=False),),
    ),
)
