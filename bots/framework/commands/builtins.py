"""The commands every bot has, whatever its features: ``help``, generated
from the other declarations, and ``trust``, a moderator confirming
another's changed identity."""

from __future__ import annotations

from collections.abc import Callable

from bots.framework.actions import Action, Reply
from bots.framework.commands.help import detail, overview
from bots.framework.commands.spec import (
    MODERATOR,
    Arg,
    ArgType,
    Command,
    CommandTable,
    Invocation,
    Scope,
)
from bots.framework.markdown import code, md
from bots.framework.trust.identities import Identities


def add_help(table: CommandTable, prefix: str) -> None:
    """Declare `help`, generated from the other declarations."""

    async def help_handler(inv: Invocation, _ctx: object) -> list[Action]:
        name = inv.args.get("command")
        if isinstance(name, str):
            cmd = table.get(name.removeprefix(prefix).lower())
            text = (
                detail(cmd, prefix)
                if cmd
                else md(
                    "There is no {} command. Send {} for the list.",
                    code(prefix + name),
                    code(prefix + "help"),
                )
            )
        else:
            text = overview(table, prefix, inv.power)
        return [Reply(inv.room_id, inv.event_id, text)]

    table.add(
        Command(
            "help",
            "List the commands you can use, or explain one",
            help_handler,
            (Arg("command", "A command to explain", required=False),),
        ),
        first=True,
    )


def add_trust(
    table: CommandTable, prefix: str, identities: Callable[[], Identities | None]
) -> None:
    """Declare `trust`: a moderator confirms another's changed identity.
    Only in the moderators' room: the trust it gives holds everywhere, so a
    room any member could make and hold power in must not carry it."""

    async def trust_handler(inv: Invocation, _ctx: object) -> list[Action]:
        target = str(inv.args["user"])
        if target == inv.sender:
            text = "Another moderator has to confirm a change to your own identity."
        elif (known := identities()) is None:
            text = "I can't check identities right now; please try again in a moment."
        elif await known.accept_current(target) is None:
            text = f"{target} has not set up a security identity (cross-signing) yet."
        else:
            text = (
                f"Trusted {target}'s current security identity: "
                "their moderator commands are accepted again."
            )
        return [Reply(inv.room_id, inv.event_id, text)]

    table.add(
        Command(
            "trust",
            "Confirm a moderator's changed security identity",
            trust_handler,
            (Arg("user", "The moderator, as @name:server", type=ArgType.USER),),
            power_level=MODERATOR,
            scope=Scope.MODERATORS_ROOM,
            details=(
                "When a moderator resets their identity (a new recovery key, or an account "
                "taken over), I stop accepting their moderator commands and tell this room. "
                "Check with them, by a channel you trust, that the change was theirs; then "
                f"confirm it with {prefix}trust @them:server."
            ),
        )
    )
