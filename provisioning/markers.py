"""The community file's part in telling the community's rooms: who its
staff are. The rooms themselves are found, and each marker checked against
these roles, in bots/framework/community.py, once for every feature."""

from __future__ import annotations

from types import MappingProxyType

from bots.framework.community import CommunityRoles
from provisioning.schema import CommunityFile


def roles_of(cfg: CommunityFile) -> CommunityRoles:
    return CommunityRoles(
        key=cfg.community.key,
        admin=cfg.community.admin.user_id,
        bots=frozenset(b.user_id for b in cfg.bots),
        bridge=cfg.bridge_user(),
        moderators=frozenset(cfg.community.moderators),
        room_order=MappingProxyType({g.key: tuple(r.key for r in g.rooms) for g in cfg.groups}),
    )
