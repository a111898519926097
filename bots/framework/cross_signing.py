"""Cross-signing for a nio bot (nio has none).

Element's Rust crypto, in its "exclude insecure devices" mode, shares room keys
only with devices their owner has cross-signed. On every start the bot calls
:func:`ensure_cross_signed`, which makes sure the homeserver holds our master,
self-signing and user-signing keys and that our device carries a self-signing
signature. It writes nothing when both are already in place.

The pure helpers (key generation, building and signing the key objects) do no
I/O so they can be unit-tested; only :func:`ensure_cross_signed` talks HTTP,
through `bots.matrix` (nio has no call for these endpoints).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import canonicaljson
import nio
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bots.base.errors import HomeserverError, SecretFileError
from bots.framework.logging import get_logger
from bots.framework.secrets import read_secret, write_secret
from bots.framework.trust.channel import CryptoChannel
from bots.matrix.transport import RequestError

log = get_logger(__name__)

JsonDict = dict[str, Any]
USAGES = ("master", "self_signing", "user_signing")


def unpadded_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def canonical_json(obj: JsonDict) -> bytes:
    """Matrix canonical JSON of *obj* without ``signatures`` and ``unsigned``."""
    stripped = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return bytes(canonicaljson.encode_canonical_json(stripped))


def public_key_b64(key: Ed25519PrivateKey) -> str:
    return unpadded_b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


@dataclass(frozen=True)
class CrossSigningKeys:
    """The three private cross-signing keys of one user."""

    master: Ed25519PrivateKey
    self_signing: Ed25519PrivateKey
    user_signing: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> CrossSigningKeys:
        return cls(*(Ed25519PrivateKey.generate() for _ in USAGES))

    def to_json(self) -> str:
        """Seeds as JSON, for the 0600 keys file only."""
        seeds = {usage: unpadded_b64(getattr(self, usage).private_bytes_raw()) for usage in USAGES}
        return json.dumps(seeds, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CrossSigningKeys:
        data = json.loads(text)
        return cls(*(Ed25519PrivateKey.from_private_bytes(b64decode(data[u])) for u in USAGES))

    @classmethod
    def load(cls, path: Path) -> CrossSigningKeys | None:
        """Keys stored at *path*, or None if the file does not exist."""
        if not path.exists():
            return None
        try:
            return cls.from_json(read_secret(path, what="cross-signing keys"))
        except (ValueError, KeyError, TypeError):
            raise SecretFileError(f"cross-signing keys file {path} is not valid") from None

    def public(self, usage: str) -> str:
        return public_key_b64(getattr(self, usage))


def sign_json(obj: JsonDict, user_id: str, key_id: str, signature: str) -> JsonDict:
    """Return a copy of *obj* with *signature* added under ``signatures``."""
    signed = copy.deepcopy(obj)
    signed.pop("unsigned", None)
    signed.setdefault("signatures", {}).setdefault(user_id, {})[key_id] = signature
    return signed


def sign_with(obj: JsonDict, user_id: str, key: Ed25519PrivateKey) -> JsonDict:
    """Sign *obj* with a cross-signing key (key id ``ed25519:<public key>``)."""
    sig = unpadded_b64(key.sign(canonical_json(obj)))
    return sign_json(obj, user_id, f"ed25519:{public_key_b64(key)}", sig)


def key_object(user_id: str, usage: str, public: str) -> JsonDict:
    return {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}


def build_signing_upload(
    user_id: str,
    keys: CrossSigningKeys,
    device_id: str,
    device_sign: Callable[[str], str],
) -> JsonDict:
    """Body for ``/keys/device_signing/upload``.

    The master key is signed by the device (``device_sign`` takes canonical
    JSON text and returns an unpadded base64 Ed25519 signature, as nio's
    ``OlmAccount.sign`` does); the other two keys are signed by the master key.
    """
    master = key_object(user_id, "master", keys.public("master"))
    device_sig = device_sign(canonical_json(master).decode())
    body = {"master_key": sign_json(master, user_id, f"ed25519:{device_id}", device_sig)}
    for usage in ("self_signing", "user_signing"):
        sub_key = key_object(user_id, usage, keys.public(usage))
        body[f"{usage}_key"] = sign_with(sub_key, user_id, keys.master)
    return body


def server_key(query: JsonDict, field: str, user_id: str) -> str | None:
    """The public key the server holds in ``<field>[user_id]`` of a ``/keys/query`` reply."""
    keys = (query.get(field, {}).get(user_id) or {}).get("keys", {})
    return next(iter(keys.values()), None) if len(keys) == 1 else None


def verify(obj: Mapping[str, Any], user_id: str, public: str, key_id: str | None = None) -> bool:
    """Whether *obj* carries a valid signature by *user_id*'s Ed25519 key
    *public*, filed under *key_id* (default ``ed25519:<public>``, as for
    cross-signing keys; a device signs under ``ed25519:<device id>``)."""
    by_user = obj.get("signatures", {})
    by_user = by_user.get(user_id) if isinstance(by_user, dict) else None
    sig = by_user.get(key_id or f"ed25519:{public}") if isinstance(by_user, dict) else None
    if not isinstance(sig, str):
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(b64decode(public))
        key.verify(b64decode(sig), canonical_json(dict(obj)))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def device_is_signed(device: JsonDict, user_id: str, self_signing_public: str) -> bool:
    return verify(device, user_id, self_signing_public)


async def _upload_signing_keys(client: nio.AsyncClient, password: str, body: JsonDict) -> None:
    channel, what = CryptoChannel(client), "uploading cross-signing keys"
    try:
        await channel.upload_signing_keys(body, what)
        return  # first set-up needs no UIA (MSC3967)
    except RequestError as exc:
        if exc.status != 401:
            raise
        if "session" not in exc.data:
            raise HomeserverError(f"{what} failed: HTTP 401 without a UIA session") from None
        session = exc.data["session"]
    auth = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": client.user_id},
        "password": password,
        "session": session,
    }
    await channel.upload_signing_keys({**body, "auth": auth}, what)


async def ensure_cross_signed(client: nio.AsyncClient, password: str, keys_path: Path) -> None:
    """Make sure our cross-signing keys are on the server and our device is signed.

    Keys come from *keys_path* (0600 JSON of the three private seeds); when the
    file is missing, new keys are generated and replace whatever the server
    holds, which needs the account *password* (user-interactive auth). Makes no
    writes when the server already has our keys and our device's signature.
    """
    if client.olm is None or not client.user_id or not client.device_id:
        raise HomeserverError("cross-signing needs a logged-in client with encryption enabled")
    channel = CryptoChannel(client)
    if client.should_upload_keys and isinstance(await channel.upload_keys(), nio.KeysUploadError):
        raise HomeserverError("uploading device keys failed")
    user_id, device_id = client.user_id, client.device_id

    query = await channel.query_devices({user_id: [device_id]})
    device = query.get("device_keys", {}).get(user_id, {}).get(device_id)
    ours = client.olm.account.identity_keys["ed25519"]
    if not device or device.get("keys", {}).get(f"ed25519:{device_id}") != ours:
        raise HomeserverError(f"the server does not hold this bot's device keys ({device_id})")

    keys = CrossSigningKeys.load(keys_path)
    on_server = keys is not None and all(
        server_key(query, f"{u}_keys", user_id) == keys.public(u) for u in USAGES
    )
    if keys is None or not on_server:
        if keys is None:
            keys = CrossSigningKeys.generate()
            write_secret(keys_path, keys.to_json())  # before upload: never lose uploaded keys
        replacing = server_key(query, "master_keys", user_id) is not None
        body = build_signing_upload(user_id, keys, device_id, client.olm.account.sign)
        await _upload_signing_keys(client, password, body)
        log.info("cross-signing keys uploaded", replaced=replacing)

    if device_is_signed(device, user_id, keys.public("self_signing")):
        log.debug("device already cross-signed", device_id=device_id)
        return
    signed = sign_with(device, user_id, keys.self_signing)
    signed["signatures"] = {user_id: signed["signatures"][user_id]}
    reply = await channel.upload_signatures({user_id: {device_id: signed}})
    if reply.get("failures"):
        codes = sorted(
            str(f.get("errcode")) for fs in reply["failures"].values() for f in fs.values()
        )
        raise HomeserverError(f"uploading device signature failed: {', '.join(codes)}")
    log.info("device cross-signed", device_id=device_id)
