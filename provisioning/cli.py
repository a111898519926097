"""`hearth provision` and `hearth tokens`."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta

import aiohttp

from bots.errors import ConfigError, HearthError
from bots.framework.commands.parse import parse_duration
from bots.framework.secrets import read_secret
from bots.homeserver.client_api import ClientAPI
from provisioning.schema import CommunityFile, load_community
from provisioning.tokens import Tokens


def _duration(text: str) -> timedelta:
    value = parse_duration(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 12h, 14d or 2w")
    return value


def _fail(exc: HearthError) -> int:
    print(f"hearth: error: {exc}", file=sys.stderr)
    return exc.exit_code


def cmd_provision(args: argparse.Namespace) -> int:
    from pathlib import Path

    from provisioning.provision import provision

    path = Path(args.config)
    try:
        cfg = load_community(path)
        if args.validate_only:
            print(f"{path}: OK ({len(cfg.groups)} groups)")
            return 0
        asyncio.run(provision(cfg, path, dry_run=args.dry_run))
    except HearthError as exc:
        return _fail(exc)
    return 0


async def _with_tokens(cfg: CommunityFile, args: argparse.Namespace) -> None:
    token = read_secret(cfg.community.admin.access_token_file, what="admin access token")
    async with aiohttp.ClientSession() as http:
        tokens = Tokens(
            ClientAPI(cfg.community.homeserver, token, http), cfg.community.admin.user_id
        )
        if args.action == "create":
            info = await tokens.create(args.uses, args.expires, args.group)
            expiry = datetime.fromtimestamp((info.expiry_ms or 0) / 1000, UTC)
            where = f", for group {info.group}" if info.group else ""
            # Shown once, on stdout only: Hearth keeps no copy and never logs it.
            print(info.token)
            print(
                f"Registration token for {args.uses} sign-ups{where}, valid until "
                f"{expiry:%Y-%m-%d %H:%M} UTC. Share it privately; it is not shown again.",
                file=sys.stderr,
            )
        elif args.action == "list":
            now = int(time.time() * 1000)
            rows = await tokens.list()
            if not rows:
                print("No registration tokens.")
            for t in rows:
                masked = f"{t.token[:4]}…{t.token[-2:]}"
                until = (
                    datetime.fromtimestamp(t.expiry_ms / 1000, UTC).strftime("%Y-%m-%d")
                    if t.expiry_ms
                    else "never"
                )
                print(
                    f"{masked}  {t.status(now):8}  used {t.completed}/{t.uses_allowed or '∞'}  "
                    f"expires {until}  group {t.group or '-'}"
                )
        else:
            if not await tokens.revoke(args.token):
                raise ConfigError("(command line)", "token", "no such registration token")
            print("Token revoked.")


def cmd_tokens(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        cfg = load_community(Path(args.config))
        if getattr(args, "group", None) and cfg.group(args.group) is None:
            raise ConfigError(args.config, "groups", f"there is no group with key {args.group!r}")
        asyncio.run(_with_tokens(cfg, args))
    except HearthError as exc:
        return _fail(exc)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "provision",
        help="create or repair a community's encrypted Space and rooms from its YAML",
        description="Print the plan (what will be created, changed or left alone) and apply it. "
        "Safe to run again: a second run reports no changes.",
    )
    p.add_argument("config", help="community YAML (see config/community.example.yaml)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    p.add_argument("--validate-only", action="store_true", help="check the YAML and exit")
    p.set_defaults(func=cmd_provision)

    t = sub.add_parser("tokens", help="registration tokens for onboarding waves")
    t.add_argument("--config", "-c", required=True, help="community YAML (for the admin token)")
    tsub = t.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = tsub.add_parser("create", help="create a token (shown once)")
    c.add_argument("--uses", type=int, default=1, help="how many sign-ups it allows (default 1)")
    c.add_argument("--expires", type=_duration, default=timedelta(days=14), help="e.g. 14d")
    c.add_argument("--group", help="peer group key newcomers with this token belong to")
    tsub.add_parser("list", help="list tokens (masked) with their use and group")
    r = tsub.add_parser("revoke", help="delete a token")
    r.add_argument("token")
    t.set_defaults(func=cmd_tokens)
