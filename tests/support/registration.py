"""Signing up as a newcomer does, through the client API."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp

from tests.support.homeserver import User


async def register(
    base_url: str, token: str | None, username: str | None = None
) -> tuple[int, dict[str, Any], User | None]:
    """Register completing the token stage if given one: (HTTP status, reply,
    the new account on success)."""
    localpart = username or f"newcomer-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    body: dict[str, Any] = {"username": localpart, "password": password}
    async with aiohttp.ClientSession() as http:
        url = f"{base_url}/_matrix/client/v3/register"
        for _ in range(4):
            async with http.post(url, json=body) as r:
                data = await r.json()
                if r.status != 401:
                    user = User(data["user_id"], localpart, password) if r.status == 200 else None
                    return r.status, data, user
            if "errcode" in data:
                return 401, data, None  # a stage was refused (e.g. an invalid token)
            done = data.get("completed", [])
            stage = (
                "m.login.registration_token"
                if "m.login.registration_token" not in done
                else "m.login.dummy"
            )
            if stage == "m.login.registration_token" and token is None:
                return 401, data, None
            auth: dict[str, Any] = {"type": stage, "session": data["session"]}
            if stage == "m.login.registration_token":
                auth["token"] = token
            body["auth"] = auth
    return 0, {}, None
