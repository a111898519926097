"""Assemble the Hearth bot from its config: one place decides what it runs."""

from __future__ import annotations

from bots.core.commands import core_commands
from bots.framework.actions import Extension
from bots.framework.config import BotConfig
from bots.framework.effector import Performer
from bots.framework.runtime import BotRuntime
from bots.roomkeeping.group_create import CreateGroup, add_group_create, group_create_performer


def build_bot(config: BotConfig) -> BotRuntime:
    table = core_commands()
    performers: dict[type[Extension], Performer] = {}
    if config.community_config is not None:
        add_group_create(table)
        performers[CreateGroup] = group_create_performer(config.community_config)
    return BotRuntime(config, table, performers)
