"""Devices the bot could not set up an Olm session with, and when to try
them again. Pure.

A device whose one-time keys have all been claimed (and that has no
fallback key) cannot be sent a room key. It is told so once, with
``m.room_key.withheld`` and the code ``m.no_olm``, and tried again later,
after a pause that doubles each time it fails (as Element's Rust crypto
backs off its key claims), so a device that comes back online with fresh
keys gets the room key with a later message, and one that never does
costs one claim an hour, not one per message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

FIRST_RETRY_S = 60.0
MAX_RETRY_S = 3600.0


@dataclass
class Unreachable:
    first_retry_s: float = FIRST_RETRY_S
    max_retry_s: float = MAX_RETRY_S
    # Curve25519 key of each device → (when to try again, the pause before that).
    _retry: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Devices already sent m.no_olm, until a session is made with them.
    _told: set[str] = field(default_factory=set)

    def due(self, device_key: str, now: float) -> bool:
        """Whether a key claim for the device is worth making now."""
        entry = self._retry.get(device_key)
        return entry is None or now >= entry[0]

    def failed(self, device_key: str, now: float) -> float:
        """A claim gave no key: when the device is next worth trying."""
        previous = self._retry.get(device_key)
        pause = self.first_retry_s if previous is None else min(previous[1] * 2, self.max_retry_s)
        self._retry[device_key] = (now + pause, pause)
        return now + pause

    def reached(self, device_key: str) -> None:
        """A session was made with the device: forget its failures."""
        self._retry.pop(device_key, None)
        self._told.discard(device_key)

    def to_tell(self, device_keys: Iterable[str]) -> list[str]:
        """Those of *device_keys* not yet sent m.no_olm; they count as told."""
        new = [k for k in dict.fromkeys(device_keys) if k not in self._told]
        self._told.update(new)
        return new

    def retry_at(self, device_keys: Iterable[str]) -> float | None:
        """The earliest time any of *device_keys* is worth trying again."""
        times = [self._retry[k][0] for k in device_keys if k in self._retry]
        return min(times) if times else None
