"""Make sure one Hearth account exists on this server's Synapse (run by the playbook).

Creates the account through Synapse's shared-secret registration if it is
missing, optionally keeps a working access token in a 0600 file, and
optionally exempts the account from message rate limits (bots answer many
people at once). Prints one JSON line: {"user_id": ..., "changed": [...]}.
Never prints a password or a token. Runs with Hearth's own Python.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import sys
from pathlib import Path
from urllib.parse import quote

import aiohttp

from bots.base.errors import HearthError, HomeserverError
from bots.framework.secrets import read_secret, write_secret
from bots.matrix.admin import register_user
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport

NO_LIMIT = {"messages_per_second": 0, "burst_count": 0}


async def valid_token(api: ClientAPI, user_id: str) -> bool:
    try:
        return await api.whoami() == user_id
    except HomeserverError:
        return False


async def ensure(args: argparse.Namespace) -> dict[str, object]:
    shared = read_secret(args.shared_secret_file, what="registration shared secret")
    password = read_secret(args.password_file, what="password")
    changed: list[str] = []
    async with aiohttp.ClientSession() as http:
        reg = await register_user(
            args.homeserver,
            shared,
            args.localpart,
            password,
            server_name=args.server_name,
            admin=args.admin,
            transport=Transport(http),
        )
        if reg.created:
            changed.append("account created")

        if args.token_file is not None:
            ok = False
            if args.token_file.exists():
                token = read_secret(args.token_file, what="access token")
                api = ClientAPI(args.homeserver, token, Transport(http))
                ok = await valid_token(api, reg.user_id)
            if not ok:
                token = await ClientAPI.login(
                    args.homeserver, reg.user_id, password, Transport(http), args.device_name
                )
                write_secret(args.token_file, token)
                owner = pwd.getpwnam(args.owner)
                os.chown(args.token_file, owner.pw_uid, owner.pw_gid)
                changed.append("access token written")

        if args.no_rate_limit_with is not None:
            admin = ClientAPI(
                args.homeserver,
                read_secret(args.no_rate_limit_with, what="admin access token"),
                Transport(http),
            )
            path = f"/_synapse/admin/v1/users/{quote(reg.user_id)}/override_ratelimit"
            current = await admin.request("GET", path)
            if {k: current.get(k) for k in NO_LIMIT} != NO_LIMIT:
                await admin.request("POST", path, NO_LIMIT)
                changed.append("rate limits lifted")
    return {"user_id": reg.user_id, "changed": changed}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--homeserver", required=True, help="Synapse's local URL")
    p.add_argument("--server-name", required=True)
    p.add_argument("--shared-secret-file", type=Path, required=True)
    p.add_argument("--localpart", required=True)
    p.add_argument("--password-file", type=Path, required=True)
    p.add_argument("--admin", action="store_true", help="a Synapse server admin")
    p.add_argument("--token-file", type=Path, help="keep a valid access token here (0600)")
    p.add_argument("--owner", default="root", help="owner of the token file")
    p.add_argument("--device-name", default="Hearth")
    p.add_argument(
        "--no-rate-limit-with",
        type=Path,
        metavar="ADMIN_TOKEN_FILE",
        help="lift the account's message rate limits, using this admin token",
    )
    args = p.parse_args()
    try:
        result = asyncio.run(ensure(args))
    except HearthError as exc:
        print(f"hearth-account: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
