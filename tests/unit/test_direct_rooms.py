"""The bot's m.direct: its own DMs added, nobody else's entry lost."""

from bots.framework.outbox.direct import merged_direct


def test_the_bot_s_dms_go_first_and_other_entries_stay() -> None:
    current = {"@ann:hs": ["!old:hs"], "@bob:hs": ["!b:hs"], "@odd:hs": "not a list"}
    merged = merged_direct(current, {"!new:hs": "@ann:hs", "!c:hs": "@cat:hs"})
    assert merged == {
        "@ann:hs": ["!new:hs", "!old:hs"],
        "@bob:hs": ["!b:hs"],
        "@odd:hs": "not a list",
        "@cat:hs": ["!c:hs"],
    }


def test_a_room_already_listed_moves_to_the_front_once() -> None:
    merged = merged_direct({"@ann:hs": ["!a:hs", "!dm:hs"]}, {"!dm:hs": "@ann:hs"})
    assert merged == {"@ann:hs": ["!dm:hs", "!a:hs"]}


def test_a_new_account_has_no_m_direct_yet() -> None:
    assert merged_direct({}, {"!dm:hs": "@ann:hs"}) == {"@ann:hs": ["!dm:hs"]}


def test_nothing_is_written_when_the_read_failed() -> None:
    # Writing only the bot's own record back would erase every other entry.
    assert merged_direct(None, {"!dm:hs": "@ann:hs"}) is None
    assert merged_direct(["unexpected"], {"!dm:hs": "@ann:hs"}) is None
