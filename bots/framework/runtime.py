"""Runs one bot: session, storage, intake, the features' handlers, the
scheduler and the effector. Names no feature: :mod:`bots.app` composes them.

The path of an event, each step durable before the next:

1. A sync's events go to the inbox with the sync position after them, in one
   transaction (:meth:`Storage.receive`).
2. Each room's events are handled in order by that room's worker, at most
   ``max_concurrent_rooms`` rooms at a time; what the handlers decide goes to
   the outbox in the transaction that marks the event handled.
3. The room's worker performs its outbox entries through the effector, each
   with a transaction id derived from its idempotency key.

A crash between any two steps is completed on the next start, without
doubling anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import structlog
from nio import (
    AsyncClient,
    EncryptionError,
    InviteMemberEvent,
    MatrixRoom,
    MegolmEvent,
    MessageDirection,
    RoomMessagesResponse,
    SyncResponse,
)

from bots.base.backoff import Backoff
from bots.base.errors import StateError
from bots.framework import moderators_room
from bots.framework.actions import (
    Action,
    ActionTypes,
    CancelJob,
    DeleteRecord,
    LeaveRoom,
    PutRecord,
    RecordWrite,
    Reply,
    ScheduleJob,
    SendNotice,
    room_of,
    to_record,
)
from bots.framework.commands.help import detail, overview
from bots.framework.commands.spec import (
    MODERATOR,
    Arg,
    ArgType,
    Command,
    CommandTable,
    Invocation,
    Scope,
)
from bots.framework.community import (
    MARKER,
    NO_ROOMS,
    CommunityRoles,
    Verdict,
    shared_members_rooms,
    verify,
)
from bots.framework.community import STATE_TYPES as COMMUNITY_STATE
from bots.framework.config import BotConfig
from bots.framework.cross_signing import api_of
from bots.framework.decrypted_state import ForgedState, guard_decryption
from bots.framework.effector import Effector, Performer
from bots.framework.events import (
    CREATOR_POWER,
    Message,
    PowerSnapshot,
    creators_outrank_power_levels,
)
from bots.framework.feature import (
    Context,
    EventHandler,
    Feature,
    FeatureConfig,
    Job,
    Service,
    ServiceContext,
    Setup,
)
from bots.framework.forgery import Alarm, AlarmBook
from bots.framework.intake import to_event, with_sender_keys
from bots.framework.logging import get_logger, use_salt_file
from bots.framework.room_state import ServerState
from bots.framework.router import Ignore, Respond, Run, needs_device_trust, route
from bots.framework.scheduler import Job as StoredJob
from bots.framework.scheduler import JobKind, Problem, Scheduler, SystemClock
from bots.framework.scheduler import connect as connect_scheduler_db
from bots.framework.session import TRANSIENT, BotSession
from bots.framework.storage import (
    MIGRATIONS,
    InboxItem,
    OutboxItem,
    Storage,
    as_state_error,
)
from bots.framework.trust.history import HistorySharer, SessionFlags
from bots.framework.trust.identities import Identities
from bots.framework.trust.policy import DeviceTrust, KeySharing, history_is_shared
from bots.framework.trust.received import sender_device_of
from bots.framework.trust.sharing import KeySharer
from bots.framework.trust.warming import SessionWarmer, joined_users
from bots.framework.undecryptable import RETRY_INTERVAL_S, notice_key, undecryptable_reply

log = get_logger(__name__)

# The framework's own records: forgery attempts already reported.
SECURITY = "security"

# At most this many pages of 100 events are fetched back per room after a
# downtime; a room busier than that for longer than the bot was away has its
# oldest events left out (logged).
BACKFILL_PAGES = 20

# Handled-event and finished-action records older than this are pruned; the
# maximum event age keeps anything older from being acted on again.
RETENTION_S = 7 * 24 * 3600

# Said before leaving a member's direct message that others were added to.
NO_LONGER_DIRECT = (
    "This conversation now has more people in it than you and me, so I'm leaving it: "
    "what you tell me should stay between us. Send me a direct message instead."
)

APOLOGY = (
    "Sorry, something went wrong while I was handling that, and I couldn't finish it. "
    "The people who run this bot can see what happened; please try again later."
)


def records_for(
    key: str, actions: Iterable[Action]
) -> list[tuple[str, str | None, dict[str, Any]]]:
    """Outbox rows for what one event or job decided: each action's
    idempotency key is its decider's key and its place in the decision."""
    return [(f"{key}/{i}", room_of(a), to_record(a)) for i, a in enumerate(actions)]


