"""A group's protections, as the community YAML declares them.

Every setting has a gentle default fit for a support group: the bot warns
first, then mutes for a while, then tells the moderators; it never bans on
its own. Patterns are compiled here, with RE2 (linear time: no pattern a
moderator writes can stall the bot), so a bad one is reported with its key
path when the file is loaded, not when the first message arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import re2
from pydantic import Field, ValidationError, field_validator

from bots.framework.config import Strict


class Step(StrEnum):
    """What the bot does about the n-th offence of one member."""

    WARN = "warn"  # a private word, by encrypted DM
    MUTE = "mute"  # for mute_minutes, lifted by the scheduler
    ALERT = "alert"  # the moderators are told, and decide


# A support group's own words for wanting to die or to hurt oneself. Never
# punished: they bring the moderators (and, by DM, the crisis resources).
DEFAULT_CRISIS = (
    r"\bkill(ing)? my ?self\b",
    r"\bend(ing)? (it all|my life)\b",
    r"\bsuicid",
    r"\b(want|wanted|wish) to die\b",
    r"\bdon'?t want to (live|be here|wake up)\b",
    r"\bself[- ]?harm",
    r"\b(hurt|hurting|cut|cutting) my ?self\b",
    r"\bno (reason|point) (to|in) (live|living|going on)\b",
    r"\bbetter off without me\b",
    r"\boverdos(e|ing)\b",
)


def compile_patterns(patterns: tuple[str, ...]) -> Any:
    """One case-insensitive RE2 alternation of *patterns*; None if empty.
    Raises ValueError naming the first pattern that does not compile."""
    if not patterns:
        return None
    options = re2.Options()
    options.case_sensitive = False
    options.never_capture = True
    for i, p in enumerate(patterns):
        try:
            re2.compile(p, options)
        except re2.error as exc:
            raise ValueError(f"pattern {i + 1} ({p!r}) does not compile: {exc}") from None
    return re2.compile("|".join(f"(?:{p})" for p in patterns), options)


def _patterns(v: tuple[str, ...]) -> tuple[str, ...]:
    if any(not p.strip() for p in v):
        raise ValueError("a pattern is empty")
    compile_patterns(v)
    return v


class Flood(Strict):
    """More than *messages* from one member within *seconds*."""

    enabled: bool = True
    messages: int = Field(default=10, ge=2, le=1000)
    seconds: float = Field(default=60, ge=1, le=3600)


class Mentions(Strict):
    """More than *mentions* people mentioned by one member within *seconds*."""

    enabled: bool = True
    mentions: int = Field(default=10, ge=1, le=1000)
    seconds: float = Field(default=60, ge=1, le=3600)


class FirstMessage(Strict):
    """A link or media as the first message of someone who joined within *new_hours*."""

    enabled: bool = True
    links: bool = True
    media: bool = True
    new_hours: float = Field(default=24, ge=0.1, le=24 * 30)


class JoinWave(Strict):
    """More than *joins* within *minutes* (a leaky bucket): the room switches
    to ask-to-join and the moderators are told."""

    enabled: bool = True
    joins: int = Field(default=20, ge=2, le=10_000)
    minutes: float = Field(default=60, ge=1, le=24 * 60)


class Words(Strict):
    """Listed words and patterns (RE2, case-insensitive); text matching the
    allow list is ignored (e.g. "Scunthorpe")."""

    enabled: bool = True
    patterns: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()

    _p = field_validator("patterns", "allow")(_patterns)


class Crisis(Strict):
    """Language suggesting self-harm: never punished, never redacted."""

    enabled: bool = True
    patterns: tuple[str, ...] = DEFAULT_CRISIS
    # Send the community's crisis resources to the member by DM.
    send_resources: bool = True

    _p = field_validator("patterns")(_patterns)


class Protections(Strict):
    flood: Flood = Field(default_factory=Flood)
    mentions: Mentions = Field(default_factory=Mentions)
    first_message: FirstMessage = Field(default_factory=FirstMessage)
    join_wave: JoinWave = Field(default_factory=JoinWave)
    words: Words = Field(default_factory=Words)
    crisis: Crisis = Field(default_factory=Crisis)
    # The n-th offence within forget_hours gets the n-th step (the last repeats).
    steps: tuple[Step, ...] = Field(default=(Step.WARN, Step.MUTE, Step.ALERT), min_length=1)
    mute_minutes: float = Field(default=60, ge=1, le=7 * 24 * 60)
    forget_hours: float = Field(default=24, ge=1, le=24 * 30)
    # Redact the message that broke a rule (never a crisis message).
    redact: bool = True


# --- changes made in chat (`!protections set`), kept as the bot's own state ---

# The state event (state key: the group's key, in its main room) holding a
# group's protections as changed by moderators in chat, over the file's.
OVERRIDES = "org.hearth.protections"

SETTABLE = {
    f"{section}.{name}": (section, name)
    for section, model in (
        ("flood", Flood),
        ("mentions", Mentions),
        ("first_message", FirstMessage),
        ("join_wave", JoinWave),
        ("words", Words),
        ("crisis", Crisis),
    )
    for name, info in model.model_fields.items()
    if info.annotation in (bool, int, float)
} | {name: (None, name) for name in ("mute_minutes", "forget_hours", "redact")}


def effective(base: Protections, overrides: Mapping[str, Any]) -> Protections:
    """The file's settings with the chat's changes over them. Changes that
    no longer fit (the file changed under them) are dropped, not fatal."""
    if not overrides:
        return base
    merged = base.model_dump(mode="json")
    for path, value in overrides.items():
        where = SETTABLE.get(path)
        if where is None:
            continue
        section, name = where
        (merged[section] if section else merged)[name] = value
    try:
        return Protections.model_validate(merged)
    except ValueError:
        return base


def change(
    base: Protections, overrides: Mapping[str, Any], path: str, raw: str
) -> dict[str, Any] | str:
    """The overrides with *path* set to *raw*, or why that cannot be."""
    if path not in SETTABLE:
        return f"{path} can't be changed here; these can: {', '.join(sorted(SETTABLE))}."
    value: Any = raw.strip().lower()
    if value in ("on", "true", "yes"):
        value = True
    elif value in ("off", "false", "no"):
        value = False
    else:
        try:
            value = float(value) if "." in value else int(value)
        except ValueError:
            return f"{path} needs a number, or on/off."
    updated = {**overrides, path: value}
    merged = base.model_dump(mode="json")
    section, name = SETTABLE[path]
    (merged[section] if section else merged)[name] = value
    try:
        Protections.model_validate(merged)
    except ValidationError as exc:
        return f"{path}: {exc.errors()[0].get('msg', 'not allowed')}."
    return updated


def drift(base: Protections, overrides: Mapping[str, Any]) -> list[str]:
    """Each change made in chat beside what the file says, for `hearth provision`."""
    merged = base.model_dump(mode="json")
    out = []
    for path, value in sorted(overrides.items()):
        where = SETTABLE.get(path)
        if where is None:
            continue
        section, name = where
        filed = (merged[section] if section else merged)[name]
        if filed != value:
            out.append(f"{path} is {value} (the community file says {filed})")
    return out
