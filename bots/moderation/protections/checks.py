"""The protections' judgements: pure functions of a message (or a join),
what the room remembers, and the group's settings.

Nothing here sends, stores or logs; :mod:`bots.moderation.protections.decide`
turns findings into what the bot does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from bots.moderation.protections.seen import Seen
from bots.moderation.protections.window import Bucket
from provisioning.protections import Protections, compile_patterns


class Rule(StrEnum):
    FLOOD = "flood"
    MENTIONS = "mentions"
    FIRST_MESSAGE = "first message"
    WORDS = "words"
    CRISIS = "crisis"
    JOIN_WAVE = "join wave"
    SLOW_MODE = "slow mode"


@dataclass(frozen=True)
class Finding:
    rule: Rule
    detail: str  # for the moderators: counts and limits, never the message's text


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> Any:
    return compile_patterns(patterns)


def check_message(
    msg: Seen,
    recent: tuple[tuple[float, int], ...],
    joined_at: float | None,
    cfg: Protections,
    slow_s: float = 0,
) -> tuple[Finding, ...]:
    """Which rules *msg* breaks. *recent* is the sender's earlier messages
    (time, mentions) within the longest window; *joined_at* is when they
    joined if this is their first message since; *slow_s*, when a moderator
    set a slow mode, the least time between one member's messages."""
    if cfg.crisis.enabled and _matches(cfg.crisis.patterns, (), msg.body):
        # Someone who may be in danger is helped, never punished: no other rule applies.
        return (Finding(Rule.CRISIS, "language suggesting self-harm"),)
    found: list[Finding] = []
    if slow_s > 0 and any(ts > msg.ts - slow_s for ts, _ in recent):
        found.append(Finding(Rule.SLOW_MODE, f"one message every {slow_s:g} s"))
    flood = cfg.flood
    if flood.enabled:
        count = 1 + sum(1 for ts, _ in recent if ts > msg.ts - flood.seconds)
        if count > flood.messages:
            found.append(
                Finding(
                    Rule.FLOOD, f"{count} messages in {flood.seconds:g} s (limit {flood.messages})"
                )
            )
    mentions = cfg.mentions
    if mentions.enabled and msg.mentions:
        total = msg.mentions + sum(m for ts, m in recent if ts > msg.ts - mentions.seconds)
        if total > mentions.mentions:
            found.append(
                Finding(
                    Rule.MENTIONS,
                    f"{total} mentions in {mentions.seconds:g} s (limit {mentions.mentions})",
                )
            )
    first = cfg.first_message
    if first.enabled and joined_at is not None and msg.ts - joined_at <= first.new_hours * 3600:
        what = (
            "a link" if first.links and msg.link else "media" if first.media and msg.media else ""
        )
        if what:
            found.append(Finding(Rule.FIRST_MESSAGE, f"{what} as the first message after joining"))
    words = cfg.words
    if words.enabled and words.patterns and _matches(words.patterns, words.allow, msg.body):
        found.append(Finding(Rule.WORDS, "a listed word or pattern"))
    return tuple(found)


def _matches(patterns: tuple[str, ...], allow: tuple[str, ...], text: str) -> bool:
    if not text:
        return False
    if allow:
        text = _compiled(allow).sub(" ", text)
    return _compiled(patterns).search(text) is not None


def check_join(bucket: Bucket, ts: float, cfg: Protections) -> tuple[Bucket, Finding | None]:
    """One more join into the room's leaky bucket, which drains at
    joins per minutes; a finding when it overflows."""
    wave = cfg.join_wave
    if not wave.enabled:
        return bucket, None
    rate = wave.joins / (wave.minutes * 60)
    level = max(0.0, bucket.level - max(0.0, ts - bucket.ts) * rate) + 1
    after = Bucket(level, max(ts, bucket.ts))
    if level > wave.joins:
        return after, Finding(
            Rule.JOIN_WAVE, f"more than {wave.joins} joins in {wave.minutes:g} minutes"
        )
    return after, None
