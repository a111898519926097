"""What roomkeeping's own action does: the admin agent opens the group.
Features reach the agent only in their performers
(``tests/unit/test_layering.py`` checks it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bots.adminagent.client import AgentClient, AgentError
from bots.adminagent.requests import CreateGroup as AgentCreateGroup
from bots.framework.actions import Action, Extension, Reply, SendNotice
from bots.framework.feature import PerformerFactory, Setup
from bots.framework.logging import get_logger
from bots.roomkeeping.group_create import CreateGroup

log = get_logger(__name__)


def group_create_performer(
    admin_socket: Path,
) -> Callable[[CreateGroup], Awaitable[Sequence[Action]]]:
    """The adapter that performs CreateGroup through the admin agent, which
    runs the provisioning applier with the admin account."""

    async def perform(action: CreateGroup) -> Sequence[Action]:
        def reply(text: str) -> Reply:
            return Reply(action.room_id, action.event_id, text)

        request = AgentCreateGroup(key=action.key, name=action.name, requested_by=action.sender)
        try:
            made = await AgentClient(admin_socket).ask(request)
        except AgentError as exc:
            log.warning("group not created", reason=exc.__class__.__name__)
            return [reply(f"I couldn't create the group: {exc}.")]
        room_ids = made.get("room_ids") or {}
        rooms = ", ".join(sorted(room_ids))
        snippet = f"  - key: {action.key}\n    name: {action.name}"
        out: list[Action] = [
            reply(
                f'Created the group "{action.name}" ({rooms}), listed in the Space. '
                f"To manage it with hearth provision, add to the community YAML's groups:\n"
                f"{snippet}"
            )
        ]
        moderation_log = made.get("moderation_log")
        if isinstance(moderation_log, str):
            out.append(
                SendNotice(
                    moderation_log,
                    f'{action.sender} created the group "{action.name}" ({action.key}).',
                )
            )
        return out

    return perform


def _performer(setup: Setup) -> Callable[[CreateGroup], Awaitable[Sequence[Action]]]:
    # Roomkeeping does not run without one (feature._unavailable): a bug if not.
    if setup.bot.admin_socket is None:
        raise ValueError("roomkeeping needs bot.admin_socket")
    return group_create_performer(setup.bot.admin_socket)


PERFORMERS: dict[type[Extension], PerformerFactory] = {CreateGroup: _performer}
