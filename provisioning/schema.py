"""The community YAML: what an organiser declares, validated with key paths.

Defaults are the safe ones for a health community: invite only, history
visible only from joining, guests forbidden, nothing in the room directory.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from bots.base.errors import ConfigError, raise_all
from bots.framework.config import (
    BotConfig,
    Strict,
    check_homeserver_url,
    check_user_id,
    reject_inline_secrets,
    resolve_path,
)
from bots.framework.ids import is_user_id
from bots.framework.yaml_config import load_model_with_lines
from provisioning.meetings import MeetingDecl
from provisioning.protections import Protections

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
KEY_HELP = "a stable key: lowercase letters, digits and '-', at most 40 characters"


class JoinRule(StrEnum):
    INVITE = "invite"  # a moderator invites each member
    KNOCK = "knock"  # members ask to join; a moderator accepts
    SPACE = "space"  # anyone already in the community's Space may join


class RoomKind(StrEnum):
    CHAT = "chat"
    ANNOUNCEMENTS = "announcements"  # only moderators post
    MEETINGS = "meetings"


def _key(v: str) -> str:
    if not KEY_RE.match(v):
        raise ValueError(f"expected {KEY_HELP}")
    return v


def first_duplicate(values: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def _timezone(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a folder of the zone database, e.g. "Europe".
        raise ValueError("expected an IANA time zone such as Europe/London") from None
    return v


def _users(v: tuple[str, ...]) -> tuple[str, ...]:
    for user in v:
        if not is_user_id(user):
            raise ValueError(f"expected Matrix user IDs like @name:example.org (got {user!r})")
    if len(set(v)) != len(v):
        raise ValueError("lists a user twice")
    return v


class RoomDecl(Strict):
    key: str
    name: str = Field(min_length=1, max_length=255)
    kind: RoomKind = RoomKind.CHAT
    topic: str = ""

    _k = field_validator("key")(_key)


MAX_QUESTIONS = 10
QUESTION_MAX_CHARS = 500


def _questions(v: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if v is None:
        return v
    if len(v) > MAX_QUESTIONS:
        raise ValueError(f"at most {MAX_QUESTIONS} questions: each one is a message to answer")
    for q in v:
        if not q.strip():
            raise ValueError("a question is empty")
        if len(q) > QUESTION_MAX_CHARS:
            raise ValueError(f"a question is longer than {QUESTION_MAX_CHARS} characters")
    return tuple(q.strip() for q in v)


class OnboardingDecl(Strict):
    """What the bot says to newcomers, in the community's own words, and how
    long it keeps what they answer (screening answers can be health details)."""

    welcome: str = Field(
        default=(
            "Welcome! I'm the community's bot. Before you join a group, please read our "
            "code of conduct and answer a few questions for the moderators."
        ),
        min_length=1,
        max_length=2000,
    )
    privacy_advice: str = Field(
        default=(
            "**A word on privacy.** You can pick a display name that is not your real name "
            "(**Settings → Account**). Messages in the groups are end-to-end encrypted: the "
            "server cannot read them. Moderators see your answers to the questions below "
            "and what you post in groups; they cannot read your other conversations."
        ),
        min_length=1,
        max_length=2000,
    )
    # Keeping one's history: Element's Secure Backup, in plain words.
    backup_advice: str = Field(
        default=(
            "**Keep your history.** Messages here are encrypted, and the keys to read them "
            "live on your device. If you lose your phone or sign out, you lose every group "
            'message you had, unless you set up Secure Backup. When Element offers "Set up '
            'Secure Backup", say yes (or later: **Settings → Security & Privacy → Secure '
            "Backup**), and keep the recovery key it gives you somewhere safe. Without it, "
            "nobody can bring your old messages back."
        ),
        min_length=1,
        max_length=2000,
    )
    # Asked one at a time; a group's own questions replace these.
    questions: tuple[str, ...] = ()
    next_steps: str = Field(
        default=(
            "Thank you. A moderator will look at your answers, usually within two days, "
            "and I'll tell you here as soon as they have."
        ),
        min_length=1,
        max_length=2000,
    )
    answer_max_chars: int = Field(default=2000, ge=50, le=10_000)
    # Answers are deleted this long after the decision (or expiry, or withdrawal).
    keep_answers_days: int = Field(default=30, ge=1, le=365)
    # A gentle reminder to an applicant who has not answered for this long.
    remind_after_hours: float = Field(default=48, ge=1, le=24 * 30)
    # An application nobody finished is closed after this long (moderators can reopen it).
    expire_after_days: float = Field(default=14, ge=1, le=90)

    _q = field_validator("questions")(_questions)


def default_rooms() -> tuple[RoomDecl, ...]:
    return (RoomDecl(key="general", name="General"),)


class GroupDecl(Strict):
    key: str
    name: str = Field(min_length=1, max_length=255)
    topic: str = ""
    join: JoinRule = JoinRule.INVITE
    # Whether newcomers may read what was said before they joined.
    history_before_joining: bool = False
    # Meetings and reminders of this group; the community's zone if unset.
    timezone: str | None = None
    moderators: tuple[str, ...] = ()
    rooms: tuple[RoomDecl, ...] = Field(default_factory=default_rooms, min_length=1)
    # This group's screening questions, instead of the community's.
    questions: tuple[str, ...] | None = None
    # What the bot watches for in this group's rooms, and does about it.
    protections: Protections = Field(default_factory=Protections)
    # Recurring meetings, kept by the meetings bot (in the group's first room).
    meetings: tuple[MeetingDecl, ...] = Field(default=(), max_length=50)

    _k = field_validator("key")(_key)
    _m = field_validator("moderators")(_users)
    _tz = field_validator("timezone")(_timezone)
    _q = field_validator("questions")(_questions)

    @field_validator("meetings")
    @classmethod
    def _unique_meetings(cls, v: tuple[MeetingDecl, ...]) -> tuple[MeetingDecl, ...]:
        dupe = first_duplicate(m.key for m in v)
        if dupe is not None:
            raise ValueError(f"meeting key {dupe!r} is used twice in this group")
        return v

    @field_validator("rooms")
    @classmethod
    def _unique_rooms(cls, v: tuple[RoomDecl, ...]) -> tuple[RoomDecl, ...]:
        dupe = first_duplicate(r.key for r in v)
        if dupe is not None:
            raise ValueError(f"room key {dupe!r} is used twice in this group")
        return v


class AdminDecl(Strict):
    """The account Hearth provisions as: a Synapse server admin."""

    user_id: str
    access_token_file: Path

    _check_inline = model_validator(mode="before")(reject_inline_secrets)
    _p = field_validator("access_token_file", mode="before")(resolve_path)

    _u = field_validator("user_id")(check_user_id)


class BotDecl(Strict):
    user_id: str
    power_level: int = Field(default=100, ge=1, le=100)

    _u = field_validator("user_id")(check_user_id)


class CommunityDecl(Strict):
    key: str
    name: str = Field(min_length=1, max_length=255)
    topic: str = ""
    homeserver: str
    admin: AdminDecl
    timezone: str = "UTC"
    code_of_conduct: str = Field(min_length=1)
    crisis_resources: str = Field(min_length=1)
    # Community moderators: in the moderators' room, and moderators everywhere.
    moderators: tuple[str, ...] = ()

    _k = field_validator("key")(_key)
    _m = field_validator("moderators")(_users)

    _url = field_validator("homeserver")(check_homeserver_url)

    _tz = field_validator("timezone")(_timezone)


class BanListDecl(Strict):
    """Publish the community's bans as a Matrix policy list (m.policy.rule.user),
    which other communities' bots (and Draupnir or Meowlnir) can follow."""

    # Other communities' bots, invited to the list's room to follow it.
    share_with: tuple[str, ...] = ()

    _s = field_validator("share_with")(_users)


