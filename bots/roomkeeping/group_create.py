"""`!group create <key> <name>`: a community moderator opens a new peer group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bots.framework.actions import Action, Extension, Reply
from bots.framework.commands.spec import MODERATOR, Arg, Command, Invocation, Scope
from bots.framework.feature import Context
from bots.roomkeeping.config import RoomkeepingConfig


@dataclass(frozen=True)
class CreateGroup(Extension):
    """Open the group, through the admin agent (:mod:`bots.roomkeeping.performers`)."""

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
