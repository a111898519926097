"""The interface every Hearth feature implements.

A feature is one folder under ``bots/`` exposing one :class:`Feature`. It
declares, as data, everything the runtime needs from it: its commands, its
typed event handlers, its own migrations, its scheduled job kinds, the
actions only it knows how to perform, and its validated config section. The
runtime composes the enabled features and never names one.

Every handler, whether a command's, an event's, a job's or a service's,
takes ``(input, ctx)``: what happened, and a :class:`Context` typed by the
feature's own config model, so ``ctx.config`` needs no check and mypy
refuses a handler declared for another feature's config.

Handlers decide; they do not act. They read what they need from the
:class:`Context` and return actions, which the runtime writes to the outbox
before the effector performs them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from bots.framework.actions import Action, DeleteRecord, Extension, PutRecord
from bots.framework.commands.spec import Command
from bots.framework.community import NO_COMMUNITY, Community
from bots.framework.config import BotConfig
from bots.framework.events import PowerSnapshot
from bots.framework.storage import Migration


class FeatureConfig(BaseModel):
    """Base of a feature's config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


E = TypeVar("E")
# A feature's config model: what its handlers' Context carries.
C = TypeVar("C", bound=FeatureConfig)
P = TypeVar("P")  # what a job kind's parse() makes of its payload


@dataclass(frozen=True)
class Setup:
    """What a feature's adapters are built from at start."""

    bot: BotConfig
    config: FeatureConfig


class RecordStore(Protocol):
    async def record(self, feature: str, kind: str, key: str) -> dict[str, Any] | None: ...
    async def records(self, feature: str, kind: str) -> dict[str, dict[str, Any]]: ...


class FeatureTables(Protocol):
    """The tables a feature's own migrations made. Each call is one
    statement, taken in turn with the framework's own (a raw connection
    shared between coroutines lets a read and a write interleave)."""

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    async def write(self, sql: str, args: Sequence[Any] = ()) -> int: ...


@dataclass(frozen=True)
class Context(Generic[C]):
    """What a handler may read while deciding.

    A feature keeps its state as records: read them here, and change them by
    returning :meth:`put` and :meth:`delete` among the actions, so the new
    state is stored with the decision that made it, or not at all.
    """

    me: str
    feature: str
    config: C
    bot: BotConfig
    now: float
    db: FeatureTables = field(repr=False)
    power: Callable[[str, str], PowerSnapshot] = field(repr=False)
    moderators_room: str | None = None
    store: RecordStore | None = field(default=None, repr=False)
    # The latest content of the state event types the feature asked for
    # (Feature.state_types), by type and then by room.
    room_state: Callable[[str], Mapping[str, Mapping[str, Any]]] = field(
        default=lambda _type: {}, repr=False
    )
    # The same types' events that have a state key (policy rules, say):
    # by type, then room, then state key.
    keyed_state: Callable[[str], Mapping[str, Mapping[str, Mapping[str, Any]]]] = field(
        default=lambda _type: {}, repr=False
    )
    # The bot's DM room with a user, if it has one.
    direct_room: Callable[[str], Awaitable[str | None]] | None = field(default=None, repr=False)
    # How many devices a user has cross-signed, read afresh from the server
    # (the bot may share no room with them yet, so it hears of no change).
    verified_devices: Callable[[str], Awaitable[int]] | None = field(default=None, repr=False)
    # Who is in a room (joined or invited), as the bot last synced it.
    members: Callable[[str], frozenset[str]] = field(default=lambda _room: frozenset(), repr=False)
    # Who created a room (m.room.create's sender and additional creators):
    # unlike any other state, nobody can change it afterwards.
    creators: Callable[[str], frozenset[str]] = field(default=lambda _room: frozenset(), repr=False)
    # The community: its rooms, each checked against the staff who made it,
    # who is who, the rooms the operator named and the community file
    # (bots/framework/community.py). The one way a feature reads them; read
    # when asked, as the server and the file say now.
    community: Callable[[], Community] = field(default=lambda: NO_COMMUNITY, repr=False)

    async def record(self, kind: str, key: str) -> dict[str, Any] | None:
        assert self.store is not None
        return await self.store.record(self.feature, kind, key)

    async def records(self, kind: str) -> dict[str, dict[str, Any]]:
        assert self.store is not None
        return await self.store.records(self.feature, kind)

    def put(self, kind: str, key: str, value: Mapping[str, Any]) -> PutRecord:
        return PutRecord(self.feature, kind, key, value)

    def delete(self, kind: str, key: str) -> DeleteRecord:
        return DeleteRecord(self.feature, kind, key)