class BridgeDecl(Strict):
    """The Facebook import (``hearth import facebook apply``): an application
    service whose registration the playbook (or ``hearth dev``) installs."""

    # The archive bot: the registration's sender. Left out, @hearth-bridge
    # on the admin's server.
    user_id: str | None = None
    # The file holding the registration's as_token (0600).
    as_token_file: Path | None = None
    # Where the archive bot keeps its device, keys and imports' progress.
    state_dir: Path | None = None

    _check_inline = model_validator(mode="before")(reject_inline_secrets)
    _p = field_validator("as_token_file", "state_dir", mode="before")(resolve_path)

    @field_validator("user_id")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        return v if v is None else check_user_id(v)


class CommunityFile(Strict):
    community: CommunityDecl
    bots: tuple[BotDecl, ...] = ()
    groups: tuple[GroupDecl, ...] = ()
    onboarding: OnboardingDecl = Field(default_factory=OnboardingDecl)
    # Left out: no ban list is published.
    ban_list: BanListDecl | None = None
    bridge: BridgeDecl = Field(default_factory=BridgeDecl)

    @field_validator("bots")
    @classmethod
    def _unique_bots(cls, v: tuple[BotDecl, ...]) -> tuple[BotDecl, ...]:
        dupe = first_duplicate(b.user_id for b in v)
        if dupe is not None:
            raise ValueError(f"lists the bot {dupe} twice")
        return v

    def group(self, key: str) -> GroupDecl | None:
        return next((g for g in self.groups if g.key == key), None)

    def questions_for(self, group: GroupDecl | None) -> tuple[str, ...]:
        """A group's screening questions: its own, else the community's."""
        if group is not None and group.questions is not None:
            return group.questions
        return self.onboarding.questions

    def bridge_user(self) -> str:
        """The archive bot's account (the bridge registration's sender)."""
        server = self.community.admin.user_id.split(":", 1)[1]
        return self.bridge.user_id or f"@hearth-bridge:{server}"

    def all_users(self) -> set[str]:
        users = {self.community.admin.user_id, *self.community.moderators}
        users.update(b.user_id for b in self.bots)
        for g in self.groups:
            users.update(g.moderators)
        return users


