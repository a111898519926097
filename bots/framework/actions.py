"""What handlers decide to do, as data. Only the effector performs these.

A built-in action is declared once, here, as a subclass of :class:`Effect`
(or, for the scheduler's, :class:`Scheduling`); the outbox's performer of
each registers itself for its class (:mod:`bots.framework.outbox.registry`),
and :data:`BUILTIN` and :data:`Action` follow from the declarations.

Every action is a frozen dataclass of plain values (strings, numbers,
tuples, mappings), so the outbox can store it as JSON before it is performed
and rebuild it after a crash (:func:`to_record`, :func:`from_record`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bots.framework.markdown import Md, render


class Builtin:
    """Base of the built-in actions an outbox record may name. Each subclass
    is listed in :data:`BUILTIN` by being declared."""

    declared: typing.ClassVar[list[type[Builtin]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__ and cls.__name__ not in ("Effect", "Scheduling"):
            Builtin.declared.append(cls)


class Effect(Builtin):
    """An action performed on the homeserver, by the performer registered
    for its class in :mod:`bots.framework.outbox`."""

    # A message the bot posts, rather than a change it makes: performed
    # after the changes decided before it (:mod:`bots.framework.outbox.lanes`).
    says: typing.ClassVar[bool] = False


class Written:
    """A message whose *body* may be :class:`~bots.framework.markdown.Md`:
    rendered here, once, into the plain body and the HTML beside it, so the
    outbox stores (and replays after a crash) exactly what is sent."""

    body: str
    html: str | None

    def __post_init__(self) -> None:
        if isinstance(self.body, Md) and self.html is None:
            said = render(self.body)
            object.__setattr__(self, "body", said.body)
            object.__setattr__(self, "html", said.html)


class Scheduling(Builtin):
    """An action the runtime applies to its own scheduler."""


@dataclass(frozen=True)
class Reply(Written, Effect):
    """An ``m.notice`` in reply to *in_reply_to*; in its thread if *thread_root* is set.

    *mentions* are the user IDs the notice intentionally pings
    (``m.mentions``); nobody else is notified.
    """

    says = True

    room_id: str
    in_reply_to: str
    body: str
    html: str | None = None
    mentions: tuple[str, ...] = ()
    thread_root: str | None = None


@dataclass(frozen=True)
class SendNotice(Written, Effect):
    """An ``m.notice`` that replies to nothing."""

    says = True

    room_id: str
    body: str
    html: str | None = None
    mentions: tuple[str, ...] = ()
    thread_root: str | None = None


@dataclass(frozen=True)
class SendDirect(Written, Effect):
    """A notice in the bot's one encrypted DM with *user_id*, opened or reused."""

    says = True

    user_id: str
    body: str
    html: str | None = None


@dataclass(frozen=True)
class React(Effect):
    says = True

    room_id: str
    event_id: str
    key: str


@dataclass(frozen=True)
class Edit(Written, Effect):
    """Replace the text of one of the bot's own notices (``m.replace``)."""

    says = True

    room_id: str
    event_id: str
    body: str
    html: str | None = None


@dataclass(frozen=True)
class Redact(Effect):
    room_id: str
    event_id: str
    reason: str | None = None


@dataclass(frozen=True)
class RedactRecent(Effect):
    """Redact *user_id*'s latest messages in a room: at most *limit*, and
    none older than *since_ms* if given. The effector pages back through
    the room's history for them when it performs this."""

    room_id: str
    user_id: str
    limit: int
    since_ms: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class JoinRoom(Effect):
    room_id: str


@dataclass(frozen=True)
class LeaveRoom(Effect):
    """Leave a room, or decline an invitation to it."""

    room_id: str


@dataclass(frozen=True)
class Invite(Effect):
    room_id: str
    user_id: str
    reason: str | None = None


@dataclass(frozen=True)
class Kick(Effect):
    room_id: str
    user_id: str
    reason: str | None = None


@dataclass(frozen=True)
class Ban(Effect):
    room_id: str
    user_id: str
    reason: str | None = None


@dataclass(frozen=True)
class Unban(Effect):
    room_id: str
    user_id: str
    reason: str | None = None


@dataclass(frozen=True)
class SetState(Effect):
    """Any state event: power levels, join rules, a feature's own state."""

    room_id: str
    event_type: str
    content: Mapping[str, Any] = field(default_factory=dict)
    state_key: str = ""


@dataclass(frozen=True)
class SetPower(Effect):
    """One user's power level in a room; None puts them back to the room's
    default. Read and written back at the moment it is performed, so two
    changes in a row never undo each other (a SetState of power levels
    built from the bot's view of the room could)."""

    room_id: str
    user_id: str
    level: int | None


