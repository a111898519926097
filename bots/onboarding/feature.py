"""The onboarding feature: newcomers from the Synapse module's spool to a
welcomed, screened member of their group. Each handler reads the
applicant's record, runs one transition of :mod:`bots.onboarding.applicant`
and returns the new record with what follows (:mod:`bots.onboarding.plan`),
which the platform stores and sends together.

Here: the applicant's side (their DM with the bot, a knock, `!join`) and
the timers. Arrivals from the spool are :mod:`bots.onboarding.arrivals`,
the moderators' side :mod:`bots.onboarding.moderators`, `!leave` and
`!erase-me` :mod:`bots.onboarding.leaving`, and what reaches the admin
agent :mod:`bots.onboarding.performers`."""

from __future__ import annotations

from collections.abc import Sequence

from bots.framework.actions import Action, PutRecord, Reply, SendNotice
from bots.framework.commands.spec import Arg, Command, Invocation
from bots.framework.config import BotConfig
from bots.framework.events import Membership, MembershipChange, Message, Reaction
from bots.framework.feature import (
    Context,
    EventHandler,
    Feature,
    Job,
    JobSpec,
    Running,
    Service,
)
from bots.framework.markdown import md, mention
from bots.onboarding import applicant as machine
from bots.onboarding import backup
from bots.onboarding.applicant import Outcome, Stage, Via
from bots.onboarding.arrivals import watch_registrations
from bots.onboarding.config import OnboardingConfig
from bots.onboarding.leaving import ERASE, ERASE_CONFIRMED, LEAVE
from bots.onboarding.moderators import COMMANDS as MODERATORS_COMMANDS
from bots.onboarding.performers import PERFORMERS
from bots.onboarding.plan import FEATURE as NAME
from bots.onboarding.plan import KIND, catch_up, from_record
from bots.onboarding.scene import Scene
from bots.onboarding.texts import choices
from provisioning.schema import (
    CommunityFile,
    GroupDecl,
    moderators_room_problem,
    section_problem,
)

AGREE_REACTIONS = frozenset({"👍", "👍️", "✅", "✔️"})


def unavailable(config: BotConfig) -> str | None:
    if "onboarding" not in config.feature_sections:
        return "it needs an onboarding section naming the community file"
    if config.admin_socket is None:
        return "it needs bot.admin_socket (to learn which group a registration token is for)"
    return None


def find_group(cfg: CommunityFile, text: str) -> GroupDecl | None:
    """The group an applicant named, by key or by name."""
    wanted = text.strip().lower()
    return next((g for g in cfg.groups if wanted in (g.key, g.name.lower())), None)


# --- the applicant's side, in their DM with the bot ---


def _reply(inv: Invocation, text: str) -> list[Action]:
    return [Reply(inv.room_id, inv.event_id, text)]


