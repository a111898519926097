"""The core feature: `!ping`, and joining rooms the bot is invited to."""

from __future__ import annotations

from bots.core.commands import PING, accept_invite
from bots.framework.events import Membership
from bots.framework.feature import EventHandler, Feature

feature = Feature(
    name="core",
    summary="!ping, and joining rooms when someone on this homeserver invites the bot",
    commands=(PING,),
    handlers=(EventHandler(Membership, accept_invite),),
)
