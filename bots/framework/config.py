"""The bot's configuration, validated once at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bots.framework.ids import is_room_ref, is_user_id
from bots.framework.yaml_config import load_model

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
    # The community YAML, for commands that provision (e.g. `!group create`).
    community_config: Path | None = None
    sync_timeout_ms: int = Field(default=30_000, ge=1_000, le=120_000)
    # How long to keep retrying a message we cannot decrypt before telling its sender.
    undecryptable_wait_s: float = Field(default=30.0, ge=0, le=3600)
    log: LogConfig = LogConfig()

    _check_inline = model_validator(mode="before")(reject_inline_secrets)
    _paths = field_validator("password_file", "state_dir", "community_config", mode="before")(
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


class BotsFile(Strict):
    """The top level of a bots YAML file."""

    bot: BotConfig


def load_bot_config(path: Path) -> BotConfig:
    return load_model(path, BotsFile).bot
