"""Roomkeeping: community moderators open peer groups at runtime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bots.framework.actions import Action
from bots.framework.config import BotConfig
from bots.framework.feature import Feature, Setup
from bots.roomkeeping.group_create import GROUP_CREATE, CreateGroup, group_create_performer


def _needs_community(bot: BotConfig) -> str | None:
    if bot.community_config is None:
        return "it needs bot.community_config (the community YAML it provisions groups from)"
    return None


def _performer(setup: Setup) -> Callable[[CreateGroup], Awaitable[Sequence[Action]]]:
    assert setup.bot.community_config is not None
    return group_create_performer(setup.bot.community_config)


feature = Feature(
    name="roomkeeping",
    summary="!group create: moderators open a new peer group with its encrypted room",
    commands=(GROUP_CREATE,),
    performers={CreateGroup: _performer},
    unavailable=_needs_community,
)
