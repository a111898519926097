"""One applicant's way in, as a state machine. Pure: every transition takes
the application as it is and what happened, and returns the application as
it becomes and what should follow (:class:`Effect`). Storing both in one
transaction, through the platform, is what lets a restart resume without
repeating a message.

The stages::

    arrived ──agree──▶ (choosing ──choose──▶) answering ──last answer──▶ pending
       │                                          │                        │
       └────────── remind / expire ───────────────┘          approve / deny / expire
                                                                           ▼
    expired ──reopen──▶ where it stopped           approved · denied · withdrawn

Nothing an applicant said is kept open-ended: an application the
moderators never decide expires as a stalled one does, and what a closed
application holds (answers, a knock's note) is forgotten `keep_answers_s`
after it closed, at once if the applicant withdrew.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from enum import StrEnum


class Stage(StrEnum):
    # Registered with a token, knocked, or asked with !join; welcomed, not yet agreed.
    ARRIVED = "arrived"
    # Agreed to the code of conduct, but came without a group: asked which one.
    CHOOSING = "choosing"
    ANSWERING = "answering"
    PENDING = "pending review"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class Via(StrEnum):
    TOKEN = "registration token"
    NO_TOKEN = "registration without a group"
    KNOCK = "knock"
    JOIN = "!join"


# Stages in which the applicant still has something to do.
WAITING_ON_APPLICANT = frozenset({Stage.ARRIVED, Stage.CHOOSING, Stage.ANSWERING})
OPEN = WAITING_ON_APPLICANT | {Stage.PENDING}
CLOSED = frozenset({Stage.APPROVED, Stage.DENIED, Stage.EXPIRED, Stage.WITHDRAWN})


@dataclass(frozen=True)
class Application:
    user_id: str
    group: str | None
    via: Via
    stage: Stage
    created_at: float
    updated_at: float
    # What the applicant said on the way in (a knock's reason), cleaned.
    note: str = ""
    answers: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    reminded: bool = False
    decided_by: str | None = None
    reason: str | None = None
    # Where an expired application stopped, so a reopening resumes there.
    resume: Stage | None = None

    @property
    def next_question(self) -> str | None:
        i = len(self.answers)
        return self.questions[i] if i < len(self.questions) else None


@dataclass(frozen=True)
class Policy:
    """The community's settings that transitions need."""

    answer_max_chars: int
    remind_after_s: float
    expire_after_s: float
    keep_answers_s: float


# --- what follows a transition ---


@dataclass(frozen=True)
class Say:
    """A message to the applicant, in their DM with the bot."""

    what: str  # a key of the texts (bots.onboarding.texts)
    detail: str = ""


@dataclass(frozen=True)
class TellModerators:
    what: str
    detail: str = ""


@dataclass(frozen=True)
class Admit:
    """Invite the applicant to the Space and the group's rooms, then greet them."""

    group: str


@dataclass(frozen=True)
class RejectKnock:
    """Turn down a knock on the group's room (it stays pending otherwise)."""

    group: str


@dataclass(frozen=True)
class Timers:
    """(Re)schedule the reminder and the expiry; None cancels one."""

    remind_at: float | None
    expire_at: float | None


@dataclass(frozen=True)
class ForgetAnswersAt:
    at: float


Effect = Say | TellModerators | Admit | RejectKnock | Timers | ForgetAnswersAt


@dataclass(frozen=True)
class Outcome:
    application: Application
    effects: tuple[Effect, ...] = ()


STOP_TIMERS = Timers(None, None)


def _timers(policy: Policy, now: float) -> Timers:
    return Timers(now + policy.remind_after_s, now + policy.expire_after_s)


# --- cleaning what applicants type ---

_CONTROL = re.compile(
    r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]"
)
_BLANK_LINES = re.compile(r"\n{3,}")
CUT = " […]"


