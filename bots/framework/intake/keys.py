"""Messages that arrived before their room keys: asked for, waited for,
handed on once decrypted, or their sender told after
``undecryptable_wait_s``. Each stays recorded until then, so a restart in
between waits again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from nio import EncryptionError, MatrixRoom, MegolmEvent

from bots.framework.config import BotConfig
from bots.framework.intake.parse import to_event, with_sender_keys
from bots.framework.logging import get_logger
from bots.framework.outbox.effector import Effector
from bots.framework.session import BotSession
from bots.framework.storage import InboxItem, Storage
from bots.framework.trust.channel import CryptoChannel
from bots.framework.trust.received import sender_device_of
from bots.framework.undecryptable import RETRY_INTERVAL_S, notice_key, undecryptable_reply

log = get_logger(__name__)


class KeyWaits:
    def __init__(
        self,
        config: BotConfig,
        session: BotSession,
        *,
        wants: Callable[[object], bool],
        oldest_ms: Callable[[], int],
        dispatch: Callable[[InboxItem], None],
        decrypted: Callable[[], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        """*dispatch* hands a decrypted event to its room's worker;
        *decrypted* is told after each decryption (the guard may have
        found it forged); *spawn* runs a wait in the background."""
        self.config = config
        self.session = session
        self.wants = wants
        self.oldest_ms = oldest_ms
        self.dispatch = dispatch
        self.decrypted = decrypted
        self.spawn = spawn
        # Set once the bot has opened its state and connected.
        self.storage: Storage | None = None
        self.effector: Effector | None = None
        # Encrypted events whose keys a task is waiting for.
        self._waiting: set[str] = set()

    async def start(self, event_id: str, room_id: str, source: dict[str, Any]) -> None:
        """Wait, in the background, for the key of the event *source*."""
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
        self.spawn(self._await_keys(room, event))

    async def _await_keys(self, room: MatrixRoom, event: MegolmEvent) -> None:
        """Wait for *event*'s key; hand it on once decrypted, or tell its
        sender after ``undecryptable_wait_s``."""
        client = self.session.client
        assert client is not None
        assert self.storage is not None
        assert self.effector is not None
        with contextlib.suppress(Exception):
            # Raises if a request for this session is already out; that is fine.
            await CryptoChannel(client).request_room_key(event)
        deadline = time.monotonic() + self.config.undecryptable_wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(RETRY_INTERVAL_S)
            try:
                decrypted = client.decrypt_event(event)
            except EncryptionError:
                continue
            self.decrypted()  # if the guard found it forged
            source = getattr(decrypted, "source", None)
            if isinstance(source, dict):
                source = with_sender_keys(source, sender_device_of(client, room.room_id, decrypted))
            if isinstance(source, dict) and self.wants(
                to_event(room.room_id, source, encrypted=True)
            ):
                for item in await self.storage.receive(
                    [(event.event_id, room.room_id, source, True)], None
                ):
                    self.dispatch(item)
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
