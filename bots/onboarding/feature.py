"""The onboarding feature: newcomers from the Synapse module's spool to a
welcomed, screened member of their group. Each handler reads the
applicant's record, runs one transition of :mod:`bots.onboarding.applicant`
and returns the new record with what follows (:mod:`bots.onboarding.plan`),
which the platform stores and sends together."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bots.adminagent.client import AgentClient
from bots.adminagent.requests import TokenGroups
from bots.framework.actions import Action, PutRecord, Reply, SendNotice
from bots.framework.commands.authorize import REFUSAL
from bots.framework.commands.spec import (
    REVIEWER,
    Arg,
    ArgType,
    Command,
    Handler,
    Invocation,
)
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
    Setup,
)
from bots.framework.logging import get_logger
from bots.onboarding import applicant as machine
from bots.onboarding.applicant import Outcome, Stage, Via
from bots.onboarding.config import OnboardingConfig
from bots.onboarding.leaving import ERASE, ERASE_CONFIRMED, LEAVE, EraseMe, erase_performer
from bots.onboarding.plan import FEATURE as NAME
from bots.onboarding.plan import KIND, catch_up, from_record
from bots.onboarding.scene import Scene
from bots.onboarding.texts import choices, group_name
from provisioning.schema import (
    CommunityFile,
    GroupDecl,
    moderators_room_problem,
    section_problem,
)

log = get_logger(__name__)

# On migration day hundreds register in a minute: each welcome is a DM to
# create and a message to encrypt, mostly waiting on the homeserver, so a
# few go at once. Each is still queued durably before it is sent.
WELCOMES_AT_ONCE = 4

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


# --- arrivals (the Synapse module's spool) ---


@dataclass(frozen=True)
class Registration:
    user_id: str
    token_ref: str | None
    registered_at: float


def read_registration(path: Path) -> Registration | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    user, ref, at = data.get("user_id"), data.get("token_ref"), data.get("registered_at")
    if not isinstance(user, str) or not (ref is None or isinstance(ref, str)):
        return None
    return Registration(user, ref, float(at) if isinstance(at, int | float) else 0.0)


async def arrival(scene: Scene, reg: Registration, group: str | None) -> list[Action]:
    """A new account: welcome it, unless the bot knows it already."""
    ctx, cfg = scene.ctx, scene.cfg
    if reg.user_id == ctx.me or reg.user_id in cfg.all_users():
        return []
    if await scene.application(reg.user_id) is not None:
        return []
    via = Via.TOKEN if group else Via.NO_TOKEN
    outcome = machine.arrive(reg.user_id, group, via, scene.questions(group), scene.policy, ctx.now)
    return scene.actions(outcome)


async def ready_for_welcome(
    ctx: Context[OnboardingConfig], reg: Registration, wait_s: float
) -> bool:
    if ctx.now - reg.registered_at >= wait_s or ctx.verified_devices is None:
        return True
    return await ctx.verified_devices(reg.user_id) > 0


async def welcome_all(
    run: Running[OnboardingConfig],
    scene: Scene,
    ready: Sequence[tuple[Path, Registration]],
    groups: dict[str, str],
) -> None:
    """Queue each newcomer's welcome (durably, once per account) and send
    it, a few at once, removing each spool file once its welcome is queued."""
    slots = asyncio.Semaphore(WELCOMES_AT_ONCE)

    async def welcome(path: Path, reg: Registration) -> None:
        group = groups.get(reg.token_ref) if reg.token_ref else None
        async with slots:
            await run.submit(f"registered:{reg.user_id}", await arrival(scene, reg, group))
        path.unlink(missing_ok=True)

    await asyncio.gather(*(welcome(path, reg) for path, reg in ready))


async def watch_registrations(
    run: Running[OnboardingConfig], ctx: Context[OnboardingConfig]
) -> None:
    config = ctx.config
    folder = config.registrations
    if folder is None or ctx.bot.admin_socket is None:
        return
    agent = AgentClient(ctx.bot.admin_socket)
    while True:
        paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if paths:
            ctx = run.fresh()
            ready: list[tuple[Path, Registration]] = []
            for path in paths:
                reg = read_registration(path)
                if reg is None:
                    log.warning("unreadable registration record removed")
                    path.unlink(missing_ok=True)
                elif await ready_for_welcome(ctx, reg, config.wait_for_verification_s):
                    ready.append((path, reg))
                # else: left in the spool, looked at again next time
            refs = tuple(sorted({r.token_ref for _, r in ready if r.token_ref}))
            groups: dict[str, str] = {}
            if refs:
                groups = (await agent.ask(TokenGroups(refs=refs))).get("groups") or {}
            await welcome_all(run, Scene.of(ctx), ready, groups)
        await asyncio.sleep(config.poll_s)


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
        return _reply(inv, f"There's no group called {wanted.strip()}. The groups are:\n{groups}")
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
            f"Please welcome {app.user_id}, who has just joined us!",
            mentions=(app.user_id,),
        ),
    ]


# --- the moderators' side, in the moderators' room ---


async def _decision(
    inv: Invocation, ctx: Context[OnboardingConfig], approve: bool | None
) -> Sequence[Action]:
    scene = Scene.of(ctx)
    user = str(inv.args["user"])
    app = await scene.application(user)
    if inv.room_id != scene.moderators_room:
        return _reply(inv, REFUSAL)
    if app is None:
        return _reply(inv, f"There's no application from {user}.")
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
        return _reply(inv, "No applications are waiting for you.")
    lines = [f"• {app.user_id}: {group_name(scene.cfg, app.group)}" for app in waiting]
    return _reply(inv, "Waiting for a decision:\n" + "\n".join(lines))


async def _stats(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    if inv.room_id != Scene.of(ctx).moderators_room:
        return _reply(inv, REFUSAL)
    counts: dict[Stage, int] = dict.fromkeys(Stage, 0)
    for data in (await ctx.records(KIND)).values():
        counts[from_record(data).stage] += 1
    text = ", ".join(f"{stage.value}: {n}" for stage, n in counts.items())
    return _reply(inv, f"Applications: {text}.")


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
    Command("agree", "Accept the code of conduct (in your DM with me)", _agree),
    LEAVE,
    ERASE,
    ERASE_CONFIRMED,
    Command(
        "join",
        "Ask to join a group",
        _join,
        (Arg("group", "the group's key or name", rest=True),),
    ),
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


# --- timers ---


async def _timer(job: Job, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
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


JOBS = tuple(JobSpec(kind, _timer, grace_s=7 * 86400) for kind in ("remind", "expire", "forget"))


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


def _erase_performer(setup: Setup) -> Callable[[EraseMe], Awaitable[Sequence[Action]]]:
    assert setup.bot.admin_socket is not None
    return erase_performer(setup.bot.admin_socket)


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
    performers={EraseMe: _erase_performer},
    unavailable=_config_error,
)
