"""Other users' cross-signing identities, read from a ``/keys/query`` reply
with every signature checked. Pure: no I/O.

A user's identity is their master key. It signs their self-signing key, which
signs each device they have verified. A device counts as *signed by its
owner* only when that whole chain checks out and the device's own keys are
signed by the device itself. Anything malformed or forged is dropped, never
trusted: a homeserver can lie, but it cannot sign for a user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bots.framework.cross_signing import verify

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    ed25519: str
    curve25519: str
    # Signed by the owner's current self-signing key, itself signed by their master key.
    signed_by_owner: bool
    # The device keys as the server gave them (with their signatures): what
    # the bot puts in its own Olm messages as ``sender_device_keys``.
    raw: Mapping[str, Any] = field(compare=False, repr=False, default_factory=dict)


@dataclass(frozen=True)
class Identity:
    user_id: str
    # None when the user has no (valid) cross-signing identity at all.
    master: str | None
    self_signing: str | None
    devices: Mapping[str, Device]

    def device_by_keys(self, curve25519: str, ed25519: str) -> Device | None:
        """The device that holds both keys (what an encrypted event proves)."""
        for device in self.devices.values():
            if device.curve25519 == curve25519 and device.ed25519 == ed25519:
                return device
        return None


def _single_key(obj: Any, user_id: str, usage: str) -> str | None:
    """The one Ed25519 public key of a cross-signing key object, if well formed."""
    if not isinstance(obj, dict) or obj.get("user_id") != user_id:
        return None
    usages = obj.get("usage")
    if not isinstance(usages, list) or usage not in usages:
        return None
    keys = obj.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        return None
    ((key_id, public),) = keys.items()
    if not isinstance(public, str) or key_id != f"ed25519:{public}":
        return None
    return public


def _device(user_id: str, device_id: str, obj: Any, self_signing: str | None) -> Device | None:
    if not isinstance(obj, dict):
        return None
    if obj.get("user_id") != user_id or obj.get("device_id") != device_id:
        return None
    keys = obj.get("keys")
    if not isinstance(keys, dict):
        return None
    ed = keys.get(f"ed25519:{device_id}")
    curve = keys.get(f"curve25519:{device_id}")
    if not isinstance(ed, str) or not isinstance(curve, str):
        return None
    # A device must sign its own keys: otherwise the server made it up.
    if not verify(obj, user_id, ed, f"ed25519:{device_id}"):
        return None
    signed = self_signing is not None and verify(obj, user_id, self_signing)
    return Device(user_id, device_id, ed, curve, signed, obj)


def identity_of(user_id: str, reply: Mapping[str, Any]) -> Identity:
    """*user_id*'s identity and devices from a ``/keys/query`` *reply*."""
    master = _single_key(_section(reply, "master_keys").get(user_id), user_id, "master")
    ssk_obj = _section(reply, "self_signing_keys").get(user_id)
    self_signing = _single_key(ssk_obj, user_id, "self_signing")
    if self_signing is not None and (master is None or not verify(ssk_obj or {}, user_id, master)):
        self_signing = None  # not signed by the master key: worthless
    devices: dict[str, Device] = {}
    listed = _section(reply, "device_keys").get(user_id)
    for device_id, obj in listed.items() if isinstance(listed, dict) else ():
        device = _device(user_id, str(device_id), obj, self_signing)
        if device is not None:
            devices[device.device_id] = device
    return Identity(user_id, master, self_signing, devices)


def identities_of(users: Iterable[str], reply: Mapping[str, Any]) -> dict[str, Identity]:
    return {user: identity_of(user, reply) for user in users}


def _section(reply: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = reply.get(name)
    return section if isinstance(section, dict) else {}
