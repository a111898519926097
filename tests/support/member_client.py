"""An ordinary end-to-end-encrypted member, as a program.

Tests and benchmarks use it to talk to bots the way a person's client does:
it logs in with its own device, syncs in the background, encrypts what it
sends and decrypts what it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginError,
    MegolmEvent,
    ReactionEvent,
    RoomMessage,
    RoomSendError,
    UnknownEvent,
)

from bots.base.errors import HomeserverError
from bots.framework.cross_signing import ensure_cross_signed

MAX_UNDECRYPTED = 500
# Messages, and the types nio has no class for (polls among them).
RECORDED = (RoomMessage, UnknownEvent, ReactionEvent)


@dataclass(frozen=True)
class Received:
    event_id: str
    room_id: str
    sender: str
    content: dict[str, Any]
    decrypted: bool
    event_type: str = "m.room.message"


class MemberClient:
    def __init__(
        self,
        base_url: str,
        user_id: str,
        store_dir: Path,
        ssl: ssl_module.SSLContext | bool | None = None,
    ) -> None:
        """*ssl* goes to aiohttp through nio: an SSLContext trusts a private CA."""
        store_dir.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(
            base_url,
            user_id,
            store_path=str(store_dir),
            config=AsyncClientConfig(
                encryption_enabled=True, store_sync_tokens=False, pickle_key="test-member"
            ),
            ssl=ssl,
        )
        self.store_dir = store_dir
        self.received: list[Received] = []
        self._undecrypted: list[MegolmEvent] = []
        self._changed = asyncio.Condition()
        self._sync_task: asyncio.Task[None] | None = None

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    async def login(self, password: str, *, cross_sign: bool = True) -> None:
        """Log in with a new device. Like a person who set up Element, the
        account gets a cross-signing identity that signs this device, unless
        *cross_sign* is False (a device its owner never verified)."""
        resp = await self.client.login(password=password, device_name="member")
        if isinstance(resp, LoginError):
            raise HomeserverError(f"member login failed: {resp.status_code}")
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        if cross_sign:
            await ensure_cross_signed(self.client, password, self.store_dir / "cross_signing.json")
        self.client.add_event_callback(self._on_event, RECORDED)
        self.client.add_event_callback(self._on_undecrypted, MegolmEvent)
        await self.client.sync(timeout=0, full_state=True)
        self._sync_task = asyncio.create_task(self._sync_loop())

    async def _on_event(self, room: Any, event: RoomMessage | UnknownEvent) -> None:
        self.received.append(
            Received(
                event.event_id,
                room.room_id,
                event.sender,
                dict(event.source.get("content", {})),
                event.decrypted,
                str(event.source.get("type", "")),
            )
        )
        async with self._changed:
            self._changed.notify_all()

    async def _on_undecrypted(self, room: Any, event: MegolmEvent) -> None:
        # Like Element: kept, and decrypted when its key comes in a later sync
        # (a busy homeserver can hand out the message before the key).
        event.room_id = room.room_id
        self._undecrypted = [*self._undecrypted[-(MAX_UNDECRYPTED - 1) :], event]

    async def _retry_decryption(self) -> None:
        waiting, self._undecrypted = self._undecrypted, []
        for event in waiting:
            room = self.client.rooms.get(event.room_id)
            try:
                decrypted = self.client.decrypt_event(event)
            except Exception:
                self._undecrypted.append(event)
                continue
            if room is not None and isinstance(
                decrypted, (RoomMessage, UnknownEvent, ReactionEvent)
            ):
                await self._on_event(room, decrypted)

    async def _sync_loop(self) -> None:
        while True:
            try:
                await self.client.sync(timeout=30_000)
                if self._undecrypted:
                    await self._retry_decryption()
                await self.client.send_to_device_messages()
                if self.client.should_query_keys:
                    await self.client.keys_query()
                if self.client.should_claim_keys:
                    await self.client.keys_claim(self.client.get_users_for_key_claiming())
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.5)

    async def sync_until_joined(self, room_id: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while room_id not in self.client.rooms:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{room_id} not joined")
            await asyncio.sleep(0.05)

    async def join(self, room_id: str) -> None:
        await self.client.join(room_id)
        await self.sync_until_joined(room_id)

    async def knows_device(self, user_id: str, device_id: str, timeout: float = 30) -> None:
        """Until this client has *user_id*'s *device_id* among their keys.

        A device that logged in after this client's last key query is
        learnt from a later sync; a message sent before then would carry its
        room key to the older devices only, as any client's would."""
        async with asyncio.timeout(timeout):
            while device_id not in {
                d.id for d in self.client.device_store.active_user_devices(user_id)
            }:
                self.client.users_for_key_query.add(user_id)
                with contextlib.suppress(Exception):
                    await self.client.keys_query()
                await asyncio.sleep(0.2)

    async def accept_invite(self, timeout: float = 60) -> str:
        """Join the first room this member is invited to (the bot's DM, say)."""
        async with asyncio.timeout(timeout):
            while not self.client.invited_rooms:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        room = next(iter(self.client.invited_rooms))
        await self.join(room)
        return room

    async def send(self, room_id: str, body: str, msgtype: str = "m.text") -> str:
        resp = await self.client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": msgtype, "body": body},
            ignore_unverified_devices=True,
        )
        if isinstance(resp, RoomSendError):
            raise HomeserverError(f"send failed: {resp.status_code}")
        return str(resp.event_id)

    async def send_event(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        """Any event, however odd: the tests' malformed and unknown ones."""
        resp = await self.client.room_send(
            room_id, event_type, content, ignore_unverified_devices=True
        )
        if isinstance(resp, RoomSendError):
            raise HomeserverError(f"send failed: {resp.status_code}")
        return str(resp.event_id)

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> Received:
        """The first received event (past or future) that matches *predicate*."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                for ev in self.received:
                    if predicate(ev):
                        return ev
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no matching event arrived")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_for_reply(self, to_event_id: str, timeout: float = 30.0) -> Received:
        return await self.wait_for(lambda ev: reply_target(ev.content) == to_event_id, timeout)

    async def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        await self.client.close()


def reply_target(content: dict[str, Any]) -> str | None:
    rel = content.get("m.relates_to") or {}
    target = (rel.get("m.in_reply_to") or {}).get("event_id")
    return str(target) if target else None


def body(ev: Received) -> str:
    """A received event's text, or "" (a poll, a malformed body)."""
    text = ev.content.get("body", "")
    return text if isinstance(text, str) else ""
