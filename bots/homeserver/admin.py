"""Account creation through Synapse's shared-secret admin registration."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import aiohttp

from bots.errors import HomeserverError


@dataclass(frozen=True)
class Registered:
    user_id: str
    created: bool


def registration_mac(secret: str, nonce: str, username: str, password: str, admin: bool) -> str:
    """The HMAC-SHA1 Synapse expects (see its admin register API docs)."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    for part in (nonce, username, password):
        mac.update(part.encode())
        mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return mac.hexdigest()


async def register_user(
    base_url: str,
    shared_secret: str,
    username: str,
    password: str,
    *,
    server_name: str,
    admin: bool = False,
    http: aiohttp.ClientSession | None = None,
) -> Registered:
    """Create *username*, or report that it already exists. Idempotent."""
    own = http is None
    session = http or aiohttp.ClientSession()
    url = f"{base_url}/_synapse/admin/v1/register"
    try:
        async with session.get(url) as r:
            if r.status != 200:
                raise HomeserverError(f"shared-secret registration unavailable (HTTP {r.status})")
            nonce = (await r.json())["nonce"]
        body = {
            "nonce": nonce,
            "username": username,
            "password": password,
            "admin": admin,
            "mac": registration_mac(shared_secret, nonce, username, password, admin),
        }
        async with session.post(url, json=body) as r:
            data = await r.json()
            if r.status == 200:
                return Registered(data["user_id"], created=True)
            if data.get("errcode") == "M_USER_IN_USE":
                return Registered(f"@{username}:{server_name}", created=False)
            raise HomeserverError(
                f"registering {username} failed: HTTP {r.status} {data.get('errcode', '')}"
            )
    except aiohttp.ClientError as exc:
        raise HomeserverError(
            f"homeserver unreachable at {base_url}: {exc.__class__.__name__}"
        ) from None
    finally:
        if own:
            await session.close()
