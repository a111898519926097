"""Who may run what, what `!help` shows them, and how a message becomes a decision."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import timedelta

import pytest

from bots.framework.actions import Action, Reply
from bots.framework.commands.authorize import REFUSAL, is_allowed
from bots.framework.commands.help import detail, overview
from bots.framework.commands.spec import (
    MEMBER,
    MODERATOR,
    Arg,
    ArgType,
    Command,
    CommandTable,
    Invocation,
    Scope,
)
from bots.framework.events import IncomingMessage, PowerSnapshot
from bots.framework.markdown import Md, render
from bots.framework.router import Ignore, Respond, Run, needs_device_trust, route
from bots.framework.trust.policy import DeviceTrust

ME = "@hearth-bot:example.org"
ALICE = "@alice:example.org"
ROOM = "!lounge:example.org"
STARTED = 1_700_000_000_000
PREFIX = "!"

MEMBER_POWER = PowerSnapshot(in_room=MEMBER)
ROOM_MOD = PowerSnapshot(in_room=MODERATOR)
COMMUNITY_MOD = PowerSnapshot(in_room=MEMBER, in_moderators_room=MODERATOR)
NOT_IN_MODS_ROOM = PowerSnapshot(in_room=100, in_moderators_room=None)


async def _noop(inv: Invocation, ctx: object) -> Sequence[Action]:
    return []


PING = Command("ping", "Check the bot is alive", _noop)
KICK = Command(
    "kick",
    "Remove someone from this room",
    _noop,
    (Arg("user", "who to remove", ArgType.USER), Arg("reason", "why", required=False, rest=True)),
    power_level=MODERATOR,
)
ADMIN = Command("shutdown", "Stop the bot", _noop, power_level=100)
BAN = Command(
    "ban",
    "Ban someone from every community room",
    _noop,
    (
        Arg("user", "who to ban", ArgType.USER),
        Arg("for", "how long", ArgType.DURATION, required=False),
    ),
    power_level=MODERATOR,
    scope=Scope.COMMUNITY,
    details="Bans the member everywhere; they are told why.",
)


def _table() -> CommandTable:
    table = CommandTable()
    for cmd in (PING, KICK, ADMIN, BAN):
        table.add(cmd)
    return table


def _msg(
    body: str,
    *,
    sender: str = ALICE,
    msgtype: str = "m.text",
    ts: int = STARTED + 1,
    event_id: str = "$event1",
) -> IncomingMessage:
    return IncomingMessage(
        event_id=event_id,
        room_id=ROOM,
        sender=sender,
        body=body,
        msgtype=msgtype,
        server_ts_ms=ts,
        encrypted=True,
    )


def _route(
    msg: IncomingMessage,
    power: PowerSnapshot = MEMBER_POWER,
    device: DeviceTrust = DeviceTrust.VERIFIED,
) -> object:
    return route(
        msg, me=ME, oldest_ms=STARTED, prefix=PREFIX, table=_table(), power=power, device=device
    )


def _reply_text(decision: object) -> str:
    assert isinstance(decision, Respond), decision
    (action,) = decision.actions
    assert isinstance(action, Reply)
    return action.body


# --- authorisation ---


def test_member_may_use_member_commands() -> None:
    assert is_allowed(PING, MEMBER_POWER)


def test_member_may_not_use_room_moderator_commands() -> None:
    assert not is_allowed(KICK, MEMBER_POWER)


def test_room_moderator_may_use_room_moderator_commands() -> None:
    assert is_allowed(KICK, ROOM_MOD)


def test_exactly_the_required_level_is_enough() -> None:
    assert is_allowed(ADMIN, PowerSnapshot(in_room=100))
    assert not is_allowed(ADMIN, PowerSnapshot(in_room=99))


def test_room_scope_ignores_the_moderators_room() -> None:
    assert not is_allowed(KICK, COMMUNITY_MOD)


def test_community_scope_uses_the_moderators_room_level() -> None:
    assert is_allowed(BAN, COMMUNITY_MOD)


def test_community_scope_ignores_power_in_the_current_room() -> None:
    assert not is_allowed(BAN, PowerSnapshot(in_room=100, in_moderators_room=0))


def test_community_scope_refused_outside_the_moderators_room() -> None:
    assert not is_allowed(BAN, NOT_IN_MODS_ROOM)


TRUST = dataclasses.replace(BAN, name="trust", scope=Scope.MODERATORS_ROOM)


def test_moderators_room_scope_needs_the_command_typed_there() -> None:
    there = PowerSnapshot(
        in_room=MODERATOR, in_moderators_room=MODERATOR, typed_in_moderators_room=True
    )
    assert is_allowed(TRUST, there)
    # A community moderator typing it elsewhere, even where they hold all power.
    assert not is_allowed(TRUST, PowerSnapshot(in_room=100, in_moderators_room=MODERATOR))
    # In the moderators' room without the level.
    assert not is_allowed(
        TRUST, PowerSnapshot(in_room=0, in_moderators_room=0, typed_in_moderators_room=True)
    )
    # No moderators' room at all: refused everywhere.
    assert not is_allowed(TRUST, PowerSnapshot(in_room=100))


def test_refusal_names_no_power_level() -> None:
    assert not re.search(r"\d", REFUSAL)


@pytest.mark.parametrize(
    "body",
    [
        "!kick @bob:example.org",
        "!kick",
        "!kick not-a-user",
        "!shutdown",
        "!shutdown now",
        "!ban @bob:example.org 2h",
        "!ban @bob:example.org forever",
        '!kick "@bob:example.org',
        "!kick @bob:example.org \x00",
    ],
)
def test_every_refused_command_gets_the_same_reply(body: str) -> None:
    assert _reply_text(_route(_msg(body))) == REFUSAL


# --- help ---


def _plain(text: Md) -> str:
    return render(text).body


def test_help_overview_lists_only_permitted_commands() -> None:
    text = _plain(overview(_table(), PREFIX, MEMBER_POWER))
    assert "!ping" in text
    assert "!kick" not in text
    assert "!shutdown" not in text
    assert "!ban" not in text


def test_help_overview_for_a_room_moderator() -> None:
    text = _plain(overview(_table(), PREFIX, ROOM_MOD))
    assert "!kick <user> [reason]: Remove someone from this room" in text
    assert "!ban" not in text
    assert "!shutdown" not in text


def test_help_overview_for_a_community_moderator() -> None:
    text = _plain(overview(_table(), PREFIX, COMMUNITY_MOD))
    assert "!ban <user> [for]" in text
    assert "!kick" not in text


def test_help_overview_keeps_declaration_order() -> None:
    text = _plain(overview(_table(), PREFIX, PowerSnapshot(in_room=100, in_moderators_room=100)))
    positions = [text.index(f"!{name}") for name in ("ping", "kick", "shutdown", "ban")]
    assert positions == sorted(positions)


def test_help_overview_says_how_to_get_details() -> None:
    assert "!help <command>" in _plain(overview(_table(), PREFIX, MEMBER_POWER))


def test_help_overview_uses_the_configured_prefix() -> None:
    text = _plain(overview(_table(), "hearth:", MEMBER_POWER))
    assert "hearth:ping" in text
    assert "hearth:help <command>" in text


def test_help_detail_shows_usage_and_argument_types() -> None:
    lines = _plain(detail(KICK, PREFIX)).splitlines()
    assert lines[0] == "!kick <user> [reason]"
    assert "- user (user): who to remove" in lines


def test_help_detail_marks_optional_arguments() -> None:
    text = _plain(detail(KICK, PREFIX))
    (reason_line,) = [line for line in text.splitlines() if line.startswith("- reason")]
    assert "(optional)" in reason_line
    (user_line,) = [line for line in text.splitlines() if line.startswith("- user")]
    assert "optional" not in user_line


def test_help_detail_shows_no_type_for_text_arguments() -> None:
    lines = _plain(detail(KICK, PREFIX)).splitlines()
    (reason_line,) = [line for line in lines if line.startswith("- reason")]
    assert "(text)" not in reason_line


def test_help_detail_prefers_the_long_description() -> None:
    text = _plain(detail(BAN, PREFIX))
    assert "Bans the member everywhere; they are told why." in text
    assert "for (duration, optional): how long" in text


def test_help_detail_falls_back_to_the_one_line_help() -> None:
    assert _plain(detail(PING, PREFIX)).splitlines() == ["!ping", "", "Check the bot is alive"]


def test_help_detail_explains_community_scope() -> None:
    assert "community moderators" in _plain(detail(BAN, PREFIX))
    assert "community moderators" not in _plain(detail(KICK, PREFIX))


def test_help_detail_names_no_power_level() -> None:
    assert "50" not in _plain(detail(KICK, PREFIX))
    assert "100" not in _plain(detail(ADMIN, PREFIX))


def test_help_is_formatted_with_headings_code_and_lists() -> None:
    html = render(overview(_table(), PREFIX, ROOM_MOD)).html
    assert "<h3>Commands you can use here</h3>" in html
    assert "<li><code>!ping</code>: Check the bot is alive</li>" in html
    assert "<h3>Moderators' commands</h3>" in html
    assert "<code>!kick &lt;user&gt; [reason]</code>" in html
    detail_html = render(detail(KICK, PREFIX)).html
    assert detail_html.startswith("<h3><code>!kick &lt;user&gt; [reason]</code></h3>")
    assert "<li><code>user</code> (user): who to remove</li>" in detail_html


def test_a_member_s_help_has_no_moderators_section() -> None:
    assert "Moderators" not in _plain(overview(_table(), PREFIX, MEMBER_POWER))


# --- router ---


def test_own_events_are_ignored() -> None:
    assert isinstance(_route(_msg("!ping", sender=ME)), Ignore)


def test_events_from_before_the_start_are_ignored() -> None:
    assert isinstance(_route(_msg("!ping", ts=STARTED - 1)), Ignore)


def test_event_sent_at_the_start_is_handled() -> None:
    assert isinstance(_route(_msg("!ping", ts=STARTED)), Run)


def test_an_edited_command_is_not_run_again() -> None:
    edit = dataclasses.replace(_msg("!ping"), replaces="$original")
    assert _route(edit) == Ignore("an edit")


@pytest.mark.parametrize("msgtype", ["m.notice", "m.emote", "m.image", "m.file"])
def test_non_text_messages_are_ignored(msgtype: str) -> None:
    assert isinstance(_route(_msg("!ping", msgtype=msgtype)), Ignore)


def test_ordinary_chat_is_ignored() -> None:
    assert isinstance(_route(_msg("good morning everyone")), Ignore)


def test_unknown_command_gets_a_helpful_reply() -> None:
    decision = _route(_msg("!pnig"))
    assert isinstance(decision, Respond)
    (action,) = decision.actions
    assert (action.room_id, action.in_reply_to) == (ROOM, "$event1")
    assert "<code>!ping</code>" in (action.html or "")
    assert "Did you mean !ping?" in action.body


def test_permitted_command_usage_error_is_explained() -> None:
    text = _reply_text(_route(_msg("!kick"), ROOM_MOD))
    assert text == "Missing <user>. Usage: !kick <user> [reason]"


def test_forbidden_command_usage_error_gets_the_refusal_not_usage() -> None:
    text = _reply_text(_route(_msg("!kick"), MEMBER_POWER))
    assert text == REFUSAL
    assert "Usage" not in text


def test_refusal_replies_to_the_command_message() -> None:
    decision = _route(_msg("!kick @bob:example.org", event_id="$abc"))
    assert isinstance(decision, Respond)
    assert decision.actions == (Reply(ROOM, "$abc", REFUSAL),)


def test_permitted_command_is_run_with_its_invocation() -> None:
    decision = _route(_msg("!kick @bob:example.org spamming links", event_id="$k1"), ROOM_MOD)
    assert isinstance(decision, Run)
    assert decision.command is KICK
    assert decision.invocation == Invocation(
        command="kick",
        args={"user": "@bob:example.org", "reason": "spamming links"},
        sender=ALICE,
        room_id=ROOM,
        event_id="$k1",
        power=ROOM_MOD,
    )


def test_community_command_runs_with_typed_arguments() -> None:
    decision = _route(_msg("!ban @bob:example.org 2h"), COMMUNITY_MOD)
    assert isinstance(decision, Run)
    assert decision.invocation.args == {"user": "@bob:example.org", "for": timedelta(hours=2)}
    assert decision.invocation.power == COMMUNITY_MOD


def test_community_command_refused_when_not_in_moderators_room() -> None:
    assert _reply_text(_route(_msg("!ban @bob:example.org"), NOT_IN_MODS_ROOM)) == REFUSAL


# --- the sending device ---


def test_powerful_command_from_unverified_device_is_refused_with_how_to_verify() -> None:
    text = _reply_text(_route(_msg("!kick @bob:example.org"), ROOM_MOD, DeviceTrust.UNVERIFIED))
    assert "verified session" in text
    assert "Settings" in text
    assert "Sessions" in text
    assert "@bob" not in text  # nothing about the command's arguments


def test_powerful_command_after_identity_change_names_the_confirmation() -> None:
    msg = _msg("!kick @bob:example.org")
    text = _reply_text(_route(msg, ROOM_MOD, DeviceTrust.IDENTITY_CHANGED))
    assert f"{PREFIX}trust {msg.sender}" in text


def test_member_command_needs_no_verified_device() -> None:
    decision = _route(_msg("!ping"), MEMBER_POWER, DeviceTrust.UNVERIFIED)
    assert isinstance(decision, Run)


def test_unverified_device_without_power_gets_the_plain_refusal() -> None:
    # The verification hint would reveal that the command exists for others.
    text = _reply_text(_route(_msg("!kick @bob:example.org"), MEMBER_POWER, DeviceTrust.UNVERIFIED))
    assert text == REFUSAL


def test_route_trusts_no_device_by_default() -> None:
    msg = _msg("!kick @bob:example.org")
    decision = route(msg, me=ME, oldest_ms=STARTED, prefix=PREFIX, table=_table(), power=ROOM_MOD)
    assert isinstance(decision, Respond)


def test_device_trust_is_looked_up_only_for_powerful_commands() -> None:
    table = _table()
    assert needs_device_trust(_msg("!kick @bob:example.org"), prefix=PREFIX, table=table)
    assert not needs_device_trust(_msg("!ping"), prefix=PREFIX, table=table)
    assert not needs_device_trust(_msg("hello there"), prefix=PREFIX, table=table)
    assert not needs_device_trust(_msg("!kick"), prefix=PREFIX, table=table)  # malformed
