"""Pure parts of cross-signing: key objects, canonical JSON and signatures."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bots.base.errors import SecretFileError
from bots.framework.cross_signing import (
    CrossSigningKeys,
    build_signing_upload,
    canonical_json,
    device_is_signed,
    key_object,
    public_key_b64,
    server_key,
    sign_with,
    unpadded_b64,
)
from bots.framework.secrets import write_secret

USER = "@bot:example.org"
DEVICE = "BOTDEVICE"


def _decode(text: str) -> bytes:
    assert "=" not in text, "Matrix uses unpadded base64"
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _pub(public_b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_decode(public_b64))


def _verify(obj: dict[str, Any], signer_public: str, key_id: str) -> None:
    sig = obj["signatures"][USER][key_id]
    _pub(signer_public).verify(_decode(sig), canonical_json(obj))


def _device() -> dict[str, Any]:
    return {
        "user_id": USER,
        "device_id": DEVICE,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"curve25519:{DEVICE}": "c" * 43, f"ed25519:{DEVICE}": "e" * 43},
        "signatures": {USER: {f"ed25519:{DEVICE}": "s" * 86}},
        "unsigned": {"device_display_name": "Hearth bot"},
    }


def test_canonical_json_sorts_keys_and_drops_signatures_and_unsigned() -> None:
    obj = {"b": 1, "a": {"z": "é", "y": [2, 1]}, "signatures": {"x": 1}, "unsigned": {"u": 1}}
    assert canonical_json(obj) == '{"a":{"y":[2,1],"z":"é"},"b":1}'.encode()


def test_key_object_shape() -> None:
    assert key_object(USER, "master", "PUB") == {
        "user_id": USER,
        "usage": ["master"],
        "keys": {"ed25519:PUB": "PUB"},
    }


def test_signing_upload_signatures_verify() -> None:
    keys = CrossSigningKeys.generate()
    device_key = Ed25519PrivateKey.generate()
    seen: list[str] = []

    def device_sign(message: str) -> str:
        seen.append(message)
        return unpadded_b64(device_key.sign(message.encode()))

    body = build_signing_upload(USER, keys, DEVICE, device_sign)
    master, ssk, usk = body["master_key"], body["self_signing_key"], body["user_signing_key"]
    master_pub = keys.public("master")

    assert master["keys"] == {f"ed25519:{master_pub}": master_pub}
    assert ssk["usage"] == ["self_signing"]
    assert usk["usage"] == ["user_signing"]
    assert len({master_pub, keys.public("self_signing"), keys.public("user_signing")}) == 3
    # The device signed the canonical form of the master key, nothing else.
    assert seen == [canonical_json(master).decode()]
    assert list(json.loads(seen[0])) == ["keys", "usage", "user_id"]
    _verify(master, public_key_b64(device_key), f"ed25519:{DEVICE}")
    _verify(ssk, master_pub, f"ed25519:{master_pub}")
    _verify(usk, master_pub, f"ed25519:{master_pub}")


def test_signature_breaks_when_object_changes() -> None:
    keys = CrossSigningKeys.generate()
    ssk = sign_with(
        key_object(USER, "self_signing", keys.public("self_signing")), USER, keys.master
    )
    ssk["usage"] = ["user_signing"]
    with pytest.raises(InvalidSignature):
        _verify(ssk, keys.public("master"), f"ed25519:{keys.public('master')}")


def test_device_signature_keeps_existing_and_drops_unsigned() -> None:
    keys = CrossSigningKeys.generate()
    device = _device()
    ssk_pub = keys.public("self_signing")
    assert not device_is_signed(device, USER, ssk_pub)

    signed = sign_with(device, USER, keys.self_signing)
    assert "unsigned" not in signed
    assert "unsigned" in device, "input is not modified"
    assert signed["signatures"][USER][f"ed25519:{DEVICE}"] == "s" * 86
    _verify(signed, ssk_pub, f"ed25519:{ssk_pub}")
    assert device_is_signed(signed, USER, ssk_pub)
    # A signature by another key, or over other content, does not count.
    assert not device_is_signed(signed, USER, CrossSigningKeys.generate().public("self_signing"))
    signed["keys"][f"ed25519:{DEVICE}"] = "f" * 43
    assert not device_is_signed(signed, USER, ssk_pub)


def test_keys_round_trip_through_secret_file(tmp_path: Path) -> None:
    keys = CrossSigningKeys.generate()
    path = tmp_path / "xsign.json"
    write_secret(path, keys.to_json())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = CrossSigningKeys.load(path)
    assert loaded is not None
    for usage in ("master", "self_signing", "user_signing"):
        assert loaded.public(usage) == keys.public(usage)
    assert CrossSigningKeys.load(tmp_path / "missing.json") is None


def test_invalid_keys_file_is_reported_without_content(tmp_path: Path) -> None:
    path = tmp_path / "xsign.json"
    write_secret(path, '{"master": "not-a-key-SECRET"}')
    with pytest.raises(SecretFileError) as err:
        CrossSigningKeys.load(path)
    assert "SECRET" not in str(err.value)


def test_server_key_reads_keys_query_reply() -> None:
    query = {"master_keys": {USER: key_object(USER, "master", "PUB")}}
    assert server_key(query, "master_keys", USER) == "PUB"
    assert server_key(query, "self_signing_keys", USER) is None
    assert server_key(query, "master_keys", "@other:example.org") is None


def test_signatures_verify_with_synapse_signedjson() -> None:
    """Cross-check against the implementation the homeserver itself uses."""
    sign = pytest.importorskip("signedjson.sign")
    key = pytest.importorskip("signedjson.key")
    keys = CrossSigningKeys.generate()
    body = build_signing_upload(USER, keys, DEVICE, lambda m: unpadded_b64(keys.master.sign(b"")))
    master_pub = keys.public("master")
    verify_key = key.decode_verify_key_bytes(f"ed25519:{master_pub}", _decode(master_pub))
    sign.verify_signed_json(body["self_signing_key"], USER, verify_key)
    sign.verify_signed_json(body["user_signing_key"], USER, verify_key)
