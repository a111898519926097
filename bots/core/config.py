"""The core section of the bot's config: nothing to set yet (an empty or
absent section; an unknown key is an error)."""

from __future__ import annotations

from bots.framework.feature import FeatureConfig


class CoreConfig(FeatureConfig):
    pass
