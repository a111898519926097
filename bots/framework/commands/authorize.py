"""Who may run a command. Pure: decided from a snapshot of power levels."""

from __future__ import annotations

from bots.framework.commands.spec import Command, Scope
from bots.framework.events import PowerSnapshot

# One reply for every refusal, so it reveals neither the level a command
# needs nor anything about its arguments.
REFUSAL = "Sorry, you don't have permission to use that command here."


def is_allowed(command: Command, power: PowerSnapshot) -> bool:
    if command.scope is Scope.COMMUNITY:
        level = power.in_moderators_room
        return level is not None and level >= command.power_level
    return power.in_room >= command.power_level
