"""Raw event JSON, as Synapse and Element send it, becomes the typed events features use."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bots.framework.events import (
    IncomingMessage,
    JoinRules,
    Membership,
    MembershipChange,
    Message,
    MessageKind,
    PollAnswer,
    PollEnd,
    PollKind,
    PollResponse,
    PollStart,
    PowerLevels,
    Reaction,
    Redaction,
)
from bots.framework.intake.parse import classify_membership, to_event

DATA = Path(__file__).parent / "data" / "events"
ROOM = "!pQwGtKzLhVbNcXeRyU:example.org"
ENCRYPTED_ROOM = "!mDfJsAoIuYtReWqPlK:example.org"
ALICE, SAM, RILEY, JO = (
    "@alice:example.org",
    "@sam:example.org",
    "@riley:example.org",
    "@jo:example.org",
)
BOT = "@hearth-bot:example.org"
ASKED_ABOUT_MORNINGS = "$RdogNmd1LbMgS2oUcoVAd8EULcbaeNfj5GJPyU41NNE"
UNSTABLE_POLL = "$8bKG0hpMdBuNu4nJLNsQC14fuqLlFuUENdZ4E6AL55w"
STABLE_POLL = "$U2Q1ir4V8yPcDdgdJbSGUZ57A-SyV2GiA2QuDsMp-Jc"

T = TypeVar("T")


def raw(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return loaded


def parse(source: dict[str, Any], encrypted: bool | None = None) -> object:
    # Decrypted fixtures name their room, as megolm plaintext does; /sync events don't.
    if encrypted is None:
        encrypted = "room_id" in source
    return to_event(source.get("room_id", ROOM), source, encrypted=encrypted)


def load(name: str, cls: type[T]) -> T:
    event = parse(raw(name))
    assert isinstance(event, cls), event
    return event


# --- messages ---


def test_decrypted_reply_keeps_sender_text_and_target() -> None:
    msg = load("message_text_reply_encrypted", Message)
    assert (msg.room_id, msg.sender, msg.encrypted) == (ENCRYPTED_ROOM, ALICE, True)
    assert msg.event_id == "$K-A2VjsCPjslOMD0E4xfVvYy1aZ591OxbMNlMLUIKW4"
    assert msg.body.startswith("Same here. The breathing exercise")
    assert (msg.msgtype, msg.kind) == ("m.text", MessageKind.TEXT)
    assert msg.server_ts_ms == 1760450054312
    assert msg.reply_to == ASKED_ABOUT_MORNINGS


def test_reply_mentions_come_from_m_mentions() -> None:
    msg = load("message_text_reply_encrypted", Message)
    assert msg.mentions == (SAM,)
    assert not msg.mentions_room


def test_reply_fallback_quote_is_dropped_from_body() -> None:
    msg = load("message_reply_fallback", Message)
    assert msg.reply_to == ASKED_ABOUT_MORNINGS
    assert msg.body == "Yes, every single morning"


def test_reply_fallback_quote_is_dropped_from_html() -> None:
    msg = load("message_reply_fallback", Message)
    assert msg.formatted_body == "Yes, <em>every single</em> morning"


def test_a_quote_without_a_reply_is_kept() -> None:
    source = raw("message_reply_fallback")
    del source["content"]["m.relates_to"]
    msg = parse(source)
    assert isinstance(msg, Message)
    assert msg.body.startswith("> <@alice:example.org> Does anyone")
    assert msg.reply_to is None


def test_thread_message_has_its_root_and_no_fallback_reply() -> None:
    msg = load("message_thread", Message)
    assert msg.thread_root == "$yf9hgdRFaATUDRynlHtCxLdZ4mh7jazdry2sjGGLnAM"
    assert msg.reply_to is None
    assert msg.body == "I can bring the leaflets from the clinic"


def test_explicit_reply_inside_a_thread_keeps_its_target() -> None:
    source = raw("message_thread")
    source["content"]["m.relates_to"]["is_falling_back"] = False
    msg = parse(source)
    assert isinstance(msg, Message)
    assert msg.reply_to == "$5aEY0kRaLqYfRWgJMFVV3liZo05JXInQPK10KeQCnAs"


def test_thread_reply_without_the_fallback_flag_is_a_real_reply() -> None:
    source = raw("message_thread")
    del source["content"]["m.relates_to"]["is_falling_back"]
    msg = parse(source)
    assert isinstance(msg, Message)
    assert msg.reply_to == "$5aEY0kRaLqYfRWgJMFVV3liZo05JXInQPK10KeQCnAs"


def test_edit_reads_the_new_content() -> None:
    msg = load("message_edit", Message)
    assert msg.replaces == "$lLorcKMUwoEzaxgtptSJlonmIg_ZCGDvGSjz68HA2oM"
    assert msg.body == "I'll be there at 7, @sam can you save me a seat?"
    assert msg.formatted_body is not None
    assert msg.formatted_body.startswith("I'll be there at <b>7</b>")
    assert msg.reply_to is None
    assert msg.thread_root is None


def test_edit_without_new_content_falls_back_to_the_star_text() -> None:
    source = raw("message_edit")
    del source["content"]["m.new_content"]
    msg = parse(source)
    assert isinstance(msg, Message)
    assert msg.body == " * I'll be there at 7, @sam can you save me a seat?"


def test_notice_is_a_notice_that_can_mention_the_room() -> None:
    msg = load("message_notice", Message)
    assert msg.kind is MessageKind.NOTICE
    assert msg.mentions_room
    assert msg.mentions == ()


def test_emote_is_an_emote_with_html() -> None:
    msg = load("message_emote", Message)
    assert msg.kind is MessageKind.EMOTE
    assert msg.body == "waves hello to everyone"
    assert msg.formatted_body == "waves hello to <em>everyone</em>"


def test_formatted_body_without_a_known_format_is_ignored() -> None:
    source = raw("message_emote")
    del source["content"]["format"]
    msg = parse(source)
    assert isinstance(msg, Message)
    assert msg.formatted_body is None


def test_unknown_msgtype_reads_as_text_but_keeps_its_msgtype() -> None:
    source = raw("message_emote")
    source["content"]["msgtype"] = "m.location"
    msg = parse(source)
    assert isinstance(msg, Message)
    assert (msg.kind, msg.msgtype) == (MessageKind.TEXT, "m.location")


def test_encrypted_image_carries_what_decryption_needs() -> None:
    msg = load("message_image_encrypted", Message)
    assert msg.kind is MessageKind.MEDIA
    media = msg.media
    assert media is not None
    assert media.file is not None
    assert (media.msgtype, media.filename) == ("m.image", "IMG_20251014_183201.jpg")
    assert (media.mimetype, media.size, media.url) == ("image/jpeg", 284513, None)
    assert media.file.url == "mxc://example.org/UhTrWqZxCvBnMlKjHgFdSaPo"
    assert media.file.key["k"] == "g-R0F3xFUByKtEMfHovqOU6VxgOZExso_eDj-l9z4NA"
    assert media.file.key["key_ops"] == ("encrypt", "decrypt")
    assert media.file.iv == "sLCvubojEa0AAAAAAAAAAA"
    assert media.file.sha256 == "poI2KtPJCycFvxxkX5aMDeaBjGwkVNDGL9JR6dBZhTg"
    assert media.file.v == "v2"


def test_encrypted_image_stays_hashable_and_its_key_read_only() -> None:
    msg = load("message_image_encrypted", Message)
    assert msg.media is not None
    assert msg.media.file is not None
    assert hash(msg) == hash(load("message_image_encrypted", Message))
    with pytest.raises(TypeError):
        msg.media.file.key["k"] = "x"  # type: ignore[index]


def test_file_with_a_caption_names_the_file_apart_from_the_caption() -> None:
    msg = load("message_file_caption", Message)
    assert msg.media is not None
    assert msg.media.filename == "session-notes-2025-10-14.pdf"
    assert msg.body == "Here are the notes from Tuesday's session"
    assert msg.media.url == "mxc://example.org/QwErTyUiOpAsDfGhJkLzXcVb"
    assert msg.media.file is None


def test_media_pointing_outside_the_media_repository_is_dropped() -> None:
    source = raw("message_file_caption")
    source["content"]["url"] = "https://tracker.example/pixel.png"
    msg = parse(source)
    assert isinstance(msg, Message)
    assert msg.kind is MessageKind.MEDIA
    assert msg.media is None


def test_attachment_url_must_be_mxc_even_beside_an_encrypted_file() -> None:
    source = raw("message_image_encrypted")
    source["content"]["url"] = "https://tracker.example/pixel.png"
    msg = parse(source)
    assert isinstance(msg, Message)
    assert msg.media is not None
    assert msg.media.url is None
    assert msg.media.file is not None


def test_incoming_message_is_message_and_derives_its_kind() -> None:
    msg = IncomingMessage("$e", ROOM, ALICE, "hi", "m.notice", 0, True)
    assert isinstance(msg, Message)
    assert msg.kind is MessageKind.NOTICE
    assert msg.mentions == ()
    assert msg.media is None


# --- reactions and redactions ---


def test_reaction_names_its_target_and_key() -> None:
    reaction = load("reaction_encrypted", Reaction)
    assert reaction.relates_to == ASKED_ABOUT_MORNINGS
    assert reaction.key == "💜"
    assert (reaction.sender, reaction.encrypted) == (RILEY, True)


def test_reaction_without_key_is_dropped() -> None:
    source = raw("reaction_encrypted")
    del source["content"]["m.relates_to"]["key"]
    assert parse(source) is None


def test_redaction_in_room_v11_reads_content_redacts() -> None:
    redaction = load("redaction_v11", Redaction)
    assert redaction.redacts == "$DEln_2jwozoCuLMOpnaoHVcHBTzz1535qyh6GV1GiLc"
    assert redaction.reason == "Removed: shared someone else's health details"


def test_redaction_in_older_rooms_reads_top_level_redacts() -> None:
    redaction = load("redaction_legacy", Redaction)
    assert redaction.redacts == "$itNyunySjhpqGppqf6sN5flYarUocTr7axnTETFBvus"
    assert redaction.reason is None


def test_redaction_of_nothing_is_dropped() -> None:
    source = raw("redaction_legacy")
    del source["redacts"]
    assert parse(source) is None


# --- membership ---


@pytest.mark.parametrize(
    ("fixture", "change", "previous"),
    [
        ("member_invite", MembershipChange.INVITE, None),
        ("member_join", MembershipChange.JOIN, "invite"),
        ("member_leave", MembershipChange.LEAVE, "join"),
        ("member_kick", MembershipChange.KICK, "join"),
        ("member_ban", MembershipChange.BAN, "join"),
        ("member_unban", MembershipChange.UNBAN, "ban"),
        ("member_knock", MembershipChange.KNOCK, None),
        ("member_displayname", MembershipChange.PROFILE, "join"),
    ],
)
def test_membership_change_is_classified(
    fixture: str, change: MembershipChange, previous: str | None
) -> None:
    member = load(fixture, Membership)
    assert (member.change, member.previous) == (change, previous)


def test_kick_names_who_did_it_to_whom_and_why() -> None:
    member = load("member_kick", Membership)
    assert (member.sender, member.target, member.membership) == (RILEY, SAM, "leave")
    assert member.reason == "Please take a break and come back tomorrow"


def test_knock_carries_its_reason() -> None:
    member = load("member_knock", Membership)
    assert member.target == "@new:example.net"
    assert member.reason == "My GP suggested this group, I was diagnosed last month"


def test_invite_to_a_direct_chat_is_marked_direct() -> None:
    assert load("member_invite_direct", Membership).is_direct
    assert not load("member_invite", Membership).is_direct


def test_profile_change_carries_the_new_displayname() -> None:
    member = load("member_displayname", Membership)
    assert member.displayname == "Alice (she/her)"


def test_membership_without_state_key_is_dropped() -> None:
    source = raw("member_join")
    del source["state_key"]
    assert parse(source) is None


@pytest.mark.parametrize(
    ("previous", "new", "sender", "change"),
    [
        ("invite", "leave", JO, MembershipChange.INVITE_REJECTED),
        ("invite", "leave", RILEY, MembershipChange.INVITE_REVOKED),
        ("knock", "leave", JO, MembershipChange.KNOCK_RETRACTED),
        ("knock", "leave", RILEY, MembershipChange.KNOCK_REJECTED),
        ("knock", "invite", RILEY, MembershipChange.INVITE),
        ("leave", "join", JO, MembershipChange.JOIN),
        ("ban", "ban", RILEY, MembershipChange.NONE),
        (None, "leave", JO, MembershipChange.NONE),
        ("join", "m.custom", JO, MembershipChange.NONE),
    ],
)
def test_classify_membership(
    previous: str | None, new: str, sender: str, change: MembershipChange
) -> None:
    assert classify_membership(previous, new, sender, JO) is change


# --- power levels and join rules ---


def test_power_levels_give_each_user_their_level() -> None:
    levels = load("power_levels", PowerLevels)
    assert levels.level_of(RILEY) == 50
    assert levels.level_of(BOT) == 100
    assert levels.level_of(ALICE) == 0


def test_power_levels_keep_every_threshold() -> None:
    levels = load("power_levels", PowerLevels)
    assert levels.events["m.room.power_levels"] == 100
    assert levels.events["org.matrix.msc3381.poll.start"] == 0
    assert (levels.ban, levels.kick, levels.redact, levels.invite) == (50, 50, 50, 50)
    assert (levels.state_default, levels.events_default, levels.users_default) == (50, 0, 0)


def test_power_levels_left_out_take_the_spec_defaults() -> None:
    source = raw("power_levels")
    source["content"] = {}
    levels = parse(source)
    assert isinstance(levels, PowerLevels)
    assert dict(levels.users) == {}
    assert (levels.ban, levels.kick, levels.redact, levels.invite) == (50, 50, 50, 0)
    assert (levels.state_default, levels.events_default, levels.users_default) == (50, 0, 0)


def test_power_levels_read_old_string_levels_and_skip_garbage() -> None:
    source = raw("power_levels")
    source["content"]["users"] = {ALICE: "75", SAM: True, JO: 1.5, RILEY: "moderator", BOT: "٥٠"}
    source["content"]["ban"] = " 60 "
    levels = parse(source)
    assert isinstance(levels, PowerLevels)
    assert dict(levels.users) == {ALICE: 75}
    assert levels.ban == 60


def test_power_levels_are_read_only_and_hashable() -> None:
    levels = load("power_levels", PowerLevels)
    with pytest.raises(TypeError):
        levels.users[ALICE] = 100  # type: ignore[index]
    assert hash(levels) == hash(load("power_levels", PowerLevels))


def test_power_levels_sent_as_a_message_are_dropped() -> None:
    source = raw("power_levels")
    del source["state_key"]
    assert parse(source) is None


@pytest.mark.parametrize("rule", ["public", "invite", "knock"])
def test_join_rule_is_read(rule: str) -> None:
    rules = load(f"join_rules_{rule}", JoinRules)
    assert (rules.join_rule, rules.allow_rooms) == (rule, ())


def test_restricted_join_rule_lists_the_rooms_that_admit() -> None:
    rules = load("join_rules_restricted", JoinRules)
    assert rules.join_rule == "restricted"
    assert rules.allow_rooms == (
        "!cOmMuNiTySpAcEaBcDe:example.org",
        "!hTgFrEdWsQaZxCvBnM:example.org",
    )


def test_allow_list_skips_entries_it_cannot_read() -> None:
    source = raw("join_rules_restricted")
    source["content"]["allow"][0] = {"type": "m.room_membership", "room_id": 7}
    source["content"]["allow"].append("!notanentry:example.org")
    rules = parse(source)
    assert isinstance(rules, JoinRules)
    assert rules.allow_rooms == ("!hTgFrEdWsQaZxCvBnM:example.org",)


def test_allow_list_means_nothing_to_a_public_room() -> None:
    source = raw("join_rules_restricted")
    source["content"]["join_rule"] = "public"
    rules = parse(source)
    assert isinstance(rules, JoinRules)
    assert rules.allow_rooms == ()


# --- polls ---


def test_element_poll_start_reads_question_kind_and_answers() -> None:
    poll = load("poll_start", PollStart)
    assert poll.event_id == UNSTABLE_POLL
    assert poll.question == "When should we meet next week?"
    assert (poll.kind, poll.max_selections, poll.encrypted) == (PollKind.DISCLOSED, 1, True)
    assert poll.answers == (
        PollAnswer("Qr7zWi-jEOIOiNhG", "Tuesday 18:00"),
        PollAnswer("309dsrlZEqT-qO0J", "Wednesday 19:30"),
        PollAnswer("r7wJDgV0Vl5HBc7r", "Saturday morning"),
    )


def test_element_poll_response_names_poll_and_answer() -> None:
    vote = load("poll_response", PollResponse)
    assert (vote.poll_id, vote.answers, vote.sender) == (
        UNSTABLE_POLL,
        ("309dsrlZEqT-qO0J",),
        ALICE,
    )


def test_element_poll_end_names_poll_and_text() -> None:
    end = load("poll_end", PollEnd)
    assert end.poll_id == UNSTABLE_POLL
    assert end.text == "The poll has ended. Top answer: Wednesday 19:30"


def test_stable_poll_start_is_read_too() -> None:
    poll = load("poll_start_stable", PollStart)
    assert poll.question == "Topics for Thursday?"
    assert (poll.kind, poll.max_selections) == (PollKind.UNDISCLOSED, 2)
    assert [(a.id, a.text) for a in poll.answers] == [
        ("sleep", "Sleep"),
        ("family", "Talking to family"),
        ("work", "Work"),
    ]


def test_stable_poll_response_reads_selections() -> None:
    vote = load("poll_response_stable", PollResponse)
    assert (vote.poll_id, vote.answers) == (STABLE_POLL, ("sleep", "family"))


def test_stable_poll_end_reads_text_representation() -> None:
    end = load("poll_end_stable", PollEnd)
    assert (end.poll_id, end.text) == (STABLE_POLL, "The poll has closed. Top answer: Sleep")


def test_poll_of_unknown_kind_is_undisclosed() -> None:
    source = raw("poll_start")
    source["content"]["org.matrix.msc3381.poll.start"]["kind"] = "org.example.ranked"
    poll = parse(source)
    assert isinstance(poll, PollStart)
    assert poll.kind is PollKind.UNDISCLOSED


def test_poll_allows_at_least_one_selection() -> None:
    source = raw("poll_start")
    source["content"]["org.matrix.msc3381.poll.start"]["max_selections"] = 0
    poll = parse(source)
    assert isinstance(poll, PollStart)
    assert poll.max_selections == 1


def test_poll_keeps_only_twenty_answers() -> None:
    source = raw("poll_start_stable")
    source["content"]["m.poll"]["answers"] = [
        {"m.id": f"a{i}", "m.text": [{"body": f"Option {i}"}]} for i in range(25)
    ]
    poll = parse(source)
    assert isinstance(poll, PollStart)
    assert len(poll.answers) == 20
    assert poll.answers[-1] == PollAnswer("a19", "Option 19")


def test_malformed_vote_is_spoiled() -> None:
    source = raw("poll_response")
    source["content"]["org.matrix.msc3381.poll.response"]["answers"] = ["309dsrlZEqT-qO0J", 2]
    vote = parse(source)
    assert isinstance(vote, PollResponse)
    assert vote.answers == ()


def test_vote_for_no_poll_is_dropped() -> None:
    source = raw("poll_response")
    del source["content"]["m.relates_to"]
    assert parse(source) is None


# --- what is dropped, and never crashes ---


@pytest.mark.parametrize(
    "fixture",
    ["malformed_no_msgtype", "malformed_body_not_string", "unknown_type", "message_redacted"],
)
def test_unusable_event_is_dropped(fixture: str) -> None:
    assert parse(raw(fixture)) is None


def test_oversized_body_is_kept_whole() -> None:
    source = raw("message_emote")
    source["content"]["body"] = "a" * 2_000_000
    msg = parse(source)
    assert isinstance(msg, Message)
    assert len(msg.body) == 2_000_000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", None),
        ("sender", 42),
        ("origin_server_ts", "1760450331592"),
        ("origin_server_ts", True),
        ("content", ["msgtype", "m.text"]),
        ("type", None),
    ],
)
def test_broken_envelope_is_dropped(field: str, value: object) -> None:
    source = raw("message_emote")
    source[field] = value
    assert parse(source) is None


@pytest.mark.parametrize(
    "fixture", ["member_kick", "power_levels", "join_rules_public", "redaction_v11"]
)
def test_state_or_redaction_from_an_encrypted_payload_is_refused(fixture: str) -> None:
    # Only a member forging them could put these inside megolm ciphertext.
    assert parse(raw(fixture), encrypted=True) is None


def test_decrypted_payload_from_another_room_is_refused() -> None:
    source = raw("message_text_reply_encrypted")
    assert to_event(ROOM, source, encrypted=True) is None


def _mutations(node: Any) -> Iterator[None]:
    """Replace each value in *node*, in place, by each wrong type in turn."""
    items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
    for key, value in items:
        for wrong in (None, 7, True, "x", [], {}, [None], {"": None}):
            node[key] = wrong
            yield
        node[key] = value
        if isinstance(value, dict | list):
            yield from _mutations(value)


@pytest.mark.parametrize("fixture", sorted(p.stem for p in DATA.glob("*.json")))
def test_no_wrong_typed_value_anywhere_makes_intake_raise(fixture: str) -> None:
    source = raw(fixture)
    pristine = copy.deepcopy(source)
    for _ in _mutations(source):
        event = parse(source)
        assert event is None or dataclasses.is_dataclass(event)
    assert source == pristine
