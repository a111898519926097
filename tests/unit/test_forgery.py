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


def test_one_sender_s_many_forged_rooms_are_reported_a_few_times_then_counted() -> None:
    """A member can make rooms without end: the moderators' room must not
    fill with one alarm per room."""
    book = AlarmBook()
    rooms = [Forgery(f"!fake{i}:example.org", MALLORY, "moderators") for i in range(40)]
    first = book.due(Verdict(CommunityRooms(), tuple(rooms)))
    named = [a for a in first if "!fake" in a.text]
    assert len(named) == 5
    (summary,) = [a for a in first if "!fake" not in a.text]
    assert MALLORY in summary.text
    assert "35 more" in summary.text
    # Later attempts by the same sender are no longer reported one by one.
    more = (*rooms, Forgery("!fake-late:example.org", MALLORY, "moderators"))
    assert book.due(Verdict(CommunityRooms(), more)) == []
    # Another sender is reported as usual.
    other = Forgery("!x:example.org", "@eve:example.org", "group")
    assert [a.key for a in book.due(Verdict(CommunityRooms(), (other,)))] == [
        "forged-marker:@eve:example.org:!x:example.org"
    ]
