"""The protections' pure judgements: messages and joins in, findings and
decisions out, no I/O."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from bots.base.spans import span_words
from bots.framework.events import Message
from bots.framework.intake.parse import to_event
from bots.framework.markdown import render
from bots.moderation.commands.protections import describe
from bots.moderation.commands.rooms import slow_seconds
from bots.moderation.protections.checks import Finding, Rule, check_join, check_message
from bots.moderation.protections.decide import Decision, decide
from bots.moderation.protections.guard import Guard
from bots.moderation.protections.respond import mute_notice, warning_notice
from bots.moderation.protections.seen import ROOM_MENTION_WEIGHT, Joined, Seen, seen_of
from bots.moderation.protections.window import MAX_PER_SENDER, MAX_SENDERS, Bucket, RoomWindow
from bots.moderation.reports import new_reports, report_notice
from provisioning.protections import Protections, Step, change, drift, effective

ROOM = "!group:example.org"
ALICE = "@alice:example.org"
T0 = 1_800_000_000.0
DEFAULTS = Protections()


def seen_message(
    event_id: str, room: str, sender: str, ts_ms: int, content: dict[str, object]
) -> Seen:
    """What the protections read of an event, as it arrives from /sync."""
    source = {
        "type": "m.room.message",
        "event_id": event_id,
        "sender": sender,
        "origin_server_ts": ts_ms,
        "content": {"msgtype": "m.text", **content},
    }
    event = to_event(room, source, encrypted=True)
    assert isinstance(event, Message)
    return seen_of(event)


def msg(body: str = "hello", ts: float = T0, **content: object) -> Seen:
    return seen_message("$e", ROOM, ALICE, int(ts * 1000), {"body": body, **content})


def rules(found: tuple[object, ...]) -> list[Rule]:
    return [f.rule for f in found]  # type: ignore[attr-defined]


def test_an_ordinary_message_breaks_nothing() -> None:
    assert check_message(msg("Had a rough night, but the new meds help."), (), None, DEFAULTS) == ()


def test_a_flood_is_more_than_the_limit_within_the_window() -> None:
    cfg = Protections.model_validate({"flood": {"messages": 3, "seconds": 10}})
    recent = ((T0 - 9, 0), (T0 - 5, 0), (T0 - 1, 0))
    found = check_message(msg(ts=T0), recent, None, cfg)
    assert rules(found) == [Rule.FLOOD]
    assert found[0].detail == "4 messages in 10 s (limit 3)"
    # The same count spread wider than the window is fine.
    assert check_message(msg(ts=T0), ((T0 - 11, 0), *recent[1:]), None, cfg) == ()


def test_mention_spam_counts_people_not_messages() -> None:
    cfg = Protections.model_validate({"mentions": {"mentions": 5, "seconds": 60}})
    many = [f"@u{i}:example.org" for i in range(4)]
    m = msg("hi all", **{"m.mentions": {"user_ids": many}})
    assert m.mentions == 4
    assert check_message(m, ((T0 - 30, 1),), None, cfg) == ()
    assert rules(check_message(m, ((T0 - 30, 2),), None, cfg)) == [Rule.MENTIONS]
    everyone = msg("look", **{"m.mentions": {"room": True}})
    assert everyone.mentions == ROOM_MENTION_WEIGHT
    assert rules(check_message(everyone, (), None, cfg)) == [Rule.MENTIONS]


def test_mentions_from_an_old_client_are_read_from_the_text() -> None:
    assert msg("ping @a:x.org and @b:y.org and @a:x.org").mentions == 2


def test_a_newcomers_first_message_with_a_link_or_media() -> None:
    joined = T0 - 60
    link = msg("great deals www.example.com/pills")
    assert link.link
    assert rules(check_message(link, (), joined, DEFAULTS)) == [Rule.FIRST_MESSAGE]
    html = msg(
        "see this",
        format="org.matrix.custom.html",
        formatted_body='<a href="https://x.example">here</a>',
    )
    assert rules(check_message(html, (), joined, DEFAULTS)) == [Rule.FIRST_MESSAGE]
    image = seen_message("$i", ROOM, ALICE, int(T0 * 1000), {"msgtype": "m.image", "body": "a.png"})
    assert rules(check_message(image, (), joined, DEFAULTS)) == [Rule.FIRST_MESSAGE]
    # Not the first message, or joined long ago: nothing.
    assert check_message(link, (), None, DEFAULTS) == ()
    assert check_message(link, (), T0 - 25 * 3600, DEFAULTS) == ()
    # Media allowed by this group.
    cfg = Protections.model_validate({"first_message": {"media": False}})
    assert check_message(image, (), joined, cfg) == ()


def test_listed_words_with_an_allow_list() -> None:
    cfg = Protections.model_validate(
        {"words": {"patterns": [r"\bscam(mer|mers|s)?\b", "cunt"], "allow": ["scunthorpe"]}}
    )
    assert rules(check_message(msg("This is a SCAMMER"), (), None, cfg)) == [Rule.WORDS]
    assert check_message(msg("Greetings from Scunthorpe"), (), None, cfg) == ()
    assert check_message(msg("scampi for tea"), (), None, cfg) == ()
    assert rules(check_message(msg("Scunthorpe cunt"), (), None, cfg)) == [Rule.WORDS]


@pytest.mark.parametrize(
    "text",
    [
        "Some days I want to die",
        "I've been thinking about killing myself",
        "everyone would be better off without me",
        "I self-harmed again last night",
        "I don't want to wake up tomorrow",
    ],
)
def test_crisis_language_is_found_and_nothing_else_is(text: str) -> None:
    cfg = Protections.model_validate({"flood": {"messages": 2}})
    flooded = ((T0 - 2, 0), (T0 - 1, 0))
    found = check_message(msg(text), flooded, T0 - 5, cfg)
    assert rules(found) == [Rule.CRISIS]
    decision = decide(found, 5, cfg)
    assert decision.crisis
    assert not decision.redact
    assert decision.step is None
    assert not decision.offence


@pytest.mark.parametrize(
    "text", ["My dad died last year", "The diet is killing me", "Harmless fun", "I'm dying to know"]
)
def test_everyday_words_are_not_a_crisis(text: str) -> None:
    assert check_message(msg(text), (), None, DEFAULTS) == ()


def test_the_steps_are_gentle_and_escalate_per_offence() -> None:
    found = check_message(msg(), tuple((T0 - i, 0) for i in range(1, 11)), None, DEFAULTS)
    assert [decide(found, n, DEFAULTS).step for n in range(5)] == [
        Step.WARN,
        Step.MUTE,
        Step.ALERT,
        Step.ALERT,
        Step.ALERT,
    ]
    assert decide(found, 0, DEFAULTS).redact
    assert decide((), 3, DEFAULTS).acts is False


def test_a_join_wave_overflows_the_bucket_and_closes_the_room() -> None:
    cfg = Protections.model_validate({"join_wave": {"joins": 5, "minutes": 10}})
    bucket, found = Bucket(), None
    for i in range(5):
        bucket, found = check_join(bucket, T0 + i, cfg)
        assert found is None
    bucket, found = check_join(bucket, T0 + 5, cfg)
    assert found is not None
    assert found.rule is Rule.JOIN_WAVE
    decision = decide((found,), 0, cfg)
    assert decision.close_room
    assert decision.step is Step.ALERT
    assert not decision.offence
    # The same joins spread over an hour never overflow.
    bucket = Bucket()
    for i in range(30):
        bucket, found = check_join(bucket, T0 + i * 130, cfg)
        assert found is None


def test_a_pattern_that_would_backtrack_forever_is_linear_in_re2() -> None:
    cfg = Protections.model_validate({"words": {"patterns": ["(a+)+$", "(x|x)*y"]}})
    # Python's re would not return from these in any reasonable time.
    assert check_message(msg("a" * 50_000 + "!"), (), None, cfg) == ()
    assert check_message(msg("x" * 50_000), (), None, cfg) == ()
    assert rules(check_message(msg("x" * 50_000 + "y"), (), None, cfg)) == [Rule.WORDS]


def test_a_pattern_that_does_not_compile_is_named() -> None:
    with pytest.raises(ValidationError) as err:
        Protections.model_validate({"words": {"patterns": ["fine", "(unclosed"]}})
    problem = err.value.errors()[0]
    assert problem["loc"] == ("words", "patterns")
    assert "pattern 2 ('(unclosed') does not compile" in problem["msg"]


def test_backreferences_are_refused_as_re2_has_none() -> None:
    with pytest.raises(ValidationError, match="does not compile"):
        Protections.model_validate({"crisis": {"patterns": [r"(a)\1"]}})


def test_the_window_is_bounded() -> None:
    window = RoomWindow()
    for i in range(MAX_SENDERS + 10):
        window.add_message(f"@u{i}:x", T0, 0, T0 - 60)
    assert window.recent("@u0:x", T0 - 60) == ()  # the oldest sender was forgotten
    for i in range(MAX_PER_SENDER + 10):
        window.add_message(ALICE, T0 + i / 1000, 0, T0 - 60)
    assert len(window.recent(ALICE, T0 - 60)) == MAX_PER_SENDER


def test_a_joiners_first_message_is_remembered_once() -> None:
    window = RoomWindow()
    window.add_join(ALICE, T0)
    assert window.joined_at(ALICE) == T0
    window.add_message(ALICE, T0 + 1, 0, T0 - 60)
    assert window.joined_at(ALICE) is None


def test_offences_are_forgotten_after_a_while() -> None:
    window = RoomWindow()
    window.add_offence(ALICE, T0, T0 - 86400)
    window.add_offence(ALICE, T0 + 10, T0 - 86400)
    assert len(window.offences(ALICE, T0 - 86400)) == 2
    assert window.offences(ALICE, T0 + 5) == (T0 + 10,)


def test_the_guard_never_judges_the_exempt_but_remembers_them() -> None:
    cfg = Protections.model_validate({"flood": {"messages": 2, "seconds": 60}})
    guard = Guard()
    mod = [
        seen_message(f"$m{i}", ROOM, "@mod:x", int((T0 + i) * 1000), {"body": "x"})
        for i in range(5)
    ]
    assert not any(guard.message(m, cfg, exempt=True).acts for m in mod)
    decisions = [guard.message(msg(ts=T0 + i), cfg) for i in range(7)]
    assert [d.step for d in decisions] == [None, None, Step.WARN, Step.MUTE, Step.ALERT, None, None]
    # Past the alert, the rest of the flood is only removed: one notice is enough.
    assert all(d.redact for d in decisions[2:])


def test_the_guard_closes_a_room_on_a_wave_of_joins_and_watches_first_messages() -> None:
    cfg = Protections.model_validate({"join_wave": {"joins": 3, "minutes": 60}})
    guard = Guard()
    waves = [guard.join(Joined(ROOM, f"@n{i}:x", T0 + i), cfg) for i in range(4)]
    assert [d.close_room for d in waves] == [False, False, False, True]
    spam = seen_message(
        "$s", ROOM, "@n0:x", int((T0 + 10) * 1000), {"body": "https://spam.example"}
    )
    assert guard.message(spam, cfg).step is Step.WARN
    again = seen_message("$t", ROOM, "@n0:x", int((T0 + 99) * 1000), {"body": "https://ok.example"})
    assert not guard.message(again, cfg).acts  # no longer a first message


def test_reports_forwarded_once_and_on_the_first_look_only_recent_ones() -> None:
    now_ms = T0 * 1000
    reports = [
        {"id": 3, "received_ts": now_ms - 1000, "room_id": ROOM, "event_id": "$c"},
        {"id": 1, "received_ts": now_ms - 3 * 86400_000, "room_id": ROOM, "event_id": "$a"},
        {"id": 2, "received_ts": now_ms - 3600_000, "room_id": ROOM, "event_id": "$b"},
        {"id": "x", "received_ts": now_ms, "room_id": ROOM, "event_id": "$bad"},
    ]
    assert [r["id"] for r in new_reports(reports, None, now_ms)] == [2, 3]
    assert [r["id"] for r in new_reports(reports, 2, now_ms)] == [3]
    assert new_reports(reports, 3, now_ms) == []


def test_a_report_notice_links_the_message_and_never_names_the_reporter() -> None:
    said = render(report_notice("Carers · General", "  spam  ", "!r:x", "$e"))
    text = said.body
    assert text == (
        "Report about a message in Carers · General: “spam”. "
        "The message (https://matrix.to/#/!r:x/$e)"
    )
    assert '<a href="https://matrix.to/#/!r:x/$e">The message</a>' in said.html
    assert "no reason given" in render(report_notice("Carers", "", "!r:x", "$e")).body


def test_slow_mode_removes_a_second_message_too_soon_without_an_offence() -> None:
    guard = Guard()
    first = guard.message(msg(ts=T0), DEFAULTS, slow_s=30)
    too_soon = guard.message(msg(ts=T0 + 10), DEFAULTS, slow_s=30)
    later = guard.message(msg(ts=T0 + 45), DEFAULTS, slow_s=30)
    assert not first.acts
    assert too_soon.redact
    assert too_soon.step is None
    assert not too_soon.offence
    assert not later.acts
    assert slow_seconds("off") == 0
    assert slow_seconds("30") == 30
    assert isinstance(slow_seconds("7200"), str)
    assert isinstance(slow_seconds("fast"), str)


def test_changes_made_in_chat_are_validated_applied_and_reported() -> None:
    changed = change(DEFAULTS, {}, "flood.messages", "20")
    assert changed == {"flood.messages": 20}
    assert isinstance(changed, dict)
    assert effective(DEFAULTS, changed).flood.messages == 20
    assert change(DEFAULTS, changed, "crisis.enabled", "off") == {
        "flood.messages": 20,
        "crisis.enabled": False,
    }
    assert "greater than or equal to 2" in str(change(DEFAULTS, {}, "flood.messages", "1"))
    assert "can't be changed here" in str(change(DEFAULTS, {}, "words.patterns", "x"))
    assert "needs a number" in str(change(DEFAULTS, {}, "flood.seconds", "soon"))
    # A change the file no longer allows is dropped, not fatal.
    assert effective(DEFAULTS, {"flood.messages": 1}) == DEFAULTS
    assert drift(DEFAULTS, changed) == ["flood.messages is 20 (the community file says 10)"]
    shown = describe(effective(DEFAULTS, changed), changed)
    assert "Flood: on, over 20 in 60 s" in shown
    assert shown.endswith("Changed in chat: flood.messages = 20")


def test_a_mute_notice_says_why_for_how_long_and_how_to_avoid_it() -> None:

    flood = Finding(Rule.FLOOD, "5 messages in 60 s (limit 3)")
    said = render(
        mute_notice("Carers", 1, "you sent a lot of messages in a short time", Decision((flood,)))
    )
    text = said.body
    assert text.startswith(
        "You've been muted in Carers for 1 minute: you sent a lot of messages in a short time"
        ": 5 messages in 60 s (limit 3)."
    )
    assert "post again" in text
    assert "Next time, wait a little between messages" in text
    assert "<strong>1 minute</strong>" in said.html
    assert "<p><strong>Next time</strong>, wait a little" in said.html
    # A listed word: the advice, never the word or the pattern.
    words = Finding(Rule.WORDS, "a listed word or pattern")
    text = render(mute_notice("Carers", 90, "it contained a word", Decision((words,)))).body
    assert "for 90 minutes" in text
    assert "guidelines in the pinned message" in text
    assert "listed word or pattern" not in text
    # A first offence's warning gives the same advice.
    warned = render(warning_notice("Carers", "you sent a lot of messages", Decision((flood,)))).body
    assert warned.startswith("A gentle note about your message in Carers")
    assert warned.endswith(
        "Next time, wait a little between messages, or put several thoughts into one message."
    )


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(60, "1 minute"), (5400, "90 minutes"), (7200, "2 hours"), (86400, "1 day"),
     (1209600, "2 weeks"), (45, "45 seconds"), (1, "1 second")],
)  # fmt: skip
def test_spans_in_words(seconds: int, words: str) -> None:

    assert span_words(timedelta(seconds=seconds)) == words
