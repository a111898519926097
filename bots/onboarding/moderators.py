"""The moderators' side of onboarding, in the moderators' room: deciding
on applications (`!approve`, `!deny`, `!reopen`) and seeing where they are
(`!pending`, `!onboarding stats`)."""

from __future__ import annotations

from collections.abc import Sequence

from bots.framework.actions import Action, Reply
from bots.framework.commands.authorize import REFUSAL
from bots.framework.commands.spec import REVIEWER, Arg, ArgType, Command, Handler, Invocation
from bots.framework.feature import Context
from bots.framework.markdown import Md, bullets, md
from bots.onboarding import applicant as machine
from bots.onboarding.applicant import Stage
from bots.onboarding.config import OnboardingConfig
from bots.onboarding.plan import KIND, from_record
from bots.onboarding.scene import Scene
from bots.onboarding.texts import group_name


def _reply(inv: Invocation, text: Md) -> list[Action]:
    return [Reply(inv.room_id, inv.event_id, text)]


async def _decision(
    inv: Invocation, ctx: Context[OnboardingConfig], approve: bool | None
) -> Sequence[Action]:
    scene = Scene.of(ctx)
    user = str(inv.args["user"])
    app = await scene.application(user)
    if inv.room_id != scene.moderators_room:
        return _reply(inv, REFUSAL)
    if app is None:
        return _reply(inv, md("There's no application from {}.", user))
    if not scene.may_decide(inv.sender, app):
        return _reply(inv, REFUSAL)
    if approve is None:
        return scene.actions(machine.reopen(app, inv.sender, scene.policy, ctx.now))
    reason = inv.args.get("reason")
    outcome = machine.decide(
        app, inv.sender, approve, reason if isinstance(reason, str) else None, scene.policy, ctx.now
    )
    return scene.actions(outcome)


async def _approve(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    return await _decision(inv, ctx, True)


async def _deny(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    return await _decision(inv, ctx, False)


async def _reopen(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    return await _decision(inv, ctx, None)


async def _pending(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    scene = Scene.of(ctx)
    if inv.room_id != scene.moderators_room:
        return _reply(inv, REFUSAL)
    waiting = [
        app
        for app in map(from_record, (await ctx.records(KIND)).values())
        if app.stage is Stage.PENDING and scene.may_decide(inv.sender, app)
    ]
    if not waiting:
        return _reply(inv, Md("No applications are waiting for you."))
    lines = [md("{}: {}", app.user_id, group_name(scene.cfg, app.group)) for app in waiting]
    return _reply(inv, md("#### Waiting for a decision\n\n{}", bullets(lines)))


async def _stats(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    if inv.room_id != Scene.of(ctx).moderators_room:
        return _reply(inv, REFUSAL)
    counts: dict[Stage, int] = dict.fromkeys(Stage, 0)
    for data in (await ctx.records(KIND)).values():
        counts[from_record(data).stage] += 1
    text = ", ".join(f"{stage.value}: {n}" for stage, n in counts.items())
    return _reply(inv, md("**Applications:** {}.", text))


USER = Arg("user", "the applicant, as @name:server", type=ArgType.USER)


def deciding(
    name: str,
    help: str,
    handler: Handler[Context[OnboardingConfig]],
    args: tuple[Arg, ...] = (),
) -> Command[Context[OnboardingConfig]]:
    """A moderators' command, typed in the moderators' room: the reviewer's
    level there (which groups' own moderators hold, and community moderators
    exceed), and the handler checks that the sender moderates the
    applicant's group (the community file says who)."""
    return Command(name, help, handler, args, power_level=REVIEWER)


COMMANDS = (
    deciding("approve", "Accept an application", _approve, (USER,)),
    deciding(
        "deny",
        "Turn an application down, with a reason the applicant will read",
        _deny,
        (USER, Arg("reason", "why, in a kind word", required=False, rest=True)),
    ),
    deciding("reopen", "Reopen an expired application", _reopen, (USER,)),
    deciding("pending", "Applications waiting for your decision", _pending),
    deciding("onboarding stats", "How many applications are where (no names)", _stats),
)
