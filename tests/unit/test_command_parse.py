"""Command declarations and the parser: what a member sees for what they type."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
import time
import unicodedata
from collections.abc import Sequence
from datetime import timedelta

import pytest

from bots.framework.actions import Action
from bots.framework.commands.parse import MAX_COMMAND_CHARS, Parsed, ParseFailure, parse
from bots.framework.commands.pills import command_text
from bots.framework.commands.spec import (
    MODERATOR,
    Arg,
    ArgType,
    Command,
    CommandTable,
    Invocation,
)
from bots.framework.markdown import render

PREFIX = "!"


async def _noop(inv: Invocation, ctx: object) -> Sequence[Action]:
    return []


def _cmd(name: str, *args: Arg, power_level: int = 0) -> Command:
    return Command(name, f"help for {name}", _noop, tuple(args), power_level=power_level)


def _table() -> CommandTable:
    table = CommandTable()
    table.add(_cmd("ping"))
    table.add(_cmd("count", Arg("n", "how many", ArgType.INT)))
    table.add(_cmd("whois", Arg("user", "who", ArgType.USER)))
    table.add(_cmd("link", Arg("room", "which room", ArgType.ROOM)))
    table.add(_cmd("snooze", Arg("for", "how long", ArgType.DURATION)))
    table.add(_cmd("pair", Arg("first", "one"), Arg("second", "two", required=False)))
    table.add(_cmd("say", Arg("text", "what to say", rest=True)))
    table.add(
        _cmd(
            "kick",
            Arg("user", "who", ArgType.USER),
            Arg("reason", "why", required=False, rest=True),
            power_level=MODERATOR,
        )
    )
    return table


TABLE = _table()


def ok(body: str) -> Parsed:
    result = parse(body, PREFIX, TABLE)
    assert isinstance(result, Parsed), result
    return result


def fail(body: str) -> ParseFailure:
    """The failure, its message as the member reads it (the plain body)."""
    result = parse(body, PREFIX, TABLE)
    assert isinstance(result, ParseFailure), result
    return dataclasses.replace(result, message=render(result.message).body)


def _v12_room_id() -> str:
    """A room ID as room version 12 makes them: no server part, URL-safe base64."""
    digest = hashlib.sha256(b"create event").digest()
    return "!" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


# --- not a command ---


@pytest.mark.parametrize("body", ["hello there", "ping", " !ping", "", "what?!"])
def test_plain_text_is_not_a_command(body: str) -> None:
    assert parse(body, PREFIX, TABLE) is None


@pytest.mark.parametrize("body", ["!", "! ", "!\n"])
def test_lone_prefix_is_not_a_command(body: str) -> None:
    assert parse(body, PREFIX, TABLE) is None


def test_other_prefix_is_honoured() -> None:
    table = _table()
    assert parse("!ping", "hearth:", table) is None
    assert isinstance(parse("hearth:ping", "hearth:", table), Parsed)


# --- names ---


def test_unknown_command_suggests_the_closest_name() -> None:
    msg = fail("!pnig").message
    assert "Unknown command !pnig." in msg
    assert "Did you mean !ping?" in msg
    assert "!help" in msg


def test_unknown_command_without_a_close_name_has_no_suggestion() -> None:
    msg = fail("!xyzzyplugh").message
    assert "Unknown command !xyzzyplugh." in msg
    assert "Did you mean" not in msg


def test_unknown_command_failure_names_no_command() -> None:
    assert fail("!nosuchthing").command is None


@pytest.mark.parametrize("body", ["!PING", "!Ping", "!pInG"])
def test_command_names_are_case_insensitive(body: str) -> None:
    assert ok(body).command.name == "ping"


def test_arguments_keep_their_case() -> None:
    assert ok("!SAY Hello World").args == {"text": "Hello World"}


def test_command_name_with_control_characters_is_refused_without_echo() -> None:
    msg = fail("!pi\x00ng\x1b[2J").message
    assert "\x00" not in msg
    assert "\x1b" not in msg
    assert "control characters" in msg


def test_prefix_followed_by_escapes_is_not_a_command() -> None:
    assert parse("!" + "\x1b[31m" * 50, "!", TABLE) is None


def test_huge_unknown_name_is_shortened_in_the_reply() -> None:
    name = "x" * (MAX_COMMAND_CHARS - 10)
    msg = fail("!" + name).message
    assert name not in msg
    assert len(msg) < 200


# --- typed arguments ---


def test_int_argument_is_converted() -> None:
    assert ok("!count 42").args == {"n": 42}


def test_negative_int_is_accepted() -> None:
    assert ok("!count -3").args == {"n": -3}


@pytest.mark.parametrize("raw", ["five", "4.5", "1e3", "0x10", "99999999999"])
def test_int_argument_rejects_non_numbers_with_usage(raw: str) -> None:
    msg = fail(f"!count {raw}").message
    assert "<n> must be a whole number" in msg
    assert "Usage: !count <n>" in msg


def test_user_argument_accepts_a_matrix_user_id() -> None:
    assert ok("!whois @alice:example.org").args == {"user": "@alice:example.org"}


def test_user_argument_accepts_a_server_with_port() -> None:
    assert ok("!whois @alice:example.org:8448").args == {"user": "@alice:example.org:8448"}


@pytest.mark.parametrize("raw", ["alice", "@alice", "alice:example.org", "#alice:example.org"])
def test_user_argument_rejects_non_user_ids(raw: str) -> None:
    msg = fail(f"!whois {raw}").message
    assert "<user> must be a Matrix user ID" in msg
    assert "Usage: !whois <user>" in msg


def test_user_argument_rejects_a_trailing_newline() -> None:
    fail('!whois "@alice:example.org\n"')


@pytest.mark.parametrize(
    "room",
    ["!abcDEF123:example.org", "!abcDEF123", _v12_room_id(), "#lounge:example.org"],
)
def test_room_argument_accepts_ids_and_aliases(room: str) -> None:
    assert ok(f"!link {room}").args == {"room": room}


@pytest.mark.parametrize("raw", ["lounge", "#lounge", "@alice:example.org", "!"])
def test_room_argument_rejects_non_rooms(raw: str) -> None:
    msg = fail(f"!link {raw}").message
    assert "<room> must be a room ID or alias" in msg


def test_room_argument_rejects_a_trailing_newline() -> None:
    fail('!link "#lounge:example.org\n"')


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("14d", timedelta(days=14)),
        ("1w", timedelta(weeks=1)),
        ("45s", timedelta(seconds=45)),
        ("2H", timedelta(hours=2)),
    ],
)
def test_duration_argument_is_converted(raw: str, expected: timedelta) -> None:
    assert ok(f"!snooze {raw}").args == {"for": expected}


@pytest.mark.parametrize("raw", ["0m", "00h", "soon", "30", "m", "-5m", "1y", "1.5h"])
def test_duration_argument_rejects_non_durations(raw: str) -> None:
    msg = fail(f"!snooze {raw}").message
    assert "<for> must be a duration like" in msg
    assert "Usage: !snooze <for>" in msg


# --- argument count ---


def test_missing_argument_names_it_and_shows_usage() -> None:
    failure = fail("!count")
    assert failure.message == "Missing <n>. Usage: !count <n>"
    assert failure.command is TABLE.get("count")


def test_too_many_arguments_shows_usage() -> None:
    assert fail("!ping now").message == "Too many arguments. Usage: !ping"


def test_optional_argument_may_be_left_out() -> None:
    assert ok("!pair one").args == {"first": "one", "second": None}


def test_usage_marks_optional_arguments() -> None:
    assert fail("!pair a b c").message == "Too many arguments. Usage: !pair <first> [second]"


# --- quoting ---


def test_quoted_argument_keeps_its_spaces() -> None:
    assert ok('!pair "one two" three').args == {"first": "one two", "second": "three"}


def test_single_quotes_work_too() -> None:
    assert ok("!pair 'one two'").args == {"first": "one two", "second": None}


def test_unclosed_quote_is_reported_with_usage() -> None:
    msg = fail('!pair "one two').message
    assert "A quote is not closed." in msg
    assert "Usage: !pair <first> [second]" in msg


def test_hash_is_not_a_comment() -> None:
    assert ok("!pair a #b").args == {"first": "a", "second": "#b"}


# --- rest-of-line arguments ---


def test_rest_argument_keeps_inner_spacing_and_newlines() -> None:
    text = "hello   world\n  second\tline"
    assert ok(f"!say   {text}  ").args == {"text": text}


def test_rest_argument_after_a_fixed_one_keeps_inner_spacing() -> None:
    parsed = ok("!kick @bob:example.org  too   loud\nand rude")
    assert parsed.args == {"user": "@bob:example.org", "reason": "too   loud\nand rude"}


def test_rest_argument_keeps_quotes_as_typed() -> None:
    assert ok('!say "quoted" text').args == {"text": '"quoted" text'}


def test_optional_rest_argument_may_be_left_out() -> None:
    assert ok("!kick @bob:example.org").args == {"user": "@bob:example.org", "reason": None}


def test_required_rest_argument_is_reported_missing() -> None:
    assert fail("!say").message == "Missing <text>. Usage: !say <text>"


# --- hostile input ---


def test_100kb_body_is_refused_quickly_naming_its_length() -> None:
    body = "!say " + "a" * 100_000
    start = time.perf_counter()
    failure = fail(body)
    assert time.perf_counter() - start < 0.5
    assert f"{len(body)} characters" in failure.message
    assert str(MAX_COMMAND_CHARS) in failure.message


def test_long_non_command_is_ignored() -> None:
    assert parse("a" * 100_000, PREFIX, TABLE) is None


def test_body_at_the_limit_is_accepted() -> None:
    body = "!say "
    body += "a" * (MAX_COMMAND_CHARS - len(body))
    assert ok(body).args["text"] == "a" * (MAX_COMMAND_CHARS - len("!say "))


@pytest.mark.parametrize("ch", ["\x00", "\x1b", "\x07", "\x7f", "\x1c", "\x1f"])
def test_control_characters_in_arguments_are_refused(ch: str) -> None:
    failure = fail(f"!say hello{ch}world")
    assert failure.message == "Commands can't contain control characters."
    assert ch not in failure.message


@pytest.mark.parametrize("ch", ["\n", "\t", "\r"])
def test_newline_and_tab_are_allowed(ch: str) -> None:
    assert ok(f"!say hello{ch}world").args == {"text": f"hello{ch}world"}


@pytest.mark.parametrize(
    "text",
    [
        "héllo wörld",
        "你好 世界",
        "🎉🕯️ hugs",
        "مرحبا بكم",
        "שלום",
        "\u202eabc\u202c",
        "zero\u200bwidth",
    ],
)
def test_unicode_text_is_accepted(text: str) -> None:
    assert ok(f"!say {text}").args == {"text": text}


def test_unicode_fixed_arguments_are_accepted() -> None:
    assert ok("!pair مرحبا 🎉").args == {"first": "مرحبا", "second": "🎉"}


# --- CommandTable ---


def test_duplicate_declaration_is_rejected() -> None:
    table = CommandTable()
    table.add(_cmd("ping"))
    with pytest.raises(ValueError, match="declared twice"):
        table.add(_cmd("ping"))


def test_decorator_declares_the_command() -> None:
    table = CommandTable()

    @table.command("hello", "Say hello", args=[Arg("who", "someone", required=False)])
    async def hello(inv: Invocation, ctx: object) -> Sequence[Action]:
        return []

    cmd = table.get("hello")
    assert cmd is not None
    assert cmd.handler is hello
    assert cmd.usage("!") == "!hello [who]"


@pytest.mark.parametrize(
    "name", ["Ping", "pi  ng", "a b c", "pïng", "ping!", "", "pi_ng", "-", "group Create"]
)
def test_bad_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        CommandTable().add(_cmd(name))


def test_two_word_commands_parse_before_one_word_ones() -> None:
    table = CommandTable()
    table.add(_cmd("group"))
    table.add(
        Command("group create", "make", _noop, (Arg("key", "k"), Arg("name", "n", rest=True)))
    )
    parsed = parse('!Group CREATE peers "Peer support"', "!", table)
    assert isinstance(parsed, Parsed)
    assert parsed.command.name == "group create"
    assert parsed.args == {"key": "peers", "name": "Peer support"}
    plain = parse("!group", "!", table)
    assert isinstance(plain, Parsed)
    assert plain.command.name == "group"


def test_hyphenated_name_is_allowed() -> None:
    table = CommandTable()
    table.add(_cmd("set-topic"))
    assert isinstance(parse("!set-topic", PREFIX, table), Parsed)


def test_rest_argument_must_be_last() -> None:
    bad = _cmd("bad", Arg("text", "t", rest=True), Arg("more", "m"))
    with pytest.raises(ValueError, match="only the last argument"):
        CommandTable().add(bad)


def test_commands_keep_declaration_order() -> None:
    table = CommandTable()
    for name in ("one", "two", "three"):
        table.add(_cmd(name))
    assert table.names() == ["one", "two", "three"]
    assert [c.name for c in table] == ["one", "two", "three"]


def test_first_puts_a_command_at_the_front() -> None:
    table = CommandTable()
    table.add(_cmd("one"))
    table.add(_cmd("two"))
    table.add(_cmd("help"), first=True)
    assert table.names() == ["help", "one", "two"]


def test_rejected_declaration_leaves_the_table_unchanged() -> None:
    table = CommandTable()
    table.add(_cmd("one"))
    with pytest.raises(ValueError, match="lowercase"):
        table.add(_cmd("Two"))
    assert table.names() == ["one"]


# --- property: parse never raises ---

_ALPHABET = [
    *"abcdefghijklmnopqrstuvwxyz0123456789 !@#:.-_'\"\\",
    *["\n", "\t", "\r", "\x00", "\x1b", "\x7f", "\x85", "\x1c", "\u00a0", "\u2028"],
    *["é", "ß", "İ", "你", "🎉", "\u202e", "\u200b", "\ud800", "ﷺ"],
    *["ping", "count", "whois", "say", "kick", "pair", "snooze", "link", "30m", "@a:b.c"],
]


def _random_body(rng: random.Random) -> str:
    parts = [rng.choice(_ALPHABET) for _ in range(rng.randint(0, 24))]
    body = "".join(parts)
    return PREFIX + body if rng.random() < 0.85 else body


def test_parse_never_raises_on_random_input() -> None:
    rng = random.Random(20240607)
    for _ in range(5000):
        body = _random_body(rng)
        result = parse(body, PREFIX, TABLE)
        assert result is None or isinstance(result, Parsed | ParseFailure), body
        if isinstance(result, Parsed):
            assert set(result.args) == {a.name for a in result.command.args}, body
        if isinstance(result, ParseFailure):
            assert not any(unicodedata.category(ch) == "Cc" for ch in result.message), body


def test_a_pill_is_read_as_the_user_id_it_links_to() -> None:
    body = "!ban Dr Kind (moderator) spam"  # the display name a troll chose
    formatted = '!ban <a href="https://matrix.to/#/@troll:example.org">Dr Kind (moderator)</a> spam'
    assert command_text(body, formatted) == "!ban @troll:example.org spam"
    escaped = '!kick <a href="https://matrix.to/#/%40amy%3Aexample.org">Amy</a> &amp; more'
    assert command_text("!kick Amy & more", escaped) == "!kick @amy:example.org & more"
    # Not a pill (a room link, or no link): the plain body stands.
    room = '!join <a href="https://matrix.to/#/#carers:example.org">Carers</a>'
    assert command_text("!join #carers:example.org", room) == "!join #carers:example.org"
    assert command_text("!ping", None) == "!ping"


def test_the_table_names_two_word_commands_before_one_word_ones() -> None:
    table = CommandTable()
    group = table.add(_cmd("group"))
    create = table.add(_cmd("group create"))
    assert table.named("Group CREATE carers now") == ("group create", "carers now", create)
    assert table.named("group carers") == ("group", "carers", group)
    assert table.named("nothing here") == ("nothing", "here", None)
    assert table.named("") == ("", "", None)
