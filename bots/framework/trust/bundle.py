"""The MSC4268 key bundle and the shared-history flag, as data. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MEGOLM = "m.megolm.v1.aes-sha2"
# The stable name first; clients before Matrix 1.19 know only the unstable one.
BUNDLE_EVENT_TYPES = ("m.room_key_bundle", "io.element.msc4268.room_key_bundle")
# The flag on m.room_key that lets its session go to later members. Rust
# crypto (Element) reads "m.shared_history" or its MSC3061 alias, not the
# spec's bare "shared_history", and rejects an event carrying both of its
# names: the bot sends the first name only and accepts any of the three.
SHARED_HISTORY = "m.shared_history"
SHARED_HISTORY_NAMES = (SHARED_HISTORY, "org.matrix.msc3061.shared_history", "shared_history")
HISTORY_NOT_SHARED = "m.history_not_shared"


def marked_shareable(source: Mapping[str, Any]) -> bool:
    """Whether a decrypted ``m.room_key`` event says its session may be shared."""
    content = source.get("content")
    return isinstance(content, Mapping) and any(
        content.get(name) is True for name in SHARED_HISTORY_NAMES
    )


@dataclass(frozen=True)
class ExportedSession:
    room_id: str
    sender_key: str
    session_id: str
    # The Ed25519 key the sender's device claimed when it shared the session.
    signing_key: str
    # Exported at its first known index; None when not shareable.
    session_key: str | None

    @property
    def shareable(self) -> bool:
        return self.session_key is not None


def build_bundle(room_id: str, sessions: Iterable[ExportedSession]) -> dict[str, Any]:
    """The bundle's plaintext: the shareable sessions' keys, the others withheld.

    Both lists are always present (a receiver rejects a bundle without
    either); each key is a session exported at its first known index.
    """
    keys: list[dict[str, Any]] = []
    withheld: list[dict[str, Any]] = []
    for s in sessions:
        if s.room_id != room_id:
            continue
        if s.session_key is not None:
            keys.append(
                {
                    "algorithm": MEGOLM,
                    "room_id": room_id,
                    "sender_key": s.sender_key,
                    "session_id": s.session_id,
                    "session_key": s.session_key,
                    "sender_claimed_keys": {"ed25519": s.signing_key},
                }
            )
        else:
            withheld.append(
                {
                    "algorithm": MEGOLM,
                    "code": HISTORY_NOT_SHARED,
                    "reason": "The sender did not share this part of the history.",
                    "room_id": room_id,
                    "sender_key": s.sender_key,
                    "session_id": s.session_id,
                }
            )
    return {"room_keys": keys, "withheld": withheld}


def bundle_event_content(room_id: str, file: Mapping[str, Any]) -> dict[str, Any]:
    """The to-device event that points a newcomer's device at the uploaded bundle."""
    return {"room_id": room_id, "file": dict(file)}
