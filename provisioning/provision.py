"""`hearth provision`: read, plan, print, apply."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from bots.framework.secrets import read_secret
from bots.matrix.client_api import ClientAPI
from provisioning.applier import apply
from provisioning.planner import Action, Plan, plan, render
from provisioning.preflight import check_admin, check_users_exist, exempt_from_rate_limits
from provisioning.schema import CommunityFile
from provisioning.state import parse_sync, sync_filter


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    room_ids: dict[str, str]
    reads: int
    writes: int


def server_name_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


async def provision(
    cfg: CommunityFile,
    path: Path,
    *,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
    progress: Callable[[Action, int, int], None] | None = None,
) -> Outcome:
    token = read_secret(cfg.community.admin.access_token_file, what="admin access token")
    async with aiohttp.ClientSession() as http:
        api = ClientAPI(cfg.community.homeserver, token, http)
        await check_admin(api, cfg, path)
        await check_users_exist(api, cfg, path)
        server = server_name_of(cfg.community.admin.user_id)
        current = parse_sync(await api.sync(sync_filter()), cfg.community.key)
        the_plan = plan(cfg, current, server)
        print(render(the_plan, cfg.community.name), file=out, flush=True)
        ids = {label: snap.room_id for label, snap in current.rooms.items()}
        if not dry_run and not the_plan.empty:
            await exempt_from_rate_limits(api, [cfg.community.admin.user_id])
            ids = await apply(the_plan, api, ids, progress)
            print(f"Applied {len(the_plan.actions)} changes.", file=out, flush=True)
        reads = api.requests["GET"]
        writes = sum(n for m, n in api.requests.items() if m != "GET")
        return Outcome(the_plan, ids, reads, writes)
