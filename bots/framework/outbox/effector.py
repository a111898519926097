"""The one place actions meet the homeserver: each is performed by its
registered performer (:mod:`.registry`), and retried here when it failed
for a reason that may pass.

Each action performed from the outbox carries an idempotency key; its
transaction id is derived from that key, so a retry (even after a crash and
restart, with the same device) is recognised by the homeserver and never
shows twice.

Rate limits are not this module's: the account's transport
(:mod:`bots.matrix.transport`) waits out a 429 for every request at once,
and paces nothing else. What reaches the effector is the rest: a refusal
(given up at once), an outage or a room nio has not synced yet (waited out,
up to a bound) and other errors (a few attempts). A 429 the transport could
not repeat itself (a streamed upload) comes back here and is tried again
once the account's pause is over.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nio import AsyncClient, ErrorResponse, LocalProtocolError, OlmTrustError

from bots.base.backoff import Backoff
from bots.base.errors import HomeserverError
from bots.framework.actions import Action, Effect, Extension, PutRecord, SendPoll
from bots.framework.logging import get_logger
from bots.framework.outbox import direct, membership, messages, redaction, room_state
from bots.framework.outbox.means import DirectRooms, Done, Failed, HistoryGate, KeyGate, Means
from bots.framework.outbox.registry import PERFORMERS
from bots.framework.session import TRANSIENT
from bots.matrix.nio_client import TransportClient

log = get_logger(__name__)

# The modules whose performers the effector finds in the registry.
PERFORMER_MODULES = (messages, direct, membership, room_state, redaction)

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
OUTAGES = frozenset({"unreachable", "not synced yet"})

Performer = Callable[[Any], Awaitable[Sequence[Action]]]


def is_outage(errcode: str) -> bool:
    """Failures that say "not now" rather than "no": waited out, not counted."""
    return errcode in OUTAGES or (errcode.isdigit() and errcode.startswith("5"))


def transaction_id(key: str | None = None) -> str:
    """The transaction id for an action.

    With an idempotency key it is derived from the key, so every retry of
    the same decision reuses it. Without one (an ad-hoc action) it is new
    each time, so two identical notices sent at different times both arrive.
    """
    if key is None:
        return f"hearth-{uuid.uuid4().hex}"
    return "hearth-" + hashlib.sha256(key.encode()).hexdigest()[:32]


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


class Effector:
    def __init__(
        self,
        client: AsyncClient,
        *,
        max_attempts: int = 6,
        max_wait_s: float = 600.0,
        performers: Mapping[type[Extension], Performer] | None = None,
        directs: DirectRooms | None = None,
        keys: KeyGate | None = None,
        history: HistoryGate | None = None,
    ) -> None:
        self.client = client
        self.means = Means(client, keys=keys, history=history, directs=directs)
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.performers = dict(performers or {})

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
        perform = PERFORMERS.get(type(action)) if isinstance(action, Effect) else None
        if perform is None:
            raise TypeError(f"the effector cannot perform {kind}")
        txn = transaction_id(key)
        backoff = Backoff(base=0.5, cap=15.0)
        waited = 0.0
        attempt = 0
        while True:
            try:
                resp = await perform(self.means, action, txn)
            except TRANSIENT:
                errcode = "unreachable"
            except (LocalProtocolError, OlmTrustError):
                # nio has not synced the room (or its members' keys) yet, or
                # the room's key was invalidated and must be shared afresh.
                errcode = "not synced yet"
            except Failed as failed:
                errcode = failed.errcode
            except HomeserverError:
                # Hearth's own call found the homeserver unreachable.
                errcode = "unreachable"
            else:
                if isinstance(resp, Done):
                    return Outcome(True)
                if not isinstance(resp, ErrorResponse):
                    return Outcome(True, followups=_remembered(action, resp))
                errcode = resp.status_code or "unknown"
            if errcode in PERMANENT_ERRCODES:
                log.warning("action refused", action=kind, errcode=errcode)
                return Outcome(False, errcode)
            if errcode == RATE_LIMITED:
                # The transport has paused the account: the next try waits
                # there, as long as the server asked. Not a failed attempt.
                delay = self._paused_for()
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
            if errcode != RATE_LIMITED:
                await asyncio.sleep(delay)

    def _paused_for(self) -> float:
        """How long the account's transport holds writes back (for the
        bound on an action's waits); 5 s, nio's default, without one."""
        if isinstance(self.client, TransportClient) and self.client.transport.paused_for > 0:
            return self.client.transport.paused_for
        return 5.0
