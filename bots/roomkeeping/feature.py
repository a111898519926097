"""Roomkeeping: community moderators open peer groups at runtime."""

from __future__ import annotations

from bots.framework.config import BotConfig
from bots.framework.feature import Feature
from bots.roomkeeping.config import RoomkeepingConfig
from bots.roomkeeping.group_create import GROUP_CREATE
from bots.roomkeeping.performers import PERFORMERS


def _unavailable(bot: BotConfig) -> str | None:
    if bot.admin_socket is None:
        return (
            "it needs bot.admin_socket (the admin agent opens groups; the bot holds no admin token)"
        )
    if bot.moderators_room is None:
        return "it needs bot.moderators_room (only community moderators may open groups)"
    return None


FEATURE = Feature(
    name="roomkeeping",
    summary="!group create: moderators open a new peer group with its encrypted room",
    config_model=RoomkeepingConfig,
    commands=(GROUP_CREATE,),
    performers=PERFORMERS,
    unavailable=_unavailable,
)
