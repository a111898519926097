"""The archives feature: a service that looks at the archive rooms now and then."""

from __future__ import annotations

import asyncio

from bots.archives.config import ArchivesConfig
from bots.archives.plan import archives, steps
from bots.framework.config import BotConfig
from bots.framework.event_types import SPACE_CHILD
from bots.framework.feature import Context, Feature, Running, Service
from provisioning.schema import CommunityFile, section_problem

NAME = "archives"


async def keep_archives(run: Running[ArchivesConfig], ctx: Context[ArchivesConfig]) -> None:
    while True:
        ctx = run.fresh()
        community = ctx.community()
        cfg, rooms = community.file(CommunityFile), community.rooms
        markers = rooms.markers
        listed = ctx.keyed_state(SPACE_CHILD).get(rooms.space or "", {})
        for archive in archives(markers, cfg, ctx.creators):
            for key, actions in steps(archive, cfg, rooms, listed, ctx.members):
                await run.submit(key, actions)
        await asyncio.sleep(ctx.config.poll_s)


def _config_error(config: BotConfig) -> str | None:
    return section_problem(config, NAME)


FEATURE = Feature(
    name=NAME,
    summary="a group's imported history: listed in the Space, members invited with its keys",
    services=(Service("archive rooms", keep_archives),),
    config_model=ArchivesConfig,
    state_types=(SPACE_CHILD,),
    unavailable=_config_error,
)
