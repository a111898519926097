"""Commands every Hearth bot answers."""

from __future__ import annotations

from collections.abc import Sequence

from bots.framework.actions import Action, Reply
from bots.framework.commands.spec import CommandTable, Invocation


def core_commands() -> CommandTable:
    table = CommandTable()

    @table.command("ping", "Check that the bot is alive and can read this room")
    async def ping(inv: Invocation) -> Sequence[Action]:
        return [Reply(inv.room_id, inv.event_id, "pong")]

    return table