def split_writes(actions: Iterable[Action]) -> tuple[list[Action], list[RecordWrite]]:
    """(actions for the outbox, record writes for the deciding transaction)."""
    queued: list[Action] = []
    writes: list[RecordWrite] = []
    for action in actions:
        if isinstance(action, PutRecord | DeleteRecord):
            writes.append(action)
        else:
            queued.append(action)
    return queued, writes


def add_help(table: CommandTable, prefix: str) -> None:
    """Declare `help`, generated from the other declarations."""

    async def help_handler(inv: Invocation) -> list[Action]:
        name = inv.args.get("command")
        if isinstance(name, str):
            cmd = table.get(name.removeprefix(prefix).lower())
            text = (
                detail(cmd, prefix)
                if cmd
                else f"There is no {prefix}{name} command. Send {prefix}help for the list."
            )
        else:
            text = overview(table, prefix, inv.power)
        return [Reply(inv.room_id, inv.event_id, text)]

    table.add(
        Command(
            "help",
            "List the commands you can use, or explain one",
            help_handler,
            (Arg("command", "A command to explain", required=False),),
        ),
        first=True,
    )


def add_trust(
    table: CommandTable, prefix: str, identities: Callable[[], Identities | None]
) -> None:
    """Declare `trust`: a moderator confirms another's changed identity.
    Only in the moderators' room: the trust it gives holds everywhere, so a
    room any member could make and hold power in must not carry it."""

    async def trust_handler(inv: Invocation) -> list[Action]:
        target = str(inv.args["user"])
        if target == inv.sender:
            text = "Another moderator has to confirm a change to your own identity."
        elif (known := identities()) is None:
            text = "I can't check identities right now; please try again in a moment."
        elif await known.accept_current(target) is None:
            text = f"{target} has not set up a security identity (cross-signing) yet."
        else:
            text = (
                f"Trusted {target}'s current security identity: "
                "their moderator commands are accepted again."
            )
        return [Reply(inv.room_id, inv.event_id, text)]

    table.add(
        Command(
            "trust",
            "Confirm a moderator's changed security identity",
            trust_handler,
            (Arg("user", "The moderator, as @name:server", type=ArgType.USER),),
            power_level=MODERATOR,
            scope=Scope.MODERATORS_ROOM,
            details=(
                "When a moderator resets their identity (a new recovery key, or an account "
                "taken over), I stop accepting their moderator commands and tell this room. "
                "Check with them, by a channel you trust, that the change was theirs; then "
                f"confirm it with {prefix}trust @them:server."
            ),
        )
    )


