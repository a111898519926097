"""Deciding one event: the command it carries, if any, and every feature's
handlers; the decision is written in the transaction that settles the
event in the inbox, then performed."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import structlog

from bots.framework.actions import Action, RecordWrite, Reply
from bots.framework.commands.authorize import is_allowed
from bots.framework.commands.spec import CommandTable
from bots.framework.config import BotConfig
from bots.framework.dispatch.context import Contexts
from bots.framework.dispatch.order import Queued, classify
from bots.framework.events import Message
from bots.framework.feature import EventHandler, Feature
from bots.framework.intake.parse import to_event
from bots.framework.logging import get_logger
from bots.framework.outbox.queue import Outbox, records_for, split_writes
from bots.framework.room_facts import RoomFacts
from bots.framework.router import Ignore, Respond, Run, needs_device_trust, route
from bots.framework.storage import InboxItem, Storage
from bots.framework.trust.identities import Identities
from bots.framework.trust.policy import DeviceTrust

log = get_logger(__name__)

APOLOGY = (
    "Sorry, something went wrong while I was handling that, and I couldn't finish it. "
    "The people who run this bot can see what happened; please try again later."
)


class Decider:
    def __init__(
        self,
        config: BotConfig,
        features: Sequence[Feature],
        table: CommandTable,
        facts: RoomFacts,
        contexts: Contexts,
        outbox: Outbox,
        direct_member: Callable[[str], str | None],
        clock: Callable[[], float],
    ) -> None:
        """*direct_member*: the member a room is the bot's direct message
        with, if it is one."""
        self.config = config
        self.table = table
        self.facts = facts
        self.contexts = contexts
        self.outbox = outbox
        self.direct_member = direct_member
        self.clock = clock
        self.command_feature: dict[str, Feature] = {
            command.name: feature for feature in features for command in feature.commands
        }
        self.handlers: list[tuple[Feature, EventHandler[Any, Any]]] = [
            (f, h) for f in features for h in f.handlers
        ]
        # Set once the bot has opened its state and connected.
        self.storage: Storage | None = None
        self.identities: Identities | None = None
        self.handled = 0

    def queued(self, item: InboxItem) -> Queued:
        """What the room's order needs of *item*: whether its sender has
        power in the room, by the server's state, and whether it is a
        command, by its (decrypted) body."""
        event = to_event(item.room_id, item.source, encrypted=item.encrypted)
        return classify(
            item.source,
            event,
            prefix=self.config.command_prefix,
            staff=lambda sender, name: self._goes_ahead(item.room_id, sender, name),
            concerns=self._concerns(event),
            feature_of=self._feature_of,
        )

    def _feature_of(self, words: str) -> str | None:
        name, _, _ = self.table.named(words)
        feature = self.command_feature.get(name)
        return feature.name if feature is not None else None

    def _concerns(self, event: object) -> frozenset[str]:
        """The features with a handler that takes *event*, when it is not a
        message (a vote, a reaction), for the order. Messages do not count:
        every one is the protections', and a member may send any command,
        so a raid of them would hold back every moderator's."""
        if isinstance(event, Message):
            return frozenset()
        return frozenset(f.name for f, h in self.handlers if self._applies(h, event))

    def _goes_ahead(self, room_id: str, sender: str, words: str) -> bool:
        """Whether *sender*'s command (its first *words*) may pass the
        room's queue: a command the bot knows, from someone with power, that
        they may run in this room. An unknown word or a command they lack
        the power for keeps its place (it is refused when decided, like any
        other)."""
        _, _, command = self.table.named(words)
        return (
            command is not None
            and self.facts.is_staff(room_id, sender)
            and is_allowed(command, self.facts.power_of(room_id, sender))
        )

    def oldest_ms(self) -> int:
        return int((self.clock() - self.config.max_event_age_s) * 1000)

    def wants(self, event: object) -> bool:
        """Whether any feature could act on *event*. Chatter that no command
        and no handler concerns is not written to the inbox at all, so a
        busy community costs the bot little beyond decrypting."""
        if event is None:
            return False
        if any(self._applies(h, event) for _, h in self.handlers):
            return True
        return isinstance(event, Message) and event.body.lstrip().startswith(
            self.config.command_prefix
        )

    def _applies(self, handler: EventHandler[Any, Any], event: object) -> bool:
        if not isinstance(event, handler.event_type):
            return False
        if not handler.direct_only:
            return True
        room, sender = getattr(event, "room_id", None), getattr(event, "sender", None)
        return room is not None and self.direct_member(room) == sender

    async def decide(self, event: object) -> tuple[list[Action], str | None]:
        """Every feature's decision about one event, and the command run, if any."""
        actions: list[Action] = []
        command: str | None = None
        if isinstance(event, Message):
            prefix = self.config.command_prefix
            device = DeviceTrust.UNVERIFIED
            if self.identities is not None and needs_device_trust(
                event, prefix=prefix, table=self.table
            ):
                device = await self.identities.trust_of(event.sender, event.sender_device)
            decision = route(
                event,
                me=self.config.user_id,
                oldest_ms=self.oldest_ms(),
                prefix=prefix,
                table=self.table,
                power=self.facts.power_of(event.room_id, event.sender),
                device=device,
            )
            if isinstance(decision, Respond):
                actions.extend(decision.actions)
                command = "(refused or invalid)"
            elif isinstance(decision, Run):
                command = decision.command.name
                # The owning feature's context; None for the built-ins.
                ctx = self.contexts.of(self.command_feature.get(command))
                actions.extend(await decision.command.handler(decision.invocation, ctx))
            elif isinstance(decision, Ignore) and decision.reason == "own event":
                return [], None
        for feature, handler in self.handlers:
            if self._applies(handler, event):
                ctx = self.contexts.of(feature)
                assert ctx is not None
                actions.extend(await handler.handle(event, ctx))
        return actions, command

    async def handle(self, item: InboxItem) -> Coroutine[Any, Any, None] | None:
        """Decide *item* and settle it with its decision; what performs
        that (its places in the rooms' lanes already taken), if anything."""
        storage = self.storage
        assert storage is not None
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(event_id=item.event_id, room_id=item.room_id)
        event = to_event(item.room_id, item.source, encrypted=item.encrypted)
        ts = getattr(event, "server_ts_ms", 0)
        sender = getattr(event, "sender", None)
        if event is None or sender == self.config.user_id or ts < self.oldest_ms():
            await storage.drop_inbox(item)
            return None
        t0 = time.perf_counter()
        writes: list[RecordWrite] = []
        try:
            actions, command = await self.decide(event)
            actions, writes = split_writes(actions)
            records = records_for(f"event:{item.event_id}", actions)
            outcome = "ok"
        except Exception:
            log.exception("handler failed")
            outcome = "handler failed"
            command = None
            actions = (
                [Reply(item.room_id, item.event_id, APOLOGY)] if isinstance(event, Message) else []
            )
            records = records_for(f"event:{item.event_id}", actions)
            writes = []
        queued = await storage.settle(item, records, writes)
        performing = self.outbox.queue_decision(queued)
        if command is None and outcome == "ok":
            return performing
        self.handled += 1
        return self._logged(performing, command, outcome, sender, t0)

    async def _logged(
        self,
        performing: Coroutine[Any, Any, None],
        command: str | None,
        outcome: str,
        sender: str | None,
        t0: float,
    ) -> None:
        # Run as its own task, which keeps the event's log bindings.
        await performing
        # One canonical line per command; who sent it is hashed by the redactor.
        log.info(
            "command handled",
            command=command,
            outcome=outcome,
            sender=sender,
            ms=round((time.perf_counter() - t0) * 1000, 1),
        )
