"""`!group create <key> <name>`: a community moderator opens a new peer group."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bots.adminagent.client import AgentClient, AgentError
from bots.adminagent.requests import CreateGroup as AgentCreateGroup
from bots.framework.actions import Action, Extension, Reply, SendNotice
from bots.framework.commands.spec import MODERATOR, Arg, Command, Invocation, Scope
from bots.framework.feature import Context
from bots.framework.logging import get_logger
from bots.roomkeeping.config import RoomkeepingConfig

log = get_logger(__name__)


@dataclass(frozen=True)
class CreateGroup(Extension):
    key: str
    name: str
    sender: str
    room_id: str
    event_id: str


async def decide(inv: Invocation, ctx: Context[RoomkeepingConfig]) -> Sequence[Action]:
    from provisioning.schema import KEY_HELP, KEY_RE

    key = str(inv.args["key"]).lower()
    name = str(inv.args["name"]).strip()
    if not KEY_RE.match(key):
        return [Reply(inv.room_id, inv.event_id, f"The key must be {KEY_HELP}.")]
    if not name or len(name) > 255:
        return [Reply(inv.room_id, inv.event_id, "The name must be 1 to 255 characters.")]
    return [CreateGroup(key, name, inv.sender, inv.room_id, inv.event_id)]


GROUP_CREATE = Command(
    "group create",
    "Create a new peer group with its own encrypted room in the community's Space",
    decide,
    (
        Arg("key", "a short permanent key, e.g. young-adults"),
        Arg("name", 'the group\'s name, e.g. "Young adults"', rest=True),
    ),
    power_level=MODERATOR,
    scope=Scope.COMMUNITY,
    details="Creates the group's room (invite only, history from joining) and lists it "
    "in the Space. Add the group to the community YAML later to manage it with "
    "`hearth provision`.",
)


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
