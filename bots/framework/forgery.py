"""What the moderators are told when someone tries to forge a fact the bot
acts on. Pure.

Each attempt is reported once per sender and room (the key below, kept in
the bot's database), naming the sender and the room but never what they
sent: the moderators need to know who tried, not to read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bots.framework.community import Forgery, Verdict
from bots.framework.decrypted_state import ForgedState

KIND_NAMES = {
    "space": "the community's Space",
    "moderators": "the moderators' room",
    "moderation-log": "the moderation log",
    "ban-list": "the community's ban list",
    "group": "a group's room",
    "archive": "a group's archive",
}


@dataclass(frozen=True)
class Alarm:
    key: str  # once per key, ever
    text: str
    what: str  # for the log, without any user ID
    sender: str = ""  # who tried, for the cap per sender


def forged_state_alarm(seen: ForgedState, where: str | None) -> Alarm:
    """*where*: the room's name in the community, if it is one of its rooms."""
    room = f"{where} ({seen.room_id})" if where else seen.room_id
    return Alarm(
        f"forged-state:{seen.sender}:{seen.room_id}",
        f"Security: {seen.sender} sent an encrypted message in {room} made to look like a "
        f"change to the room's settings ({seen.claimed}). Encrypted messages cannot change "
        "a room's settings, so I ignored it and nothing changed. An ordinary app never sends "
        "this: their account or device may be misused. I report this once per person and room.",
        "forged state ignored",
        seen.sender,
    )


def forged_marker_alarm(found: Forgery) -> Alarm:
    claimed = KIND_NAMES.get(found.claimed, "a room of the community")
    return Alarm(
        f"forged-marker:{found.sender}:{found.room_id}",
        f"Security: the room {found.room_id} claims to be {claimed}, but the community's "
        f"staff did not make it ({found.sender} did). I ignore it: nothing of the community "
        "is sent there, and commands typed there have no power in the community. "
        "I report this once per person and room.",
        "forged room marker ignored",
        found.sender,
    )


def room_name(verdict: Verdict, room_id: str) -> str | None:
    """What a community room is, for the alarm; None for any other room."""
    marker = verdict.rooms.markers.get(room_id)
    if marker is None:
        return None
    kind, group = marker.get("kind"), marker.get("group")
    return f"the {group} group's room" if kind == "group" else KIND_NAMES.get(str(kind))


# A member can make rooms without end: this many alarms name a sender's
# rooms one by one, then one more counts the rest, and later ones are only
# logged (each still ignored).
ALARMS_PER_SENDER = 5


def more_alarm(sender: str, count: int) -> Alarm:
    return Alarm(
        f"forged-more:{sender}",
        f"Security: {sender} tried {count} more times to forge a room's settings or a "
        "community room, in rooms I don't list here. I ignored every attempt; I won't "
        "report theirs one by one any more.",
        "forgery attempts no longer reported one by one",
        sender,
    )


class AlarmBook:
    """Forgery attempts seen and not yet reported, and the alarms raised in
    this run (the database keeps them across runs)."""

    def __init__(self) -> None:
        self._seen: list[ForgedState] = []
        self._raised: set[str] = set()
        self._per_sender: dict[str, int] = {}

    def seen(self, forged: ForgedState) -> None:
        self._seen.append(forged)

    def due(self, verdict: Verdict) -> list[Alarm]:
        """The alarms not yet raised in this run, marked raised: forged
        state seen since the last call, and forged markers in *verdict*."""
        seen, self._seen = self._seen, []
        alarms = [
            *(forged_state_alarm(f, room_name(verdict, f.room_id)) for f in seen),
            *(forged_marker_alarm(f) for f in verdict.forgeries),
        ]
        new: list[Alarm] = []
        over: dict[str, int] = {}  # sender → alarms past the cap in this call
        for alarm in {a.key: a for a in alarms if a.key not in self._raised}.values():
            self._raised.add(alarm.key)
            count = self._per_sender.get(alarm.sender, 0)
            self._per_sender[alarm.sender] = count + 1
            if count < ALARMS_PER_SENDER:
                new.append(alarm)
            else:
                over[alarm.sender] = over.get(alarm.sender, 0) + 1
        for sender, count in over.items():
            # Counted once, when the sender first goes past the cap.
            if self._per_sender[sender] - count <= ALARMS_PER_SENDER:
                new.append(more_alarm(sender, count))
        return new
