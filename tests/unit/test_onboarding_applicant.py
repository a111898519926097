"""Each transition of an applicant's way in, on its own (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bots.onboarding.applicant import (
    CUT,
    STOP_TIMERS,
    Admit,
    Application,
    ForgetAnswersAt,
    Policy,
    RejectKnock,
    Say,
    Stage,
    TellModerators,
    Timers,
    Via,
    agree,
    answer,
    arrive,
    choose,
    clean_answer,
    decide,
    expire,
    forget_answers,
    remind,
    reopen,
    timer_applies,
    withdraw,
)

NEWCOMER = "@newcomer:example.org"
MOD, OTHER_MOD = "@mod:example.org", "@other-mod:example.org"
QUESTIONS = ("How did you hear about us?", "What would you like from the group?")
POLICY = Policy(answer_max_chars=200, remind_after_s=100, expire_after_s=1000, keep_answers_s=50)
T0 = 1_000_000.0


def said(effects: tuple[object, ...]) -> list[str]:
    return [e.what for e in effects if isinstance(e, Say)]


def arrived(group: str | None = "carers", questions: tuple[str, ...] = QUESTIONS) -> Application:
    via = Via.TOKEN if group else Via.NO_TOKEN
    return arrive(NEWCOMER, group, via, questions, POLICY, T0).application


def pending() -> Application:
    app = agree(arrived(), POLICY, T0 + 1).application
    app = answer(app, "A friend", POLICY, T0 + 2).application
    return answer(app, "Company", POLICY, T0 + 3).application


def test_the_token_path_from_welcome_to_approval() -> None:
    first = arrive(NEWCOMER, "carers", Via.TOKEN, QUESTIONS, POLICY, T0)
    assert first.application.stage is Stage.ARRIVED
    assert first.effects == (Say("welcome"), Timers(T0 + 100, T0 + 1000))

    agreed = agree(first.application, POLICY, T0 + 1)
    assert agreed.application.stage is Stage.ANSWERING
    assert agreed.effects == (Say("question", QUESTIONS[0]), Timers(T0 + 101, T0 + 1001))

    one = answer(agreed.application, "A friend told me", POLICY, T0 + 2)
    assert one.effects[0] == Say("question", QUESTIONS[1])
    two = answer(one.application, "People who understand", POLICY, T0 + 3)
    assert two.application.stage is Stage.PENDING
    assert two.application.answers == ("A friend told me", "People who understand")
    # No reminder while the moderators decide, but an expiry all the same.
    assert two.effects == (
        Say("next_steps"),
        TellModerators("application"),
        Timers(None, T0 + 1003),
    )

    approved = decide(two.application, MOD, True, None, POLICY, T0 + 10)
    assert approved.application.stage is Stage.APPROVED
    assert approved.application.decided_by == MOD
    assert approved.effects == (
        Admit("carers"),
        Say("approved"),
        TellModerators("decided"),
        ForgetAnswersAt(T0 + 60),
    )


def test_without_a_group_the_applicant_is_asked_which_one() -> None:
    app = arrived(group=None, questions=())
    agreed = agree(app, POLICY, T0 + 1)
    assert agreed.application.stage is Stage.CHOOSING
    assert said(agreed.effects) == ["choose_group"]
    chosen = choose(agreed.application, "research", ("Patient or carer?",), POLICY, T0 + 2)
    assert chosen.application.group == "research"
    assert chosen.effects[0] == Say("question", "Patient or carer?")


def test_a_group_without_questions_goes_straight_to_review() -> None:
    agreed = agree(arrived(questions=()), POLICY, T0 + 1)
    assert agreed.application.stage is Stage.PENDING
    assert TellModerators("application") in agreed.effects


def test_agreeing_twice_repeats_nothing() -> None:
    app = agree(arrived(), POLICY, T0 + 1).application
    again = agree(app, POLICY, T0 + 2)
    assert again.application == app
    assert again.effects == (Say("not_now", Stage.ANSWERING),)


def test_an_empty_answer_is_asked_again() -> None:
    app = agree(arrived(), POLICY, T0 + 1).application
    empty = answer(app, "  \n\u200b ", POLICY, T0 + 2)
    assert empty.application.answers == ()
    assert empty.effects == (Say("empty_answer", QUESTIONS[0]),)


def test_a_huge_answer_is_cut_and_markup_stays_inert_text() -> None:
    app = agree(arrived(), POLICY, T0 + 1).application
    huge = answer(app, "<b>bold</b> " + "x" * 100_000, POLICY, T0 + 2).application
    (kept,) = huge.answers
    assert len(kept) == POLICY.answer_max_chars
    assert kept.endswith(CUT)
    assert kept.startswith("<b>bold</b>")  # shown as typed, never rendered


def test_control_and_direction_characters_are_removed() -> None:
    assert clean_answer("fine\u202eenil\u0000 ok\r\n\n\n\nnext", 100) == "fineenil ok\n\nnext"


def test_the_first_decision_wins_and_the_second_moderator_is_told() -> None:
    approved = decide(pending(), MOD, True, None, POLICY, T0 + 10).application
    late = decide(approved, OTHER_MOD, False, "spam", POLICY, T0 + 11)
    assert late.application == approved
    assert late.effects == (TellModerators("already_decided", MOD),)


def test_a_denial_tells_the_applicant_the_reason() -> None:
    denied = decide(pending(), MOD, False, "Not a <i>carer</i>\u202e", POLICY, T0 + 10)
    assert denied.application.stage is Stage.DENIED
    assert denied.effects[0] == Say("denied", "Not a <i>carer</i>")
    assert ForgetAnswersAt(T0 + 60) in denied.effects


def test_no_decision_before_the_answers_are_in() -> None:
    app = agree(arrived(), POLICY, T0 + 1).application
    early = decide(app, MOD, True, None, POLICY, T0 + 2)
    assert early.application == app
    assert early.effects == (TellModerators("not_ready", Stage.ANSWERING),)


def test_a_stalled_applicant_is_reminded_once_and_never_while_pending() -> None:
    app = agree(arrived(), POLICY, T0 + 1).application
    first = remind(app, POLICY, T0 + 200)
    assert said(first.effects) == ["reminder"]
    assert remind(first.application, POLICY, T0 + 300).effects == ()
    assert remind(pending(), POLICY, T0 + 300).effects == ()
    # An answer makes the next stall worth a reminder again.
    answered = answer(first.application, "A friend", POLICY, T0 + 400).application
    assert not answered.reminded


def test_the_expiry_set_beside_a_reminder_still_applies_after_it() -> None:
    app = agree(arrived(), POLICY, T0 + 1).application
    version = app.updated_at  # what the timers set by !agree carry
    reminded = remind(app, POLICY, T0 + 200).application
    assert timer_applies(reminded, version)
    assert said(expire(reminded, POLICY, T0 + 1001).effects) == ["expired"]
    # An answer moves the application on: the old timers no longer apply.
    answered = answer(reminded, "A friend", POLICY, T0 + 300).application
    assert not timer_applies(answered, version)


@pytest.mark.parametrize("stopped", [Stage.ARRIVED, Stage.CHOOSING, Stage.ANSWERING])
def test_expiry_closes_and_a_reopening_resumes_where_it_stopped(stopped: Stage) -> None:
    app = {
        Stage.ARRIVED: arrived(),
        Stage.CHOOSING: agree(arrived(group=None), POLICY, T0 + 1).application,
        Stage.ANSWERING: answer(
            agree(arrived(), POLICY, T0 + 1).application, "A friend", POLICY, T0 + 2
        ).application,
    }[stopped]
    expired = expire(app, POLICY, T0 + 1000)
    assert expired.application.stage is Stage.EXPIRED
    assert said(expired.effects) == ["expired"]
    assert ForgetAnswersAt(T0 + 1050) in expired.effects
    back = reopen(expired.application, MOD, POLICY, T0 + 1100)
    assert back.application.stage is stopped
    assert said(back.effects)[0] == "reopened"
    follow = {
        Stage.ARRIVED: Say("welcome"),
        Stage.CHOOSING: Say("choose_group"),
        Stage.ANSWERING: Say("question", QUESTIONS[1]),
    }[stopped]
    assert follow in back.effects
    assert Timers(T0 + 1200, T0 + 2100) in back.effects


def test_an_undecided_application_expires_and_its_answers_go_after_the_keeping_time() -> None:
    app = pending()
    expired = expire(app, POLICY, T0 + 1003)
    assert expired.application.stage is Stage.EXPIRED
    assert expired.application.resume is Stage.PENDING
    # Not the stalled applicant's text: it was the moderators who did not answer.
    assert said(expired.effects) == ["expired_undecided"]
    assert TellModerators("expired") in expired.effects
    assert STOP_TIMERS in expired.effects
    assert ForgetAnswersAt(T0 + 1053) in expired.effects
    assert forget_answers(expired.application, T0 + 1053).application.answers == ()


def test_an_expiry_set_while_pending_is_stale_once_decided() -> None:
    app = pending()
    decided = decide(app, MOD, True, None, POLICY, T0 + 10).application
    assert not timer_applies(decided, app.updated_at)
    assert expire(decided, POLICY, T0 + 1003).application == decided


def test_only_expired_applications_reopen() -> None:
    refused = reopen(pending(), MOD, POLICY, T0 + 5000)
    assert refused.effects == (TellModerators("not_expired", Stage.PENDING),)


def test_reopening_an_undecided_one_puts_it_before_the_moderators_again() -> None:
    expired = expire(pending(), POLICY, T0 + 1003).application
    back = reopen(expired, MOD, POLICY, T0 + 1100)
    assert back.application.stage is Stage.PENDING
    assert back.application.answers == ("A friend", "Company")
    assert back.effects == (
        Say("reopened"),
        TellModerators("application"),
        Timers(None, T0 + 2100),
    )


def test_reopening_an_undecided_one_whose_answers_went_asks_them_again() -> None:
    expired = expire(pending(), POLICY, T0 + 1003).application
    gone = forget_answers(expired, T0 + 1053).application
    back = reopen(gone, MOD, POLICY, T0 + 1100)
    assert back.application.stage is Stage.ANSWERING
    assert Say("question", QUESTIONS[0]) in back.effects
    assert Timers(T0 + 1200, T0 + 2100) in back.effects


def test_reopened_after_the_answers_were_forgotten_asks_again() -> None:
    app = answer(agree(arrived(), POLICY, T0 + 1).application, "A friend", POLICY, T0 + 2)
    full = replace(answer(app.application, "x", POLICY, T0 + 3).application, stage=Stage.ANSWERING)
    expired = expire(full, POLICY, T0 + 10).application
    gone = forget_answers(expired, T0 + 100).application
    assert gone.answers == ()
    back = reopen(gone, MOD, POLICY, T0 + 200)
    assert Say("question", QUESTIONS[0]) in back.effects


def test_withdrawing_while_pending_tells_the_moderators_and_drops_the_answers() -> None:
    gone = withdraw(pending(), POLICY, T0 + 10)
    assert gone.application.stage is Stage.WITHDRAWN
    assert gone.application.answers == ()
    assert TellModerators("withdrawn") in gone.effects
    assert withdraw(gone.application, POLICY, T0 + 11).effects == ()


def test_a_withdrawn_knock_keeps_nothing_its_author_said() -> None:
    knock = arrive(NEWCOMER, "carers", Via.KNOCK, QUESTIONS, POLICY, T0, note="My son has MS")
    gone = withdraw(knock.application, POLICY, T0 + 10).application
    assert gone.note == ""
    assert gone.answers == ()


def test_answers_are_forgotten_only_once_the_application_is_closed() -> None:
    app = pending()
    assert forget_answers(app, T0 + 100).application == app
    decided = decide(app, MOD, True, None, POLICY, T0 + 10).application
    assert forget_answers(decided, T0 + 100).application.answers == ()


def test_a_knocks_reason_is_kept_cleaned() -> None:
    knock = arrive(
        NEWCOMER, "carers", Via.KNOCK, QUESTIONS, POLICY, T0, note="I care for my\u200b mum"
    )
    assert knock.application.note == "I care for my mum"


def test_denying_a_knock_turns_the_knock_down() -> None:
    knock = arrive(NEWCOMER, "carers", Via.KNOCK, (), POLICY, T0, note="Please").application
    pending_knock = agree(knock, POLICY, T0 + 1).application
    denied = decide(pending_knock, MOD, False, None, POLICY, T0 + 2)
    assert denied.effects[0] == RejectKnock("carers")
    approved = decide(pending_knock, MOD, True, None, POLICY, T0 + 2)
    assert not any(isinstance(e, RejectKnock) for e in approved.effects)


def test_the_approval_in_a_history_group_says_to_accept_the_invitation() -> None:
    from pathlib import Path

    from bots.onboarding.texts import to_applicant
    from provisioning.schema import load_community

    cfg = load_community(Path(__file__).resolve().parents[2] / "config" / "community.example.yaml")
    shared = next(g for g in cfg.groups if g.history_before_joining)
    private = next(g for g in cfg.groups if not g.history_before_joining)
    for group, told in ((shared, True), (private, False)):
        app = replace(pending(), group=group.key)
        text = to_applicant(cfg, app, Say("approved"), "!")
        assert ("accept my invitation" in text) is told
