"""The archives feature: a service that looks at the archive rooms now and then."""

from __future__ import annotations

import asyncio

from bots.archives.config import ArchivesConfig
from bots.archives.plan import archives, steps
from bots.framework.config import BotConfig
from bots.framework.feature import Feature, Service, ServiceContext
from provisioning.schema import cached_community, section_problem

FEATURE = "archives"
SPACE_CHILD = "m.space.child"


async def keep_archives(sctx: ServiceContext) -> None:
    config = sctx.config
    assert isinstance(config, ArchivesConfig)
    while True:
        ctx = sctx.context()
        cfg = cached_community(config.community)
        rooms = ctx.community
        markers = rooms.markers
        listed = ctx.keyed_state(SPACE_CHILD).get(rooms.space or "", {})
        for archive in archives(markers, cfg, ctx.creators):
            for key, actions in steps(archive, cfg, rooms, listed, ctx.members):
                await sctx.submit(key, actions)
        await asyncio.sleep(config.poll_s)


def _config_error(config: BotConfig) -> str | None:
    return section_problem(config, FEATURE)


feature = Feature(
    name=FEATURE,
    summary="a group's imported history: listed in the Space, members invited with its keys",
    services=(Service("archive rooms", keep_archives),),
    config_model=ArchivesConfig,
    state_types=(SPACE_CHILD,),
    unavailable=_config_error,
)
