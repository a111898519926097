"""The core feature: `!ping`, and joining rooms the bot is invited to."""

from __future__ import annotations

from bots.core.commands import PING, accept_invite
from bots.core.config import CoreConfig
from bots.framework.events import Membership
from bots.framework.feature import EventHandler, Feature

FEATURE = Feature(
    name="core",
    summary="!ping, and joining rooms when someone on this homeserver invites the bot",
    config_model=CoreConfig,
    commands=(PING,),
    handlers=(EventHandler(Membership, accept_invite),),
)
