"""Commands are declared once: name, typed arguments, required power, help."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any, Generic, TypeVar

from bots.framework.actions import Action
from bots.framework.events import PowerSnapshot

MODERATOR = 50
# A group's own moderators hold this in the community's moderators' room
# (provisioning sets it): enough to decide on applications to their group,
# not to run the community's moderator commands.
REVIEWER = 25
MEMBER = 0


class ArgType(Enum):
    TEXT = "text"
    INT = "number"
    USER = "user"
    ROOM = "room"
    DURATION = "duration"


class Scope(Enum):
    # Authorised by the sender's power level in the room the command is sent in.
    ROOM = "room"
    # Authorised by the sender's power level in the community moderators' room.
    COMMUNITY = "community"
    # Authorised there, and typed there only (`!trust`): what it changes
    # holds community-wide, so no other room may carry it.
    MODERATORS_ROOM = "moderators room"


@dataclass(frozen=True)
class Arg:
    name: str
    help: str
    type: ArgType = ArgType.TEXT
    required: bool = True
    # Take the rest of the line, spaces included, as this one argument.
    rest: bool = False

    def usage(self) -> str:
        return f"<{self.name}>" if self.required else f"[{self.name}]"


@dataclass(frozen=True)
class Invocation:
    """A parsed, authorised command, ready for its handler."""

    command: str
    args: dict[str, str | int | timedelta | None]
    sender: str
    room_id: str
    event_id: str
    power: PowerSnapshot
    # The event the command was sent in reply to (`!report` names the message so).
    reply_to: str | None = None


# What a handler reads besides the invocation: the owning feature's
# Context (bots.framework.feature), which this pure layer does not name.
X = TypeVar("X")
Handler = Callable[[Invocation, X], Awaitable[Sequence[Action]]]


@dataclass(frozen=True)
class Command(Generic[X]):
    """A command, declared once. Its handler takes ``(inv, ctx)``."""

    name: str
    help: str
    handler: Handler[X] = field(compare=False, repr=False)
    args: tuple[Arg, ...] = ()
    power_level: int = MEMBER
    scope: Scope = Scope.ROOM
    # Accepted only from a verified (cross-signed) device even at a member's
    # level: what cannot be undone (`!erase-me confirm`) must not follow
    # from a stolen access token alone.
    verified_device: bool = False
    # Longer text for `!help <command>`; the one-line help is used if empty.
    details: str = ""

    def usage(self, prefix: str) -> str:
        return " ".join([f"{prefix}{self.name}", *(a.usage() for a in self.args)])


class CommandTable:
    """The commands one bot answers, in declaration order."""

    def __init__(self) -> None:
        self._commands: dict[str, Command[Any]] = {}

    def add(self, command: Command[X], *, first: bool = False) -> Command[X]:
        name = command.name
        if name in self._commands:
            raise ValueError(f"command {name!r} declared twice")
        words = name.split(" ")
        if len(words) > 2 or not all(
            w.isascii() and w.replace("-", "").isalnum() and w == w.lower() for w in words
        ):
            raise ValueError(
                f"command name {name!r} must be one or two words of lowercase letters, "
                "digits or '-'"
            )
        rests = [a for a in command.args if a.rest]
        if rests and command.args[-1] is not rests[0]:
            raise ValueError(f"{name}: only the last argument may take the rest of the line")
        if first:
            self._commands = {name: command, **self._commands}
        else:
            self._commands[name] = command
        return command

    def command(
        self, name: str, help: str, *, args: Sequence[Arg] = (), **kw: Any
    ) -> Callable[[Handler[X]], Handler[X]]:
        """Decorator form of :meth:`add`."""

        def register(handler: Handler[X]) -> Handler[X]:
            self.add(Command(name=name, help=help, handler=handler, args=tuple(args), **kw))
            return handler

        return register

    def get(self, name: str) -> Command[Any] | None:
        return self._commands.get(name)

    def named(self, words: str) -> tuple[str, str, Command[Any] | None]:
        """The command *words* (a command's text after the prefix) names:
        its name (lower case), the rest of the line and the command if the
        bot has it. Two-word names ("group create") are tried first, so the
        order of the queue and the parser read a command the same way."""
        first, rest = _split_name(words)
        first = first.lower()
        sub, sub_rest = _split_name(rest)
        two = self._commands.get(f"{first} {sub.lower()}") if sub else None
        if two is not None:
            return f"{first} {sub.lower()}", sub_rest, two
        return first, rest, self._commands.get(first)

    def names(self) -> list[str]:
        return list(self._commands)

    def __iter__(self) -> Iterator[Command[Any]]:
        return iter(self._commands.values())


def _split_name(rest: str) -> tuple[str, str]:
    parts = rest.split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""
