"""From an incoming message to what the bot should do. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from bots.framework.actions import Action, Reply
from bots.framework.commands.authorize import (
    REFUSAL,
    device_refusal,
    is_allowed,
    needs_verified_device,
)
from bots.framework.commands.parse import ParseFailure, parse
from bots.framework.commands.pills import command_text
from bots.framework.commands.spec import Command, CommandTable, Invocation
from bots.framework.events import IncomingMessage, PowerSnapshot
from bots.framework.markdown import Md
from bots.framework.trust.policy import DeviceTrust

# Messages a bot may legitimately be asked to act on.
COMMAND_MSGTYPES = frozenset({"m.text"})


@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class Respond:
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Run:
    command: Command
    invocation: Invocation


Route = Ignore | Respond | Run


def should_consider(msg: IncomingMessage, *, me: str, oldest_ms: int) -> Ignore | None:
    """Filters that apply to every event before parsing.

    *oldest_ms* is the server timestamp below which an event is too old to
    act on (the bot's maximum event age): events from a downtime are
    handled, stale ones are not.
    """
    if msg.sender == me:
        return Ignore("own event")
    if msg.server_ts_ms < oldest_ms:
        return Ignore("too old to act on")
    return None


def route(
    msg: IncomingMessage,
    *,
    me: str,
    oldest_ms: int,
    prefix: str,
    table: CommandTable,
    power: PowerSnapshot,
    device: DeviceTrust = DeviceTrust.UNVERIFIED,
) -> Route:
    """*device* is how far the sending device is trusted; the runtime works
    it out only when :func:`needs_device_trust` says the command needs it."""
    skip = should_consider(msg, me=me, oldest_ms=oldest_ms)
    if skip is not None:
        return skip
    if msg.msgtype not in COMMAND_MSGTYPES:
        return Ignore("not a text message")
    if msg.replaces is not None:
        # Editing a command must not run it a second time.
        return Ignore("an edit")
    parsed = parse(command_text(msg.body, msg.formatted_body), prefix, table)
    if parsed is None:
        return Ignore("not a command")

    def reply(text: Md) -> Respond:
        return Respond((Reply(msg.room_id, msg.event_id, text),))

    if isinstance(parsed, ParseFailure):
        # Don't explain argument errors of a command the sender may not use.
        if parsed.command is not None and not is_allowed(parsed.command, power):
            return reply(REFUSAL)
        return reply(parsed.message)
    if not is_allowed(parsed.command, power):
        return reply(REFUSAL)
    refusal = device_refusal(parsed.command, device, prefix, msg.sender)
    if refusal is not None:
        return reply(refusal)
    return Run(
        parsed.command,
        Invocation(
            command=parsed.command.name,
            args=parsed.args,
            sender=msg.sender,
            room_id=msg.room_id,
            event_id=msg.event_id,
            power=power,
            reply_to=msg.reply_to,
        ),
    )


def needs_device_trust(msg: IncomingMessage, *, prefix: str, table: CommandTable) -> bool:
    """Whether *msg* is a command whose authorisation depends on the sending
    device (so the runtime must look up the sender's identity first)."""
    if msg.msgtype not in COMMAND_MSGTYPES or msg.replaces is not None:
        return False
    parsed = parse(command_text(msg.body, msg.formatted_body), prefix, table)
    return (
        parsed is not None
        and not isinstance(parsed, ParseFailure)
        and (needs_verified_device(parsed.command))
    )
