"""What the moderators are told of a forgery attempt: once per sender and
room, who and where, never what was sent."""

from __future__ import annotations

from bots.framework.community import CommunityRooms, Forgery, Verdict
from bots.framework.decrypted_state import forged
from bots.framework.forgery import AlarmBook

ROOM = "!room:example.org"
MALLORY = "@mallory:example.org"


class Sent:
    event_id = "$e"
    sender = MALLORY
    server_timestamp = 5


def test_forged_state_is_reported_once_per_sender_and_room_naming_both() -> None:
    book = AlarmBook()
    verdict = Verdict(
        CommunityRooms(markers={ROOM: {"kind": "group", "group": "carers"}}),
    )
    for _ in range(3):
        book.seen(forged(Sent(), "m.room.power_levels", ROOM))
    book.seen(forged(Sent(), "m.room.power_levels", "!other:example.org"))
    first = book.due(verdict)
    assert [a.key for a in first] == [
        f"forged-state:{MALLORY}:{ROOM}",
        f"forged-state:{MALLORY}:!other:example.org",
    ]
    assert MALLORY in first[0].text
    assert ROOM in first[0].text
    assert "carers" in first[0].text
    assert "m.room.power_levels" in first[0].text
    # The log line names nobody.
    assert MALLORY not in first[0].what
    book.seen(forged(Sent(), "m.room.create", ROOM))
    assert book.due(verdict) == []


def test_a_forged_marker_is_reported_once_naming_who_made_the_room() -> None:
    book = AlarmBook()
    verdict = Verdict(CommunityRooms(), (Forgery("!fake:example.org", MALLORY, "moderators"),))
    (alarm,) = book.due(verdict)
    assert "!fake:example.org" in alarm.text
    assert MALLORY in alarm.text
    assert "the moderators' room" in alarm.text
    assert book.due(verdict) == []
