"""Reading other users' cross-signing and the trust rules built on it (pure)."""

from __future__ import annotations

import copy
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bots.framework.cross_signing import (
    CrossSigningKeys,
    key_object,
    public_key_b64,
    sign_with,
    unpadded_b64,
)
from bots.framework.events import SenderDevice, creators_outrank_power_levels, room_creators
from bots.framework.intake.parse import sender_device, to_event, with_sender_keys
from bots.framework.trust.identity import identity_of
from bots.framework.trust.olm_sender import chunks
from bots.framework.trust.policy import (
    DeviceTrust,
    KeySharing,
    Pin,
    Recipient,
    device_trust,
    on_identity_seen,
    split_recipients,
)

ALICE = "@alice:example.org"
MALLORY = "@mallory:example.org"


class Person:
    """A user with a cross-signing identity and devices, as /keys/query shows them."""

    def __init__(self, user_id: str = ALICE) -> None:
        self.user_id = user_id
        self.keys = CrossSigningKeys.generate()
        self.devices: dict[str, dict[str, Any]] = {}
        self.device_keys: dict[str, Ed25519PrivateKey] = {}

    def add_device(self, device_id: str, *, signed: bool = True) -> dict[str, Any]:
        key = Ed25519PrivateKey.generate()
        ed = public_key_b64(key)
        curve = unpadded_b64(device_id.encode().ljust(32, b"c"))
        obj = {
            "user_id": self.user_id,
            "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"ed25519:{device_id}": ed, f"curve25519:{device_id}": curve},
        }
        obj = self._sign_device(obj, key, device_id)
        if signed:
            obj = merge_signatures(obj, sign_with(obj, self.user_id, self.keys.self_signing))
        self.devices[device_id] = obj
        self.device_keys[device_id] = key
        return obj

    def _sign_device(
        self, obj: dict[str, Any], key: Ed25519PrivateKey, device_id: str
    ) -> dict[str, Any]:
        signed = sign_with(obj, self.user_id, key)
        sigs = signed["signatures"][self.user_id]
        sigs[f"ed25519:{device_id}"] = sigs.pop(f"ed25519:{public_key_b64(key)}")
        return signed

    def reply(self) -> dict[str, Any]:
        master = key_object(self.user_id, "master", self.keys.public("master"))
        ssk = sign_with(
            key_object(self.user_id, "self_signing", self.keys.public("self_signing")),
            self.user_id,
            self.keys.master,
        )
        return {
            "device_keys": {self.user_id: copy.deepcopy(self.devices)},
            "master_keys": {self.user_id: master},
            "self_signing_keys": {self.user_id: ssk},
        }


