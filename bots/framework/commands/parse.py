"""Turn a message body into a command call, or a helpful reason why not.

Pure: no I/O, never raises on user input.
"""

from __future__ import annotations

import difflib
import io
import re
import shlex
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from bots.framework.commands.spec import Arg, ArgType, Command, CommandTable
from bots.framework.ids import is_room_ref, is_user_id
from bots.framework.markdown import Md, code, md

# Far above any real command; keeps a 100 KB paste from costing anything.
MAX_COMMAND_CHARS = 2000
MAX_INT = 10**9

_DURATION = re.compile(r"^(\d{1,6})\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Parsed:
    command: Command
    args: dict[str, str | int | timedelta | None]


@dataclass(frozen=True)
class ParseFailure:
    """Why a message that looked like a command could not be run."""

    message: Md
    command: Command | None = None


def _allowed_char(ch: str) -> bool:
    if ch in "\n\t\r":
        return True
    return unicodedata.category(ch) != "Cc"


def _convert(arg: Arg, raw: str) -> str | int | timedelta:
    if arg.type is ArgType.TEXT:
        return raw
    if arg.type is ArgType.INT:
        if not re.fullmatch(r"-?\d{1,10}", raw) or abs(int(raw)) > MAX_INT:
            raise ValueError(f"<{arg.name}> must be a whole number")
        return int(raw)
    if arg.type is ArgType.USER:
        if not is_user_id(raw):
            raise ValueError(f"<{arg.name}> must be a Matrix user ID like @someone:example.org")
        return raw
    if arg.type is ArgType.ROOM:
        if not is_room_ref(raw):
            raise ValueError(f"<{arg.name}> must be a room ID or alias like #room:example.org")
        return raw
    duration = parse_duration(raw)
    if duration is None:
        raise ValueError(f"<{arg.name}> must be a duration like 30m, 2h, 14d or 1w")
    return duration


def parse_duration(text: str) -> timedelta | None:
    """``30m``, ``2h``, ``14d``, ``1w``...; None if *text* is not one."""
    m = _DURATION.fullmatch(text.strip().lower())
    if not m or int(m.group(1)) == 0:
        return None
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse(body: str, prefix: str, table: CommandTable) -> Parsed | ParseFailure | None:
    """Parse *body*; None means it is not addressed to the bot at all."""
    if not body.startswith(prefix):
        return None
    if len(body) > MAX_COMMAND_CHARS:
        return ParseFailure(
            md(
                "That command is too long ({} characters; the limit is {}). Send {} for usage.",
                len(body),
                MAX_COMMAND_CHARS,
                code(prefix + "help"),
            )
        )
    after = body[len(prefix) :]
    if not after[:1].isalpha():
        return None  # "!", "!!!" or "! ok" is punctuation, not a command
    if not all(_allowed_char(ch) for ch in after):
        # Checked before splitting: str.split treats some control characters
        # as spaces and would silently drop them.
        name = after.split(maxsplit=1)[0] if after.split() else after
        known = table.get(name.lower())
        return ParseFailure(Md("Commands can't contain control characters."), known)
    name, rest, command = table.named(after)
    if command is None:
        close = difflib.get_close_matches(name, table.names(), n=1)
        hint = md(" Did you mean {}?", code(prefix + close[0])) if close else Md("")
        shown = (
            name
            if name.isprintable() and len(name) <= 32
            else name[:32].encode("unicode_escape").decode()
        )
        return ParseFailure(
            md(
                "Unknown command {}.{} Send {} for the list.",
                code(prefix + shown),
                hint,
                code(prefix + "help"),
            )
        )

    usage = md("Usage: {}", code(command.usage(prefix)))
    try:
        tokens = _tokenize(rest, command)
    except ValueError:
        return ParseFailure(md("A quote is not closed. {}", usage), command)

    values: dict[str, str | int | timedelta | None] = {}
    for i, arg in enumerate(command.args):
        if i >= len(tokens):
            if arg.required:
                return ParseFailure(md("Missing {}. {}", code(f"<{arg.name}>"), usage), command)
            values[arg.name] = None
            continue
        try:
            values[arg.name] = _convert(arg, tokens[i])
        except ValueError as exc:
            return ParseFailure(md("{}. {}", str(exc), usage), command)
    if len(tokens) > len(command.args):
        return ParseFailure(md("Too many arguments. {}", usage), command)
    return Parsed(command, values)


def _tokenize(rest: str, command: Command) -> list[str]:
    """Split arguments on spaces, honouring quotes; a trailing ``rest``
    argument keeps its spaces. Backslashes are ordinary characters: members
    type paths and kaomoji, not shell escapes."""
    rest = rest.strip()
    if not rest:
        return []
    takes_rest = bool(command.args) and command.args[-1].rest
    n_fixed = len(command.args) - (1 if takes_rest else 0)
    stream = io.StringIO(rest)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""
    tokens: list[str] = []
    while not takes_rest or len(tokens) < n_fixed:
        tok = lexer.get_token()
        if tok is None or tok == lexer.eof:
            return tokens
        tokens.append(tok)
    remainder = stream.read().strip()
    if len(remainder) >= 2 and remainder[0] == remainder[-1] and remainder[0] in "\"'":
        # `!group create peers "Peer support"`: the quotes only group words.
        remainder = remainder[1:-1].strip()
    if remainder:
        tokens.append(remainder)
    return tokens
