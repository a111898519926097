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

A list is someone else's to write, so its globs are bounded before any is
applied: one must name someone (at least :data:`MIN_NAME_CHARS` ordinary
characters before its ":"; ``@*:server`` would ban everyone on a server,
this community's own included) and have at most :data:`MAX_STARS` stars.
Any other is refused (:func:`glob_problem`), never applied, and the
moderators are told. Globs are matched with RE2, in time linear in the
user ID whatever the glob: Python's ``re`` takes about a second on
``@********:*.invalid``, fifty times more for every two stars more.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

PUBLISHED = "m.policy.rule.user"
RULE_TYPES = (PUBLISHED, "m.room.rule.user", "org.matrix.mjolnir.rule.user")
BAN = "m.ban"
# MSC4204: ban, and remove what they posted. Published under its unstable
# name, which Draupnir and Meowlnir read; the stable one is read too.
TAKEDOWN = "org.matrix.msc4204.takedown"
TAKEDOWNS = frozenset({TAKEDOWN, "m.takedown"})
BANNING = frozenset({BAN, "org.matrix.mjolnir.ban"}) | TAKEDOWNS
MAX_ENTITY = 255  # a user ID's longest, as the spec has it
MIN_NAME_CHARS = 3  # ordinary characters a glob keeps before its ":"
MAX_STARS = 8
WILDCARDS = frozenset("*?")
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
        return _matcher(self.entity)(user_id)


@dataclass(frozen=True)
class Refused:
    """A banning rule of a followed list that is never applied, and why
    (for the moderators); *code* names the reason for the log."""

    room_id: str
    entity: str
    code: str
    why: str


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


def is_glob(entity: str) -> bool:
    return any(c in WILDCARDS for c in entity)


def glob_problem(entity: str) -> tuple[str, str] | None:
    """Why a glob is not applied, as (code, what to tell the moderators);
    None for one that names someone, and for a plain user ID."""
    if not is_glob(entity):
        return None
    if not entity.startswith("@") or ":" not in entity:
        return "shape", "It is not a pattern of user IDs (@name:server)"
    name = entity[1:].split(":", 1)[0]
    if sum(c not in WILDCARDS for c in name) < MIN_NAME_CHARS:
        return "sweeping", (
            "It names no one in particular and would match everyone on a server: a pattern "
            f"needs at least {MIN_NAME_CHARS} characters other than * and ? before the ':'"
        )
    stars = entity.count("*")
    if stars > MAX_STARS:
        return "complex", f"It has {stars} '*'; a pattern may have at most {MAX_STARS}"
    return None


def usable(entity: object) -> bool:
    """A rule's entity worth acting on: a user ID, or a glob of one that
    names someone (:func:`glob_problem`)."""
    return _readable(entity) and glob_problem(str(entity)) is None


def _readable(entity: object) -> bool:
    """A user ID or a glob: anything else is no rule about a user at all."""
    if not isinstance(entity, str) or not 0 < len(entity) <= MAX_ENTITY:
        return False
    return is_glob(entity) or (entity.startswith("@") and ":" in entity)


@lru_cache(maxsize=4096)
def _matcher(entity: str) -> Callable[[str], bool]:
    """Whether a user ID is *entity*: equal to it, or, for a glob (``*``
    any run of characters, ``?`` any one, the rest literal), matched by it
    in time linear in the ID (RE2). The glob's literal runs are looked for
    first, which rules out nearly every member without running RE2."""
    if not is_glob(entity):
        return entity.__eq__
    runs = tuple(r for r in entity.replace("?", "*").split("*") if r)
    while "**" in entity:
        entity = entity.replace("**", "*")  # the same glob, a smaller machine
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re2.escape(c) for c in entity)
    options = re2.Options()
    options.dot_nl = True
    compiled = re2.compile(pattern, options)

    def matches(user_id: str) -> bool:
        return all(r in user_id for r in runs) and compiled.fullmatch(user_id) is not None

    return matches


KeyedState = Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]]


def ban_rules(lists: Iterable[str], keyed_state: KeyedState) -> list[Rule]:
    """The banning rules of the followed *lists*, from the rooms' state
    (event type → room → state key → content). Malformed ones are skipped,
    and refused globs (:func:`refused_rules`) are never among them."""
    return _read(lists, keyed_state)[0]


def refused_rules(lists: Iterable[str], keyed_state: KeyedState) -> list[Refused]:
    """The banning rules of the followed *lists* whose glob is refused
    (:func:`glob_problem`), each once, for the moderators to hear of."""
    return _read(lists, keyed_state)[1]


def _read(lists: Iterable[str], keyed_state: KeyedState) -> tuple[list[Rule], list[Refused]]:
    found: dict[tuple[str, str], Rule] = {}
    refused: dict[tuple[str, str], Refused] = {}
    for event_type in RULE_TYPES:
        for room in lists:
            for content in keyed_state.get(event_type, {}).get(room, {}).values():
                if content.get("recommendation") not in BANNING:
                    continue
                entity, digest = content.get("entity"), None
                if entity is None and (digest := _hash_of(content)) is not None:
                    entity = f"sha256:{digest}"
                elif not _readable(entity):
                    continue
                elif (problem := glob_problem(str(entity))) is not None:
                    code, why = problem
                    refused.setdefault((room, str(entity)), Refused(room, str(entity), code, why))
                    continue
                reason = content.get("reason")
                assert isinstance(entity, str)
                takedown = content.get("recommendation") in TAKEDOWNS
                rule = Rule(
                    entity, reason if isinstance(reason, str) else "", room, takedown, digest
                )
                found.setdefault((room, entity), rule)
    return list(found.values()), list(refused.values())


def banned_by(rules: Iterable[Rule], user_id: str, exempt: Iterable[str]) -> Rule | None:
    """The first of *rules* that bans *user_id*, unless they are exempt."""
    if user_id in set(exempt):
        return None
    digest: str | None = None
    for r in rules:
        if r.sha256 is not None:
            # Hashed once per member, not once per rule.
            digest = digest or entity_hash(user_id)
            if digest == r.sha256:
                return r
        elif _matcher(r.entity)(user_id):
            return r
    return None


def rule_key(user_id: str) -> str:
    """The state key Hearth publishes a user's rule under."""
    return f"rule:{user_id}"


def ban_rule(user_id: str, reason: str, takedown: bool = False) -> dict[str, Any]:
    return {"entity": user_id, "recommendation": TAKEDOWN if takedown else BAN, "reason": reason}
