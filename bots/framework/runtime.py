"""Runs one bot: session, storage, event intake, routing, the effector."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

import structlog
from nio import (
    AsyncClient,
    EncryptionError,
    InviteMemberEvent,
    MatrixInvitedRoom,
    MatrixRoom,
    MegolmEvent,
    RoomMessageText,
    RoomResolveAliasResponse,
    SyncResponse,
)

from bots.errors import ConfigError
from bots.framework.actions import Action, Extension, JoinRoom, Reply
from bots.framework.commands.help import detail, overview
from bots.framework.commands.spec import Arg, Command, CommandTable, Invocation
from bots.framework.config import BotConfig
from bots.framework.effector import Effector, Performer
from bots.framework.events import IncomingMessage, PowerSnapshot
from bots.framework.logging import REDACTOR, get_logger
from bots.framework.router import Ignore, Respond, Run, route, should_consider
from bots.framework.secrets import ensure_secret
from bots.framework.session import BotSession
from bots.framework.storage import Storage
from bots.framework.undecryptable import RETRY_INTERVAL_S, notice_key, undecryptable_reply

log = get_logger(__name__)

# Handled-event records older than this are pruned; the start-time filter
# already keeps anything older from being handled again.
HANDLED_RETENTION_S = 7 * 24 * 3600


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


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


class BotRuntime:
    def __init__(
        self,
        config: BotConfig,
        table: CommandTable,
        performers: Mapping[type[Extension], Performer] | None = None,
    ) -> None:
        self.config = config
        self.table = table
        add_help(table, config.command_prefix)
        self.session = BotSession(config)
        self.storage: Storage | None = None
        self.effector: Effector | None = None
        self._performers = performers
        self.started_at_ms = int(time.time() * 1000)
        self._queue: asyncio.Queue[tuple[MatrixRoom, IncomingMessage]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()
        self._moderators_room_id: str | None = None
        self.handled = 0

    # --- intake: nio objects become typed events here and nowhere else ---

    def _on_message(self, room: MatrixRoom, event: RoomMessageText) -> None:
        msg = IncomingMessage(
            event_id=event.event_id,
            room_id=room.room_id,
            sender=event.sender,
            body=event.body,
            msgtype=event.source.get("content", {}).get("msgtype", "m.text"),
            server_ts_ms=event.server_timestamp,
            encrypted=event.decrypted,
        )
        self._queue.put_nowait((room, msg))

    def _on_undecryptable(self, room: MatrixRoom, event: MegolmEvent) -> None:
        me = self.config.user_id
        skip = should_consider(
            IncomingMessage(
                event.event_id, room.room_id, event.sender, "", "", event.server_timestamp, True
            ),
            me=me,
            started_at_ms=self.started_at_ms,
        )
        if skip is None:
            self._spawn(self._await_keys(room, event))

    def _on_invite(self, room: MatrixInvitedRoom, event: InviteMemberEvent) -> None:
        if event.state_key != self.config.user_id or event.membership != "invite":
            return
        # Only people on our own homeserver may pull the bot into rooms.
        if server_of(event.sender) == server_of(self.config.user_id) and self.effector:
            self._spawn(self.effector.perform([JoinRoom(room.room_id)]))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- handling ---

    def power_of(self, room: MatrixRoom, user_id: str) -> PowerSnapshot:
        client = self.session.client
        in_mods: int | None = None
        mods_id = self._moderators_room_id
        if client is not None and mods_id is not None:
            mods = client.rooms.get(mods_id)
            if mods is not None and user_id in mods.users:
                in_mods = mods.power_levels.get_user_level(user_id)
        return PowerSnapshot(room.power_levels.get_user_level(user_id), in_mods)

    async def _worker(self) -> None:
        while True:
            room, msg = await self._queue.get()
            try:
                await self.handle(room, msg)
            except Exception:
                # Nothing a member sends may stop the bot.
                log.exception("handling failed")
            finally:
                self._queue.task_done()

    async def handle(self, room: MatrixRoom, msg: IncomingMessage) -> None:
        assert self.storage is not None
        assert self.effector is not None
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(event_id=msg.event_id, room_id=msg.room_id)
        decision = route(
            msg,
            me=self.config.user_id,
            started_at_ms=self.started_at_ms,
            prefix=self.config.command_prefix,
            table=self.table,
            power=self.power_of(room, msg.sender),
        )
        if isinstance(decision, Ignore):
            return
        if not await self.storage.claim_event(msg.event_id):
            log.debug("event already handled")
            return
        t0 = time.perf_counter()
        if isinstance(decision, Respond):
            await self.effector.perform(decision.actions)
            outcome = "refused-or-invalid"
            command = None
        else:
            assert isinstance(decision, Run)
            command = decision.command.name
            actions = await decision.command.handler(decision.invocation)
            await self.effector.perform(actions)
            outcome = "ok"
        self.handled += 1
        # One canonical line per command; who sent it is hashed by the redactor.
        log.info(
            "command handled",
            command=command,
            outcome=outcome,
            sender=msg.sender,
            ms=round((time.perf_counter() - t0) * 1000, 1),
        )

    async def _await_keys(self, room: MatrixRoom, event: MegolmEvent) -> None:
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
            if isinstance(decrypted, RoomMessageText):
                self._on_message(room, decrypted)
            return
        log.info("message still undecryptable", sender=event.sender)
        if await self.storage.mark_undecryptable_notified(
            notice_key(event.sender, event.session_id)
        ):
            await self.effector.perform([undecryptable_reply(room.room_id, event.event_id)])

    # --- lifecycle ---

    async def _resolve_moderators_room(self, client: AsyncClient) -> None:
        alias = self.config.moderators_room
        if alias is None or not alias.startswith("#"):
            self._moderators_room_id = alias
            return
        resp = await client.room_resolve_alias(alias)
        if not isinstance(resp, RoomResolveAliasResponse):
            raise ConfigError(
                "bot config", "bot.moderators_room", f"the alias {alias} does not exist"
            )
        self._moderators_room_id = resp.room_id

    async def run(self) -> None:
        """Connect and serve until cancelled or :meth:`stop` is called."""
        REDACTOR.set_salt(ensure_secret(self.config.state_dir / "log-salt").encode())
        try:
            client: AsyncClient = await self.session.connect()
        except BaseException:
            await self.session.close()
            raise
        await self._resolve_moderators_room(client)
        self.storage = await Storage.open(self.config.state_dir / "bot.db")
        await self.storage.forget_handled_before(time.time() - HANDLED_RETENTION_S)
        self.effector = Effector(client, performers=self._performers)
        client.add_event_callback(self._on_message, RoomMessageText)
        client.add_event_callback(self._on_undecryptable, MegolmEvent)
        client.add_event_callback(self._on_invite, InviteMemberEvent)
        worker = asyncio.create_task(self._worker())

        async def on_sync(_: SyncResponse) -> None:
            if not self.ready.is_set():
                self.ready.set()
                log.info("bot ready", commands=len(self.table.names()))

        try:
            await self.session.sync_forever(on_sync)
        finally:
            worker.cancel()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(worker, *self._tasks, return_exceptions=True)
            await self.storage.close()
            await self.session.close()

    def stop(self) -> None:
        self.session.stop()
