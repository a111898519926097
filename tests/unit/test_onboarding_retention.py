"""What an application holds goes when the community file says, whatever
stage it was stored in (pure)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bots.framework.actions import Invite, ScheduleJob
from bots.framework.community import CommunityRooms
from bots.framework.markdown import render
from bots.onboarding.applicant import (
    Application,
    Policy,
    Say,
    Stage,
    TellModerators,
    Via,
    agree,
    answer,
    arrive,
    decide,
    expire,
    withdraw,
)
from bots.onboarding.plan import BACKUP, FEATURE, actions_for, backup_key, catch_up
from bots.onboarding.texts import to_applicant, to_moderators
from provisioning.schema import load_community

NEWCOMER = "@newcomer:example.org"
QUESTIONS = ("Whom do you care for?",)
POLICY = Policy(answer_max_chars=200, remind_after_s=100, expire_after_s=1000, keep_answers_s=50)
T0 = 1_000_000.0
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "community.example.yaml"


def pending(at: float = T0) -> Application:
    app = arrive(NEWCOMER, "carers", Via.KNOCK, QUESTIONS, POLICY, at, note="My mum").application
    app = agree(app, POLICY, at + 1).application
    return answer(app, "My mum, who has ALS", POLICY, at + 2).application


def test_a_pending_application_stored_without_an_expiry_gets_one() -> None:
    app = pending()
    (job,) = catch_up(app, POLICY, T0 + 10)
    assert job == ScheduleJob(
        FEATURE,
        "expire",
        T0 + 2 + 1000,
        f"expire:{NEWCOMER}:{T0 + 2}:catch-up",
        {"user_id": NEWCOMER, "version": T0 + 2},
    )
    # Its version is the application's: expire() then closes it.
    assert expire(app, POLICY, job.due).application.stage is Stage.EXPIRED


def test_one_long_overdue_expires_at_once_rather_than_be_missed() -> None:
    (job,) = catch_up(pending(), POLICY, T0 + 90 * 86400)
    assert job.due == T0 + 90 * 86400


def test_a_withdrawn_knock_stored_with_its_note_forgets_it_now() -> None:
    knock = arrive(NEWCOMER, "carers", Via.KNOCK, QUESTIONS, POLICY, T0, note="My mum")
    # As stored before withdrawing dropped the note.
    old = replace(withdraw(knock.application, POLICY, T0 + 5).application, note="My mum")
    (job,) = catch_up(old, POLICY, T0 + 10)
    assert (job.kind, job.due, job.payload) == ("forget", T0 + 10, {"user_id": NEWCOMER})


def test_the_rest_had_their_jobs_from_the_transition_that_closed_them() -> None:
    decided = decide(pending(), "@mod:example.org", True, None, POLICY, T0 + 10).application
    withdrawn = withdraw(pending(), POLICY, T0 + 10).application
    expired = expire(pending(), POLICY, T0 + 1002).application
    for app in (decided, withdrawn, expired):
        assert catch_up(app, POLICY, T0 + 20) == []


def test_what_an_undecided_expiry_says_to_each_side() -> None:
    cfg = load_community(EXAMPLE)
    group = cfg.groups[0].key
    expired = expire(replace(pending(), group=group), POLICY, T0 + 1002)
    applicant = to_applicant(cfg, expired.application, Say("expired_undecided"), "!")
    assert "the moderators didn't get to your application" in applicant
    assert "answers will be deleted" in applicant
    mods = render(to_moderators(cfg, expired.application, TellModerators("expired"), "!")).body
    assert mods == (
        f"{NEWCOMER}'s application to {cfg.groups[0].name} waited too long for a decision "
        f"and is closed; its answers will be deleted. !reopen {NEWCOMER} puts it before you "
        "again."
    )
    # Nothing the applicant wrote is in what the moderators are told.
    assert "ALS" not in mods


def test_an_approval_sets_one_backup_reminder_a_day_later() -> None:

    cfg = load_community(EXAMPLE)
    rooms = CommunityRooms("!space:x", {"carers": ("!chat:x",)})
    approved = decide(pending(), "@mod:example.org", True, None, POLICY, T0 + 5)
    actions = actions_for(approved, cfg, rooms, "!mods:x", "!")
    invites = [a for a in actions if isinstance(a, Invite)]
    assert [i.room_id for i in invites] == ["!space:x", "!chat:x"]
    jobs = [a for a in actions if isinstance(a, ScheduleJob) and a.kind == BACKUP]
    assert jobs == [
        ScheduleJob(FEATURE, BACKUP, T0 + 5 + 86400, backup_key(NEWCOMER), {"user_id": NEWCOMER})
    ]
    # A refusal sets none.
    denied = decide(pending(), "@mod:example.org", False, "not now", POLICY, T0 + 5)
    kinds = [
        a.kind
        for a in actions_for(denied, cfg, rooms, "!mods:x", "!")
        if isinstance(a, ScheduleJob)
    ]
    assert BACKUP not in kinds


def test_the_welcome_says_how_to_keep_ones_history() -> None:
    cfg = load_community(EXAMPLE)
    app = arrive(NEWCOMER, "carers", Via.TOKEN, QUESTIONS, POLICY, T0).application
    text = " ".join(to_applicant(cfg, app, Say("welcome"), "!").split())
    assert "Secure Backup" in text
    assert "recovery key" in text
    assert "lose every group message" in text
