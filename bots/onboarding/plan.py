"""From a transition's effects to the bot's actions, and the application as
a record. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
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
from bots.onboarding.applicant import (
    Admit,
    Application,
    ForgetAnswersAt,
    Outcome,
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
# The state event provisioning puts in every community room (provisioning/desired.py).
MARKER = "org.hearth.room"


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


@dataclass(frozen=True)
class Rooms:
    """The community's rooms, found by the markers provisioning left in them."""

    space: str | None
    # group key → room ids, the group's main room first
    groups: Mapping[str, tuple[str, ...]]
    moderators: str | None = None

    @classmethod
    def from_markers(cls, markers: Mapping[str, Mapping[str, Any]], cfg: CommunityFile) -> Rooms:
        community = cfg.community.key
        space: str | None = None
        moderators: str | None = None
        found: dict[str, dict[str, str]] = {}
        for room_id, marker in markers.items():
            if marker.get("community") != community:
                continue
            if marker.get("kind") == "space":
                space = room_id
            elif marker.get("kind") == "moderators":
                moderators = room_id
            elif marker.get("kind") == "group":
                group, room = marker.get("group"), marker.get("room")
                if isinstance(group, str) and isinstance(room, str):
                    found.setdefault(group, {})[room] = room_id
        groups: dict[str, tuple[str, ...]] = {}
        for key, rooms in found.items():
            decl = cfg.group(key)
            order = [r.key for r in decl.rooms] if decl else sorted(rooms)
            groups[key] = tuple(rooms[r] for r in order if r in rooms)
        return cls(space, groups, moderators)

    def group_of(self, room_id: str) -> str | None:
        return next((g for g, rooms in self.groups.items() if room_id in rooms), None)

    def main_room(self, group: str) -> str | None:
        rooms = self.groups.get(group, ())
        return rooms[0] if rooms else None


def actions_for(
    outcome: Outcome,
    cfg: CommunityFile,
    rooms: Rooms,
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
