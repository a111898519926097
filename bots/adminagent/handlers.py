"""What the admin agent does for each allowed request, and what it refuses.

Each check is against the community file: the agent acts on the community's
own bots, members and groups, never on the admin account or staff. Which
socket may ask for what is the server's concern (:data:`requests.ALLOWED`).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bots.adminagent.audit import AuditLog
from bots.adminagent.requests import (
    AgentRequest,
    CreateGroup,
    CreateToken,
    EraseAccount,
    ExemptFromRateLimits,
    ListReports,
    ListTokens,
    RevokeToken,
    TokenGroups,
)
from bots.base.errors import HearthError
from bots.matrix.client_api import ClientAPI
from provisioning.preflight import exempt_from_rate_limits
from provisioning.runtime_group import create_group
from provisioning.schema import KEY_HELP, KEY_RE, CommunityFile, load_community
from provisioning.tokens import Tokens


class Refused(HearthError):
    """A request the allow-list admits in form but the community forbids."""


# Erasure cannot be undone, and the agent cannot see the member's own
# confirmation (it is end-to-end encrypted): a bot gone wrong may ask for at
# most this many a day.
ERASURES_PER_DAY = 3


class Agent:
    def __init__(self, community_path: Path, api: ClientAPI, audit: AuditLog) -> None:
        self.community_path = community_path
        self.api = api
        self.audit = audit
        # One group at a time: two moderators (or a retry) asking for the
        # same key must not both pass the "taken" check.
        self._groups = asyncio.Lock()

    def community(self) -> CommunityFile:
        # Read afresh each time, so a group added to the file is known at once.
        return load_community(self.community_path)

    async def handle(self, request: AgentRequest) -> dict[str, Any]:
        cfg = self.community()
        match request:
            case ExemptFromRateLimits():
                if request.user_id not in {b.user_id for b in cfg.bots}:
                    raise Refused("only the community's bots can be exempted from rate limits")
                await exempt_from_rate_limits(self.api, [request.user_id])
                return {"exempted": request.user_id}
            case CreateToken():
                if request.group is not None and cfg.group(request.group) is None:
                    raise Refused(f"there is no group {request.group!r} in the community file")
                tokens = Tokens(self.api, cfg.community.admin.user_id)
                info = await tokens.create(
                    request.uses, timedelta(seconds=request.expires_s), request.group
                )
                return {"token": info.token, "expiry_ms": info.expiry_ms, "group": info.group}
            case ListTokens():
                tokens = Tokens(self.api, cfg.community.admin.user_id)
                return {"tokens": [_token_row(t) for t in await tokens.list()]}
            case RevokeToken():
                tokens = Tokens(self.api, cfg.community.admin.user_id)
                return {"revoked": await tokens.revoke(request.token)}
            case TokenGroups():
                groups = await Tokens(self.api, cfg.community.admin.user_id).groups()
                # Only groups that still exist: a token may outlive its group.
                return {
                    "groups": {
                        ref: groups[ref]
                        for ref in request.refs
                        if ref in groups and cfg.group(groups[ref]) is not None
                    }
                }
            case ListReports():
                data = await self.api.request(
                    "GET", f"/_synapse/admin/v1/event_reports?limit={request.limit}&dir=b"
                )
                return {"reports": [_report_row(r) for r in data.get("event_reports", [])]}
            case EraseAccount():
                return await self._erase(cfg, request)
            case CreateGroup():
                # The bot checked the sender's power in the moderators' room;
                # the agent holds it to the file too, so a bot misled about
                # that room (or gone wrong) cannot open groups for anyone.
                if request.requested_by not in cfg.community.moderators:
                    raise Refused("only the community's moderators can open a group")
                if not KEY_RE.match(request.key):
                    raise Refused(f"the key must be {KEY_HELP}")
                async with self._groups:
                    made = await create_group(cfg, request.key, request.name)
                return {"room_ids": made.room_ids, "moderation_log": made.moderation_log}
        raise Refused("unknown request")  # unreachable: the union is closed

    async def _erase(self, cfg: CommunityFile, request: EraseAccount) -> dict[str, Any]:
        if request.requested_by != request.user_id:
            raise Refused("an account can only be erased at its owner's own request")
        if request.user_id in protected_accounts(cfg):
            # Staff and bots are removed from the community file first.
            raise Refused("this account is staff or a bot in the community file")
        if not request.user_id.endswith(":" + cfg.community.admin.user_id.split(":", 1)[1]):
            raise Refused("only accounts on this homeserver can be erased")
        account = await self.api.request(
            "GET", f"/_synapse/admin/v2/users/{quote(request.user_id, safe='')}"
        )
        if account.get("admin"):
            # A server admin the file does not name (the operator's own, say).
            raise Refused("this account is a server admin")
        if self.audit.count_ok("erase_account", within_s=86400) >= ERASURES_PER_DAY:
            raise Refused(
                f"no more than {ERASURES_PER_DAY} accounts are erased a day; "
                "an administrator can erase more by hand"
            )
        await self.api.request(
            "POST",
            f"/_synapse/admin/v1/deactivate/{quote(request.user_id, safe='')}",
            {"erase": True},
        )
        return {"erased": request.user_id}


def protected_accounts(cfg: CommunityFile) -> set[str]:
    """Accounts never erased at a bot's request: the admin, the community's
    and groups' moderators, the bots and the archive bot (the bridge)."""
    return {*cfg.all_users(), cfg.bridge_user()}


def _token_row(t: Any) -> dict[str, Any]:
    return {
        "token": t.token,
        "uses_allowed": t.uses_allowed,
        "completed": t.completed,
        "pending": t.pending,
        "expiry_ms": t.expiry_ms,
        "group": t.group,
    }


def _report_row(r: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "received_ts", "room_id", "event_id", "score", "reason")
    return {k: r.get(k) for k in keep}
