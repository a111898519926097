"""Checks that run before anything is planned: the admin token and the accounts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from bots.base.errors import ConfigError
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import RequestError
from provisioning.schema import CommunityFile


def declared_users(cfg: CommunityFile) -> Iterator[tuple[str, str]]:
    """(key path, user ID) for every account the YAML names."""
    for i, user in enumerate(cfg.community.moderators):
        yield f"community.moderators[{i}]", user
    for i, bot in enumerate(cfg.bots):
        yield f"bots[{i}].user_id", bot.user_id
    for gi, group in enumerate(cfg.groups):
        for i, user in enumerate(group.moderators):
            yield f"groups[{gi}].moderators[{i}]", user


async def check_admin(api: ClientAPI, cfg: CommunityFile, path: Path) -> None:
    admin = cfg.community.admin.user_id
    try:
        me = await api.whoami()
    except RequestError as exc:
        if exc.errcode in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
            raise ConfigError(
                str(path),
                "community.admin.access_token_file",
                "the homeserver does not accept this access token (expired or revoked?)",
            ) from None
        raise
    if me != admin:
        raise ConfigError(
            str(path),
            "community.admin.user_id",
            f"the access token belongs to {me}, not to {admin}",
        )
    try:
        await api.request("GET", f"/_synapse/admin/v2/users/{quote(admin, safe='')}")
    except RequestError as exc:
        if exc.status == 403:
            raise ConfigError(
                str(path),
                "community.admin.user_id",
                f"{admin} is not a server admin; provisioning needs a Synapse admin account",
            ) from None
        raise


async def check_users_exist(api: ClientAPI, cfg: CommunityFile, path: Path) -> None:
    seen: set[str] = set()
    for key_path, user in declared_users(cfg):
        if user in seen:
            continue
        seen.add(user)
        try:
            await api.request("GET", f"/_synapse/admin/v2/users/{quote(user, safe='')}")
        except RequestError as exc:
            if exc.status == 404:
                raise ConfigError(
                    str(path), key_path, f"there is no account {user} on this homeserver"
                ) from None
            raise


async def exempt_from_rate_limits(api: ClientAPI, user_ids: list[str]) -> None:
    """Provisioning creates rooms in bulk; Synapse would throttle it to a crawl."""
    for user in user_ids:
        path = f"/_synapse/admin/v1/users/{quote(user, safe='')}/override_ratelimit"
        current = await api.request("GET", path)
        if current.get("messages_per_second") != 0 or current.get("burst_count") != 0:
            await api.request("POST", path, {"messages_per_second": 0, "burst_count": 0})
