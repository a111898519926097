"""A meeting as the feature keeps it: typed here, stored as a plain record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

from bots.dates.recurrence import KEY_FORMAT, Freq, Repeat, Schedule, occurrence_key

FEATURE = "meetings"


class Answer(Enum):
    YES = "yes"
    MAYBE = "maybe"
    NO = "no"


ANSWER_TEXT = {Answer.YES: "Going", Answer.MAYBE: "Maybe", Answer.NO: "Can't make it"}
ANSWER_WORDS = {
    "yes": Answer.YES,
    "going": Answer.YES,
    "y": Answer.YES,
    "maybe": Answer.MAYBE,
    "no": Answer.NO,
    "n": Answer.NO,
    "not": Answer.NO,
}


@dataclass(frozen=True)
class Meeting:
    """*number* names it in its room (``!rsvp 3 yes``). *source*: "chat"
    for one added with ``!meeting add``, or its key in the community file."""

    room: str
    number: int
    title: str
    schedule: Schedule
    reminders: tuple[timedelta, ...]
    link: str | None = None
    cancelled: bool = False
    source: str = "chat"
    # A declared meeting's declaration, as last applied (declared.py).
    fingerprint: str = ""

    @property
    def uid(self) -> str:
        return f"{self.number}.{self.room}"

    def to_record(self) -> dict[str, Any]:
        s = self.schedule
        r = s.repeat
        return {
            "room": self.room,
            "number": self.number,
            "title": self.title,
            "start": s.start.strftime(LOCAL_FORMAT),
            "zone": s.zone,
            "minutes": int(s.duration.total_seconds() // 60),
            "repeat": None
            if r is None
            else {
                "freq": r.freq.value,
                "interval": r.interval,
                "weekdays": list(r.weekdays),
                "nth": r.nth,
                "monthday": r.monthday,
                "count": r.count,
                "until": r.until.isoformat() if r.until else None,
            },
            "skips": sorted(occurrence_key(d) for d in s.skips),
            "moves": {occurrence_key(k): v.strftime(LOCAL_FORMAT) for k, v in s.moves.items()},
            "reminders": [int(d.total_seconds()) for d in self.reminders],
            "link": self.link,
            "cancelled": self.cancelled,
            "source": self.source,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_record(cls, v: Mapping[str, Any]) -> Meeting:
        r = v.get("repeat")
        repeat = (
            None
            if r is None
            else Repeat(
                Freq(r["freq"]),
                r["interval"],
                tuple(r["weekdays"]),
                r["nth"],
                r["monthday"],
                r["count"],
                date.fromisoformat(r["until"]) if r["until"] else None,
            )
        )
        schedule = Schedule(
            _local(v["start"]),
            v["zone"],
            timedelta(minutes=v["minutes"]),
            repeat,
            frozenset(_day(d) for d in v["skips"]),
            {_day(k): _local(m) for k, m in v["moves"].items()},
        )
        return cls(
            v["room"],
            v["number"],
            v["title"],
            schedule,
            tuple(timedelta(seconds=s) for s in v["reminders"]),
            v.get("link"),
            v.get("cancelled", False),
            v.get("source", "chat"),
            v.get("fingerprint", ""),
        )

    def with_schedule(self, schedule: Schedule) -> Meeting:
        return replace(self, schedule=schedule)


LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _local(text: str) -> datetime:
    return datetime.strptime(text, LOCAL_FORMAT)


def _day(text: str) -> date:
    return datetime.strptime(text, KEY_FORMAT).date()


# Record kinds, one namespace per room (and per meeting where it grows).
def meetings_kind(room: str) -> str:
    return f"meeting:{room}"


def rsvp_kind(room: str, number: int, occ: str) -> str:
    return f"rsvp:{room}:{number}:{occ}"


ANSWERED_PREFIX = "rsvp-dates:"


def answered_kind(room: str, number: int) -> str:
    """The dates of a meeting that have answers (keys only), so every
    date's answers are found again to be deleted: records are read by kind,
    and a date never polled has no poll to find them by."""
    return f"{ANSWERED_PREFIX}{room}:{number}"


# Answers given before answered_kind existed, written down under it once.
# An answer's kind is "rsvp:<room>:<number>:<YYYYMMDD>": the date is its
# last 8 characters, and "<room>:<number>" what lies between.
INDEX_ANSWERS = f"""
INSERT OR IGNORE INTO feature_records (feature, kind, key, value, updated_at)
SELECT '{FEATURE}', '{ANSWERED_PREFIX}' || substr(kind, 6, length(kind) - 14),
       substr(kind, -8), '{{}}', MAX(updated_at)
FROM feature_records
WHERE feature = '{FEATURE}' AND kind LIKE 'rsvp:%' AND length(kind) > 14
GROUP BY kind
"""


def poll_kind(room: str, number: int) -> str:
    return f"poll:{room}:{number}"


def sent_kind(room: str, number: int) -> str:
    """The ledger of what was sent for a meeting, so nothing goes twice."""
    return f"sent:{room}:{number}"


TZ_KIND = "tz"


def answer_id(number: int, occ: str, answer: Answer) -> str:
    """A poll answer's ID says which meeting, which date and which answer,
    so a vote is understood without looking the poll up."""
    return f"hearth.{number}.{occ}.{answer.value}"


def read_answer_id(text: str) -> tuple[int, str, Answer] | None:
    parts = text.split(".")
    if len(parts) != 4 or parts[0] != "hearth" or not parts[1].isdigit():
        return None
    try:
        return int(parts[1]), parts[2], Answer(parts[3])
    except ValueError:
        return None
