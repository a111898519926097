"""The members' meeting commands: !meetings, !meetings ics, !rsvp, !tz."""

from __future__ import annotations

from collections.abc import Sequence

from bots.dates.reading import parse_day
from bots.dates.recurrence import Occurrence, iter_occurrences
from bots.dates.words import Unclear, zone_name
from bots.framework.actions import Action, Reply, UploadFile
from bots.framework.commands.spec import Invocation
from bots.framework.feature import Context
from bots.framework.markdown import bullets, code, md
from bots.meetings import texts
from bots.meetings.calendar import calendar
from bots.meetings.changes import find_date
from bots.meetings.config import MeetingsConfig
from bots.meetings.here import NOT_A_GROUP, goers, here, meeting_of, reply
from bots.meetings.model import ANSWER_WORDS, TZ_KIND, Answer, Meeting, answered_kind, rsvp_kind
from bots.meetings.plan import next_occurrence

LIST_DAYS = 60
LIST_MAX = 15


# --- members ---


async def _zone_for(ctx: Context[MeetingsConfig], user: str, default: str) -> str:
    mine = await ctx.record(TZ_KIND, user)
    return str(mine["zone"]) if mine else default


async def list_meetings(inv: Invocation, ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    h = await here(inv, ctx)
    if h is None:
        return reply(inv, NOT_A_GROUP)
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
        return reply(
            inv,
            md("No meetings coming up here. Moderators add them with {}.", code("!meeting add")),
        )
    rows.sort(key=lambda r: r[0].start)
    lines = []
    for occ, m in rows[:LIST_MAX]:
        going = len(await goers(h.ctx, m, occ.key))
        count = f" · {going} going" if going else ""
        link = f" · {m.link}" if m.link else ""
        lines.append(
            md("{} · **{}** · {}{}{}", m.number, m.title, texts.when(occ, zone), count, link)
        )
    if len(rows) > LIST_MAX:
        lines.append(md("…and more: {} gives the whole calendar.", code("!meetings ics")))
    head = md("**Coming up** (times in {}; set yours with {}):", zone, code("!tz <zone>"))
    return reply(inv, md("{}\n\n{}", head, bullets(lines)))


async def ics(inv: Invocation, ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    h = await here(inv, ctx)
    if h is None:
        return reply(inv, NOT_A_GROUP)
    active = [m for m in h.meetings.values() if not m.cancelled]
    if not active:
        return reply(inv, "No meetings here to put in a calendar yet.")
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


async def rsvp(inv: Invocation, ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    h = await here(inv, ctx)
    if h is None:
        return reply(inv, NOT_A_GROUP)
    m = meeting_of(h, inv)
    if isinstance(m, str):
        return reply(inv, m)
    answer = ANSWER_WORDS.get(str(inv.args.get("answer") or "").lower())
    if answer is None:
        return reply(inv, md("Answer yes, maybe or no: {}", code(f"!rsvp {m.number} yes")))
    when = inv.args.get("date")
    try:
        if isinstance(when, str) and when.strip():
            day = parse_day(when, h.now.astimezone(m.schedule.tz).date(), h.horizon)
            occ = find_date(m, day, h.now)
        else:
            found = next_occurrence(m, h.now)
            if found is None:
                return reply(inv, f"{m.title} has no more dates.")
            occ = found
    except Unclear as exc:
        return reply(inv, str(exc))
    if occ.start <= h.now:
        return reply(inv, f"{m.title} on {texts.day(occ)} has already begun.")
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


async def tz(inv: Invocation, ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    text = str(inv.args.get("zone") or "").strip()
    if not text:
        mine = await ctx.record(TZ_KIND, inv.sender)
        shown = f"Your time zone is {mine['zone']}." if mine else "You haven't set a time zone."
        return reply(
            inv,
            md(
                "{} Set it with {} (like America/Chicago), or {}.",
                shown,
                code("!tz <zone>"),
                code("!tz clear"),
            ),
        )
    if text.lower() == "clear":
        return [
            ctx.delete(TZ_KIND, inv.sender),
            Reply(inv.room_id, inv.event_id, "Your time zone is forgotten."),
        ]
    try:
        zone = zone_name(text)
    except Unclear as exc:
        return reply(inv, str(exc))
    return [
        ctx.put(TZ_KIND, inv.sender, {"zone": zone}),
        Reply(
            inv.room_id,
            inv.event_id,
            md(
                "Your time zone is now {}: {} shows times in it. "
                "Only you and this bot know it; {} forgets it.",
                zone,
                code("!meetings"),
                code("!tz clear"),
            ),
        ),
    ]