def clean_answer(text: str, max_chars: int) -> str:
    """An answer as moderators will see it: plain text (the plain body; any
    markup is shown as typed, never rendered), no control or direction
    characters, at most *max_chars*."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _BLANK_LINES.sub("\n\n", text).strip()
    if len(text) > max_chars:
        text = text[: max_chars - len(CUT)].rstrip() + CUT
    return text


# --- transitions ---


def arrive(
    user_id: str,
    group: str | None,
    via: Via,
    questions: tuple[str, ...],
    policy: Policy,
    now: float,
    note: str = "",
) -> Outcome:
    """Someone new: welcome them and ask them to accept the code of conduct."""
    app = Application(
        user_id=user_id,
        group=group,
        via=via,
        stage=Stage.ARRIVED,
        created_at=now,
        updated_at=now,
        note=clean_answer(note, policy.answer_max_chars) if note else "",
        questions=questions,
    )
    return Outcome(app, (Say("welcome"), _timers(policy, now)))


def agree(app: Application, policy: Policy, now: float) -> Outcome:
    if app.stage is not Stage.ARRIVED:
        return Outcome(app, (Say("not_now", app.stage),))
    if app.group is None:
        return Outcome(
            _moved(app, Stage.CHOOSING, now), (Say("choose_group"), _timers(policy, now))
        )
    return _start_questions(_moved(app, Stage.ANSWERING, now), policy, now)


def choose(
    app: Application, group: str, questions: tuple[str, ...], policy: Policy, now: float
) -> Outcome:
    if app.stage is not Stage.CHOOSING:
        return Outcome(app, (Say("not_now", app.stage),))
    chosen = replace(app, group=group, questions=questions)
    return _start_questions(_moved(chosen, Stage.ANSWERING, now), policy, now)


def _start_questions(app: Application, policy: Policy, now: float) -> Outcome:
    if app.next_question is None:
        return _submit(app, policy, now)
    return Outcome(app, (Say("question", app.next_question), _timers(policy, now)))


def answer(app: Application, text: str, policy: Policy, now: float) -> Outcome:
    if app.stage is not Stage.ANSWERING:
        return Outcome(app, (Say("not_now", app.stage),))
    cleaned = clean_answer(text, policy.answer_max_chars)
    if not cleaned:
        return Outcome(app, (Say("empty_answer", app.next_question or ""),))
    app = replace(app, answers=(*app.answers, cleaned), updated_at=now, reminded=False)
    if app.next_question is not None:
        return Outcome(app, (Say("question", app.next_question), _timers(policy, now)))
    return _submit(app, policy, now)


def _submit(app: Application, policy: Policy, now: float) -> Outcome:
    pending = _moved(app, Stage.PENDING, now)
    # The applicant now waits on the moderators: no reminder. But the
    # answers (possibly health details) are not kept for ever: undecided,
    # the application expires as a stalled one does.
    return Outcome(
        pending,
        (
            Say("next_steps"),
            TellModerators("application"),
            Timers(None, now + policy.expire_after_s),
        ),
    )


def decide(
    app: Application,
    moderator: str,
    approve: bool,
    reason: str | None,
    policy: Policy,
    now: float,
) -> Outcome:
    """A moderator's `!approve` or `!deny`. The first decision wins; a second
    one is answered with what was already decided."""
    if app.stage in (Stage.APPROVED, Stage.DENIED):
        return Outcome(app, (TellModerators("already_decided", app.decided_by or ""),))
    if app.stage is not Stage.PENDING:
        return Outcome(app, (TellModerators("not_ready", app.stage),))
    stage = Stage.APPROVED if approve else Stage.DENIED
    reason = clean_answer(reason, policy.answer_max_chars) if reason else None
    done = replace(_moved(app, stage, now), decided_by=moderator, reason=reason)
    forget = ForgetAnswersAt(now + policy.keep_answers_s)
    if approve:
        assert app.group is not None  # PENDING is reached only with a group
        effects: tuple[Effect, ...] = (
            Admit(app.group),
            Say("approved"),
            TellModerators("decided"),
            forget,
        )
    else:
        effects = (Say("denied", reason or ""), TellModerators("decided"), forget)
        if app.via is Via.KNOCK and app.group is not None:
            effects = (RejectKnock(app.group), *effects)
    return Outcome(done, effects)


def remind(app: Application, policy: Policy, now: float) -> Outcome:
    """The reminder timer fired. The application's version (updated_at)
    stays: the expiry set beside this reminder must still apply."""
    if app.stage not in WAITING_ON_APPLICANT or app.reminded:
        return Outcome(app)
    return Outcome(replace(app, reminded=True), (Say("reminder", app.stage),))


def timer_applies(app: Application, version: object) -> bool:
    """Whether a reminder or expiry set at *version* (the application's
    updated_at then) still applies: any move since makes it stale."""
    return version == app.updated_at


def expire(app: Application, policy: Policy, now: float) -> Outcome:
    """The expiry timer fired: close what the applicant did not finish, or
    what the moderators did not decide."""
    if app.stage not in OPEN:
        return Outcome(app)
    closed = replace(_moved(app, Stage.EXPIRED, now), resume=app.stage)
    forget = ForgetAnswersAt(now + policy.keep_answers_s)
    if app.stage is Stage.PENDING:
        told = (Say("expired_undecided"), TellModerators("expired"))
        return Outcome(closed, (*told, STOP_TIMERS, forget))
    return Outcome(closed, (Say("expired"), STOP_TIMERS, forget))


def withdraw(app: Application, policy: Policy, now: float) -> Outcome:
    """The applicant left their DM with the bot, or said they no longer wish to join."""
    if app.stage not in OPEN:
        return Outcome(app)
    was_pending = app.stage is Stage.PENDING
    # Nothing they said stays: not their answers, nor a knock's note.
    gone = replace(_moved(app, Stage.WITHDRAWN, now), answers=(), note="")
    effects: tuple[Effect, ...] = (STOP_TIMERS,)
    if was_pending:
        effects += (TellModerators("withdrawn"),)
    return Outcome(gone, effects)


def reopen(app: Application, moderator: str, policy: Policy, now: float) -> Outcome:
    """A moderator's `!reopen` of an expired application: it resumes where it stopped."""
    if app.stage is not Stage.EXPIRED:
        return Outcome(app, (TellModerators("not_expired", app.stage),))
    stage = app.resume or Stage.ARRIVED
    back = replace(_moved(app, stage, now), reminded=False, resume=None)
    resume: tuple[Effect, ...] = (Say("reopened"),)
    if stage is Stage.PENDING and back.next_question is None:
        # Expired undecided, its answers still kept: before the moderators again.
        return Outcome(
            back,
            (*resume, TellModerators("application"), Timers(None, now + policy.expire_after_s)),
        )
    if stage is Stage.PENDING:
        # Its answers were forgotten meanwhile: asked again, from the first.
        back = replace(back, stage=Stage.ANSWERING, answers=())
        stage = Stage.ANSWERING
    if stage is Stage.ARRIVED:
        resume += (Say("welcome"),)
    elif stage is Stage.CHOOSING:
        resume += (Say("choose_group"),)
    elif back.next_question is not None:
        resume += (Say("question", back.next_question),)
    else:  # every question answered before the answers were forgotten: ask again
        back = replace(back, answers=())
        resume += (Say("question", back.questions[0]),) if back.questions else ()
    return Outcome(back, (*resume, _timers(policy, now)))


def forget_answers(app: Application, now: float) -> Outcome:
    """The keeping time is over: the answers (possibly health details) go."""
    if app.stage not in CLOSED or (not app.answers and not app.note):
        return Outcome(app)
    return Outcome(replace(app, answers=(), note="", updated_at=now))


def _moved(app: Application, stage: Stage, now: float) -> Application:
    return replace(app, stage=stage, updated_at=now)
