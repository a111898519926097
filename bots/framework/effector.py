"""The one place actions meet the homeserver. Owns retries and rate limits.

Each action performed from the outbox carries an idempotency key; its
transaction id is derived from that key, so a retry (even after a crash and
restart, with the same device) is recognised by the homeserver and never
shows twice.

nio's own endless sleep on ``429`` is off (``max_limit_exceeded=0``): the
effector honours ``Retry-After`` itself, for every room at once (the limit
is the bot account's, not a room's), and gives up on an action whose total
wait passes a bound, reporting it instead of stalling forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import time
import uuid
from asyncio import Lock
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from nio import (
    AsyncClient,
    ErrorResponse,
    LocalProtocolError,
    OlmTrustError,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomMessagesResponse,
    UploadResponse,
)

from bots.base.backoff import Backoff
from bots.base.errors import HomeserverError
from bots.framework.actions import (
    Action,
    Ban,
    Edit,
    EndPoll,
    Extension,
    Invite,
    JoinRoom,
    Kick,
    LeaveRoom,
    PutRecord,
    React,
    Redact,
    RedactRecent,
    Reply,
    SendDirect,
    SendNotice,
    SendPoll,
    SetPostingLevel,
    SetPower,
    SetState,
    Unban,
    UploadFile,
)
from bots.framework.content import (
    POLL_END,
    POLL_START,
    edit_content,
    message_content,
    poll_content,
    poll_end_content,
    reaction_content,
)
from bots.framework.cross_signing import api_of
from bots.framework.logging import get_logger
from bots.framework.session import TRANSIENT
from bots.framework.trust.history import HistoryOutcome
from bots.matrix.http import RequestError

log = get_logger(__name__)

# Errors that will not go away by retrying.
PERMANENT_ERRCODES = frozenset(
    {
        "M_FORBIDDEN",
        "M_NOT_FOUND",
        "M_BAD_JSON",
        "M_NOT_JSON",
        "M_TOO_LARGE",
        "M_UNKNOWN_TOKEN",
        "M_INVALID_PARAM",
        "M_UNSUPPORTED_ROOM_VERSION",
    }
)
RATE_LIMITED = "M_LIMIT_EXCEEDED"
MAX_RETRY_AFTER_S = 300.0
OUTAGES = frozenset({"unreachable", "not synced yet"})
POWER_LEVELS = "m.room.power_levels"
# How far back !redact looks, in events of that user, whatever the limit.
REDACT_SCAN_LIMIT = 5000


def is_outage(errcode: str) -> bool:
    """Failures that say "not now" rather than "no": waited out, not counted."""
    return errcode in OUTAGES or (errcode.isdigit() and errcode.startswith("5"))


def merged_direct(current: Any, ours: dict[str, str]) -> dict[str, list[str]] | None:
    """The bot's ``m.direct`` with each of its own DMs (room to member) first
    in that member's list; None when *current* could not be read, so that
    nothing is written over entries the bot cannot see."""
    if not isinstance(current, dict):
        return None
    merged = dict(current)
    # The bot's own record goes in whole: a read that misses the last write
    # must not drop anyone's entry.
    for room, user in ours.items():
        rooms = merged.get(user)
        others = [r for r in rooms if r != room] if isinstance(rooms, list) else []
        merged[user] = [room, *others]
    return merged


def transaction_id(key: str | None = None) -> str:
    """The transaction id for an action.

    With an idempotency key it is derived from the key, so every retry of
    the same decision reuses it. Without one (an ad-hoc action) it is new
    each time, so two identical notices sent at different times both arrive.
    """
    if key is None:
        return f"hearth-{uuid.uuid4().hex}"
    return "hearth-" + hashlib.sha256(key.encode()).hexdigest()[:32]


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


Performer = Callable[[Any], Awaitable[Sequence[Action]]]


class KeyGate(Protocol):
    """Shares a room's key with the devices the trust policy allows
    (:class:`bots.framework.trust.sharing.KeySharer`)."""

    async def ensure_shared(self, room_id: str) -> None: ...


class HistoryGate(Protocol):
    """Hands an invitee the room's history before the invite
    (:class:`bots.framework.trust.history.HistorySharer`)."""

    async def before_invite(self, room_id: str, invitee: str) -> HistoryOutcome: ...


# The invite's reason, which Element shows on the invitation, when the
# room's history could not go with it. (A message would not do: it would be
# encrypted for verified devices only.)
HISTORY_NOT_SHARED_NOTE = (
    "Members here can read earlier messages, but they could not be shared with you "
    "because none of your sessions is verified yet. In Element, verify your session "
    "(Settings → Sessions), then ask to be invited again."
)


def _redactable(source: Mapping[str, Any], user_id: str) -> bool:
    """A message-like event of *user_id*'s that is not redacted yet."""
    return (
        source.get("sender") == user_id
        and "state_key" not in source
        and source.get("type") != "m.room.redaction"
        and "redacted_because" not in (source.get("unsigned") or {})
    )


