"""Which of a room's queued events is decided next. Pure.

A room's events are decided in the order the server gave them, with one
exception: staff first. A command from someone with power in the room goes
ahead of other members' ordinary messages queued before it, so a moderator
is not kept waiting behind a flood. A member's ``!ping`` is not urgent:
were it, a raid of ``!ping``s would overtake everyone's messages, the
moderators' commands included, and hold back what the crisis protection
must see. It never passes:

- an earlier event from its own sender (what one person sends is decided
  in the order they sent it);
- an earlier state change, or anything with no sender (membership, power
  levels and the like keep their place relative to everything);
- an earlier event, not a message, that one of its own feature's
  handlers takes (a vote, a reaction): a staff command sees the votes
  cast before it. Messages never hold it back (the protections read
  every one, and a raid of members' commands would otherwise hold back
  every moderator's).

Whether an event is urgent is read from the server's state (the sender's
power) and the decrypted body (whether it is a command); it only moves the
event forward: authorising the command is still done when it is decided.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bots.framework.events import Message

# How far into a room's queue an urgent event is looked for: keeps a long
# queue from costing a scan of all of it at every step. An urgent event
# further back waits until it is within reach.
LOOKAHEAD = 1000


@dataclass(frozen=True)
class Queued:
    """What the order needs of one queued event."""

    sender: str | None
    state: bool  # carries a state_key: keeps its place relative to everything
    urgent: bool  # a staff command: may go ahead
    # The features that act on it (see the module's doc); for an urgent
    # command, its own feature: it does not pass an event that one concerns.
    concerns: frozenset[str] = frozenset()
    feature: str | None = None


def next_index(queue: Iterable[Queued], lookahead: int = LOOKAHEAD) -> int:
    """The place in *queue* (oldest first, not empty) of the event to decide
    next: the first urgent event that passes only other senders' ordinary
    events, else the oldest."""
    passed: set[str] = set()
    concerned: set[str] = set()
    for index, queued in enumerate(itertools.islice(queue, lookahead)):
        if queued.state or queued.sender is None:
            return 0
        if queued.urgent and queued.sender not in passed and queued.feature not in concerned:
            return index
        passed.add(queued.sender)
        concerned |= queued.concerns
    return 0


def command_name(event: object, prefix: str) -> str | None:
    """The words that may name the command *event* asks for: its first two
    after *prefix* (a name has one or two, "ban" or "meeting cancel"), if
    it is a text message starting with *prefix*; edits are never run, so
    they are none. The command table says which of them name a command."""
    if not isinstance(event, Message) or event.msgtype != "m.text" or event.replaces:
        return None
    text = event.body.lstrip()
    if not text.startswith(prefix):
        return None
    words = text[len(prefix) :].split(maxsplit=2)[:2]
    return " ".join(words) if words else None


def classify(
    source: Mapping[str, Any],
    event: object,
    *,
    prefix: str,
    staff: Callable[[str, str], bool],
    concerns: frozenset[str] = frozenset(),
    feature_of: Callable[[str], str | None] = lambda name: None,
) -> Queued:
    """*source*: the event as queued; *event*: it typed (None if it could
    not be); *staff*: whether a sender holds power in the room and may run
    the named command there, by the server's state (asked only about the
    sender of a command); *concerns*: the features that act on it;
    *feature_of*: the feature a command belongs to."""
    sender = source.get("sender")
    sender = sender if isinstance(sender, str) else None
    state = "state_key" in source
    name = None if state or sender is None else command_name(event, prefix)
    urgent = name is not None and sender is not None and staff(sender, name)
    feature = feature_of(name) if urgent and name is not None else None
    return Queued(sender, state, urgent, concerns, feature)
