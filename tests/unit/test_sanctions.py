"""Moderators' sanctions, planned without I/O."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bots.framework.actions import (
    Ban,
    CancelJob,
    DeleteRecord,
    Kick,
    PutRecord,
    RedactRecent,
    ScheduleJob,
    SendDirect,
    SendNotice,
    SetPostingLevel,
    SetPower,
    SetState,
    Unban,
)
from bots.framework.markdown import md
from bots.moderation.commands.redact import USAGE, redact_amount
from bots.moderation.commands.rooms import audit_lines, lock_plan
from bots.moderation.commands.sanctions import (
    MAX_REDACT,
    Levels,
    Request,
    Sanction,
    Scope,
    outranked,
    plan,
    split_duration,
)
from bots.moderation.commands.undo import undo_plan

SPACE, GENERAL, NEWS = "!space:x", "!general:x", "!news:x"
LOG = "!log:x"
MOD, BOSS, TROLL = "@mod:x", "@boss:x", "@troll:x"
COMMUNITY = Scope((SPACE, GENERAL, NEWS), (GENERAL, NEWS), "the community")
ROOM = Scope((GENERAL,), (GENERAL,), "Carers")
T0 = 1_800_000_000.0

LEVELS = {MOD: 50, BOSS: 100}


def levels(
    members: dict[str, set[str]] | None = None, users: dict[str, int] | None = None
) -> Levels:
    present = members if members is not None else {GENERAL: {TROLL}, NEWS: {TROLL}}
    known = LEVELS | (users or {})
    return Levels(
        of=lambda room, user: known.get(user, 0),
        power_levels=lambda room: {"events_default": 0, "users": dict(known)},
        members=lambda room: frozenset(present.get(room, set())),
    )


def request(sanction: Sanction, target: str = TROLL, **kw: Any) -> Request:
    values: dict[str, Any] = {"duration": None, "reason": "spam"} | kw
    return Request(sanction, MOD, target, "$cmd", T0, values["duration"], values["reason"])


def test_a_duration_may_lead_the_reason() -> None:
    assert split_duration("2h spamming the group") == (timedelta(hours=2), "spamming the group")
    assert split_duration("spamming") == (None, "spamming")
    assert split_duration("") == (None, "")
    assert split_duration("1w") == (timedelta(weeks=1), "")


def test_a_community_ban_covers_every_room_is_logged_and_audited() -> None:
    said, actions = plan(request(Sanction.BAN), COMMUNITY, levels(), LOG, "Circle")
    assert [a for a in actions if isinstance(a, Ban)] == [
        Ban(room, TROLL, "spam") for room in (SPACE, GENERAL, NEWS)
    ]
    assert said == f"{MOD} banned {TROLL} across the community: spam."
    assert SendNotice(LOG, said, mentions=()) in actions
    audit, last = [a for a in actions if isinstance(a, PutRecord)]
    assert audit.kind == "audit"
    assert last.kind == "last"
    assert last.key == MOD
    assert last.value["rooms"] == [SPACE, GENERAL, NEWS]
    assert audit.value["action"] == "ban"
    assert audit.value["rooms"] == 3


def test_a_timed_ban_schedules_its_end() -> None:
    said, actions = plan(
        request(Sanction.BAN, duration=timedelta(days=7)), ROOM, levels(), None, "Circle"
    )
    (job,) = [a for a in actions if isinstance(a, ScheduleJob)]
    assert job.kind == "unban"
    assert job.due == T0 + 7 * 86400
    assert job.payload == {"rooms": [GENERAL], "user_id": TROLL}
    assert said == f"{MOD} banned {TROLL} in Carers for 1 week: spam."


def test_a_ban_of_someone_in_no_room_says_so() -> None:
    said, actions = plan(request(Sanction.BAN, "@tr0ll:x"), ROOM, levels(), None, "Circle")
    assert "is not in any of these rooms now" in said
    assert Ban(GENERAL, "@tr0ll:x", "spam") in actions  # banned all the same


def test_a_mute_is_below_the_posting_level_in_the_chat_rooms_only() -> None:
    req = request(Sanction.MUTE, duration=timedelta(minutes=30))
    _, actions = plan(req, COMMUNITY, levels(), None, "Circle")
    assert [a for a in actions if isinstance(a, SetPower)] == [
        SetPower(GENERAL, TROLL, -1),
        SetPower(NEWS, TROLL, -1),
    ]
    jobs = [a for a in actions if isinstance(a, ScheduleJob)]
    assert {j.payload["room_id"] for j in jobs} == {GENERAL, NEWS}
    assert all(j.due == T0 + 1800 for j in jobs)


def test_kick_mute_and_warn_need_the_member_to_be_there() -> None:
    nowhere = levels({})
    for sanction in (Sanction.KICK, Sanction.MUTE, Sanction.WARN):
        said, actions = plan(request(sanction), ROOM, nowhere, LOG, "Circle")
        assert said == f"{TROLL} is not in Carers."
        assert actions == []


def test_a_kick_and_a_warning() -> None:
    _, actions = plan(request(Sanction.KICK), COMMUNITY, levels({NEWS: {TROLL}}), None, "Circle")
    assert [a for a in actions if isinstance(a, Kick)] == [Kick(NEWS, TROLL, "spam")]
    _, actions = plan(request(Sanction.WARN, reason="be kind"), ROOM, levels(), None, "Circle")
    assert SendDirect(TROLL, md("**A message from the moderators of Circle:** be kind")) in actions


def test_nobody_acts_on_someone_at_or_above_their_level() -> None:
    assert outranked(request(Sanction.BAN, BOSS), COMMUNITY, levels())
    assert outranked(request(Sanction.BAN, "@member:x"), ROOM, levels()) is False
    assert outranked(request(Sanction.BAN, "@peer:x"), ROOM, levels(users={"@peer:x": 50}))


def test_lock_remembers_the_posting_level_and_unlock_restores_it() -> None:
    levels_now = {GENERAL: {"events_default": 0}, NEWS: {"events_default": 50}}
    locked = lock_plan((GENERAL, NEWS), levels_now, {}, lock=True)
    # The announcements room already needs a moderator's level: left alone.
    assert locked == [
        PutRecord("moderation", "lock", GENERAL, {"previous": 0}),
        SetPostingLevel(GENERAL, 50),
    ]
    assert lock_plan((GENERAL,), levels_now, {GENERAL: {"previous": 0}}, lock=True) == []
    assert lock_plan((GENERAL,), levels_now, {GENERAL: {"previous": 10}}, lock=False) == [
        DeleteRecord("moderation", "lock", GENERAL),
        SetPostingLevel(GENERAL, 10),
    ]
    assert lock_plan((NEWS,), levels_now, {}, lock=False) == []


def test_the_audit_trail_is_newest_last_and_filtered() -> None:
    records = {
        f"{i}": {"at": T0 + i, "moderator": MOD, "action": "ban", "target": f"@u{i % 2}:x"}
        for i in range(40)
    }
    lines = audit_lines(records, None)
    assert len(lines) == 15
    assert lines[-1].endswith("ban @u1:x")
    assert all("@u0:x" in line for line in audit_lines(records, "@u0:x"))
    assert audit_lines(records, "@nobody:x") == []


def test_redaction_amounts_are_bounded() -> None:
    assert redact_amount("") == (20, None, "the last 20")
    assert redact_amount("50") == (50, None, "the last 50")
    limit, since, said = redact_amount("10000")  # type: ignore[misc]
    assert (limit, since) == (1000, None)
    assert "at most 1000 at a time" in said
    assert redact_amount("since 2h") == (1000, 7200.0, "those of the last 2h")
    for bad in ("-3", "0", "lots", "since", "since forever", "5 6"):
        assert redact_amount(bad) == USAGE, bad


def test_undo_reverts_a_ban_and_its_timer_and_says_what_it_cannot_undo() -> None:
    req = request(Sanction.BAN, duration=timedelta(days=1))
    _, actions = plan(req, COMMUNITY, levels(), None, "Circle")
    last = next(a for a in actions if isinstance(a, PutRecord) and a.kind == "last").value
    said, undo = undo_plan(MOD, last, lambda room: {}, {})
    assert said == f"{MOD} undid their last action: unbanned {TROLL} in the community."
    assert CancelJob("unban:$cmd") in undo
    assert [a for a in undo if isinstance(a, Unban)] == [Unban(r, TROLL) for r in COMMUNITY.rooms]
    assert DeleteRecord("moderation", "last", MOD) in undo
    assert undo_plan(MOD, None, lambda room: {}, {}) == ("You have nothing to undo.", [])
    for action, words in (
        ("kick", "invite them back"),
        ("warn", "unsent"),
        ("redact", "brought back"),
    ):
        said, undo = undo_plan(MOD, {"action": action, "target": TROLL}, lambda room: {}, {})
        assert words in said
        assert undo == []


def test_undo_of_a_mute_and_of_a_lock() -> None:
    _, actions = plan(request(Sanction.MUTE), ROOM, levels(), None, "Circle")
    last = next(a for a in actions if isinstance(a, PutRecord) and a.kind == "last").value
    _, undo = undo_plan(MOD, last, lambda room: {}, {})
    assert SetPower(GENERAL, TROLL, None) in undo
    locked = {"action": "locked", "target": "Carers", "rooms": [GENERAL], "jobs": []}
    _, undo = undo_plan(
        MOD, locked, lambda room: {"events_default": 50}, {GENERAL: {"previous": 0}}
    )
    assert SetPostingLevel(GENERAL, 0) in undo


def test_a_takedown_bans_removes_what_they_posted_and_publishes_msc4204() -> None:
    req = Request(Sanction.BAN, MOD, TROLL, "$cmd", T0, None, "spam", takedown=True)
    community = Scope(COMMUNITY.rooms, COMMUNITY.chat_rooms, "the community", community=True)
    _, actions = plan(req, community, levels(), LOG, "Circle", "!list:x")
    assert [a for a in actions if isinstance(a, Ban)] == [
        Ban(room, TROLL, "spam") for room in (SPACE, GENERAL, NEWS)
    ]
    gone = f"Taken down by a moderator ({MOD})"
    assert [a for a in actions if isinstance(a, RedactRecent)] == [
        RedactRecent(room, TROLL, MAX_REDACT, None, gone) for room in (GENERAL, NEWS)
    ]
    (rule,) = [a for a in actions if isinstance(a, SetState)]
    assert rule.content == {
        "entity": TROLL,
        "recommendation": "org.matrix.msc4204.takedown",
        "reason": "spam",
    }
    last = next(a for a in actions if isinstance(a, PutRecord) and a.kind == "last")
    said, _ = undo_plan(MOD, last.value, lambda room: {}, {})
    assert said.endswith("The messages the takedown removed stay removed.")
    # An ordinary ban removes nothing.
    _, plain = plan(request(Sanction.BAN), community, levels(), LOG, "Circle", "!list:x")
    assert not [a for a in plain if isinstance(a, RedactRecent)]
