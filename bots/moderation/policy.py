"""Shared ban lists: Matrix policy rooms (m.policy.rule.user).

The bot publishes its community's permanent, community-wide bans as rules
in the community's ban-list room, and bans, across its community, members
matching the rules of the lists it follows. The rules are the spec's, which
Draupnir and Meowlnir read and write too: `entity` (a user ID, or a glob
with `*` and `?`), `recommendation` (`m.ban`, or MSC4204's takedown) and
`reason`; a rule whose content is emptied is withdrawn. Older names of the
event type are read as well. A rule may name its user by hash alone
(MSC4205: `hashes.sha256`, or Draupnir's `org.matrix.msc4205.hashes`, the
base64 SHA-256 of the user ID), so that the list is no directory of who was
banned; it matches a member whose ID hashes the same. Pure.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PUBLISHED = "m.policy.rule.user"
RULE_TYPES = (PUBLISHED, "m.room.rule.user", "org.matrix.mjolnir.rule.user")
BAN = "m.ban"
# MSC4204: ban, and remove what they posted. Published under its unstable
# name, which Draupnir and Meowlnir read; the stable one is read too.
TAKEDOWN = "org.matrix.msc4204.takedown"
TAKEDOWNS = frozenset({TAKEDOWN, "m.takedown"})
BANNING = frozenset({BAN, "org.matrix.mjolnir.ban"}) | TAKEDOWNS
MIN_LITERAL = 4  # a glob must name something: "@*:*" would ban everyone
HASH_KEYS = ("hashes", "org.matrix.msc4205.hashes")
SHA256_CHARS = 43  # unpadded base64 of 32 bytes


@dataclass(frozen=True)
class Rule:
    entity: str  # a user ID or glob; "sha256:<hash>" for a rule by hash
    reason: str
    room_id: str  # the list it came from
    takedown: bool = False  # their messages are to be removed too
    sha256: str | None = None  # unpadded, when the rule names its user by hash

    def matches(self, user_id: str) -> bool:
        if self.sha256 is not None:
            return entity_hash(user_id) == self.sha256
        return _compiled(self.entity).fullmatch(user_id) is not None


def entity_hash(entity: str) -> str:
    """MSC4205's hash of an entity, unpadded (Draupnir pads it; both read)."""
    digest = hashlib.sha256(entity.encode()).digest()
    return base64.b64encode(digest).decode().rstrip("=")


def _hash_of(content: Mapping[str, Any]) -> str | None:
    """A rule's well-formed SHA-256 hash of its entity, unpadded, if any."""
    for key in HASH_KEYS:
        hashes = content.get(key)
        value = hashes.get("sha256") if isinstance(hashes, Mapping) else None
        if isinstance(value, str) and len(value.rstrip("=")) == SHA256_CHARS:
            return value.rstrip("=")
    return None


def _compiled(glob: str) -> re.Pattern[str]:
    # Only * and ?: the rest is literal. Linear for IDs this short.
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(pattern, re.DOTALL)


def usable(entity: object) -> bool:
    """A rule's entity worth acting on: a string, a user ID or a glob of one,
    naming enough that it cannot sweep up everyone."""
    if not isinstance(entity, str) or not entity.startswith("@") or len(entity) > 255:
        return False
    literal = entity.replace("*", "").replace("?", "")
    return len(literal) >= MIN_LITERAL and ":" in entity


def ban_rules(
    lists: Iterable[str], keyed_state: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]]
) -> list[Rule]:
    """The banning rules of the followed *lists*, from the rooms' state
    (event type → room → state key → content). Malformed ones are skipped."""
    found: dict[tuple[str, str], Rule] = {}
    for event_type in RULE_TYPES:
        for room in lists:
            for content in keyed_state.get(event_type, {}).get(room, {}).values():
                if content.get("recommendation") not in BANNING:
                    continue
                entity, digest = content.get("entity"), None
                if entity is None and (digest := _hash_of(content)) is not None:
                    entity = f"sha256:{digest}"
                elif not usable(entity):
                    continue
                reason = content.get("reason")
                assert isinstance(entity, str)
                takedown = content.get("recommendation") in TAKEDOWNS
                rule = Rule(
                    entity, reason if isinstance(reason, str) else "", room, takedown, digest
                )
                found.setdefault((room, entity), rule)
    return list(found.values())


def banned_by(rules: Iterable[Rule], user_id: str, exempt: Iterable[str]) -> Rule | None:
    if user_id in set(exempt):
        return None
    return next((r for r in rules if r.matches(user_id)), None)


def rule_key(user_id: str) -> str:
    """The state key Hearth publishes a user's rule under."""
    return f"rule:{user_id}"


def ban_rule(user_id: str, reason: str, takedown: bool = False) -> dict[str, Any]:
    return {"entity": user_id, "recommendation": TAKEDOWN if takedown else BAN, "reason": reason}
