"""Shared ban lists, read and matched without I/O; a hostile list's globs
bounded (nothing sweeping, nothing that takes long to match)."""

from __future__ import annotations

from bots.moderation.following import NOTES_PER_LIST, bans_due, refusal_notes, refused_note
from bots.moderation.policy import (
    MAX_STARS,
    PUBLISHED,
    Refused,
    Rule,
    ban_rule,
    ban_rules,
    banned_by,
    entity_hash,
    glob_problem,
    refused_rules,
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
    prefix = Rule("@spam-*:spam.example", "", LIST)
    assert prefix.matches("@spam-1:spam.example")
    assert not prefix.matches("@spam-1:example.org")
    assert not prefix.matches("@ham-1:spam.example")
    one = Rule("@bot?:x.org", "", LIST)
    assert one.matches("@bot1:x.org")
    assert not one.matches("@bot12:x.org")
    literal = Rule("@a.b:x.org", "", LIST)  # a dot is a dot
    assert not literal.matches("@aXb:x.org")


def test_malformed_or_sweeping_entities_are_never_acted_on() -> None:
    for bad in (None, 42, "", "*", "@*", "@*:*", "@??:*", "#room:x.org", "troll", "@x" * 200):
        assert not usable(bad), bad
    # A whole server, this community's own included, is no one in particular.
    for sweeping in ("@*:spam.example", "@*:localhost", "@*?*:*", "@a*:*", "@?b?*:x.org"):
        assert not usable(sweeping), sweeping
    assert usable("@troll:x.org")
    assert usable("@spam-*:localhost")  # Draupnir's kind of glob
    assert usable("@*bot*:x.org")


def test_a_glob_must_name_someone_and_stay_simple() -> None:
    assert glob_problem("@troll:x.org") is None  # no glob at all
    assert glob_problem("@*troll*:*") is None
    for sweeping in ("@*:localhost", "@*?*:*", "@********:*.invalid", "@ab*:x.org"):
        code, why = glob_problem(sweeping) or ("", "")
        assert code == "sweeping", sweeping
        assert "at least 3 characters other than * and ? before the ':'" in why
    many = "@s*p*a*m*:*.*.*.*.*"
    assert many.count("*") == MAX_STARS + 1
    assert glob_problem(many) == ("complex", "It has 9 '*'; a pattern may have at most 8")
    assert glob_problem(many[:-2]) is None  # eight is allowed
    assert glob_problem("*troll*")[0] == "shape"  # type: ignore[index]


def test_a_glob_bomb_matches_in_linear_time() -> None:
    # Python's re backtracks through every way of placing the stars before
    # failing at the end: minutes for this one ID. RE2 does not backtrack.
    bomb = Rule("@a*a*a*a*a*a*a*a:*.invalid", "", LIST)
    assert usable(bomb.entity)
    long_name = "@" + "a" * 200
    assert not bomb.matches(long_name + ":x.invalid.example.org")
    assert bomb.matches(long_name + ":x.invalid")
    # Consecutive stars mean one, and newlines are characters like any other.
    assert Rule("@ab**c:x.org", "", LIST).matches("@abXYZc:x.org")
    assert Rule("@ab*c:x.org", "", LIST).matches("@ab\nc:x.org")
    assert not Rule("@a.b:x.org", "", LIST).matches("@a\nb:x.org")


def test_refused_rules_are_told_once_by_list_and_entity_and_never_applied() -> None:
    keyed = state(
        ban_rule("@*:localhost", "everyone"),
        ban_rule("@********:*.invalid", ""),
        ban_rule("@*:localhost", "again"),  # the same entity under another key
        ban_rule("@spam-*:localhost", "spam"),
        {"entity": "@*:localhost", "recommendation": "m.mute"},  # not a ban: ignored
    )
    assert [r.entity for r in ban_rules([LIST], keyed)] == ["@spam-*:localhost"]
    refused = refused_rules([LIST], keyed)
    assert [(r.entity, r.code) for r in refused] == [
        ("@*:localhost", "sweeping"),
        ("@********:*.invalid", "sweeping"),
    ]
    note = refused_note(refused[0])
    assert note.startswith(f"Not applied: the rule for '@*:localhost' on the ban list {LIST}")
    assert note.endswith("Nobody was banned by it.")
    assert refused_rules(["!other:x"], keyed) == []
    members = {ROOM: frozenset({"@amy:localhost", "@spam-9:localhost"})}
    due = bans_due(ban_rules([LIST], keyed), members, frozenset())
    assert [user for user, _ in due] == ["@spam-9:localhost"]


def test_a_list_full_of_refused_rules_does_not_flood_the_moderators() -> None:
    many = [Refused(LIST, f"@*:server{i}.example", "sweeping", "It names no one") for i in range(9)]
    one = Refused("!other:x", "@*:localhost", "sweeping", "It names no one")
    notes = refusal_notes([*many, one])
    keys = [key for key, _, _, _ in notes]
    assert keys == [
        *(f"policy-refused:{LIST}:@*:server{i}.example" for i in range(NOTES_PER_LIST)),
        f"policy-refused-more:{LIST}",
        "policy-refused:!other:x:@*:localhost",
    ]
    more = notes[NOTES_PER_LIST][2]
    assert LIST in more
    assert "(9 in all so far)" in more


def test_only_banning_rules_of_followed_lists_count_in_every_event_type() -> None:
    keyed = {
        **state(
            ban_rule("@troll:x.org", "spam"), {"entity": "@ok:x.org", "recommendation": "m.mute"}
        ),
        "org.matrix.mjolnir.rule.user": {
            LIST: {
                "r": {"entity": "@spam*:spam.example", "recommendation": "org.matrix.mjolnir.ban"}
            }
        },
        "m.room.rule.user": {"!other-list:x": {"r": ban_rule("@elsewhere:x.org", "")}},
    }
    rules = ban_rules([LIST], keyed)
    assert sorted(r.entity for r in rules) == ["@spam*:spam.example", "@troll:x.org"]
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
