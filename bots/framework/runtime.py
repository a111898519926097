"""Runs one bot: wires session, storage, intake, dispatch, the features'
handlers, the scheduler and the effector together. Names no feature:
:mod:`bots.app` composes them.

The path of an event, each step durable before the next:

1. A sync's events go to the inbox with the sync position after them, in one
   transaction (:meth:`Storage.receive`; what is kept: ``intake/``).
2. Each room's events are decided by that room's worker, at most
   ``max_concurrent_rooms`` rooms at a time, in room order but staff first
   (``dispatch/rooms.py``, ``dispatch/order.py``); what the handlers decide
   goes to the outbox in the transaction that marks the event handled
   (``dispatch/decide.py``).
3. The room's worker performs its outbox entries through the effector, each
   with a transaction id derived from its idempotency key
   (``outbox/queue.py``).

A crash between any two steps is completed on the next start, without
doubling anything.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import aiosqlite
from nio import AsyncClient, SyncResponse

from bots.base.errors import StateError
from bots.framework import moderators_room
from bots.framework.actions import ActionTypes
from bots.framework.background import Background
from bots.framework.commands.builtins import add_help, add_trust
from bots.framework.commands.spec import CommandTable
from bots.framework.community import CommunityRoles, CommunitySource
from bots.framework.config import BotConfig
from bots.framework.decrypted_state import guard_decryption
from bots.framework.direct_rooms import DirectRooms
from bots.framework.dispatch.context import Contexts, section_of
from bots.framework.dispatch.decide import Decider
from bots.framework.dispatch.rooms import RoomWorkers
from bots.framework.feature import Feature, FeatureConfig, Setup
from bots.framework.intake.keys import KeyWaits
from bots.framework.intake.sync import SyncIntake
from bots.framework.logging import get_logger, use_salt_file
from bots.framework.moderators_reports import ModeratorReports
from bots.framework.outbox.effector import Effector
from bots.framework.outbox.queue import Outbox
from bots.framework.room_facts import RoomFacts
from bots.framework.scheduler import Scheduler, SystemClock
from bots.framework.scheduler import connect as connect_scheduler_db
from bots.framework.scheduler.features import features_scheduler, start_jobs
from bots.framework.services import Services
from bots.framework.session import BotSession
from bots.framework.state_lock import StateLock
from bots.framework.storage import MIGRATIONS, InboxItem, Storage, as_state_error
from bots.framework.trust.history import HistorySharer
from bots.framework.trust.identities import Identities
from bots.framework.trust.parts import TrustParts
from bots.framework.trust.policy import KeySharing
from bots.framework.trust.sharing import KeySharer
from bots.framework.trust.warming import SessionWarmer, joined_users

log = get_logger(__name__)

# Handled-event and finished-action records older than this are pruned; the
# maximum event age keeps anything older from being acted on again.
RETENTION_S = 7 * 24 * 3600


class BotRuntime:
    def __init__(
        self,
        config: BotConfig,
        features: Sequence[Feature],
        community: Callable[[], CommunitySource | None] | None = None,
    ) -> None:
        """*community*: the bot's community file and who is who in it, read
        afresh when the file changes; None for a bot without a community."""
        self.config = config
        self.community: Callable[[], CommunitySource | None] = community or (lambda: None)

        def roles() -> CommunityRoles | None:
            source = self.community()
            return source.roles if source is not None else None

        self.roles: Callable[[], CommunityRoles | None] = roles
        self.features = tuple(features)
        # Wall clock for event ages and handlers' "now"; replaceable in tests.
        self.clock: Callable[[], float] = time.time

        def now() -> float:
            return self.clock()  # looked up when called: tests replace the clock

        self.table = CommandTable()
        for feature in self.features:
            for command in feature.commands:
                self.table.add(command)
        add_trust(self.table, config.command_prefix, lambda: self.identities)
        add_help(self.table, config.command_prefix)

        self.session = BotSession(config)
        self.background = Background(self._stop_on)
        spawn = self.background.spawn
        self.storage: Storage | None = None
        self.effector: Effector | None = None
        self.scheduler: Scheduler | None = None
        self.identities: Identities | None = None
        self.keys: KeySharer | None = None
        self.history: HistorySharer | None = None
        self.warmer: SessionWarmer | None = None

        self.facts = RoomFacts(
            config, self.session, self.features, self.table, self.roles, self.section
        )
        self.outbox = Outbox(
            ActionTypes(tuple(t for f in self.features for t in f.performers)), spawn
        )
        self.contexts = Contexts(config, self.facts, now, self.community)
        self.reports = ModeratorReports(config, self.facts, self.outbox, spawn=spawn, clock=now)
        self.directs = DirectRooms(config, self.session, self.facts, self.outbox, spawn)
        self.decider = Decider(
            config,
            self.features,
            self.table,
            self.facts,
            self.contexts,
            self.outbox,
            self.directs.member_of,
            now,
        )
        self.rooms = RoomWorkers(
            self.decider.handle, self.decider.queued, config.max_concurrent_rooms, self._stop_on
        )
        self.intake = SyncIntake(config, self.session, self.decider.wants, self.decider.oldest_ms)
        self.key_waits = KeyWaits(
            config,
            self.session,
            wants=self.decider.wants,
            oldest_ms=self.decider.oldest_ms,
            dispatch=self.rooms.dispatch,
            decrypted=self.reports.note_alarms,
            spawn=spawn,
        )
        self.services = Services(self.features, self.contexts, self.outbox, self._stop_on)

        self._scheduler_db: aiosqlite.Connection | None = None
        self._scheduler_task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self._fatal: StateError | None = None

    def section(self, feature: Feature) -> FeatureConfig:
        return section_of(self.config, feature)

    def _bind(self, storage: Storage) -> None:
        """Hand the opened state to every part that reads or writes it."""
        self.storage = storage
        for part in (self.outbox, self.contexts, self.reports, self.decider, self.key_waits):
            part.storage = storage

    def _bind_connected(self) -> None:
        """Hand the parts made after connecting to those that use them."""
        self.outbox.effector = self.reports.effector = self.key_waits.effector = self.effector
        self.outbox.scheduler = self.scheduler
        self.contexts.identities = self.decider.identities = self.identities

    # --- lifecycle ---

    async def _open_storage(self) -> Storage:
        migrations = [*MIGRATIONS, *(m for f in self.features for m in f.migrations)]
        storage = await Storage.open(self.config.state_dir / "bot.db", migrations)
        await self.directs.load(storage)
        # Never forget an event younger than the oldest one still acted on.
        cutoff = time.time() - max(RETENTION_S, self.config.max_event_age_s + 86400)
        await storage.forget_handled_before(cutoff)
        await storage.forget_outbox_before(cutoff)
        return storage

    async def run(self) -> None:
        """Connect and serve until cancelled or :meth:`stop` is called."""
        lock = StateLock(self.config.state_dir)
        lock.acquire()
        try:
            await self._run()
        finally:
            lock.release()

    async def _run(self) -> None:
        use_salt_file(self.config.state_dir / "log-salt")
        self._bind(await self._open_storage())
        storage = self.storage
        assert storage is not None
        try:
            client: AsyncClient = await self.session.connect()
            # From here on, no decrypted payload is taken for room state.
            guard_decryption(client.olm, self.reports.alarms.seen, lambda: self.facts.state.types)
            self.facts.moderators_room_id = await moderators_room.find(
                client, self.config.moderators_room, self.roles(), self.config.user_id
            )
            trust = TrustParts.connect(
                client,
                storage,
                KeySharing(self.config.key_sharing),
                holds_power=self.facts.holds_power,
                report_change=self.reports.identity_changed,
                history_shared=self.facts.history_shared,
            )
            self.identities, self.keys = trust.identities, trust.keys
            self.warmer, self.history = trust.warmer, trust.history
            self.effector = Effector(
                client,
                # Each feature's performers, made with its own config section.
                performers={
                    kind: make(Setup(self.config, self.section(f)))
                    for f in self.features
                    for kind, make in f.performers.items()
                },
                directs=self.directs,
                keys=self.keys,
                history=self.history,
            )
            self._scheduler_db = await connect_scheduler_db(self.config.state_dir / "bot.db")
            self.scheduler = features_scheduler(
                self._scheduler_db,
                self.features,
                self.contexts.of,
                self.outbox.hand_off,
                SystemClock(self.clock),
                self.reports.tell,
            )
            self._bind_connected()
            await start_jobs(self.scheduler, self.features, self.reports.tell, RETENTION_S)
            await self._serve(client)
        finally:
            await self._shutdown()
        if self._fatal is not None:
            raise self._fatal

    async def _serve(self, client: AsyncClient) -> None:
        assert self.storage is not None
        assert self.scheduler is not None
        leftovers = await self.storage.pending_inbox()
        since = await self.storage.sync_token()
        baseline = since is None
        position = since
        first = True
        storage, scheduler = self.storage, self.scheduler

        async def on_sync(resp: SyncResponse) -> None:
            nonlocal baseline, first, position
            self.facts.note_state(resp)
            if self.history is not None:
                # nio has decrypted them and dropped the shared-history flag.
                await self.history.record_received(resp.to_device_events)
            if self.keys is not None:
                # Before anything is sent: a changed device list decides who
                # gets the next room key.
                self.keys.devices_changed(resp.device_list.changed)
            if self.warmer is not None:
                self.warmer.note(joined_users(resp, client.user_id or "", encrypted_room))
            if first:
                first = False
                await self._take_up(storage, leftovers, scheduler)
            # The very first sync's timeline is the past: nothing in it was
            # sent to a running bot, so it only marks where handling starts.
            # Invitations still waiting are answered all the same.
            items, awaiting = await self.intake.collect(
                resp, timeline=not baseline, position=position
            )
            baseline = False
            received: list[InboxItem] = []
            # An idle long-poll that ends with nothing new at the same
            # position has nothing to write: the idle bot's disk write saved.
            if items or awaiting or resp.next_batch != position:
                try:
                    received = await storage.receive(items, resp.next_batch, awaiting)
                except sqlite3.OperationalError as exc:
                    fatal = as_state_error(exc)
                    if fatal is None:
                        raise
                    raise fatal from None
                position = resp.next_batch
            for item in received:
                self.rooms.dispatch(item)
            for event_id, room_id, source in awaiting:
                await self.key_waits.start(event_id, room_id, source)
            self.reports.note_alarms()
            self.directs.leave_shared_rooms(resp)
            if not self.ready.is_set():
                self.ready.set()
                log.info("bot ready", commands=len(self.table.names()))

        def encrypted_room(room_id: str) -> bool:
            room = client.rooms.get(room_id)
            return room is not None and room.encrypted

        # Olm sessions with members' devices, made ahead in the background.
        warming = asyncio.create_task(self.warmer.run()) if self.warmer is not None else None
        try:
            try:
                await self.session.sync_forever(on_sync, since)
            except Exception as exc:
                # nio writes its crypto store while it takes in a sync: a
                # full or read-only folder surfaces here.
                fatal = as_state_error(exc)
                if fatal is None or fatal is exc:
                    raise
                raise fatal from None
            # Stopped: services take in nothing more; finish the work
            # already taken in, within the bound.
            await self.services.stop()
            # The scheduler too, before the drain: a job firing during it
            # would hand off sends that the shutdown then cuts off mid-request.
            await self._stop_scheduler()
            try:
                await asyncio.wait_for(self._drain(), self.config.stop_timeout_s)
            except TimeoutError:
                log.warning("stopped before all work was done; it resumes on the next start")
        finally:
            if warming is not None:
                warming.cancel()
                await asyncio.gather(warming, return_exceptions=True)
            await self._stop_scheduler()

    async def _stop_scheduler(self) -> None:
        """Stop taking jobs; let a job in progress finish (it would run
        again otherwise). A stopped scheduler stays stopped."""
        if self.scheduler is not None:
            self.scheduler.stop()
        task = self._scheduler_task
        if task is not None:
            await asyncio.wait({task}, timeout=5)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _take_up(
        self, storage: Storage, leftovers: Sequence[InboxItem], scheduler: Scheduler
    ) -> None:
        """After the first sync: what a previous run received but did not
        handle goes first; what it decided but did not perform follows, now
        that nio has synced the rooms it must encrypt for."""
        # Taken before any room worker runs, so a row settled from now on is
        # performed by its worker alone, never twice.
        backlog = await storage.pending_outbox()
        # Its places in the rooms' lanes taken before any leftover is
        # decided: what was decided first is done first.
        resuming = self.outbox.queue_backlog(backlog)
        for item in leftovers:
            self.rooms.dispatch(item)
        # Messages a previous run was still waiting to decrypt.
        for event_id, room_id, source in await storage.awaiting_keys():
            await self.key_waits.start(event_id, room_id, source)
        # In a task of its own: a long backlog under rate limits must not
        # hold up the sync loop, nor keep SIGTERM waiting.
        self.background.spawn(self._resume(resuming, scheduler))

    async def _resume(self, backlog: Coroutine[Any, Any, None], scheduler: Scheduler) -> None:
        """After the first sync: what a previous run decided but did not
        perform, the reports held back until rooms were known, then the jobs
        (which also send through nio)."""
        await backlog
        await self.reports.synced_now()
        self._scheduler_task = asyncio.create_task(scheduler.serve())
        self.services.start()

    async def _drain(self) -> None:
        await self.rooms.drain()
        await self.background.finish()

    async def _shutdown(self) -> None:
        await self.services.stop()
        tasks = [*self.rooms.tasks(), *self.background.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._scheduler_db is not None:
            await self._scheduler_db.close()
        if self.storage is not None:
            await self.storage.close()
        await self.session.close()

    async def inbox_empty(self) -> bool:
        """Whether every received event has been handled (for tests and benches)."""
        return self.storage is not None and not await self.storage.pending_inbox()

    def _stop_on(self, fatal: StateError) -> None:
        """Stop at once, saying why: the state folder can no longer be written."""
        if self._fatal is None:
            log.error("stopping: the bot's state cannot be written", problem=str(fatal))
            self._fatal = fatal
        self.stop()

    def stop(self) -> None:
        """Stop taking in events; :meth:`run` finishes the work in hand, then returns."""
        self.session.stop()
