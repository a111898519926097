"""The archives section of the bot's config."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bots.framework.feature import FeatureConfig


class ArchivesConfig(FeatureConfig):
    # The community file: its groups, and the archive bot's account.
    community: Path
    # How often the archive rooms and the groups' members are looked at.
    poll_s: float = Field(default=10, ge=0.5, le=3600)
