"""Staff first: which queued event of a room is decided next (pure)."""

from __future__ import annotations

from typing import Any

from bots.framework.commands.spec import MODERATOR, Command, CommandTable
from bots.framework.dispatch.order import Queued, classify, command_name, next_index
from bots.framework.intake.parse import to_event

ROOM = "!room:example.org"
MOD, ALICE, BOB = "@mod:example.org", "@alice:example.org", "@bob:example.org"


def msg(sender: str) -> Queued:
    return Queued(sender, state=False, urgent=False)


def urgent(sender: str) -> Queued:
    return Queued(sender, state=False, urgent=True)


def state(sender: str) -> Queued:
    return Queued(sender, state=True, urgent=False)


def test_without_anything_urgent_the_oldest_goes_first() -> None:
    assert next_index([msg(ALICE), msg(BOB), msg(ALICE)]) == 0


def test_a_staff_command_goes_ahead_of_other_members_messages() -> None:
    assert next_index([msg(ALICE), msg(BOB), msg(ALICE), urgent(MOD)]) == 3


def test_nothing_passes_an_earlier_event_of_its_own_sender() -> None:
    assert next_index([msg(ALICE), msg(MOD), msg(BOB), urgent(MOD)]) == 0


def test_nothing_passes_a_state_change() -> None:
    assert next_index([msg(ALICE), state(BOB), msg(ALICE), urgent(MOD)]) == 0
    # Ahead of the state change it may still go, as far as the change.
    assert next_index([msg(ALICE), urgent(MOD), state(BOB)]) == 1


def test_nothing_passes_an_event_without_a_sender() -> None:
    assert next_index([msg(ALICE), Queued(None, False, False), urgent(MOD)]) == 0


def test_an_urgent_event_blocked_by_its_sender_lets_another_go() -> None:
    queue = [msg(ALICE), urgent(ALICE), msg(BOB), urgent(MOD)]
    assert next_index(queue) == 3


def test_the_first_urgent_event_goes_before_a_later_one() -> None:
    assert next_index([msg(ALICE), urgent(BOB), urgent(MOD)]) == 1


def test_an_urgent_event_beyond_the_lookahead_waits_its_turn() -> None:
    assert next_index([msg(ALICE), msg(BOB), urgent(MOD)], lookahead=2) == 0


def test_picking_again_and_again_keeps_each_sender_in_order() -> None:
    """Take the picked event out each time, as the room worker does: a
    flood with commands sprinkled in comes out with every sender's own
    events in the order sent, and every state change where it was."""
    senders = [ALICE, BOB, MOD, ALICE, MOD, BOB, ALICE, MOD, BOB, MOD]
    queue = [(n, Queued(s, state=n == 5, urgent=s == MOD or n == 8)) for n, s in enumerate(senders)]
    order: list[int] = []
    while queue:
        n, _ = queue.pop(next_index(q for _, q in queue))
        order.append(n)
    for sender in (ALICE, BOB, MOD):
        mine = [n for n in order if senders[n] == sender]
        assert mine == sorted(mine)
    at = order.index(5)
    assert sorted(order[:at]) == [0, 1, 2, 3, 4]  # nothing passed the state change
    assert order[:at] != [0, 1, 2, 3, 4]  # but the commands went first before it


def message(sender: str, body: str, **content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "event_id": "$e",
        "sender": sender,
        "origin_server_ts": 1_700_000_000_000,
        "content": {"msgtype": "m.text", "body": body, **content},
    }


def classified(source: dict[str, Any], staff: set[str]) -> Queued:
    event = to_event(ROOM, source, encrypted=True)
    return classify(source, event, prefix="!", staff=lambda sender, _name: sender in staff)


def test_a_command_from_staff_is_urgent() -> None:
    assert classified(message(MOD, "!kick @bob:example.org"), {MOD}).urgent


def test_the_same_command_from_a_member_is_not() -> None:
    assert not classified(message(ALICE, "!kick @bob:example.org"), {MOD}).urgent


def test_a_member_s_ping_is_not_urgent() -> None:
    """A raid of !pings must not overtake everyone else's messages."""
    assert not classified(message(ALICE, "  !PING"), set()).urgent
    assert classified(message(MOD, "  !PING"), {MOD}).urgent


