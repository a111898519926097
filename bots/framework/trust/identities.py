"""Other users' identities as the bot knows them: read with ``/keys/query``
(:mod:`.identity` checks every signature), cached until a sync's
``device_lists.changed`` names the user, and pinned in the bot's database
the first time they are seen (:mod:`.policy` decides what a change means)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from bots.framework.events import SenderDevice
from bots.framework.logging import get_logger
from bots.framework.trust.identity import Identity, identities_of
from bots.framework.trust.policy import DeviceTrust, Pin, device_trust, on_identity_seen

log = get_logger(__name__)

# Users per /keys/query: a community-sized room in a handful of requests.
QUERY_CHUNK = 250


class KeyQuery(Protocol):
    """``/keys/query`` (:class:`bots.framework.trust.channel.CryptoChannel`)."""

    async def query(self, users: Sequence[str], what: str = "keys query") -> Any: ...


class Pins(Protocol):
    async def pins_of(self, users: Sequence[str]) -> dict[str, Pin]: ...
    async def store_pins(self, pins: Mapping[str, Pin]) -> None: ...


class Identities:
    def __init__(
        self,
        channel: KeyQuery,
        pins: Pins,
        *,
        holds_power: Callable[[str], bool],
        report_change: Callable[[str], Awaitable[None]],
    ) -> None:
        self._channel = channel
        self._pins = pins
        self._holds_power = holds_power
        self._report_change = report_change
        self._cache: dict[str, Identity] = {}
        # Bumped by forget(): a query answered after the user's devices
        # changed again must not be cached as current.
        self._generation: dict[str, int] = {}

    def forget(self, users: Iterable[str]) -> None:
        """Their devices or keys changed: read them afresh next time."""
        for user in users:
            self._cache.pop(user, None)
            self._generation[user] = self._generation.get(user, 0) + 1

    def cached(self, user_id: str) -> Identity | None:
        return self._cache.get(user_id)

    async def get(self, users: Sequence[str]) -> dict[str, Identity]:
        """The current identities of *users* (one query for all that are not cached)."""
        wanted = list(dict.fromkeys(users))
        read: dict[str, Identity] = {u: self._cache[u] for u in wanted if u in self._cache}
        missing = [u for u in wanted if u not in read]
        for start in range(0, len(missing), QUERY_CHUNK):
            chunk = missing[start : start + QUERY_CHUNK]
            generations = {u: self._generation.get(u, 0) for u in chunk}
            reply = await self._channel.query(chunk)
            found = identities_of(chunk, reply if isinstance(reply, dict) else {})
            await self._observe(list(found.values()))
            for user, identity in found.items():
                read[user] = identity
                # Answered with, but not cached if the devices changed meanwhile.
                if self._generation.get(user, 0) == generations[user]:
                    self._cache[user] = identity
        return read

    async def _observe(self, identities: Sequence[Identity]) -> None:
        """Pin first-seen identities and note changed ones, in one transaction."""
        pins = await self._pins.pins_of([i.user_id for i in identities])
        changed: dict[str, Pin] = {}
        for identity in identities:
            user = identity.user_id
            decision = on_identity_seen(pins.get(user), identity.master, self._holds_power(user))
            if decision.store is not None:
                changed[user] = decision.store
            if decision.report:
                log.warning("a moderator's identity changed", user_id=user)
                await self._report_change(user)
        await self._pins.store_pins(changed)

    async def trust_of(self, user_id: str, sender: SenderDevice | None) -> DeviceTrust:
        """How far the device that sent *user_id*'s event is trusted."""
        identity = (await self.get([user_id]))[user_id]
        pin = (await self._pins.pins_of([user_id])).get(user_id)
        return device_trust(sender, identity, pin.master if pin else None)

    async def accept_current(self, user_id: str) -> str | None:
        """Pin *user_id*'s current identity (a moderator's ``!trust``); its
        master key, or None if they have no cross-signing identity."""
        self.forget([user_id])
        identity = (await self.get([user_id]))[user_id]
        if identity.master is None:
            return None
        await self._pins.store_pins({user_id: Pin(identity.master)})
        return identity.master
