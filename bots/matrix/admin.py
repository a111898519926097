"""Account creation through Synapse's shared-secret admin registration."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from bots.matrix.transport import RequestError, Transport


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
    transport: Transport | None = None,
) -> Registered:
    """Create *username*, or report that it already exists. Idempotent."""
    url = f"{base_url}/_synapse/admin/v1/register"
    async with Transport() as own:
        t = transport or own
        nonce = (await t.call("GET", url, what="shared-secret registration"))["nonce"]
        body = {
            "nonce": nonce,
            "username": username,
            "password": password,
            "admin": admin,
            "mac": registration_mac(shared_secret, nonce, username, password, admin),
        }
        try:
            data = await t.call("POST", url, what=f"registering {username}", body=body)
        except RequestError as exc:
            if exc.errcode == "M_USER_IN_USE":
                return Registered(f"@{username}:{server_name}", created=False)
            raise
        return Registered(data["user_id"], created=True)