def merge_signatures(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for user, sigs in b.get("signatures", {}).items():
        out.setdefault("signatures", {}).setdefault(user, {}).update(sigs)
    return out


# --- reading identities ---


def test_device_signed_through_the_whole_chain_is_signed_by_owner() -> None:
    alice = Person()
    alice.add_device("PHONE")
    alice.add_device("LAPTOP", signed=False)
    identity = identity_of(ALICE, alice.reply())
    assert identity.master == alice.keys.public("master")
    assert identity.devices["PHONE"].signed_by_owner
    assert not identity.devices["LAPTOP"].signed_by_owner


def test_self_signing_key_not_signed_by_master_makes_nothing_signed() -> None:
    alice = Person()
    alice.add_device("PHONE")
    reply = alice.reply()
    # The server swaps in a self-signing key signed by some other key.
    reply["self_signing_keys"][ALICE] = sign_with(
        key_object(ALICE, "self_signing", alice.keys.public("self_signing")),
        ALICE,
        Ed25519PrivateKey.generate(),
    )
    identity = identity_of(ALICE, reply)
    assert identity.self_signing is None
    assert not identity.devices["PHONE"].signed_by_owner


def test_forged_device_signature_is_not_trusted() -> None:
    alice = Person()
    obj = alice.add_device("PHONE")
    sig_id = f"ed25519:{alice.keys.public('self_signing')}"
    forged = copy.deepcopy(obj)
    forged["signatures"][ALICE][sig_id] = unpadded_b64(b"\x00" * 64)
    alice.devices["PHONE"] = forged
    assert not identity_of(ALICE, alice.reply()).devices["PHONE"].signed_by_owner


def test_device_keys_changed_after_signing_are_dropped() -> None:
    alice = Person()
    obj = alice.add_device("PHONE")
    obj["keys"]["curve25519:PHONE"] = unpadded_b64(b"x" * 32)  # not what the device signed
    alice.devices["PHONE"] = obj
    assert "PHONE" not in identity_of(ALICE, alice.reply()).devices


def test_device_listed_under_another_user_or_id_is_dropped() -> None:
    alice, mallory = Person(), Person(MALLORY)
    alice.add_device("PHONE")
    reply = alice.reply()
    reply["device_keys"][ALICE]["OTHER"] = reply["device_keys"][ALICE]["PHONE"]
    reply["device_keys"][ALICE]["EVIL"] = mallory.add_device("EVIL")
    assert set(identity_of(ALICE, reply).devices) == {"PHONE"}


def test_master_key_of_another_user_or_usage_is_refused() -> None:
    alice = Person()
    alice.add_device("PHONE")
    reply = alice.reply()
    reply["master_keys"][ALICE]["user_id"] = MALLORY
    assert identity_of(ALICE, reply).master is None
    reply = alice.reply()
    reply["master_keys"][ALICE]["usage"] = ["self_signing"]
    identity = identity_of(ALICE, reply)
    assert identity.master is None
    assert not identity.devices["PHONE"].signed_by_owner


def test_malformed_replies_give_an_empty_identity_not_a_crash() -> None:
    replies: tuple[dict[str, Any], ...] = (
        {},
        {"device_keys": []},
        {"device_keys": {ALICE: {"D": "not an object"}}},
        {"master_keys": {ALICE: {"keys": {"ed25519:a": "b", "ed25519:c": "d"}}}},
        {"device_keys": {ALICE: {"D": {"user_id": ALICE, "device_id": "D", "keys": 5}}}},
        {"master_keys": {ALICE: {"user_id": ALICE, "usage": ["master"], "keys": {"x": 1}}}},
    )
    for reply in replies:
        identity = identity_of(ALICE, reply)
        assert identity.master is None
        assert not identity.devices


def test_unknown_user_has_no_identity() -> None:
    alice = Person()
    alice.add_device("PHONE")
    identity = identity_of(MALLORY, alice.reply())
    assert identity.master is None
    assert not identity.devices


# --- who gets room keys ---


def recipient(person: Person, device_id: str) -> Recipient:
    keys = person.devices[device_id]["keys"]
    return Recipient(
        person.user_id, device_id, keys[f"curve25519:{device_id}"], keys[f"ed25519:{device_id}"]
    )


def test_only_cross_signed_devices_get_keys_by_default() -> None:
    alice = Person()
    alice.add_device("PHONE")
    alice.add_device("NEW", signed=False)
    identities = {ALICE: identity_of(ALICE, alice.reply())}
    devices = [recipient(alice, "PHONE"), recipient(alice, "NEW")]
    allowed, withheld = split_recipients(devices, identities, KeySharing.CROSS_SIGNED)
    assert [d.device_id for d in allowed] == ["PHONE"]
    assert [d.device_id for d in withheld] == ["NEW"]
    allowed, withheld = split_recipients(devices, identities, KeySharing.ALL_DEVICES)
    assert len(allowed) == 2
    assert not withheld


def test_device_whose_olm_keys_differ_from_the_signed_ones_is_withheld() -> None:
    alice = Person()
    alice.add_device("PHONE")
    identities = {ALICE: identity_of(ALICE, alice.reply())}
    swapped = recipient(alice, "PHONE")
    swapped = Recipient(swapped.user_id, swapped.device_id, "some-other-curve", swapped.ed25519)
    allowed, withheld = split_recipients([swapped], identities, KeySharing.CROSS_SIGNED)
    assert not allowed
    assert withheld == [swapped]


def test_user_without_identity_gets_nothing() -> None:
    alice = Person()
    alice.add_device("PHONE", signed=False)
    allowed, _ = split_recipients([recipient(alice, "PHONE")], {}, KeySharing.CROSS_SIGNED)
    assert not allowed


def test_to_device_messages_are_split_at_250_devices() -> None:
    messages = {f"@u{u}:x": {f"D{d}": {"n": d} for d in range(3)} for u in range(200)}
    parts = chunks(messages)
    assert [sum(len(v) for v in p.values()) for p in parts] == [250, 250, 100]
    seen = {(u, d) for p in parts for u, ds in p.items() for d in ds}
    assert len(seen) == 600


# --- which device sent a command ---


def sender_of(person: Person, device_id: str, *, forwarded: bool = False) -> SenderDevice:
    r = recipient(person, device_id)
    return SenderDevice(r.curve25519, r.ed25519, forwarded)


def test_signed_device_with_the_pinned_identity_is_verified() -> None:
    alice = Person()
    alice.add_device("PHONE")
    identity = identity_of(ALICE, alice.reply())
    pinned = alice.keys.public("master")
    assert device_trust(sender_of(alice, "PHONE"), identity, pinned) is DeviceTrust.VERIFIED
    assert device_trust(sender_of(alice, "PHONE"), identity, None) is DeviceTrust.VERIFIED


def test_unsigned_unknown_forwarded_or_plain_senders_are_unverified() -> None:
    alice = Person()
    alice.add_device("PHONE")
    alice.add_device("NEW", signed=False)
    identity = identity_of(ALICE, alice.reply())
    pin = alice.keys.public("master")
    assert device_trust(sender_of(alice, "NEW"), identity, pin) is DeviceTrust.UNVERIFIED
    stranger = SenderDevice("unknown-curve", "unknown-ed")
    assert device_trust(stranger, identity, pin) is DeviceTrust.UNVERIFIED
    forwarded = sender_of(alice, "PHONE", forwarded=True)
    assert device_trust(forwarded, identity, pin) is DeviceTrust.UNVERIFIED
    assert device_trust(None, identity, pin) is DeviceTrust.UNVERIFIED


def test_device_of_another_user_does_not_vouch_for_the_sender() -> None:
    alice, mallory = Person(), Person(MALLORY)
    alice.add_device("PHONE")
    mallory.add_device("EVIL")
    identity = identity_of(ALICE, alice.reply())
    sent = sender_of(mallory, "EVIL")
    assert device_trust(sent, identity, None) is DeviceTrust.UNVERIFIED


def test_signed_device_of_a_new_identity_is_an_identity_change() -> None:
    old, new = Person(), Person()
    new.add_device("PHONE")
    identity = identity_of(ALICE, new.reply())
    trust = device_trust(sender_of(new, "PHONE"), identity, old.keys.public("master"))
    assert trust is DeviceTrust.IDENTITY_CHANGED


# --- pinning ---


def test_first_identity_is_pinned_and_a_member_change_is_repinned_quietly() -> None:
    assert on_identity_seen(None, "M1", holds_power=False).store == Pin("M1")
    assert on_identity_seen(Pin("M1"), "M1", holds_power=True).store is None
    decision = on_identity_seen(Pin("M1"), "M2", holds_power=False)
    assert decision.store == Pin("M2")
    assert not decision.report
    assert on_identity_seen(None, None, holds_power=True).store is None


def test_moderator_change_keeps_the_pin_and_is_reported_once() -> None:
    decision = on_identity_seen(Pin("M1"), "M2", holds_power=True)
    assert decision.report
    assert decision.store == Pin("M1", reported="M2")
    again = on_identity_seen(Pin("M1", reported="M2"), "M2", holds_power=True)
    assert not again.report
    assert again.store is None
    # A second, different reset is reported again.
    assert on_identity_seen(Pin("M1", reported="M2"), "M3", holds_power=True).report
    # Back to the pinned identity: the report is cleared.
    assert on_identity_seen(Pin("M1", reported="M2"), "M1", holds_power=True).store == Pin("M1")


# --- the sender's keys on the inbox record ---


def test_sender_keys_in_a_payload_are_replaced_by_the_recorded_ones() -> None:
    forged = {
        "type": "m.room.message",
        "event_id": "$e",
        "sender": ALICE,
        "origin_server_ts": 1,
        "content": {"msgtype": "m.text", "body": "!kick @bob:x"},
        "io.hearth.sender_keys": {"curve25519": "forged", "ed25519": "forged", "forwarded": False},
    }
    real = SenderDevice("real-curve", "real-ed")
    msg = to_event("!r:x", with_sender_keys(forged, real), encrypted=True)
    assert msg is not None
    assert getattr(msg, "sender_device", None) == real
    assert sender_device(with_sender_keys(forged, None)) is None


def test_unencrypted_event_has_no_sender_device() -> None:
    source = with_sender_keys(
        {
            "type": "m.room.message",
            "event_id": "$e",
            "sender": ALICE,
            "origin_server_ts": 1,
            "content": {"msgtype": "m.text", "body": "hi"},
        },
        SenderDevice("c", "e"),
    )
    msg = to_event("!r:x", source, encrypted=False)
    assert getattr(msg, "sender_device", "missing") is None


# --- room version 12 creators ---


def test_v12_creators_outrank_power_levels_and_older_rooms_do_not() -> None:
    assert creators_outrank_power_levels("12")
    assert creators_outrank_power_levels("org.matrix.hydra.11")
    assert not creators_outrank_power_levels("11")
    assert not creators_outrank_power_levels("1")


def test_room_creators_are_the_sender_and_additional_creators() -> None:
    create = {"sender": ALICE, "content": {"additional_creators": [MALLORY, 7]}}
    assert room_creators(create) == {ALICE, MALLORY}
    assert room_creators({"sender": ALICE, "content": "junk"}) == {ALICE}
    assert room_creators({}) == frozenset()
