"""`hearth provision`: read, plan, print, apply."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from bots.base.errors import HearthError
from bots.framework.secrets import read_secret
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from provisioning.applier import apply
from provisioning.desired import BAN_LIST, MODERATION_LOG, MODERATORS, SPACE
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


def provisioned_rooms(community_key: str, room_ids: Mapping[str, str]) -> dict[str, str | None]:
    """What `hearth provision --record` writes: the community's staff rooms by role.

    The playbook hands ``moderators_room`` to the bots from it, so nobody has
    to copy a room ID by hand. Optional rooms the community does not have are
    null; a Space or moderators' room missing after an apply is an error.
    """
    missing = [label for label in (SPACE, MODERATORS) if label not in room_ids]
    if missing:
        raise HearthError(f"provisioning left no {' or '.join(missing)} room to record")
    return {
        "community": community_key,
        "space": room_ids[SPACE],
        "moderators_room": room_ids[MODERATORS],
        "moderation_log": room_ids.get(MODERATION_LOG),
        "ban_list": room_ids.get(BAN_LIST),
    }


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
        api = ClientAPI(cfg.community.homeserver, token, Transport(http))
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
