"""Who gets the bot's room keys, whose devices may run powerful commands, and
what to do when someone's identity changes. Pure: decided from identities
already read and checked (:mod:`bots.framework.trust.identity`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from bots.framework.events import SenderDevice
from bots.framework.trust.identity import Identity


class KeySharing(Enum):
    # Only devices their owner has cross-signed (Element's "exclude insecure devices").
    CROSS_SIGNED = "cross_signed"
    # Every device in the room, for communities that must support old clients.
    ALL_DEVICES = "all_devices"


@dataclass(frozen=True)
class Recipient:
    """A device in a room, as the bot's Olm machine knows it."""

    user_id: str
    device_id: str
    curve25519: str
    ed25519: str


def may_receive_keys(
    device: Recipient, identities: Mapping[str, Identity], policy: KeySharing
) -> bool:
    if policy is KeySharing.ALL_DEVICES:
        return True
    identity = identities.get(device.user_id)
    known = identity.devices.get(device.device_id) if identity else None
    return (
        known is not None
        and known.signed_by_owner
        # The keys the Olm machine would encrypt to must be the ones that were signed.
        and known.curve25519 == device.curve25519
        and known.ed25519 == device.ed25519
    )


def split_recipients(
    devices: Iterable[Recipient], identities: Mapping[str, Identity], policy: KeySharing
) -> tuple[list[Recipient], list[Recipient]]:
    """(devices that get the room key, devices told it is withheld)."""
    allowed: list[Recipient] = []
    withheld: list[Recipient] = []
    for device in devices:
        (allowed if may_receive_keys(device, identities, policy) else withheld).append(device)
    return allowed, withheld


class DeviceTrust(Enum):
    # Signed by its owner, whose identity is the one the bot pinned.
    VERIFIED = "verified"
    # Not signed by its owner, not encrypted, or not a device the owner lists.
    UNVERIFIED = "unverified"
    # Signed, but by an identity other than the pinned one: an identity reset.
    IDENTITY_CHANGED = "identity changed"


def device_trust(
    sender: SenderDevice | None, identity: Identity | None, pinned_master: str | None
) -> DeviceTrust:
    """How far a command's sending device is trusted.

    *identity* is the sender's current one; *pinned_master* the master key the
    bot first saw for them (None if it has pinned none yet, when the current
    one is pinned on the spot).
    """
    if sender is None or sender.forwarded or identity is None:
        return DeviceTrust.UNVERIFIED
    device = identity.device_by_keys(sender.curve25519, sender.ed25519)
    if device is None or not device.signed_by_owner:
        return DeviceTrust.UNVERIFIED
    if pinned_master is not None and identity.master != pinned_master:
        return DeviceTrust.IDENTITY_CHANGED
    return DeviceTrust.VERIFIED


@dataclass(frozen=True)
class Pin:
    """The identity the bot trusts for a user, and a changed one it has already reported."""

    master: str
    reported: str | None = None


@dataclass(frozen=True)
class PinDecision:
    # The pin to store, or None to leave the stored one as it is.
    store: Pin | None
    # Tell the moderators that this user's identity changed.
    report: bool = False


def on_identity_seen(pin: Pin | None, master: str | None, holds_power: bool) -> PinDecision:
    """What to record when a user's current master key is *master*.

    The first identity seen is pinned (trust on first use). A changed identity
    is re-pinned silently for someone without moderator power, as Element
    does; for a moderator the old pin stays, their powerful commands are
    refused, and the moderators are told once, until another moderator
    confirms the new identity with ``!trust``.
    """
    if master is None:
        return PinDecision(None)
    if pin is None:
        return PinDecision(Pin(master))
    if pin.master == master:
        return PinDecision(None if pin.reported is None else Pin(master))
    if not holds_power:
        return PinDecision(Pin(master))
    if pin.reported == master:
        return PinDecision(None)
    return PinDecision(Pin(pin.master, reported=master), report=True)


# --- history for newcomers (MSC4268) ---

SHAREABLE_VISIBILITY = frozenset({"shared", "world_readable"})


def history_is_shared(history_visibility: str | None) -> bool:
    """Whether a room's keys may go to people who join later: only while its
    history is visible to them (a group with ``history_before_joining``)."""
    return history_visibility in SHAREABLE_VISIBILITY


@dataclass(frozen=True)
class SessionFlag:
    """A Megolm session and whether its sender marked it shareable."""

    room_id: str
    sender_key: str
    session_id: str
    shareable: bool
