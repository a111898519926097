"""How meetings read in chat."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

from bots.dates.recurrence import Occurrence
from bots.framework.markdown import Md, bullets, code, md
from bots.meetings.model import Meeting

LATE = "(Late: I was offline when this was due.) "


def when(occ: Occurrence, zone: str | None = None) -> str:
    """``Tue 1 Dec 2026, 19:00–20:00 (Europe/Berlin)``, in *zone* if given."""
    tz = ZoneInfo(zone) if zone else occ.start.tzinfo
    start, end = occ.start.astimezone(tz), occ.end.astimezone(tz)
    name = zone or str(occ.start.tzinfo)
    ends = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%a %-d %b %H:%M}"
    return f"{start:%a %-d %b %Y, %H:%M}–{ends} ({name})"


def day(occ: Occurrence) -> str:
    return f"{occ.start:%a %-d %b}"


def before(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    if minutes % (60 * 24) == 0:
        n, unit = minutes // (60 * 24), "day"
    elif minutes % 60 == 0:
        n, unit = minutes // 60, "hour"
    else:
        n, unit = minutes, "minute"
    return f"{n} {unit}{'s' if n != 1 else ''}"


def confirm(m: Meeting, nxt: Sequence[Occurrence], added: str = "added") -> Md:
    """A new meeting, as its room reads it. The title and link are the
    moderator's words: shown as typed."""
    reminders = ", ".join(before(d) for d in m.reminders) or "none"
    link = md("\n\nLink: {}", m.link) if m.link else Md("")
    return md(
        "Meeting {} {}: **{}**.\n\n**Next dates**\n\n{}\n\nReminders: {} before.{}\n\n"
        "Members answer the poll I post before each date, or type {}.",
        m.number,
        added,
        m.title,
        bullets(when(o) for o in nxt),
        reminders,
        link,
        code(f"!rsvp {m.number} yes|maybe|no"),
    )


def question(m: Meeting, occ: Occurrence) -> str:
    link = f" · {m.link}" if m.link else ""
    return f"{m.title}: {when(occ)}{link}. Are you coming?"


def reminder(m: Meeting, occ: Occurrence, late: bool, going: int) -> Md:
    link = md(" Join: {}", m.link) if m.link else Md("")
    people = f" {going} going." if going else ""
    return md(
        "{}**Reminder:** {} starts {}.{}{}",
        LATE if late else "",
        m.title,
        when(occ),
        people,
        link,
    )