@dataclass(frozen=True)
class SetPostingLevel(Effect):
    """The level a room's members need to post (``events_default``), read
    and written back when performed, as :class:`SetPower` is."""

    room_id: str
    level: int


@dataclass(frozen=True)
class SendPoll(Effect):
    """An Element poll (``org.matrix.msc3381.poll.start``).

    *answer_ids* name the answers in the votes that come back (``a0``,
    ``a1``... if empty), so a feature can make them say what they are for.
    *record_as* (feature, kind, key): once sent, the poll's event ID is kept
    as that record (``{"event_id": ...}``), to end the poll later.
    """

    says = True

    room_id: str
    question: str
    answers: tuple[str, ...]
    max_selections: int = 1
    disclosed: bool = True
    answer_ids: tuple[str, ...] = ()
    record_as: tuple[str, ...] = ()


@dataclass(frozen=True)
class EndPoll(Effect):
    """Close a poll (``org.matrix.msc3381.poll.end``): clients show the
    results and take no more votes."""

    says = True

    room_id: str
    poll_id: str
    text: str


@dataclass(frozen=True)
class UploadFile(Effect):
    """Encrypt *data_path*'s file with nio's attachment encryption, upload the
    ciphertext and post it as ``m.file`` (or ``m.image``) in *room_id*.

    A small file made by the bot (a calendar) can be given as *text*
    instead, kept in the outbox with the action until it is sent.
    """

    says = True

    room_id: str
    data_path: str
    filename: str
    mimetype: str
    msgtype: str = "m.file"
    text: str | None = None


@dataclass(frozen=True)
class ScheduleJob(Scheduling):
    """Run *feature*'s job *kind* at *due* (UTC epoch seconds). The key makes
    scheduling idempotent: the same key twice schedules once."""

    feature: str
    kind: str
    due: float
    key: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CancelJob(Scheduling):
    key: str


@dataclass(frozen=True)
class PutRecord:
    """Store a feature's *value* under (*kind*, *key*), in the transaction
    that marks the event handled and queues the other actions: the state a
    feature moves to and the messages it sends are kept together or not at
    all. Read back with :meth:`Context.record`."""

    feature: str
    kind: str
    key: str
    value: Mapping[str, Any]


@dataclass(frozen=True)
class DeleteRecord:
    feature: str
    kind: str
    key: str


# Applied by the runtime in the deciding transaction; never queued.
RecordWrite = PutRecord | DeleteRecord


@dataclass(frozen=True)
class Extension:
    """Base of actions that a feature's own adapter performs (registered with
    the effector), e.g. provisioning a new peer group. The adapter returns
    follow-up actions, typically a reply saying how it went."""


# Any action a handler may return. The built-in ones are the subclasses of
# Effect and Scheduling; a feature's own are Extensions.
Action = Effect | Scheduling | PutRecord | DeleteRecord | Extension

# Every built-in action class, in the order declared.
BUILTIN: tuple[type[Builtin], ...] = tuple(Builtin.declared)


def room_of(action: Any) -> str | None:
    """The room an action happens in, for ordering; None if it has none."""
    room = getattr(action, "room_id", None)
    return room if isinstance(room, str) else None


def _plain(value: Any) -> Any:
    """JSON's own types: any mapping becomes a dict and any tuple a list."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_record(action: Any) -> dict[str, Any]:
    """A JSON-ready record of *action*, for the outbox."""
    fields = {f.name: _plain(getattr(action, f.name)) for f in dataclasses.fields(action)}
    return {"type": type(action).__name__, "fields": fields}


def _thaw(value: Any, hint: Any) -> Any:
    """JSON gives lists where the dataclass declared tuples."""
    if isinstance(value, list) and typing.get_origin(hint) is tuple:
        return tuple(value)
    return value


class ActionTypes:
    """The action classes an outbox record may name: the built-in ones and
    each enabled feature's extensions."""

    def __init__(self, extra: tuple[type[Any], ...] = ()) -> None:
        self._types = {t.__name__: t for t in (*BUILTIN, *extra)}
        if len(self._types) != len(BUILTIN) + len(extra):
            raise ValueError("two action classes share a name")

    def from_record(self, record: Mapping[str, Any]) -> Any:
        """Rebuild an action; KeyError or TypeError if the record no longer fits."""
        cls = self._types[record["type"]]
        hints = typing.get_type_hints(cls)
        fields = record["fields"]
        return cls(**{k: _thaw(v, hints.get(k)) for k, v in fields.items()})