_loaded: dict[Path, tuple[float, CommunityFile]] = {}


def cached_community(path: Path) -> CommunityFile:
    """The community file, read again only when it changed (the bots'
    handlers read it for every event)."""
    mtime = path.stat().st_mtime
    cached = _loaded.get(path)
    if cached is None or cached[0] != mtime:
        _loaded[path] = (mtime, load_community(path))
    return _loaded[path][1]


def community_problem(path: Path) -> str | None:
    """Why a feature cannot use the community file at *path*, or None."""
    try:
        cached_community(path)
    except (OSError, ConfigError) as exc:
        return f"its community file cannot be read: {exc}"
    return None


def section_problem(config: BotConfig, feature: str) -> str | None:
    """Why *feature* cannot run with the bot's *config*: it has no section
    naming the community file, or the file cannot be read."""
    section = config.feature_sections.get(feature)
    if section is None:
        article = "an" if feature[0] in "aeiou" else "a"
        return f"it needs {article} {feature} section naming the community file"
    path = getattr(section, "community", None)
    if not isinstance(path, Path):
        return f"its {feature} section names no community file"
    return community_problem(path)


def moderators_room_problem(config: BotConfig) -> str | None:
    """Why a feature that routes by the community's moderators' room
    (applications, alerts, reports) cannot run: the room is not configured.
    The bot never takes it from a marker alone; the configured room is
    checked against its marker and creator when the bot starts."""
    if config.moderators_room is None:
        return (
            "it needs bot.moderators_room, the community's moderators' room "
            "(`hearth provision --record FILE` writes its ID; hearth dev and the playbook set it)"
        )
    return None


def load_community(path: Path) -> CommunityFile:
    """Load and validate *path*; duplicate group keys are named at their line."""
    loaded = load_model_with_lines(path, CommunityFile)
    keys = [g.key for g in loaded.model.groups]
    raise_all(
        [
            loaded.error_at(
                ("groups", i, "key"),
                f"group key {key!r} is already used by groups[{keys.index(key)}]; "
                "each group needs its own key",
            )
            for i, key in enumerate(keys)
            if key in keys[:i]
        ]
    )
    return loaded.model
