"""A decrypted payload never becomes room state: the layer around nio's
Megolm decryption that drops forged state before nio or Hearth reads it.

Room state is what the homeserver holds, authorised by its rules: who may
set power levels, who created the room. An encrypted event carries nothing
the server could check; its plaintext is whatever the sender's client wrote.
Encrypted state does not exist in Matrix today (MSC3414 and MSC4362 only
propose it), and a client must ignore a decrypted payload that claims to be
state (matrix-js-sdk checks, matrix-org/matrix-js-sdk#1449).

matrix-nio 0.26.0 does not: ``Olm.decrypt_megolm_event`` parses the
plaintext with ``Event.parse_decrypted_event``, so a payload of type
``m.room.power_levels`` with a ``state_key`` becomes a ``PowerLevelsEvent``,
and ``Client._handle_timeline_event`` applies it to the ``MatrixRoom``
(power levels, the room version from a forged ``m.room.create``,
memberships through ``handle_membership``). A member with a modified client
could so make the bot believe they were the room's most powerful user.

:func:`guard_decryption` wraps that one method on the client's ``Olm``
instance, through which every decryption passes (sync timelines, /messages,
/context, ``AsyncClient.decrypt_event``). A payload that carries a
``state_key`` or names a state type comes back as :class:`ForgedState`, an
``UnknownBadEvent`` that nio passes over without applying, carrying only
who sent it, where and what it claimed to be: never its content. It reads
nio internals, written for matrix-nio 0.26.0 as pinned in constraints.txt;
``tests/unit/test_decrypted_state.py`` runs nio's own parsing to check that
the guard still sees what nio would have applied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from nio import UnknownBadEvent

# State event types of the spec, and the prefixes of those Hearth and the
# ban-list rooms use. A decrypted payload claiming any of them is forged.
SPEC_STATE_TYPES = frozenset(
    {
        "m.room.create",
        "m.room.member",
        "m.room.power_levels",
        "m.room.join_rules",
        "m.room.history_visibility",
        "m.room.guest_access",
        "m.room.encryption",
        "m.room.name",
        "m.room.topic",
        "m.room.avatar",
        "m.room.canonical_alias",
        "m.room.aliases",
        "m.room.pinned_events",
        "m.room.server_acl",
        "m.room.tombstone",
        "m.room.third_party_invite",
        "m.room.related_groups",
        "m.space.child",
        "m.space.parent",
    }
)
STATE_PREFIXES = ("m.policy.rule.", "m.room.rule.", "org.matrix.mjolnir.rule.", "org.hearth.")
# The only m.room.* types a client encrypts: messages. (m.room.redaction is
# never encrypted either; intake drops a decrypted one as it always did.)
ENCRYPTED_ROOM_TYPES = frozenset({"m.room.message", "m.room.redaction"})

FORGED_TYPE = "io.hearth.forged_state"
# The claimed type is the sender's own text, quoted to the moderators: kept
# to what an event type is made of, and short.
_NOT_TYPE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
CLAIMED_MAX = 80


def plain_type(claimed: str) -> str:
    """*claimed* as the moderators may read it: no link, no markup, short."""
    return _NOT_TYPE_CHARS.sub("?", claimed)[:CLAIMED_MAX]


def claimed_state(payload: Mapping[str, Any], extra_types: Collection[str] = ()) -> str | None:
    """The state type a decrypted *payload* claims to be, or None if it
    claims none. Pure. It claims state when it carries a ``state_key`` at
    all (whatever its type), or names a state type: one of the spec's, any
    other ``m.room.*`` but a message, a policy rule, Hearth's own, or one
    in *extra_types* (the state types the bot's features read)."""
    event_type = payload.get("type")
    type_name = event_type if isinstance(event_type, str) else "?"
    if "state_key" in payload:
        return type_name
    if not isinstance(event_type, str):
        return None
    if (
        event_type in SPEC_STATE_TYPES
        or event_type in extra_types
        or event_type.startswith(STATE_PREFIXES)
        or (event_type.startswith("m.room.") and event_type not in ENCRYPTED_ROOM_TYPES)
    ):
        return event_type
    return None


@dataclass
class ForgedState(UnknownBadEvent):
    """A decrypted payload that claimed to be state: kept as an ordinary,
    ignored event (nio passes over an UnknownBadEvent), with no content."""

    event_id: str = ""
    sender: str = ""
    room_id: str = ""
    claimed: str = ""
    server_timestamp: int = 0
    decrypted: bool = field(default=True, init=False)


def forged(event: Any, claimed: str, room_id: str) -> ForgedState:
    """The :class:`ForgedState` standing in for a decrypted *event*."""
    claimed = plain_type(claimed)
    event_id = str(getattr(event, "event_id", ""))
    sender = str(getattr(event, "sender", ""))
    ts = getattr(event, "server_timestamp", 0)
    ts = ts if isinstance(ts, int) else 0
    source = {
        "type": FORGED_TYPE,
        "event_id": event_id,
        "sender": sender,
        "origin_server_ts": ts,
        "room_id": room_id,
        "content": {"claimed": claimed},
    }
    return ForgedState(
        source,
        event_id=event_id,
        sender=sender,
        room_id=room_id,
        claimed=claimed,
        server_timestamp=ts,
    )


def guard_decryption(
    olm: Any,
    on_forged: Callable[[ForgedState], None],
    extra_types: Callable[[], Collection[str]] = frozenset,
) -> None:
    """Wrap *olm*'s (nio 0.26.0's ``Olm``) Megolm decryption so that a
    payload claiming state comes back as :class:`ForgedState`, and
    *on_forged* hears of it. Idempotent: a second call wraps nothing."""
    if getattr(olm, "_hearth_state_guard", False):
        return
    original = olm.decrypt_megolm_event

    def decrypt(event: Any, room_id: str | None = None) -> Any:
        decrypted = original(event, room_id)
        source = getattr(decrypted, "source", None)
        if not isinstance(source, Mapping):
            return decrypted
        claimed = claimed_state(source, extra_types())
        if claimed is None:
            return decrypted
        # The outer event's sender and id: those the server vouches for.
        stand_in = forged(event, claimed, room_id or str(getattr(event, "room_id", "") or ""))
        on_forged(stand_in)
        return stand_in

    olm.decrypt_megolm_event = decrypt
    olm._hearth_state_guard = True
