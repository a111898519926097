"""The bot's configuration, validated once at start-up."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bots.base.errors import ConfigError, raise_all
from bots.framework.ids import is_room_ref, is_user_id
from bots.framework.yaml_config import _line_for, read_yaml, validation_problems

# Keys that would put a secret inline; each names the *_file key to use instead.
INLINE_SECRETS = {"password": "password_file", "access_token": "access_token_file"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_path(value: Any, info: ValidationInfo) -> Any:
    """Resolve relative paths against the config file's folder."""
    if isinstance(value, str | Path):
        path = Path(value).expanduser()
        base = (info.context or {}).get("base_dir")
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        return path
    return value


def reject_inline_secrets(data: Any) -> Any:
    if isinstance(data, dict):
        for key, instead in INLINE_SECRETS.items():
            if key in data:
                raise ValueError(
                    f"'{key}' must not be written inline; put it in a file readable only "
                    f"by the bot (chmod 600) and set '{instead}' to that file's path"
                )
    return data


def check_homeserver_url(v: str) -> str:
    if not re.match(r"^https?://[^\s/]+", v):
        raise ValueError("expected an http:// or https:// URL, e.g. https://matrix.example.org")
    return v.rstrip("/")


def check_user_id(v: str) -> str:
    if not is_user_id(v):
        raise ValueError("expected a Matrix user ID like @someone:example.org")
    return v


class LogConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


class BotConfig(Strict):
    """One bot account and where it keeps its state."""

    homeserver: str = Field(description="Client-server API base URL")
    user_id: str
    password_file: Path
    state_dir: Path
    device_name: str = "Hearth bot"
    command_prefix: str = "!"
    # Room whose power levels authorise community-wide commands.
    moderators_room: str | None = None
    # The admin agent's Unix socket, for what needs Synapse's admin API
    # (`!group create`). The bot itself never holds an admin token.
    admin_socket: Path | None = None
    sync_timeout_ms: int = Field(default=30_000, ge=1_000, le=120_000)
    # How long to keep retrying a message we cannot decrypt before telling its sender.
    undecryptable_wait_s: float = Field(default=30.0, ge=0, le=3600)
    # Events older than this when the bot gets to them are not acted on: a
    # stale moderation command is more dangerous than a missed one.
    max_event_age_s: float = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    # What the bot does; None runs every feature that can run here.
    features: tuple[str, ...] | None = None
    # How many rooms' events are handled at once (each room stays in order).
    max_concurrent_rooms: int = Field(default=8, ge=1, le=256)
    # At most this many requests a second to the homeserver (its reads
    # aside). None: as fast as the homeserver accepts, slowing down only when
    # it answers 429. For a server that rate-limits the bot's account.
    send_rate_limit: float | None = Field(default=None, gt=0, le=1000)
    # How long SIGTERM waits for handlers in flight and the outbox.
    stop_timeout_s: float = Field(default=20.0, ge=0, le=600)
    # Which devices get the bot's room keys: only those their owner has
    # cross-signed (the others are told the key is withheld), or, for a
    # community whose members use old clients, every device.
    key_sharing: Literal["cross_signed", "all_devices"] = "cross_signed"
    log: LogConfig = LogConfig()
    # Each feature's validated section, from the file's other top-level keys
    # (filled by load_bot_config, not written under `bot:`).
    feature_sections: Mapping[str, Any] = Field(default_factory=dict, exclude=True)

    _check_inline = model_validator(mode="before")(reject_inline_secrets)
    _paths = field_validator("password_file", "state_dir", "admin_socket", mode="before")(
        resolve_path
    )

    _url = field_validator("homeserver")(check_homeserver_url)
    _mxid = field_validator("user_id")(check_user_id)

    @field_validator("moderators_room")
    @classmethod
    def _room(cls, v: str | None) -> str | None:
        if v is not None and not is_room_ref(v):
            raise ValueError("expected a room ID (!abc:server) or alias (#mods:server)")
        return v

    @field_validator("command_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or v.startswith("/") or any(c.isspace() for c in v) or len(v) > 16:
            raise ValueError("expected a short prefix without spaces that does not start with '/'")
        return v

    @field_validator("features")
    @classmethod
    def _features(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("a feature is listed twice")
        return v


def load_bot_config(path: Path, sections: Mapping[str, type[BaseModel]] | None = None) -> BotConfig:
    """Load a bots YAML file: the `bot:` section and one section per feature.

    *sections* maps each known feature to its config model; a top-level key
    that is neither `bot` nor a known feature is an error. Every problem in
    the file is reported at once, each naming its key path and line.

    Raises:
        ConfigError: one problem, or ConfigProblems for several.
    """
    data, lines = read_yaml(path)
    name = str(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(name, "", "expected a mapping of keys at the top level", 1)
    problems: list[ConfigError] = []
    bot: BotConfig | None = None
    if "bot" not in data:
        problems.append(ConfigError(name, "bot", "required key is missing", None))
    else:
        try:
            raw = data["bot"]
            if isinstance(raw, dict) and "feature_sections" in raw:
                raise ValueError("feature sections go at the top level, beside `bot:`")
            bot = BotConfig.model_validate(raw, context={"base_dir": path.parent})
        except ValidationError as exc:
            problems.extend(_flatten(validation_problems(path, exc, lines, ("bot",))))
        except ValueError as exc:
            problems.append(ConfigError(name, "bot", str(exc), _line_for(("bot",), lines)))
    known = dict(sections or {})
    raw_bot = data.get("bot")
    listed = raw_bot.get("features") if isinstance(raw_bot, dict) else None
    if known and isinstance(listed, list):
        # Named with the other problems, not after they are fixed.
        for i, feature in enumerate(listed):
            if isinstance(feature, str) and feature not in known:
                problems.append(
                    ConfigError(
                        name,
                        f"bot.features[{i}]",
                        f"unknown feature {feature!r}; expected one of: {', '.join(known)}",
                        _line_for(("bot", "features", i), lines),
                    )
                )
    validated: dict[str, Any] = {}
    for key, value in data.items():
        if key == "bot":
            continue
        if key not in known:
            expected = "unknown key: expected `bot` or a feature's section"
            if known:
                expected += f" ({', '.join(sorted(known))})"
            problems.append(ConfigError(name, str(key), expected, _line_for((key,), lines)))
            continue
        try:
            validated[key] = known[key].model_validate(value or {})
        except ValidationError as exc:
            problems.extend(_flatten(validation_problems(path, exc, lines, (key,))))
    raise_all(problems)
    assert bot is not None
    return bot.model_copy(update={"feature_sections": validated})


def _flatten(err: ConfigError) -> list[ConfigError]:
    return list(getattr(err, "problems", [err]))
