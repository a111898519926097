"""Which re-sent room keys the bot takes from another user's device, after
it lost the Olm session the original came in. Pure."""

from __future__ import annotations

from typing import Any

from bots.framework.trust.bundle import MEGOLM
from bots.framework.trust.olm_sender import first_hand_key

CURVE, ED = "erin-curve", "erin-ed"
ASKED = ("!room:x.org", "session-1")


def key(**changes: Any) -> dict[str, Any]:
    content: dict[str, Any] = {
        "algorithm": MEGOLM,
        "room_id": "!room:x.org",
        "session_id": "session-1",
        "session_key": "AQAA…",
        "sender_key": CURVE,
        "sender_claimed_ed25519_key": ED,
        "forwarding_curve25519_key_chain": [],
    }
    return content | changes


def test_the_session_makers_own_device_re_sending_an_asked_for_key_is_taken() -> None:
    assert first_hand_key(key(), CURVE, ED, ASKED)


def test_anything_else_is_refused() -> None:
    # Not asked for (or asked for another session or room).
    assert not first_hand_key(key(), CURVE, ED, None)
    assert not first_hand_key(key(), CURVE, ED, ("!room:x.org", "session-2"))
    assert not first_hand_key(key(room_id="!other:x.org"), CURVE, ED, ASKED)
    # A session someone else made, passed on by this device.
    assert not first_hand_key(key(sender_key="mallory-curve"), CURVE, ED, ASKED)
    assert not first_hand_key(key(forwarding_curve25519_key_chain=["x"]), CURVE, ED, ASKED)
    # Claiming a signing key the device does not have, or a device unknown.
    assert not first_hand_key(key(sender_claimed_ed25519_key="other-ed"), CURVE, ED, ASKED)
    assert not first_hand_key(key(), CURVE, None, ASKED)
    # Another algorithm.
    assert not first_hand_key(key(algorithm="m.olm.v1.curve25519-aes-sha2"), CURVE, ED, ASKED)
