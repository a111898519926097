"""The moderation section of the bot's config."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bots.framework.config import Strict
from bots.framework.feature import FeatureConfig
from bots.moderation.commands.sanctions import Sanction


class CommandLevels(Strict):
    """The power level each command needs where it is typed."""

    ban: int = Field(default=50, ge=1, le=100)
    kick: int = Field(default=50, ge=1, le=100)
    mute: int = Field(default=50, ge=1, le=100)
    warn: int = Field(default=50, ge=1, le=100)
    lock: int = Field(default=50, ge=1, le=100)
    audit: int = Field(default=50, ge=1, le=100)
    redact: int = Field(default=50, ge=1, le=100)

    def needed(self, sanction: Sanction) -> int:
        match sanction:
            case Sanction.BAN | Sanction.UNBAN:
                return self.ban
            case Sanction.KICK:
                return self.kick
            case Sanction.MUTE | Sanction.UNMUTE:
                return self.mute
        return self.warn


class ModerationConfig(FeatureConfig):
    # The community file: its groups' protections and crisis resources.
    community: Path
    levels: CommandLevels = Field(default_factory=CommandLevels)
    # How often Synapse's reports (Element's "Report") are looked at.
    reports_poll_s: float = Field(default=30, ge=5, le=3600)
    # Policy rooms (ban lists) whose m.ban rules this bot applies across the
    # community: other communities' ban-list rooms, or Draupnir's lists.
    follow: tuple[str, ...] = ()
    policy_poll_s: float = Field(default=10, ge=1, le=3600)
