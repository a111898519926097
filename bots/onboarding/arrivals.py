"""Arrivals: the accounts the Synapse module leaves word of in its spool,
each welcomed once, to the group its registration token was made for.

Which group a token is for only the admin agent knows; the bot asks it with
an action (:class:`LookUpTokenGroups`), as it reaches the agent for
anything, and reads the answer the performer leaves in a record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bots.framework.actions import Action, Extension
from bots.framework.agent_answers import ask_agent
from bots.framework.feature import Context, Running
from bots.framework.logging import get_logger
from bots.onboarding import applicant as machine
from bots.onboarding.applicant import Via
from bots.onboarding.config import OnboardingConfig
from bots.onboarding.scene import Scene

log = get_logger(__name__)

# On migration day hundreds register in a minute: each welcome is a DM to
# create and a message to encrypt, mostly waiting on the homeserver, so a
# few go at once. Each is still queued durably before it is sent.
WELCOMES_AT_ONCE = 4


@dataclass(frozen=True)
class LookUpTokenGroups(Extension):
    """Ask the admin agent which group each registration token (by its
    reference; the bot never sees a token) was made for. The performer
    (:mod:`bots.onboarding.performers`) puts ``{"groups": {ref: group}}``
    in the record (:data:`ANSWERS`, *answer_key*), and nothing when the
    agent could not answer."""

    refs: tuple[str, ...]
    answer_key: str


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


async def token_groups(run: Running[OnboardingConfig], refs: tuple[str, ...]) -> dict[str, str]:
    """The group each of *refs* was made for, from the admin agent.

    ``run.submit`` performs the lookup before it returns, so its answer is
    in the records by then; it is deleted at once, with any a restart left.

    Raises:
        AgentUnanswered: so the service is restarted with backoff and the
            newcomers stay in the spool, rather than welcomed without their
            group.
    """
    answer = await ask_agent(
        run,
        "token-groups",
        lambda key: LookUpTokenGroups(refs, key),
        "the admin agent did not say which groups the tokens are for",
    )
    groups = answer.get("groups")
    if not isinstance(groups, dict):
        return {}
    return {ref: group for ref, group in groups.items() if isinstance(group, str)}


async def watch_registrations(
    run: Running[OnboardingConfig], ctx: Context[OnboardingConfig]
) -> None:
    config = ctx.config
    folder = config.registrations
    if folder is None or ctx.bot.admin_socket is None:
        return
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
            groups = await token_groups(run, refs) if refs else {}
            await welcome_all(run, Scene.of(ctx), ready, groups)
        await asyncio.sleep(config.poll_s)