async def _agree(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    scene = Scene.of(ctx)
    app = await scene.application(inv.sender)
    dm = await ctx.direct_room(inv.sender) if ctx.direct_room is not None else None
    if app is None or dm != inv.room_id:
        return _reply(inv, "There's nothing to agree to here.")
    return scene.actions(machine.agree(app, scene.policy, ctx.now))


async def on_direct_message(event: Message, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    """An applicant's answer, or the group they are looking for."""
    if event.body.lstrip().startswith(ctx.bot.command_prefix):
        return []
    scene = Scene.of(ctx)
    app = await scene.application(event.sender)
    if app is None:
        return []
    if app.stage is Stage.ANSWERING:
        return scene.actions(machine.answer(app, event.body, scene.policy, ctx.now))
    if app.stage is Stage.CHOOSING:
        group = find_group(scene.cfg, event.body)
        if group is None:
            return scene.actions(Outcome(app, (machine.Say("choose_group"),)))
        chosen = machine.choose(app, group.key, scene.questions(group.key), scene.policy, ctx.now)
        return scene.actions(chosen)
    return []


async def on_direct_reaction(event: Reaction, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    if event.key not in AGREE_REACTIONS:
        return []
    scene = Scene.of(ctx)
    app = await scene.application(event.sender)
    if app is not None and app.stage is Stage.APPROVED:
        return await backup.on_thumbs_up(event.sender, ctx) or []
    if app is None or app.stage is not Stage.ARRIVED:
        return []
    return scene.actions(machine.agree(app, scene.policy, ctx.now))


async def on_direct_leave(event: Membership, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    """An applicant who leaves their DM with the bot withdraws."""
    if event.change is not MembershipChange.LEAVE or event.target != event.sender:
        return []
    scene = Scene.of(ctx)
    app = await scene.application(event.sender)
    if app is None:
        return []
    return scene.actions(machine.withdraw(app, scene.policy, ctx.now))


async def on_knock(event: Membership, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    """Someone asks to join a group's room (Element X's "ask to join"): the
    same welcome and screening, with the knock's reason shown to moderators."""
    if event.change is not MembershipChange.KNOCK:
        return []
    scene = Scene.of(ctx)
    group = scene.rooms.group_of(event.room_id)
    if group is None or event.target in scene.cfg.all_users():
        return []
    app = await scene.application(event.target)
    if app is not None and app.stage in machine.OPEN:
        return []  # knocked again while the first request is open
    outcome = machine.arrive(
        event.target,
        group,
        Via.KNOCK,
        scene.questions(group),
        scene.policy,
        ctx.now,
        note=event.reason or "",
    )
    return scene.actions(outcome)


async def _join(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    """`!join <group>`: a member asks for another group."""
    scene = Scene.of(ctx)
    wanted = str(inv.args["group"])
    group = find_group(scene.cfg, wanted)
    if group is None:
        groups = choices(scene.cfg)
        return _reply(
            inv, md("There's no group called {}. The groups are:\n\n{}", wanted.strip(), groups)
        )
    app = await scene.application(inv.sender)
    if app is not None and app.stage in machine.OPEN:
        return _reply(inv, "You already have a request in progress: let's finish that one first.")
    outcome = machine.arrive(
        inv.sender, group.key, Via.JOIN, scene.questions(group.key), scene.policy, ctx.now
    )
    return scene.actions(outcome)


async def on_join(event: Membership, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    """Greet an approved newcomer when they join their group's main room."""
    if event.change is not MembershipChange.JOIN:
        return []
    scene = Scene.of(ctx)
    app = await scene.application(event.target)
    if app is None or app.stage is not Stage.APPROVED or app.group is None:
        return []
    if scene.rooms.main_room(app.group) != event.room_id:
        return []
    if await ctx.record("greeted", app.user_id) is not None:
        return []
    return [
        PutRecord(NAME, "greeted", app.user_id, {"at": ctx.now}),
        SendNotice(
            event.room_id,
            md("Please welcome {}, who has just joined us!", mention(app.user_id)),
            mentions=(app.user_id,),
        ),
    ]


COMMANDS = (
    Command("agree", "Accept the code of conduct (in your DM with me)", _agree),
    LEAVE,
    ERASE,
    ERASE_CONFIRMED,
    backup.COMMAND,
    Command(
        "join",
        "Ask to join a group",
        _join,
        (Arg("group", "the group's key or name", rest=True),),
    ),
    *MODERATORS_COMMANDS,
)


# --- timers ---


async def _timer(job: Job[None], ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    scene = Scene.of(ctx)
    user = job.payload.get("user_id")
    app = await scene.application(user) if isinstance(user, str) else None
    if app is None:
        return []
    if job.kind == "forget":
        return scene.actions(machine.forget_answers(app, ctx.now))
    if not machine.timer_applies(app, job.payload.get("version")):
        return []  # set for a state the applicant has since left
    step = machine.remind if job.kind == "remind" else machine.expire
    return scene.actions(step(app, scene.policy, ctx.now))


JOBS = (
    *(JobSpec(kind, _timer, grace_s=7 * 86400) for kind in ("remind", "expire", "forget")),
    backup.JOB,
)


async def catch_up_retention(
    run: Running[OnboardingConfig], ctx: Context[OnboardingConfig]
) -> None:
    """Once at start: give applications stored before their stage had an
    expiry (pending ones) or a forgetting (withdrawn ones) the jobs they
    lack, so what they hold goes when the community file says."""
    policy = Scene.of(ctx).policy
    records = await ctx.records(KIND)
    jobs = [
        job for data in records.values() for job in catch_up(from_record(data), policy, ctx.now)
    ]
    if jobs:
        await run.submit(f"retention:{ctx.now:.0f}", jobs)


def _config_error(config: BotConfig) -> str | None:
    return unavailable(config) or section_problem(config, NAME) or moderators_room_problem(config)


FEATURE = Feature(
    name=NAME,
    summary="welcomes and screens newcomers, and lets moderators decide",
    commands=COMMANDS,
    handlers=(
        EventHandler(Message, on_direct_message, direct_only=True),
        EventHandler(Reaction, on_direct_reaction, direct_only=True),
        EventHandler(Membership, on_direct_leave, direct_only=True),
        EventHandler(Membership, on_join),
        EventHandler(Membership, on_knock),
    ),
    jobs=JOBS,
    config_model=OnboardingConfig,
    services=(
        Service("registrations", watch_registrations),
        Service("retention", catch_up_retention),
    ),
    performers=PERFORMERS,
    unavailable=_config_error,
)