def test_a_moderator_s_ordinary_message_is_not_urgent() -> None:
    assert not classified(message(MOD, "hello everyone"), {MOD}).urgent


def test_an_edited_command_is_not_urgent() -> None:
    edit = message(
        MOD,
        "* !ping",
        **{
            "m.new_content": {"msgtype": "m.text", "body": "!ping"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$old"},
        },
    )
    assert command_name(to_event(ROOM, edit, encrypted=True), "!") is None
    assert not classified(edit, {MOD}).urgent


def test_state_keeps_its_place_whoever_sends_it() -> None:
    member = {
        "type": "m.room.member",
        "event_id": "$m",
        "sender": MOD,
        "state_key": BOB,
        "origin_server_ts": 1_700_000_000_000,
        "content": {"membership": "ban"},
    }
    queued = classified(member, {MOD})
    assert queued.state
    assert not queued.urgent


def test_staff_is_asked_only_about_a_command_s_sender() -> None:
    asked: list[str] = []

    def staff(sender: str) -> bool:
        asked.append(sender)
        return True

    chatter = message(ALICE, "just chatting")
    classify(chatter, to_event(ROOM, chatter, encrypted=True), prefix="!", staff=staff)
    assert asked == []


def concerning(sender: str, feature: str) -> Queued:
    """An event *feature* acts on: a member's command of it, a poll answer."""
    return Queued(sender, state=False, urgent=False, concerns=frozenset({feature}))


def urgent_of(sender: str, feature: str) -> Queued:
    return Queued(sender, state=False, urgent=True, feature=feature)


def test_a_staff_command_does_not_pass_what_its_own_feature_acts_on() -> None:
    queue = [msg(ALICE), concerning(BOB, "meetings"), msg(ALICE), urgent_of(MOD, "meetings")]
    assert next_index(queue) == 0
    # A command of another feature still goes ahead of it.
    queue[-1] = urgent_of(MOD, "moderation")
    assert next_index(queue) == 3
    # And one of the same feature goes as far as the event it must see.
    assert next_index([msg(ALICE), urgent_of(MOD, "meetings"), concerning(BOB, "meetings")]) == 1


def test_a_staff_command_is_told_its_feature_and_others_only_their_concerns() -> None:
    def event(body: str, sender: str) -> tuple[dict[str, Any], object]:
        source = {
            "type": "m.room.message",
            "event_id": "$e",
            "sender": sender,
            "origin_server_ts": 1,
            "content": {"msgtype": "m.text", "body": body},
        }
        return source, to_event(ROOM, source, encrypted=True)

    # The words the queue reads (two at most); the table resolves them.
    features = {"meeting cancel": "meetings"}
    staff = {MOD}
    for body, sender, urgent, feature in (
        ("!meeting cancel 1", MOD, True, "meetings"),
        ("!rsvp 1 yes", ALICE, False, None),
    ):
        source, typed = event(body, sender)
        queued = classify(
            source,
            typed,
            prefix="!",
            staff=lambda who, name: who in staff,
            concerns=frozenset({"meetings"}),
            feature_of=features.get,
        )
        assert (queued.urgent, queued.feature) == (urgent, feature)
        assert queued.concerns == {"meetings"}


def test_a_moderator_s_two_word_command_goes_ahead() -> None:
    """`!meeting cancel 3` is named by two words; the queue reads it as the
    parser does, so a moderator's cancel is not held behind a flood, while
    `!meeting` alone (no such command) keeps its place."""

    async def handler(inv: object, ctx: object) -> list[object]:
        return []

    table = CommandTable()
    table.add(Command("meeting cancel", "cancel a meeting", handler, power_level=MODERATOR))

    def staff(sender: str, words: str) -> bool:
        _, _, command = table.named(words)
        return sender == MOD and command is not None

    def sent(body: str) -> Queued:
        source = message(MOD, body)
        event = to_event(ROOM, source, encrypted=True)
        return classify(source, event, prefix="!", staff=staff)

    assert command_name(
        to_event(ROOM, message(MOD, "!Meeting  Cancel 3"), encrypted=True), "!"
    ) == ("Meeting Cancel")
    assert sent("!meeting cancel 3").urgent
    assert sent("!MEETING Cancel").urgent
    assert not sent("!meeting 3").urgent
    assert not sent("!meetings").urgent
