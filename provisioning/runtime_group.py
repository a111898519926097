"""Create one new peer group while the community runs (the `!group create` command).

It runs the same planner and applier as `hearth provision`, restricted to the
new group's rooms and their links, so it writes nothing the next provision
would undo: that run lists the group as present on the server but not in the
YAML, and leaves it alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from bots.base.errors import HearthError
from bots.framework.secrets import read_secret
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from provisioning.applier import apply
from provisioning.desired import MODERATION_LOG, SPACE, group_label, placeholder
from provisioning.planner import Plan, PutState, plan
from provisioning.provision import server_name_of
from provisioning.schema import CommunityFile, GroupDecl
from provisioning.state import parse_sync, sync_filter


class GroupExists(HearthError):
    pass


class NotProvisioned(HearthError):
    pass


@dataclass(frozen=True)
class NewGroup:
    group: GroupDecl
    room_ids: dict[str, str]
    moderation_log: str | None


def group_actions(full: Plan, key: str) -> Plan:
    """The part of a plan that concerns group *key*: its rooms and Space links."""
    prefix = group_label(key, "")

    def ours(action: object) -> bool:
        label = getattr(action, "label", "")
        if isinstance(action, PutState) and label == SPACE:
            return action.state_key.startswith(placeholder(prefix))
        return str(label).startswith(prefix)

    return Plan(tuple(a for a in full.actions if ours(a)))


async def create_group(cfg: CommunityFile, key: str, name: str) -> NewGroup:
    group = GroupDecl(key=key, name=name)
    token = read_secret(cfg.community.admin.access_token_file, what="admin access token")
    async with aiohttp.ClientSession() as http:
        api = ClientAPI(cfg.community.homeserver, token, Transport(http))
        current = parse_sync(await api.sync(sync_filter()), cfg.community.key)
        if SPACE not in current.rooms:
            raise NotProvisioned("the community has not been provisioned yet")
        taken = cfg.group(key) is not None or any(
            label.startswith(group_label(key, "")) for label in current.rooms
        )
        if taken:
            raise GroupExists(f"a group with key {key!r} already exists")
        only_new = cfg.model_copy(update={"groups": (group,)})
        actions = group_actions(
            plan(only_new, current, server_name_of(cfg.community.admin.user_id)), key
        )
        ids = {label: snap.room_id for label, snap in current.rooms.items()}
        ids = await apply(actions, api, ids)
    mine = {label: rid for label, rid in ids.items() if label.startswith(group_label(key, ""))}
    return NewGroup(group, mine, ids.get(MODERATION_LOG))