@dataclass(frozen=True)
class EventHandler(Generic[E, C]):
    """Called with every event of *event_type* (an intake dataclass).

    *direct_only*: only events its sender sends in the bot's DM with them.
    A handler of every message in every room would have the bot write down
    all the community's chatter; one of DMs only keeps it to what is said
    to the bot.
    """

    event_type: type[E]
    handle: Callable[[E, Context[C]], Awaitable[Sequence[Action]]]
    direct_only: bool = False


@dataclass(frozen=True)
class Job(Generic[P]):
    """A scheduled job as its handler sees it: *parsed* is what its kind's
    parse() made of the payload (None for a kind without one)."""

    kind: str
    key: str
    due: float
    payload: Mapping[str, Any]
    late: bool
    parsed: P


@dataclass(frozen=True)
class JobSpec(Generic[C, P]):
    """A kind of scheduled job. *grace_s*: how late it may still run after a
    downtime; past that it is recorded as missed and reported. *parse*
    validates the payload and raises if it no longer fits."""

    kind: str
    run: Callable[[Job[P], Context[C]], Awaitable[Sequence[Action]]]
    grace_s: float = 3600.0
    parse: Callable[[Mapping[str, Any]], P] | None = None


@dataclass(frozen=True)
class Running(Generic[C]):
    """A service's input: the Context of now whenever it looks again (its
    clock, power levels, community and records), and the way to act."""

    fresh: Callable[[], Context[C]] = field(repr=False)
    # Durably queue *actions* (and apply their record writes) under an
    # idempotency *key*: the same key again is not acted on twice.
    submit: Callable[[str, Sequence[Action]], Awaitable[None]] = field(repr=False)


@dataclass(frozen=True)
class Service(Generic[C]):
    """A feature's long-running task, e.g. watching for new registrations.
    It starts once the bot has synced, stops with the bot, and is started
    again (with backoff) if it fails. *run* gets the Context of its start."""

    name: str
    run: Callable[[Running[C], Context[C]], Awaitable[None]]


PerformerFactory = Callable[[Setup], Callable[[Any], Awaitable[Sequence[Action]]]]


@dataclass(frozen=True)
class Feature(Generic[C]):
    """A feature, declared as data. Every handler it declares takes a
    ``Context[C]`` of its own *config_model*: mypy checks that they agree."""

    name: str
    summary: str
    config_model: type[C]
    commands: tuple[Command[Context[C]], ...] = ()
    handlers: tuple[EventHandler[Any, C], ...] = ()
    migrations: tuple[Migration, ...] = ()
    # Each kind's own payload type; a feature's kinds differ.
    jobs: tuple[JobSpec[C, Any], ...] = ()
    performers: Mapping[type[Extension], PerformerFactory] = field(default_factory=dict)
    services: tuple[Service[C], ...] = ()
    # State event types whose content the feature reads with
    # Context.room_state and keyed_state (the community's markers are read
    # through Context.community(), verified, whatever is declared here).
    state_types: tuple[str, ...] = ()
    # Why this feature cannot run with a given bot config, or None if it can.
    unavailable: Callable[[BotConfig], str | None] | None = None
    # Rooms its config section names for the bot to be in (ban lists to
    # follow): the bot accepts their invitations, whoever sends them.
    named_rooms: Callable[[C], Collection[str]] | None = None

    def __post_init__(self) -> None:
        for m in self.migrations:
            if m.namespace != self.name:
                raise ValueError(
                    f"feature {self.name!r}: migration {m.version} must use the namespace "
                    f"{self.name!r}, not {m.namespace!r}"
                )
