"""What every onboarding handler works with: the feature's config, the
community file and rooms (``ctx.community()``), and the applicant's
record and moderators' room."""

from __future__ import annotations

from dataclasses import dataclass

from bots.framework.actions import Action
from bots.framework.community import CommunityRooms
from bots.framework.feature import Context
from bots.onboarding.applicant import Application, Outcome, Policy
from bots.onboarding.config import OnboardingConfig
from bots.onboarding.plan import KIND, actions_for, from_record
from provisioning.schema import CommunityFile


@dataclass(frozen=True)
class Scene:
    ctx: Context[OnboardingConfig]
    cfg: CommunityFile
    rooms: CommunityRooms
    policy: Policy

    @classmethod
    def of(cls, ctx: Context[OnboardingConfig]) -> Scene:
        community = ctx.community()
        cfg = community.file(CommunityFile)
        ob = cfg.onboarding
        policy = Policy(
            answer_max_chars=ob.answer_max_chars,
            remind_after_s=ob.remind_after_hours * 3600,
            expire_after_s=ob.expire_after_days * 86400,
            keep_answers_s=ob.keep_answers_days * 86400,
        )
        return cls(ctx, cfg, community.rooms, policy)

    async def application(self, user_id: str) -> Application | None:
        data = await self.ctx.record(KIND, user_id)
        return from_record(data) if data else None

    @property
    def moderators_room(self) -> str | None:
        """Where applications go and are decided: the bot's configured
        moderators' room, else the one provisioning marked in the community."""
        return self.ctx.moderators_room or self.rooms.moderators

    def actions(self, outcome: Outcome) -> list[Action]:
        prefix = self.ctx.bot.command_prefix
        return actions_for(outcome, self.cfg, self.rooms, self.moderators_room, prefix)

    def questions(self, group: str | None) -> tuple[str, ...]:
        return self.cfg.questions_for(self.cfg.group(group)) if group else ()

    def may_decide(self, moderator: str, app: Application) -> bool:
        """Community moderators, and the moderators of the applicant's group."""
        group = self.cfg.group(app.group) if app.group else None
        return moderator in self.cfg.community.moderators or (
            group is not None and moderator in group.moderators
        )