class StateLock:
    """An exclusive lock on a state folder: two bots on one crypto store
    would corrupt it, so the second is refused."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "bot.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.parent.chmod(0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(
                f"cannot use the state folder {self.path.parent}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateError(
                f"another Hearth bot is already running on {self.path.parent}; "
                "stop it first (two processes would corrupt the crypto store)"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class BotRuntime:
    def __init__(
        self,
        config: BotConfig,
        features: Sequence[Feature],
        roles: Callable[[], CommunityRoles | None] | None = None,
    ) -> None:
        """*roles*: who is who in the bot's community, read afresh from its
        file when it changes; None for a bot without a community."""
        self.config = config
        self.roles: Callable[[], CommunityRoles | None] = roles or (lambda: None)
        self.features = tuple(features)
        self.table = CommandTable()
        self._command_feature: dict[str, Feature] = {}
        for feature in self.features:
            for command in feature.commands:
                self.table.add(command)
                self._command_feature[command.name] = feature
        add_trust(self.table, config.command_prefix, lambda: self.identities)
        add_help(self.table, config.command_prefix)
        self._handlers: list[tuple[Feature, EventHandler[Any]]] = [
            (f, h) for f in self.features for h in f.handlers
        ]
        self.action_types = ActionTypes(tuple(t for f in self.features for t in f.performers))
        self.session = BotSession(config)
        self.storage: Storage | None = None
        self.effector: Effector | None = None
        self.scheduler: Scheduler | None = None
        self.identities: Identities | None = None
        # The bot's DM rooms, with the member each is with.
        self._dm_with: dict[str, str] = {}
        # Room state as the server holds it: what the features asked for,
        # the community's markers, and every room's creators.
        self.state = ServerState(
            {*COMMUNITY_STATE, *(t for f in self.features for t in f.state_types)}
        )
        self._verdict: tuple[tuple[int, CommunityRoles | None], Verdict] | None = None
        # Forged state and markers seen, and the alarms raised.
        self.alarms = AlarmBook()
        # Members' rooms the bot is leaving (no longer direct messages).
        self._leaving: set[str] = set()
        self.keys: KeySharer | None = None
        self.history: HistorySharer | None = None
        self.warmer: SessionWarmer | None = None
        self._scheduler_db: aiosqlite.Connection | None = None
        self._scheduler_task: asyncio.Task[None] | None = None
        self._synced = False
        self._held_reports: list[str] = []
        self.ready = asyncio.Event()
        self.handled = 0
        self._moderators_room_id: str | None = None
        self._queues: dict[str, asyncio.Queue[InboxItem]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(config.max_concurrent_rooms)
        self._tasks: set[asyncio.Task[None]] = set()
        self._services: list[asyncio.Task[None]] = []
        # Encrypted events whose keys a task is waiting for.
        self._waiting: set[str] = set()
        self._fatal: StateError | None = None
        # Wall clock for event ages and handlers' "now"; replaceable in tests.
        self.clock: Callable[[], float] = time.time

    def section(self, feature: Feature) -> FeatureConfig:
        section = self.config.feature_sections.get(feature.name)
        return section if section is not None else feature.config_model()

    # --- deciding ---

    def level_in(self, room: MatrixRoom, user_id: str) -> int:
        """*user_id*'s power in *room*, counting v12 creators (nio does not)."""
        if creators_outrank_power_levels(room.room_version) and user_id in self.state.creators(
            room.room_id
        ):
            return CREATOR_POWER
        return int(room.power_levels.get_user_level(user_id))

    def power_of(self, room_id: str, user_id: str) -> PowerSnapshot:
        client = self.session.client
        room = client.rooms.get(room_id) if client is not None else None
        in_room = self.level_in(room, user_id) if room is not None else 0
        in_mods: int | None = None
        mods_id = self._moderators_room_id
        if client is not None and mods_id is not None:
            mods = client.rooms.get(mods_id)
            if mods is not None and user_id in mods.users:
                in_mods = self.level_in(mods, user_id)
        return PowerSnapshot(in_room, in_mods, typed_in_moderators_room=room_id == mods_id)

    def _note_state(self, resp: SyncResponse) -> None:
        """Each joined room's state as the server served it, in event order."""
        for room_id, info in resp.rooms.join.items():
            self.state.take(room_id, (*info.state, *info.timeline.events))
        for room_id in resp.rooms.leave:
            self.state.forget(room_id)

    def verdict(self) -> Verdict:
        """The community's rooms, verified, and the forgeries among the
        markers: worked out again only when the state or the file changed."""
        roles = self.roles()
        key = (self.state.version, roles)
        if self._verdict is None or self._verdict[0] != key:
            found = verify(self.state, roles, self.config.user_id) if roles else Verdict(NO_ROOMS)
            self._verdict = (key, found)
        return self._verdict[1]

    def _named_rooms(self) -> frozenset[str]:
        named = {self._moderators_room_id} if self._moderators_room_id else set()
        for feature in self.features:
            if feature.named_rooms is not None:
                named.update(feature.named_rooms(self.section(feature)))
        return frozenset(named)

    def _room_state_of(self, event_type: str) -> Mapping[str, Mapping[str, Any]]:
        if event_type == MARKER:
            # Features read markers only as verified (Context.community).
            return self.verdict().rooms.markers
        return self.state.content(event_type)

    def context(self, feature: Feature | None) -> Context | None:
        if feature is None:
            return None
        assert self.storage is not None
        return Context(
            me=self.config.user_id,
            feature=feature.name,
            config=self.section(feature),
            bot=self.config,
            now=self.clock(),
            db=self.storage,
            power=self.power_of,
            moderators_room=self._moderators_room_id,
            store=self.storage,
            room_state=self._room_state_of,
            keyed_state=self.state.keyed_content,
            direct_room=self.storage.direct_room,
            verified_devices=self._verified_devices,
            members=self._members,
            creators=self.state.creators,
            community=self.verdict().rooms,
            roles=self.roles(),
            named_rooms=self._named_rooms(),
        )

    def wants(self, event: object) -> bool:
        """Whether any feature could act on *event*. Chatter that no command
        and no handler concerns is not written to the inbox at all, so a
        busy community costs the bot little beyond decrypting."""
        if event is None:
            return False
        if any(self._applies(h, event) for _, h in self._handlers):
            return True
        return isinstance(event, Message) and event.body.lstrip().startswith(
            self.config.command_prefix
        )

    def _applies(self, handler: EventHandler[Any], event: object) -> bool:
        if not isinstance(event, handler.event_type):
            return False
        if not handler.direct_only:
            return True
        room, sender = getattr(event, "room_id", None), getattr(event, "sender", None)
        return room is not None and self._dm_with.get(room) == sender

    # --- the bot's DMs (DirectRooms, for the effector) ---

    async def direct_room(self, user_id: str) -> str | None:
        assert self.storage is not None
        return await self.storage.direct_room(user_id)

    async def direct_rooms(self) -> dict[str, str]:
        return dict(self._dm_with)

    async def remember_direct_room(self, user_id: str, room_id: str) -> None:
        assert self.storage is not None
        await self.storage.remember_direct_room(user_id, room_id)
        self._dm_with = {r: u for r, u in self._dm_with.items() if u != user_id}
        self._dm_with[room_id] = user_id

    def oldest_ms(self) -> int:
        return int((self.clock() - self.config.max_event_age_s) * 1000)

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
                power=self.power_of(event.room_id, event.sender),
                device=device,
            )
            if isinstance(decision, Respond):
                actions.extend(decision.actions)
                command = "(refused or invalid)"
            elif isinstance(decision, Run):
                command = decision.command.name
                owner = self._command_feature.get(command)
                inv = decision.invocation
                if owner is not None:
                    inv = Invocation(**{**inv.__dict__, "context": self.context(owner)})
                actions.extend(await decision.command.handler(inv))
            elif isinstance(decision, Ignore) and decision.reason == "own event":
                return [], None
        for feature, handler in self._handlers:
            if self._applies(handler, event):
                ctx = self.context(feature)
                assert ctx is not None
                actions.extend(await handler.handle(event, ctx))
        return actions, command

    # --- handling, per room, in order ---

    def _dispatch(self, item: InboxItem) -> None:
        queue = self._queues.get(item.room_id)
        if queue is None:
            queue = self._queues[item.room_id] = asyncio.Queue()
            self._workers[item.room_id] = asyncio.create_task(self._room_worker(queue))
        queue.put_nowait(item)

    async def _room_worker(self, queue: asyncio.Queue[InboxItem]) -> None:
        while True:
            item = await queue.get()
            try:
                async with self._slots:
                    await self.handle(item)
            except Exception as exc:
                fatal = as_state_error(exc)
                if fatal is None:
                    # Nothing a member sends may stop the bot; the inbox
                    # keeps the event for the next start.
                    log.exception("event handling failed")
                    continue
                # The state folder went read-only or full: stop rather than
                # act without a record. What was received stays in the inbox.
                self._stop_on(fatal)
                return
            finally:
                queue.task_done()

    async def handle(self, item: InboxItem) -> None:
        storage = self.storage
        assert storage is not None
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(event_id=item.event_id, room_id=item.room_id)
        event = to_event(item.room_id, item.source, encrypted=item.encrypted)
        ts = getattr(event, "server_ts_ms", 0)
        sender = getattr(event, "sender", None)
        if event is None or sender == self.config.user_id or ts < self.oldest_ms():
            await storage.drop_inbox(item)
            return
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
        await self.perform_queued(queued)
        if command is not None or outcome != "ok":
            self.handled += 1
            # One canonical line per command; who sent it is hashed by the redactor.
            log.info(
                "command handled",
                command=command,
                outcome=outcome,
                sender=sender,
                ms=round((time.perf_counter() - t0) * 1000, 1),
            )

    async def perform_queued(self, items: Iterable[OutboxItem]) -> None:
        assert self.storage is not None
        assert self.effector is not None
        for item in items:
            try:
                action = self.action_types.from_record(item.action)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("queued action no longer readable", problem=type(exc).__name__)
                await self.storage.finish(item, "unreadable")
                continue
            try:
                if isinstance(action, ScheduleJob | CancelJob):
                    await self._perform_locally(action)
                    await self.storage.finish(item)
                    continue
                outcome = await self.effector.perform_one(action, item.key)
            except sqlite3.Error:
                raise
            except Exception as exc:
                # A job of a feature no longer enabled, or an adapter that
                # raises, would raise again on every start: record it as
                # failed rather than leave it pending to stop the bot.
                log.exception("queued action failed", action=type(action).__name__)
                await self.storage.finish(item, type(exc).__name__)
                continue
            then, writes = split_writes(outcome.followups)
            followups = records_for(item.key, then)
            queued = await self.storage.enqueue(followups, writes) if then or writes else []
            await self.storage.finish(item, None if outcome.ok else outcome.problem or "failed")
            if not outcome.ok:
                log.error("action failed", action=type(action).__name__, problem=outcome.problem)
            await self.perform_queued(queued)

    async def _perform_locally(self, action: ScheduleJob | CancelJob) -> None:
        assert self.scheduler is not None
        if isinstance(action, ScheduleJob):
            await self.scheduler.add(
                action.feature, action.kind, action.due, action.payload, action.key
            )
        else:
            await self.scheduler.cancel(action.key)

    # --- scheduled jobs ---

    def _job_kinds(self) -> list[JobKind]:
        kinds = []
        for feature in self.features:
            for spec in feature.jobs:

                async def run(job: StoredJob, feature: Feature = feature, spec: Any = spec) -> None:
                    ctx = self.context(feature)
                    assert ctx is not None
                    assert self.storage is not None
                    view = Job(spec.kind, job.key, job.due, job.payload, job.late, job.parsed)
                    actions, writes = split_writes(await spec.run(view, ctx))
                    records = records_for(f"job:{job.key}", actions)
                    await self.perform_queued(await self.storage.enqueue(records, writes))

                kinds.append(JobKind(feature.name, spec.kind, run, spec.grace_s, spec.parse))
        return kinds

    async def _report_job(self, problem: Problem) -> None:
        """Tell the moderators about a job that was missed or failed (the
        scheduler has logged it); its payload is never quoted."""
        await self._tell_moderators(
            f"A scheduled {problem.feature} job ({problem.kind}) was {problem.what}: "
            f"{problem.detail}."
        )

    async def _report_kept_jobs(self, kept: Mapping[str, int]) -> None:
        """Jobs of features this configuration leaves out are kept, not run:
        the moderators hear of them at each start until they are resolved."""
        for feature, count in sorted(kept.items()):
            jobs = "1 scheduled job" if count == 1 else f"{count} scheduled jobs"
            are = "is" if count == 1 else "are"
            await self._tell_moderators(
                f"{jobs} of the {feature} feature {are} kept but not run, because {feature} "
                "is not enabled in my configuration. Enable it again and they run "
                "(late, if still within their grace period)."
            )

    async def _synced_now(self) -> None:
        """Rooms are known: send the reports held back until now."""
        self._synced = True
        held, self._held_reports = self._held_reports, []
        for text in held:
            await self._tell_moderators(text)
        self._note_alarms()

    async def _tell_moderators(self, text: str) -> None:
        if self._moderators_room_id is None or self.effector is None:
            # Not silently: the operator should know the moderators miss it.
            log.warning("a report for the moderators has nowhere to go: no bot.moderators_room")
            return
        if not self._synced:
            # nio can send to the room only once it has synced it.
            self._held_reports.append(text)
            return
        await self.effector.perform([SendNotice(self._moderators_room_id, text)])

    # --- forgeries ---

    def _note_alarms(self) -> None:
        """Report new forgery attempts to the moderators, once per sender
        and room: decided here, at once (so no attempt is reported twice),
        sent in the background. Held until the moderators' room is known."""
        mods = self._moderators_room_id
        if mods is None or not self._synced or self.storage is None:
            return
        if new := self.alarms.due(self.verdict()):
            self._spawn(self._raise_alarms(mods, new))

    def _leave_shared_rooms(self, resp: SyncResponse) -> None:
        """Leave members' direct messages that others were added to: the bot
        joined them as direct messages, and a room of a member's with more
        people in it is no place for what members tell the bot. Only the
        rooms this sync brought are looked at: a membership changes nowhere
        else."""
        client, roles = self.session.client, self.roles()
        if client is None or self.storage is None or roles is None:
            return
        members = {
            room_id: frozenset(client.rooms[room_id].users)
            for room_id in resp.rooms.join
            if room_id in client.rooms
        }
        for room in shared_members_rooms(
            members,
            self.state.create_sender,
            self.verdict().rooms,
            roles,
            self.config.user_id,
            self._named_rooms(),
        ):
            if room not in self._leaving:
                self._leaving.add(room)
                log.info("leaving a member's room that is no longer a direct message")
                actions: list[Action] = [
                    SendNotice(room, NO_LONGER_DIRECT, mentions=()),
                    LeaveRoom(room),
                ]
                key = f"leave-shared:{room}:{resp.next_batch}"
                self._spawn(self._perform_new(key, actions))

    async def _perform_new(self, key: str, actions: Sequence[Action]) -> None:
        assert self.storage is not None
        await self.perform_queued(await self.storage.enqueue(records_for(key, actions)))

    async def _raise_alarms(self, mods: str, alarms: Sequence[Alarm]) -> None:
        storage = self.storage
        assert storage is not None
        for alarm in alarms:
            if await storage.record(SECURITY, "alarm", alarm.key) is not None:
                continue  # reported before a restart
            # The log says what happened, never who (nor what they sent).
            log.warning(alarm.what)
            notice = SendNotice(mods, alarm.text, mentions=())
            queued = await storage.enqueue(
                records_for(f"alarm:{alarm.key}", [notice]),
                [PutRecord(SECURITY, "alarm", alarm.key, {"at": self.clock()})],
            )
            await self.perform_queued(queued)

    # --- identities ---

    def _holds_power(self, user_id: str) -> bool:
        """Whether *user_id* could run a command that needs power somewhere."""
        client = self.session.client
        if client is None:
            return False
        needed = min((c.power_level for c in self.table if c.power_level > 0), default=MODERATOR)
        return any(
            self.level_in(room, user_id) >= needed
            for room in client.rooms.values()
            if user_id in room.users
        )

    def _members(self, room_id: str) -> frozenset[str]:
        client = self.session.client
        room = client.rooms.get(room_id) if client is not None else None
        return frozenset(room.users) if room is not None else frozenset()

    async def _verified_devices(self, user_id: str) -> int:
        if self.identities is None:
            return 0
        self.identities.forget([user_id])
        identity = (await self.identities.get([user_id]))[user_id]
        return sum(1 for d in identity.devices.values() if d.signed_by_owner)

    def _history_shared(self, room_id: str) -> bool:
        client = self.session.client
        room = client.rooms.get(room_id) if client is not None else None
        return room is not None and history_is_shared(room.history_visibility)

    async def _report_identity_change(self, user_id: str) -> None:
        if self._moderators_room_id is None or self.effector is None:
            log.warning("an identity change has nowhere to be reported: no bot.moderators_room")
            return
        prefix = self.config.command_prefix
        text = (
            f"{user_id}'s security identity changed (a reset of their recovery key, or "
            "someone else in their account). Until another moderator confirms it with "
            f"{prefix}trust {user_id}, I won't accept their moderator commands."
        )
        # In a task: this is found while sharing keys or authorising, mid-send.
        self._spawn(self.effector.perform([SendNotice(self._moderators_room_id, text)]))

    # --- undecryptable messages ---

    async def _await_keys(self, room: MatrixRoom, event: MegolmEvent) -> None:
        """Wait for *event*'s key; hand it on once decrypted, or tell its
        sender after ``undecryptable_wait_s``. It stays recorded until then,
        so a restart in between waits again."""
        client = self.session.client
        assert client is not None
        assert self.storage is not None
        assert self.effector is not None
        with contextlib.suppress(Exception):
            # Raises if a request for this session is already out; that is fine.
            await client.request_room_key(event)
        deadline = time.monotonic() + self.config.undecryptable_wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(RETRY_INTERVAL_S)
            try:
                decrypted = client.decrypt_event(event)
            except EncryptionError:
                continue
            self._note_alarms()  # if the guard found it forged
            source = getattr(decrypted, "source", None)
            if isinstance(source, dict):
                source = with_sender_keys(source, sender_device_of(client, room.room_id, decrypted))
            if isinstance(source, dict) and self.wants(
                to_event(room.room_id, source, encrypted=True)
            ):
                for item in await self.storage.receive(
                    [(event.event_id, room.room_id, source, True)], None
                ):
                    self._dispatch(item)
            await self.storage.release_awaiting(event.event_id)
            self._waiting.discard(event.event_id)
            return
        log.info("message still undecryptable", sender=event.sender)
        if await self.storage.mark_undecryptable_notified(
            notice_key(event.sender, event.session_id)
        ):
            await self.effector.perform([undecryptable_reply(room.room_id, event.event_id)])
        await self.storage.release_awaiting(event.event_id)
        self._waiting.discard(event.event_id)

    async def _start_waiting(self, event_id: str, room_id: str, source: dict[str, Any]) -> None:
        assert self.storage is not None
        client = self.session.client
        assert client is not None
        if event_id in self._waiting:
            return
        event = MegolmEvent.from_dict(source)
        room = client.rooms.get(room_id)
        if (
            not isinstance(event, MegolmEvent)
            or room is None
            or event.server_timestamp < self.oldest_ms()
        ):
            await self.storage.release_awaiting(event_id)
            return
        event.room_id = room_id
        self._waiting.add(event_id)
        self._spawn(self._await_keys(room, event))

    # --- intake ---

    async def _backfill(self, room_id: str, prev_batch: str, position: str) -> list[Any]:
        """The events a "limited" sync left out for *room_id*, oldest first:
        paged back from *prev_batch* to the last saved *position*, or until
        they are too old to act on."""
        client = self.session.client
        assert client is not None
        found: list[Any] = []
        start = prev_batch
        for _ in range(BACKFILL_PAGES):
            resp = await client.room_messages(
                room_id, start=start, end=position, direction=MessageDirection.back, limit=100
            )
            if not isinstance(resp, RoomMessagesResponse) or not resp.chunk:
                break
            found.extend(resp.chunk)
            oldest = min(getattr(e, "server_timestamp", 0) for e in resp.chunk)
            if oldest < self.oldest_ms() or not resp.end or resp.end == start:
                break
            start = resp.end
        found.reverse()
        return found

    async def _collect(
        self, resp: SyncResponse, *, timeline: bool = True, position: str | None = None
    ) -> tuple[list[tuple[str, str, dict[str, Any], bool]], list[tuple[str, str, dict[str, Any]]]]:
        """The sync's events worth keeping, as (event id, room, source,
        encrypted), and the encrypted ones still waiting for their keys.

        Pending invitations are always kept; the timeline only if *timeline*.
        A room whose timeline came back "limited" (more events since
        *position* than one sync carries) is paged back, so nothing sent
        during a downtime is skipped.
        """
        me = self.config.user_id
        client = self.session.client
        assert client is not None
        items: list[tuple[str, str, dict[str, Any], bool]] = []
        awaiting: list[tuple[str, str, dict[str, Any]]] = []
        for room_id, info in resp.rooms.join.items() if timeline else ():
            events = list(info.timeline.events)
            if info.timeline.limited and info.timeline.prev_batch and position:
                try:
                    events = [
                        *await self._backfill(room_id, info.timeline.prev_batch, position),
                        *events,
                    ]
                except TRANSIENT:
                    log.warning("events of a busy downtime could not be fetched", room_id=room_id)
            for event in events:
                if getattr(event, "sender", None) == me or isinstance(event, ForgedState):
                    continue
                if isinstance(event, MegolmEvent):
                    if event.server_timestamp >= self.oldest_ms() and room_id in client.rooms:
                        awaiting.append((event.event_id, room_id, event.source))
                    continue
                source = getattr(event, "source", None)
                event_id = getattr(event, "event_id", None)
                if isinstance(source, dict) and isinstance(event_id, str):
                    encrypted = bool(getattr(event, "decrypted", False))
                    source = with_sender_keys(source, sender_device_of(client, room_id, event))
                    # Only what a feature could act on is written down: a
                    # member's ordinary message never reaches the disk.
                    if self.wants(to_event(room_id, source, encrypted=encrypted)):
                        items.append((event_id, room_id, source, encrypted))
        for room_id, invited in resp.rooms.invite.items():
            for event in invited.invite_state:
                if isinstance(event, InviteMemberEvent) and event.state_key == me:
                    # Stripped invite state has no event id or timestamp.
                    content = event.content if isinstance(event.content, dict) else {}
                    source = {
                        "type": "m.room.member",
                        "state_key": me,
                        "sender": event.sender,
                        "content": {
                            "membership": event.membership,
                            # A direct message's invitation says so.
                            "is_direct": content.get("is_direct") is True,
                        },
                        "event_id": f"invite:{room_id}:{resp.next_batch}",
                        "origin_server_ts": int(time.time() * 1000),
                    }
                    items.append((source["event_id"], room_id, source, False))
        return items, awaiting

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """Background work ends like a room worker's: a state folder that
        cannot be written stops the bot; anything else is logged."""
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        fatal = as_state_error(exc)
        if fatal is not None:
            self._stop_on(fatal)
            return
        log.error("background task failed", problem=type(exc).__name__)

    # --- lifecycle ---

    async def _find_moderators_room(self, client: AsyncClient) -> None:
        """The configured moderators' room, resolved and, for a community,
        checked against the staff who must have made it."""
        room = await moderators_room.resolve(client, self.config.moderators_room)
        roles = self.roles()
        if room is not None and roles is not None:
            await moderators_room.check(client, room, roles, self.config.user_id)
        self._moderators_room_id = room

    def _performers(self) -> dict[type, Performer]:
        out: dict[type, Performer] = {}
        for feature in self.features:
            setup = Setup(self.config, self.section(feature))
            for action_type, factory in feature.performers.items():
                out[action_type] = factory(setup)
        return out

    async def _open_storage(self) -> Storage:
        migrations = [*MIGRATIONS, *(m for f in self.features for m in f.migrations)]
        storage = await Storage.open(self.config.state_dir / "bot.db", migrations)
        self._dm_with = await storage.direct_rooms()
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
        self.storage = await self._open_storage()
        try:
            client: AsyncClient = await self.session.connect()
            # From here on, no decrypted payload is taken for room state.
            guard_decryption(client.olm, self.alarms.seen, lambda: self.state.types)
            await self._find_moderators_room(client)
            self.identities = Identities(
                lambda: api_of(client),
                self.storage,
                holds_power=self._holds_power,
                report_change=self._report_identity_change,
            )
            storage = self.storage
            self.keys = KeySharer(
                client,
                self.identities,
                KeySharing(self.config.key_sharing),
                shared_history=self._history_shared,
                on_session=lambda flag: storage.record_sessions([flag]),
            )
            self.warmer = SessionWarmer(
                self.keys, self.identities, KeySharing(self.config.key_sharing)
            )
            self.history = HistorySharer(
                client,
                self.identities,
                self.keys,
                SessionFlags(storage.record_sessions, storage.shareable_sessions),
            )
            self.effector = Effector(
                client,
                performers=self._performers(),
                directs=self,
                keys=self.keys,
                history=self.history,
            )
            self._scheduler_db = await connect_scheduler_db(self.config.state_dir / "bot.db")
            self.scheduler = Scheduler(
                self._scheduler_db,
                self._job_kinds(),
                clock=SystemClock(self.clock),
                report=self._report_job,
            )
            report = await self.scheduler.start()
            await self.scheduler.prune(RETENTION_S)
            log.info(
                "features started",
                features=[f.name for f in self.features],
                late_jobs=report.late,
                missed_jobs=len(report.missed),
                kept_jobs=dict(report.disabled),
            )
            await self._report_kept_jobs(report.disabled)
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
            self._note_state(resp)
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
                # What a previous run received but did not handle goes first;
                # what it decided but did not perform follows, now that nio
                # has synced the rooms it must encrypt for.
                first = False
                # Taken before any room worker runs, so a row settled from
                # now on is performed by its worker alone, never twice.
                backlog = await storage.pending_outbox()
                for item in leftovers:
                    self._dispatch(item)
                # Messages a previous run was still waiting to decrypt.
                for event_id, room_id, source in await storage.awaiting_keys():
                    await self._start_waiting(event_id, room_id, source)
                # In a task of its own: a long backlog under rate limits must
                # not hold up the sync loop, nor keep SIGTERM waiting.
                self._spawn(self._resume(backlog, scheduler))
            # The very first sync's timeline is the past: nothing in it was
            # sent to a running bot, so it only marks where handling starts.
            # Invitations still waiting are answered all the same.
            items, awaiting = await self._collect(resp, timeline=not baseline, position=position)
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
                self._dispatch(item)
            for event_id, room_id, source in awaiting:
                await self._start_waiting(event_id, room_id, source)
            self._note_alarms()
            self._leave_shared_rooms(resp)
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
            await self._stop_services()
            try:
                await asyncio.wait_for(self._drain(), self.config.stop_timeout_s)
            except TimeoutError:
                log.warning("stopped before all work was done; it resumes on the next start")
        finally:
            if warming is not None:
                warming.cancel()
                await asyncio.gather(warming, return_exceptions=True)
            # Let a job in progress finish (it would run again otherwise).
            self.scheduler.stop()
            task = self._scheduler_task
            if task is not None:
                await asyncio.wait({task}, timeout=5)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    # --- features' services ---

    def _start_services(self) -> None:
        for feature in self.features:
            for service in feature.services:
                task = asyncio.create_task(self._run_service(feature, service))
                self._services.append(task)

    async def _run_service(self, feature: Feature, service: Service) -> None:
        storage = self.storage
        assert storage is not None

        def context() -> Context:
            ctx = self.context(feature)
            assert ctx is not None
            return ctx

        async def submit(key: str, actions: Sequence[Action]) -> None:
            queued, writes = split_writes(actions)
            records = records_for(f"service:{feature.name}:{key}", queued)
            await self.perform_queued(await storage.enqueue(records, writes))

        sctx = ServiceContext(feature.name, self.section(feature), self.config, context, submit)
        backoff = Backoff()
        while True:
            try:
                await service.run(sctx)
                return
            except Exception as exc:
                fatal = as_state_error(exc)
                if fatal is not None:
                    self._stop_on(fatal)
                    return
                delay = backoff.next_delay()
                log.exception(
                    "service failed, restarting",
                    feature=feature.name,
                    service=service.name,
                    retry_in_s=round(delay, 1),
                )
                await asyncio.sleep(delay)

    async def _stop_services(self) -> None:
        for task in self._services:
            task.cancel()
        await asyncio.gather(*self._services, return_exceptions=True)
        self._services.clear()

    async def _resume(self, backlog: list[OutboxItem], scheduler: Scheduler) -> None:
        """After the first sync: what a previous run decided but did not
        perform, the reports held back until rooms were known, then the jobs
        (which also send through nio)."""
        await self.perform_queued(backlog)
        await self._synced_now()
        self._scheduler_task = asyncio.create_task(scheduler.serve())
        self._start_services()

    async def _drain(self) -> None:
        for queue in list(self._queues.values()):
            await queue.join()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _shutdown(self) -> None:
        await self._stop_services()
        for task in [*self._workers.values(), *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._workers.values(), *self._tasks, return_exceptions=True)
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
