"""Who may `!undo` what, and from where: checked as the reverted command was,
now (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from bots.framework.commands.authorize import REFUSAL
from bots.moderation.commands.handlers import OUTRANKED
from bots.moderation.commands.sanctions import Scope
from bots.moderation.commands.undo import undo_refusal
from bots.moderation.config import CommandLevels

SPACE, CARERS, PARENTS = "!space:x", "!carers:x", "!parents:x"
MOD, TROLL = "@mod:x", "@troll:x"
COMMUNITY = Scope((SPACE, CARERS, PARENTS), (CARERS, PARENTS), "the community", community=True)
IN_CARERS = Scope((CARERS,), (CARERS,), "Carers")
IN_PARENTS = Scope((PARENTS,), (PARENTS,), "Parents")
LEVELS = CommandLevels(ban=50, mute=40, lock=60)


def last(action: str, rooms: tuple[str, ...]) -> dict[str, Any]:
    return {"action": action, "target": TROLL, "rooms": list(rooms), "jobs": []}


def nobody_outranks(room: str, user: str) -> int:
    return 50 if user == MOD else 0


def refusal(
    record: dict[str, Any] | None, scope: Scope | None, level: int = 50, of: Any = nobody_outranks
) -> str | None:
    return undo_refusal(MOD, record, scope, level, LEVELS, of)


COMMUNITY_BAN = last("ban", (SPACE, CARERS, PARENTS))
CARERS_BAN = last("ban", (CARERS,))


def test_a_moderator_who_still_holds_the_level_undoes_where_they_acted() -> None:
    assert refusal(COMMUNITY_BAN, COMMUNITY) is None
    assert refusal(CARERS_BAN, IN_CARERS) is None
    # The moderators' room covers every group's room.
    assert refusal(CARERS_BAN, COMMUNITY) is None


def test_after_a_demotion_the_undo_is_refused() -> None:
    # A community moderator made one of a group's moderators (the reviewer's
    # level in the moderators' room) can no longer lift a community ban.
    assert refusal(COMMUNITY_BAN, COMMUNITY, level=25) == REFUSAL
    assert refusal(CARERS_BAN, IN_CARERS, level=0) == REFUSAL


@pytest.mark.parametrize(
    ("action", "needs"),
    [("ban", 50), ("unban", 50), ("mute", 40), ("unmute", 40), ("locked", 60), ("unlocked", 60)],
)
def test_each_reversal_needs_the_level_its_command_needs(action: str, needs: int) -> None:
    record = last(action, (CARERS,))
    assert refusal(record, IN_CARERS, level=needs) is None
    assert refusal(record, IN_CARERS, level=needs - 1) == REFUSAL


def test_out_of_scope_is_refused() -> None:
    # A group's room reaches neither the community nor another group's room.
    assert refusal(COMMUNITY_BAN, IN_CARERS) == REFUSAL
    assert refusal(CARERS_BAN, IN_PARENTS) == REFUSAL
    # Nor does a room that is no moderation room at all (a DM, a member's room).
    assert refusal(CARERS_BAN, None) == REFUSAL


def test_a_reversal_that_sanctions_is_refused_against_someone_at_the_moderators_level() -> None:
    def promoted(room: str, user: str) -> int:
        return 50  # the troll was made a moderator since the unban

    assert refusal(last("unban", (CARERS,)), IN_CARERS, of=promoted) == OUTRANKED
    assert refusal(last("unmute", (CARERS,)), IN_CARERS, of=promoted) == OUTRANKED
    # Lifting a ban or a mute sanctions nobody: not refused on that ground.
    assert refusal(last("ban", (CARERS,)), IN_CARERS, of=promoted) is None


def test_nothing_to_undo_or_what_cannot_be_undone_is_only_said() -> None:
    assert refusal(None, None) is None
    assert refusal(last("kick", (CARERS,)), None, level=0) is None
