"""The meetings section of the bot's config."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field

from bots.framework.feature import FeatureConfig


class MeetingsConfig(FeatureConfig):
    # The community file: which rooms are groups', and their time zones.
    community: Path
    # Meetings one room may hold at once (cancelled ones do not count).
    max_per_room: int = Field(default=50, ge=1, le=500)
    # How often the meetings declared in the community file are looked at.
    declared_poll_s: float = Field(default=30, ge=1, le=3600)
    # How far ahead a date typed in a command may be (!rsvp, !meeting add,
    # skip, move); a later one is refused. Two years.
    max_days_ahead: int = Field(default=730, ge=1, le=3660)

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.max_days_ahead)
