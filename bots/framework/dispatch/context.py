"""The context a feature's handler, job or service is given, and the
invocation a command handler receives: built in one place."""

from __future__ import annotations

from collections.abc import Callable

from bots.framework.community import Community, CommunitySource
from bots.framework.config import BotConfig
from bots.framework.feature import Context, Feature, FeatureConfig
from bots.framework.room_facts import RoomFacts
from bots.framework.storage import Storage
from bots.framework.trust.identities import Identities


def section_of(config: BotConfig, feature: Feature) -> FeatureConfig:
    """*feature*'s section of the bot's config, or its defaults."""
    section = config.feature_sections.get(feature.name)
    return section if section is not None else feature.config_model()


class Contexts:
    def __init__(
        self,
        config: BotConfig,
        facts: RoomFacts,
        clock: Callable[[], float],
        source: Callable[[], CommunitySource | None] = lambda: None,
    ) -> None:
        """*source*: the community file and its roles, as last read well."""
        self.config = config
        self.facts = facts
        self.clock = clock
        self.source = source
        # Set once the bot has opened its state and connected.
        self.storage: Storage | None = None
        self.identities: Identities | None = None

    def section(self, feature: Feature) -> FeatureConfig:
        return section_of(self.config, feature)

    def of(self, feature: Feature | None) -> Context | None:
        if feature is None:
            return None
        assert self.storage is not None
        facts = self.facts
        return Context(
            me=self.config.user_id,
            feature=feature.name,
            config=self.section(feature),
            bot=self.config,
            now=self.clock(),
            db=self.storage,
            power=facts.power_of,
            moderators_room=facts.moderators_room_id,
            store=self.storage,
            room_state=facts.room_state_of,
            keyed_state=facts.state.keyed_content,
            direct_room=self.storage.direct_room,
            verified_devices=self.verified_devices,
            members=facts.members,
            creators=facts.state.creators,
            community=self.community,
        )

    def community(self) -> Community:
        """The community as features read it (``ctx.community()``): only
        the rooms verify() accepted, and who is who and the file as last
        read well (roles and file from one reading, so they agree)."""
        source = self.source()
        return Community(
            rooms=self.facts.verdict().rooms,
            roles=source.roles if source is not None else None,
            named_rooms=self.facts.named_rooms(),
            document=source.document if source is not None else None,
        )

    async def verified_devices(self, user_id: str) -> int:
        if self.identities is None:
            return 0
        self.identities.forget([user_id])
        identity = (await self.identities.get([user_id]))[user_id]
        return sum(1 for d in identity.devices.values() if d.signed_by_owner)