@dataclass(frozen=True)
class _Done:
    """The action's effect is in place (a call made outside nio, or none needed)."""


class DirectRooms(Protocol):
    async def direct_room(self, user_id: str) -> str | None: ...
    async def remember_direct_room(self, user_id: str, room_id: str) -> None: ...
    async def direct_rooms(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Outcome:
    """How one action ended. *followups* are what an extension's adapter
    decided next (e.g. the reply saying a group was created)."""

    ok: bool
    problem: str | None = None
    followups: tuple[Action, ...] = ()


def _remembered(action: Action, resp: Any) -> tuple[Action, ...]:
    """The record a poll asked to be kept as, now that it has an event ID."""
    if isinstance(action, SendPoll) and len(action.record_as) == 3:
        event_id = getattr(resp, "event_id", None)
        if isinstance(event_id, str):
            feature, kind, key = action.record_as
            return (PutRecord(feature, kind, key, {"event_id": event_id}),)
    return ()


class _Failed(Exception):
    def __init__(self, errcode: str) -> None:
        self.errcode = errcode


class Effector:
    def __init__(
        self,
        client: AsyncClient,
        *,
        max_attempts: int = 6,
        rate: float = 10.0,
        burst: int = 30,
        max_wait_s: float = 600.0,
        performers: Mapping[type[Extension], Performer] | None = None,
        directs: DirectRooms | None = None,
        keys: KeyGate | None = None,
        history: HistoryGate | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.history = history
        self._direct_lock = Lock()
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.bucket = TokenBucket(rate, burst)
        self.performers = dict(performers or {})
        self.directs = directs
        # Monotonic time before which nothing is sent: the homeserver's
        # Retry-After applies to the account, so every room waits it out.
        self._resume_at = 0.0
        self.rate_limited = 0
        self._power_locks: dict[str, asyncio.Lock] = {}

    async def perform(self, actions: Sequence[Action]) -> None:
        """Perform ad-hoc actions (not from the outbox), follow-ups included."""
        for action in actions:
            outcome = await self.perform_one(action)
            await self.perform(outcome.followups)

    async def perform_one(self, action: Action, key: str | None = None) -> Outcome:
        kind = type(action).__name__
        if isinstance(action, Extension):
            performer = self.performers.get(type(action))
            if performer is None:
                log.error("no performer for action", action=kind)
                return Outcome(False, "no performer")
            # The adapter owns its own retries; what it reports comes back here.
            return Outcome(True, followups=tuple(await performer(action)))
        txn = transaction_id(key)
        backoff = Backoff(base=0.5, cap=15.0)
        waited = 0.0
        attempt = 0
        while True:
            await self._wait_for_limits()
            retry_after: float | None = None
            try:
                resp = await self._call(action, txn)
            except TRANSIENT:
                errcode = "unreachable"
            except (LocalProtocolError, OlmTrustError):
                # nio has not synced the room (or its members' keys) yet, or
                # the room's key was invalidated and must be shared afresh.
                errcode = "not synced yet"
            except _Failed as failed:
                errcode = failed.errcode
            else:
                if isinstance(resp, _Done):
                    return Outcome(True)
                if not isinstance(resp, ErrorResponse):
                    return Outcome(True, followups=_remembered(action, resp))
                errcode = resp.status_code or "unknown"
                if errcode == RATE_LIMITED:
                    # Capped: a huge Retry-After must not stall every room.
                    retry_after = min((resp.retry_after_ms or 5000) / 1000, MAX_RETRY_AFTER_S)
            if errcode in PERMANENT_ERRCODES:
                log.warning("action refused", action=kind, errcode=errcode)
                return Outcome(False, errcode)
            if retry_after is not None:
                # Waiting out a rate limit is not a failed attempt.
                self.rate_limited += 1
                self._resume_at = max(self._resume_at, time.monotonic() + retry_after)
                delay = retry_after
            else:
                # An outage (homeserver restarting, room not synced yet, a
                # proxy's 5xx) is waited out, up to max_wait_s; other errors
                # get max_attempts tries.
                if not is_outage(errcode):
                    attempt += 1
                if attempt >= self.max_attempts:
                    log.error("action abandoned", action=kind, attempts=attempt, errcode=errcode)
                    return Outcome(False, errcode)
                delay = backoff.next_delay()
            waited += delay
            if waited > self.max_wait_s:
                log.error("action abandoned", action=kind, waited_s=round(waited), errcode=errcode)
                return Outcome(False, f"{errcode} for {round(waited)} s")
            log.info("action failed, retrying", action=kind, errcode=errcode, retry_in_s=delay)
            if retry_after is None:
                await asyncio.sleep(delay)

    async def _wait_for_limits(self) -> None:
        # A rate limit that arrives while waiting pushes _resume_at further.
        while (pause := self._resume_at - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(pause)
        await self.bucket.take()

    async def _send(self, room_id: str, event_type: str, content: dict[str, Any], txn: str) -> Any:
        if self.keys is not None:
            try:
                await self.keys.ensure_shared(room_id)
            except (HomeserverError, RequestError) as exc:
                raise _Failed("key sharing failed") from exc
        # No await between sharing and nio's check that the key is shared:
        # nio never shares on its own, and would refuse rather than share
        # with a device the policy left out.
        return await self.client.room_send(
            room_id, event_type, content, tx_id=txn, ignore_unverified_devices=self.keys is None
        )

    async def _call(self, action: Action, txn: str) -> Any:
        c = self.client
        match action:
            case Reply() | SendNotice():
                return await self._send(
                    action.room_id, "m.room.message", message_content(action), txn
                )
            case SendDirect():
                room_id = await self._direct_room(action.user_id)
                return await self._send(room_id, "m.room.message", message_content(action), txn)
            case React():
                content = reaction_content(action.event_id, action.key)
                return await self._send(action.room_id, "m.reaction", content, txn)
            case Edit():
                return await self._send(action.room_id, "m.room.message", edit_content(action), txn)
            case SendPoll():
                return await self._send(action.room_id, POLL_START, poll_content(action), txn)
            case EndPoll():
                return await self._send(action.room_id, POLL_END, poll_end_content(action), txn)
            case Redact():
                return await c.room_redact(action.room_id, action.event_id, action.reason, txn)
            case RedactRecent():
                return await self._redact_recent(action, txn)
            case JoinRoom():
                return await c.join(action.room_id)
            case LeaveRoom():
                return await c.room_leave(action.room_id)
            case Invite():
                return await self._invite(action)
            case Kick():
                return await c.room_kick(action.room_id, action.user_id, action.reason)
            case Ban():
                return await c.room_ban(action.room_id, action.user_id, action.reason)
            case Unban():
                return await c.room_unban(action.room_id, action.user_id)
            case SetState():
                return await c.room_put_state(
                    action.room_id, action.event_type, dict(action.content), action.state_key
                )
            case SetPower():
                return await self._set_power(action)
            case SetPostingLevel():
                return await self._set_posting_level(action)
            case UploadFile():
                return await self._upload(action, txn)
        raise TypeError(f"the effector cannot perform {type(action).__name__}")

    async def _redact_recent(self, action: RedactRecent, txn: str) -> Any:
        """Page back through the room for the user's events, then redact
        them one by one within the bot's own send rate. Repeating it after
        a failure redacts nothing twice: redacted events are skipped."""
        found: list[str] = []
        start: str | None = None
        scanned = 0
        only_theirs = {"senders": [action.user_id]}
        while len(found) < action.limit and scanned < REDACT_SCAN_LIMIT:
            page = await self.client.room_messages(
                action.room_id, start=start, limit=100, message_filter=only_theirs
            )
            if not isinstance(page, RoomMessagesResponse):
                return page
            for event in page.chunk:
                source = getattr(event, "source", {})
                scanned += 1
                if (action.since_ms or 0) > source.get("origin_server_ts", 0):
                    scanned = REDACT_SCAN_LIMIT  # older than wanted: so are the rest
                    break
                if len(found) < action.limit and _redactable(source, action.user_id):
                    found.append(str(source.get("event_id")))
            if not page.end or page.end == start or not page.chunk:
                break
            start = page.end
        for n, event_id in enumerate(found):
            await self._wait_for_limits()
            resp = await self.client.room_redact(
                action.room_id, event_id, action.reason, f"{txn}-{n}"
            )
            if isinstance(resp, ErrorResponse) and resp.status_code != "M_NOT_FOUND":
                return resp
        return _Done()

    async def _change_power_levels(
        self, room_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> Any:
        """Read the room's power levels, change them, write them back; one
        change at a time per room, so each reads what the last one wrote."""
        async with self._power_locks.setdefault(room_id, asyncio.Lock()):
            got = await self.client.room_get_state_event(room_id, POWER_LEVELS)
            if not isinstance(got, RoomGetStateEventResponse):
                return got
            content = change(dict(got.content))
            if content == got.content:
                return _Done()
            return await self.client.room_put_state(room_id, POWER_LEVELS, content)

    async def _set_power(self, action: SetPower) -> Any:
        def change(content: dict[str, Any]) -> dict[str, Any]:
            users = dict(content.get("users") or {})
            if action.level is None:
                users.pop(action.user_id, None)
            else:
                users[action.user_id] = action.level
            return {**content, "users": users}

        return await self._change_power_levels(action.room_id, change)

    async def _set_posting_level(self, action: SetPostingLevel) -> Any:
        return await self._change_power_levels(
            action.room_id, lambda content: {**content, "events_default": action.level}
        )

    async def _invite(self, action: Invite) -> Any:
        reason = action.reason
        if self.history is not None:
            try:
                shared = await self.history.before_invite(action.room_id, action.user_id)
            except (HomeserverError, RequestError) as exc:
                # Before the invite: retried whole, never an invite without it.
                raise _Failed("history bundle failed") from exc
            if shared is HistoryOutcome.ALREADY_JOINED:
                return _Done()
            if shared is HistoryOutcome.NO_SIGNED_DEVICE:
                reason = (
                    f"{reason}\n\n{HISTORY_NOT_SHARED_NOTE}" if reason else HISTORY_NOT_SHARED_NOTE
                )
        # Through Hearth's HTTP layer: nio's room_invite takes no reason.
        body = {"user_id": action.user_id, **({"reason": reason} if reason else {})}
        path = f"/_matrix/client/v3/rooms/{quote(action.room_id, safe='')}/invite"
        try:
            await api_of(self.client).request("POST", path, body, what="invite")
        except RequestError as exc:
            raise _Failed(exc.errcode or str(exc.status)) from exc
        return _Done()

    async def _upload(self, action: UploadFile, txn: str) -> Any:
        if action.text is not None:
            data = action.text.encode()
        else:
            data = await asyncio.to_thread(Path(action.data_path).read_bytes)
        size = len(data)
        resp, keys = await self.client.upload(
            io.BytesIO(data), action.mimetype, action.filename, encrypt=True, filesize=size
        )
        if not isinstance(resp, UploadResponse):
            return resp
        content = {
            "msgtype": action.msgtype,
            "body": action.filename,
            "info": {"mimetype": action.mimetype, "size": size},
            "file": {"url": resp.content_uri, **(keys or {})},
        }
        return await self._send(action.room_id, "m.room.message", content, txn)

    async def _direct_room(self, user_id: str) -> str:
        """The bot's encrypted DM with *user_id*: reused while the member is in
        it (or invited), otherwise opened afresh and marked in ``m.direct``."""
        if self.directs is None:
            raise _Failed("no direct-room store")
        known = await self.directs.direct_room(user_id)
        room = self.client.rooms.get(known) if known else None
        if room is not None and (user_id in room.users or user_id in room.invited_users):
            return room.room_id
        if known is not None and room is None:
            # Not synced yet (just created, or before the first full sync):
            # trust the record rather than open a second DM.
            return known
        resp = await self.client.room_create(
            is_direct=True,
            invite=[user_id],
            initial_state=[
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ],
        )
        if not isinstance(resp, RoomCreateResponse):
            raise _Failed(getattr(resp, "status_code", None) or "unknown")
        await self.directs.remember_direct_room(user_id, resp.room_id)
        await self._mark_direct(user_id, resp.room_id)
        await self._until_synced(resp.room_id, user_id)
        return resp.room_id

    async def _until_synced(self, room_id: str, user_id: str, timeout: float = 15.0) -> None:
        """nio encrypts only for rooms and members it has synced: wait for the
        new room and its invitee to arrive, and for the invitee's keys."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            room = self.client.rooms.get(room_id)
            if room is not None and user_id in room.users:
                if self.client.should_query_keys:
                    with contextlib.suppress(LocalProtocolError):
                        await self.client.keys_query()
                return
            await asyncio.sleep(0.1)
        raise _Failed("new direct room not synced")

    async def _mark_direct(self, user_id: str, room_id: str) -> None:
        """Add the room to the bot's ``m.direct`` so clients file it as a DM."""
        api = api_of(self.client)
        me = quote(self.client.user_id, safe="")
        path = f"/_matrix/client/v3/user/{me}/account_data/m.direct"
        # One update at a time: two DMs opened at once would each write back
        # what they read, and one would be lost.
        async with self._direct_lock:
            try:
                current = await api.request("GET", path, what="reading m.direct")
            except RequestError as exc:
                current = {} if exc.errcode == "M_NOT_FOUND" else None
            except HomeserverError:
                current = None
            assert self.directs is not None
            merged = merged_direct(current, await self.directs.direct_rooms())
            if merged is None:
                # Writing back only our own entries would drop the others:
                # leave it, the next DM opened writes them all.
                log.warning("m.direct not read; left as it was")
                return
            try:
                await api.request("PUT", path, merged, what="writing m.direct")
            except HomeserverError as exc:
                log.warning("m.direct not updated", status=getattr(exc, "status", None))
