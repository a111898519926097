"""Shared ban lists, read and matched without I/O."""

from __future__ import annotations

from bots.moderation.following import bans_due
from bots.moderation.policy import (
    PUBLISHED,
    Rule,
    ban_rule,
    ban_rules,
    banned_by,
    entity_hash,
    usable,
)

LIST = "!list:other.example"
ROOM = "!general:example.org"


def state(*contents: dict[str, object], event_type: str = PUBLISHED) -> dict[str, object]:
    return {event_type: {LIST: {f"rule:{i}": c for i, c in enumerate(contents)}}}


def test_a_user_id_or_a_glob_matches_whole_ids() -> None:
    exact = Rule("@troll:spam.example", "", LIST)
    assert exact.matches("@troll:spam.example")
    assert not exact.matches("@troll:spam.example.org")
    server = Rule("@*:spam.example", "", LIST)
    assert server.matches("@anyone:spam.example")
    assert not server.matches("@anyone:example.org")
    one = Rule("@bot?:x.org", "", LIST)
    assert one.matches("@bot1:x.org")
    assert not one.matches("@bot12:x.org")
    literal = Rule("@a.b:x.org", "", LIST)  # a dot is a dot
    assert not literal.matches("@aXb:x.org")


def test_malformed_or_sweeping_entities_are_never_acted_on() -> None:
    for bad in (None, 42, "", "*", "@*", "@*:*", "@??:*", "#room:x.org", "troll", "@x" * 200):
        assert not usable(bad), bad
    assert usable("@*:spam.example")
    assert usable("@troll:x.org")


def test_only_banning_rules_of_followed_lists_count_in_every_event_type() -> None:
    keyed = {
        **state(
            ban_rule("@troll:x.org", "spam"), {"entity": "@ok:x.org", "recommendation": "m.mute"}
        ),
        "org.matrix.mjolnir.rule.user": {
            LIST: {"r": {"entity": "@*:spam.example", "recommendation": "org.matrix.mjolnir.ban"}}
        },
        "m.room.rule.user": {"!other-list:x": {"r": ban_rule("@elsewhere:x.org", "")}},
    }
    rules = ban_rules([LIST], keyed)
    assert sorted(r.entity for r in rules) == ["@*:spam.example", "@troll:x.org"]
    # A withdrawn rule (its content emptied) bans no one.
    assert ban_rules([LIST], state({})) == []
    # Malformed rules are skipped, the rest still apply.
    mixed = state({"entity": ["@x:y"], "recommendation": "m.ban"}, ban_rule("@t:x.org", ""))
    assert [r.entity for r in ban_rules([LIST], mixed)] == ["@t:x.org"]


def test_staff_and_the_bot_are_never_banned_by_a_list() -> None:
    rules = [Rule("@*:example.org", "spam wave", LIST)]
    assert banned_by(rules, "@mod:example.org", {"@mod:example.org"}) is None
    members = {ROOM: frozenset({"@mod:example.org", "@troll:example.org", "@amy:other.org"})}
    due = bans_due(rules, members, frozenset({"@mod:example.org"}))
    assert due == {("@troll:example.org", rules[0]): [ROOM]}


def test_a_takedown_rule_is_read_as_a_ban_that_removes_messages() -> None:
    rules = ban_rules(
        [LIST],
        state(
            ban_rule("@spammer:x.org", "spam", takedown=True),
            {"entity": "@other:x.org", "recommendation": "m.takedown", "reason": ""},
            ban_rule("@troll:x.org", "rude"),
        ),
    )
    assert {(r.entity, r.takedown) for r in rules} == {
        ("@spammer:x.org", True),
        ("@other:x.org", True),
        ("@troll:x.org", False),
    }
    assert ban_rule("@spammer:x.org", "spam", takedown=True)["recommendation"] == (
        "org.matrix.msc4204.takedown"
    )


def test_a_rule_by_hash_matches_only_the_user_whose_id_hashes_the_same() -> None:
    # MSC4205's example: the hash is the base64 SHA-256 of the whole user ID.
    yarrgh = "VPqwbUV7mMMkOVto3kPwsNXXiALMs7VCKWh3OeqqjGs="
    assert entity_hash("@yarrgh:example.com") == yarrgh.rstrip("=")
    rules = ban_rules(
        [LIST],
        state(
            # Draupnir's unstable key, padded, as its takedown writes it.
            {"recommendation": "m.takedown", "org.matrix.msc4205.hashes": {"sha256": yarrgh}},
            # The MSC's stable key, unpadded.
            {"recommendation": "m.ban", "hashes": {"sha256": entity_hash("@troll:x.org")}},
        ),
    )
    by_hash = {r.entity: r for r in rules}
    assert set(by_hash) == {f"sha256:{yarrgh.rstrip('=')}", f"sha256:{entity_hash('@troll:x.org')}"}
    assert banned_by(rules, "@yarrgh:example.com", ()) == by_hash[f"sha256:{yarrgh.rstrip('=')}"]
    assert banned_by(rules, "@yarrgh:example.com", ()).takedown  # type: ignore[union-attr]
    assert banned_by(rules, "@troll:x.org", ()) is not None
    assert banned_by(rules, "@amy:x.org", ()) is None


def test_malformed_hashes_are_skipped() -> None:
    bad: list[dict[str, object]] = [
        {"recommendation": "m.ban", "hashes": "not a mapping"},
        {"recommendation": "m.ban", "hashes": {"sha256": 42}},
        {"recommendation": "m.ban", "hashes": {"sha256": "short"}},
        {"recommendation": "m.ban", "hashes": {"md5": "x" * 43}},
        {"recommendation": "m.mute", "hashes": {"sha256": entity_hash("@t:x.org")}},
        # An entity that is unusable is not rescued by a hash beside it.
        {"recommendation": "m.ban", "entity": "@*:*", "hashes": {"sha256": entity_hash("@t:x")}},
    ]
    assert ban_rules([LIST], state(*bad)) == []
