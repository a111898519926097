"""From a transition's effects to the bot's actions, and the application as
a record. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from bots.framework.actions import (
    Action,
    Invite,
    Kick,
    PutRecord,
    ScheduleJob,
    SendDirect,
    SendNotice,
)
from bots.framework.community import CommunityRooms
from bots.onboarding.applicant import (
    Admit,
    Application,
    ForgetAnswersAt,
    Outcome,
    Policy,
    RejectKnock,
    Say,
    Stage,
    TellModerators,
    Timers,
    Via,
)
from bots.onboarding.texts import to_applicant, to_moderators
from provisioning.schema import CommunityFile

FEATURE = "onboarding"
KIND = "application"


# A day after approval, one reminder to set up Secure Backup (backup.py).
BACKUP = "backup"
BACKUP_AFTER_S = 86400


def backup_key(user: str) -> str:
    return f"backup:{user}"


def to_record(app: Application) -> dict[str, Any]:
    data = dataclasses.asdict(app)
    return {k: (v.value if hasattr(v, "value") else v) for k, v in data.items()}


def from_record(data: Mapping[str, Any]) -> Application:
    values = dict(data)
    values["stage"] = Stage(values["stage"])
    values["via"] = Via(values["via"])
    if values.get("resume") is not None:
        values["resume"] = Stage(values["resume"])
    for name in ("answers", "questions"):
        values[name] = tuple(values.get(name) or ())
    return Application(**values)


def actions_for(
    outcome: Outcome,
    cfg: CommunityFile,
    rooms: CommunityRooms,
    moderators_room: str | None,
    prefix: str,
) -> list[Action]:
    """The record of the new state, then what each effect says and does."""
    app = outcome.application
    user = app.user_id
    out: list[Action] = [PutRecord(FEATURE, KIND, user, to_record(app))]
    for effect in outcome.effects:
        match effect:
            case Say():
                out.append(SendDirect(user, to_applicant(cfg, app, effect, prefix)))
            case TellModerators():
                if moderators_room is not None:
                    text = to_moderators(cfg, app, effect, prefix)
                    out.append(SendNotice(moderators_room, text, mentions=()))
            case Admit():
                targets = [rooms.space, *rooms.groups.get(effect.group, ())]
                out.extend(Invite(room, user) for room in targets if room)
                out.append(
                    ScheduleJob(
                        FEATURE,
                        BACKUP,
                        app.updated_at + BACKUP_AFTER_S,
                        backup_key(user),
                        {"user_id": user},
                    )
                )
            case RejectKnock():
                room = rooms.main_room(effect.group)
                if room is not None:
                    out.append(Kick(room, user, "Your request to join was not accepted."))
            case Timers():
                # Keyed by the state they were set in: a later change makes
                # them stale, and the job then does nothing.
                payload = {"user_id": user, "version": app.updated_at}
                for kind, at in (("remind", effect.remind_at), ("expire", effect.expire_at)):
                    if at is not None:
                        key = f"{kind}:{user}:{app.updated_at}"
                        out.append(ScheduleJob(FEATURE, kind, at, key, payload))
            case ForgetAnswersAt():
                key = f"forget:{user}:{effect.at}"
                out.append(ScheduleJob(FEATURE, "forget", effect.at, key, {"user_id": user}))
    return out


def catch_up(app: Application, policy: Policy, now: float) -> list[ScheduleJob]:
    """The jobs an application stored before its stage had them needs, so
    that nothing it holds is kept longer than the community file says: an
    undecided (pending) one's expiry, and a withdrawn one's forgetting of
    what it still holds (a knock's note). Only jobs, never the record: the
    job reads the application afresh when it runs, so a decision taken
    meanwhile is never overwritten. Each key is new to these jobs and the
    same on every start, so scheduling them again adds nothing."""
    user = app.user_id
    if app.stage is Stage.PENDING:
        due = max(app.updated_at + policy.expire_after_s, now)
        key = f"expire:{user}:{app.updated_at}:catch-up"
        payload = {"user_id": user, "version": app.updated_at}
        return [ScheduleJob(FEATURE, "expire", due, key, payload)]
    if app.stage is Stage.WITHDRAWN and (app.note or app.answers):
        key = f"forget:{user}:{app.updated_at}:catch-up"
        return [ScheduleJob(FEATURE, "forget", now, key, {"user_id": user})]
    return []
