"""The thanks section of the bot's config."""

from __future__ import annotations

from pydantic import Field

from bots.framework.feature import FeatureConfig


class ThanksConfig(FeatureConfig):
    # How often a room that has had thank-yous hears their count (a week).
    week_s: float = Field(default=7 * 86400, ge=1, le=366 * 86400)
