"""The roomkeeping section of the bot's config: nothing to set (the admin
agent's socket and the moderators' room are the bot's own settings)."""

from __future__ import annotations

from bots.framework.feature import FeatureConfig


class RoomkeepingConfig(FeatureConfig):
    pass
