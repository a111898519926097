"""`!help` and `!help <command>`, generated from the declarations, as
Markdown: command names in code, a heading per section, lists as lists."""

from __future__ import annotations

from bots.framework.commands.authorize import is_allowed
from bots.framework.commands.spec import MEMBER, Command, CommandTable, Scope
from bots.framework.events import PowerSnapshot
from bots.framework.markdown import Md, bullets, code, md


def _line(command: Command, prefix: str) -> Md:
    # Help texts are the features' own words, written as Markdown.
    return md("{}: ", code(command.usage(prefix))) + Md(command.help)


def overview(table: CommandTable, prefix: str, power: PowerSnapshot) -> Md:
    """The commands this sender may use here: everyone's, then moderators'."""
    allowed = [c for c in table if is_allowed(c, power)]
    sections = [
        (heading, [_line(c, prefix) for c in allowed if (c.power_level > MEMBER) is staff])
        for heading, staff in (("Commands you can use here", False), ("Moderators' commands", True))
    ]
    parts = [md("### {}\n\n", heading) + bullets(lines) for heading, lines in sections if lines]
    parts.append(md("Send {} for details of one.", code(f"{prefix}help <command>")))
    return Md("\n\n").join(parts)


def detail(command: Command, prefix: str) -> Md:
    parts = [md("### {}", code(command.usage(prefix))), Md(command.details or command.help)]
    args = []
    for arg in command.args:
        notes = [arg.type.value] if arg.type.value != "text" else []
        notes += [] if arg.required else ["optional"]
        shown = md(" ({})", ", ".join(notes)) if notes else Md("")
        args.append(md("{}{}: ", code(arg.name), shown) + Md(arg.help))
    if args:
        parts.append(bullets(args))
    if command.scope is Scope.COMMUNITY:
        parts.append(Md("Works in any room; only community moderators may use it."))
    elif command.scope is Scope.MODERATORS_ROOM:
        parts.append(Md("Only in the moderators' room, by community moderators."))
    elif command.power_level > MEMBER:
        parts.append(Md("Only the room's moderators may use it."))
    return Md("\n\n").join(parts)
