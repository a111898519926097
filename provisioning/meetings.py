"""A group's meetings declared in the community file.

Each is published as a state event (``org.hearth.meeting``, its key as the
state key) in the group's main room, where the meetings bot reads it and
keeps the meeting in step: added, changed, or withdrawn (empty content)
when it leaves the file. The words are the ones ``!meeting add`` takes,
checked here with the same reader, so a mistake is reported with its key
path by ``hearth provision``, not found by the bot later.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator

from bots.dates.reading import parse_when
from bots.dates.words import Unclear, parse_length, parse_link, parse_reminders
from bots.framework.config import Strict

MEETING = "org.hearth.meeting"
# One-off dates in the file are checked as of this moment, so a meeting
# that has since taken place does not make the file invalid.
CHECKED_FROM = datetime(2000, 1, 1, tzinfo=UTC)
_ISO_DAY = r"^on \d{4}-\d{2}-\d{2} "


class MeetingDecl(Strict):
    """``when``: "every tuesday 19:00", "every month on the first monday
    18:30", or "on 2027-01-05 18:00" (a one-off needs its full date), with
    an optional zone after the time; the group's zone otherwise."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    title: str = Field(min_length=1, max_length=100)
    when: str = Field(min_length=1, max_length=200)
    length: str = Field(default="60m", alias="for")
    remind: tuple[str, ...] = ("1d", "15m")
    link: str | None = None

    @field_validator("length")
    @classmethod
    def _length(cls, v: str) -> str:
        return _checked(parse_length, v)

    @field_validator("remind")
    @classmethod
    def _remind(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        _checked(parse_reminders, ",".join(v) or "none")
        return v

    @field_validator("link")
    @classmethod
    def _link(cls, v: str | None) -> str | None:
        return None if v is None else _checked(parse_link, v)

    @model_validator(mode="after")
    def _when(self) -> MeetingDecl:
        words = self.when.split()
        if words[0].lower() != "every" and not _is_dated(self.when):
            raise ValueError(
                "a one-off meeting in the file needs its full date: 'on 2027-01-05 18:00'"
            )
        _checked(lambda w: parse_when(w, CHECKED_FROM, "UTC", timedelta(hours=1)), words)
        return self

    def content(self, zone: str) -> dict[str, Any]:
        """What the state event holds: the declaration, and the zone it is read in."""
        return {
            "title": self.title,
            "when": self.when,
            "for": self.length,
            "remind": list(self.remind),
            "link": self.link,
            "zone": zone,
        }


def _is_dated(when: str) -> bool:
    return re.match(_ISO_DAY, when.strip().lower()) is not None


def _checked(parse: Any, value: Any) -> Any:
    try:
        parse(value)
    except Unclear as exc:
        raise ValueError(str(exc)) from None
    return value
