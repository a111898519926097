"""What the onboarding feature's own actions do: ask the admin agent which
group a registration token is for, and erase an account at its owner's
request. Features reach the agent only here, in their performers
(``tests/unit/test_layering.py`` checks it), so a handler or a service asks
for it with an action, queued and recorded as any other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bots.adminagent.client import AgentClient, AgentError
from bots.adminagent.requests import EraseAccount as AgentErase
from bots.adminagent.requests import TokenGroups
from bots.framework.actions import Action, Extension, PutRecord, SendNotice
from bots.framework.agent_answers import ANSWERS
from bots.framework.feature import PerformerFactory, Setup
from bots.framework.logging import get_logger
from bots.onboarding.arrivals import LookUpTokenGroups
from bots.onboarding.leaving import EraseMe
from bots.onboarding.plan import FEATURE

log = get_logger(__name__)


def erase_performer(admin_socket: Path) -> Callable[[EraseMe], Awaitable[Sequence[Action]]]:
    async def perform(action: EraseMe) -> Sequence[Action]:
        request = AgentErase(user_id=action.user_id, requested_by=action.user_id)
        try:
            await AgentClient(admin_socket).ask(request)
        except AgentError as exc:
            log.warning("account not erased", reason=exc.__class__.__name__)
            return [SendNotice(action.room_id, f"I couldn't erase your account: {exc}.")]
        log.info("account erased at its owner's request")
        return []

    return perform


def token_groups_performer(
    admin_socket: Path,
) -> Callable[[LookUpTokenGroups], Awaitable[Sequence[Action]]]:
    async def perform(action: LookUpTokenGroups) -> Sequence[Action]:
        try:
            answer = await AgentClient(admin_socket).ask(TokenGroups(refs=action.refs))
        except AgentError as exc:
            # No record: the asker sees no answer and tries again later.
            log.warning("token groups not read", reason=exc.__class__.__name__)
            return []
        groups = answer.get("groups")
        return [
            PutRecord(
                FEATURE,
                ANSWERS,
                action.answer_key,
                {"groups": groups if isinstance(groups, dict) else {}},
            )
        ]

    return perform


def _socket(setup: Setup) -> Path:
    # Onboarding does not run without one (feature.unavailable): a bug if not.
    if setup.bot.admin_socket is None:
        raise ValueError("onboarding needs bot.admin_socket")
    return setup.bot.admin_socket


PERFORMERS: dict[type[Extension], PerformerFactory] = {
    EraseMe: lambda setup: erase_performer(_socket(setup)),
    LookUpTokenGroups: lambda setup: token_groups_performer(_socket(setup)),
}
