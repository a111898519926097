"""`!help` and `!help <command>`, generated from the declarations."""

from __future__ import annotations

from bots.framework.commands.authorize import is_allowed
from bots.framework.commands.spec import Command, CommandTable, Scope
from bots.framework.events import PowerSnapshot


def overview(table: CommandTable, prefix: str, power: PowerSnapshot) -> str:
    """The commands this sender may use here, one line each."""
    lines = [f"{c.usage(prefix)}: {c.help}" for c in table if is_allowed(c, power)]
    return "\n".join(
        ["Commands you can use here:", *lines, f"Send {prefix}help <command> for details."]
    )


def detail(command: Command, prefix: str) -> str:
    lines = [f"{command.usage(prefix)}", command.details or command.help]
    for arg in command.args:
        kind = "" if arg.type.value == "text" else f" ({arg.type.value})"
        optional = " Optional." if not arg.required else ""
        lines.append(f"  {arg.name}{kind}: {arg.help}{optional}")
    if command.scope is Scope.COMMUNITY:
        lines.append("Works in any room; only community moderators may use it.")
    elif command.scope is Scope.MODERATORS_ROOM:
        lines.append("Only in the moderators' room, by community moderators.")
    return "\n".join(lines)
