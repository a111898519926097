"""`hearth provision` and `hearth tokens`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bots.base.errors import ConfigError, HearthError
from bots.framework.commands.parse import parse_duration
from bots.framework.logging import configure_logging, install_asyncio_handler, use_salt_file
from bots.framework.secrets import read_secret, write_file
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from provisioning.schema import CommunityFile, load_community
from provisioning.tokens import Tokens

T = TypeVar("T")

# The salt these commands hash user IDs with in their logs. It lives beside
# the admin's access token, in the folder already kept private for the
# admin's secrets (0700 in the playbook's layout, secrets/ in `hearth dev`),
# not beside the community YAML, which organisers may keep in version control.
LOG_SALT_FILE = "log-salt"
# `--record`: room IDs name nobody, but only the owner (the one who
# provisions) writes them and only its group reads them: whoever could change
# the file could point the bots at a moderators' room of their own.
RECORD_MODE = 0o640


def _duration(text: str) -> timedelta:
    value = parse_duration(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 12h, 14d or 2w")
    return value


def _fail(exc: HearthError) -> int:
    print(f"hearth: error: {exc}", file=sys.stderr)
    return exc.exit_code


def use_install_salt(cfg: CommunityFile) -> None:
    """Hash user IDs in this process's logs with the install's secret salt.

    Without it they would be hashed with a random per-process salt: still
    private, but not comparable from one run to the next.
    """
    folder = cfg.community.admin.access_token_file.parent
    if not folder.is_dir():
        return  # reading the token fails next, with the message that matters
    try:
        use_salt_file(folder / LOG_SALT_FILE)
    except OSError as exc:
        print(
            f"hearth: warning: cannot keep a log salt in {folder} ({exc.strerror}); "
            "user hashes in this run's logs will not match other runs",
            file=sys.stderr,
        )


def _run(coro: Coroutine[Any, Any, T]) -> T:
    async def redacted() -> T:
        install_asyncio_handler()
        return await coro

    return asyncio.run(redacted())


def write_record(path: Path, record: dict[str, str | None]) -> None:
    """Write *record* as JSON to *path* atomically, mode 0640 whatever the umask.

    The folder is created if missing; a reader sees the old file or the new
    one, never half of one.
    """
    try:
        write_file(path, (json.dumps(record, indent=2) + "\n").encode(), RECORD_MODE)
    except OSError as exc:
        raise HearthError(f"cannot write the record {path}: {exc.strerror or exc}") from None


def cmd_provision(args: argparse.Namespace) -> int:
    from provisioning.provision import provision, provisioned_rooms

    configure_logging("warning")
    path = Path(args.config)
    try:
        if args.record and (args.dry_run or args.validate_only):
            raise ConfigError(
                "(command line)",
                "--record",
                "records the rooms a run applied: leave out --dry-run and --validate-only",
            )
        cfg = load_community(path)
        if args.validate_only:
            print(f"{path}: OK ({len(cfg.groups)} groups)")
            return 0
        use_install_salt(cfg)
        outcome = _run(provision(cfg, path, dry_run=args.dry_run))
        if args.record:
            write_record(Path(args.record), provisioned_rooms(cfg.community.key, outcome.room_ids))
    except HearthError as exc:
        return _fail(exc)
    return 0


async def _with_tokens(cfg: CommunityFile, args: argparse.Namespace) -> None:
    token = read_secret(cfg.community.admin.access_token_file, what="admin access token")
    async with aiohttp.ClientSession() as http:
        tokens = Tokens(
            ClientAPI(cfg.community.homeserver, token, Transport(http)), cfg.community.admin.user_id
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
    configure_logging("warning")
    try:
        cfg = load_community(Path(args.config))
        if getattr(args, "group", None) and cfg.group(args.group) is None:
            raise ConfigError(args.config, "groups", f"there is no group with key {args.group!r}")
        use_install_salt(cfg)
        _run(_with_tokens(cfg, args))
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
    p.add_argument(
        "--record",
        metavar="PATH",
        help="after applying (or finding nothing to change), write the Space's, moderators' "
        "room's, moderation log's and ban list's IDs to PATH as JSON (mode 0640)",
    )
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
    r.add_argument("token", help="the whole token (one beginning with '-' goes after '--')")
    t.set_defaults(func=cmd_tokens)
