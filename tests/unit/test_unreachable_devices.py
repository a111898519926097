"""Devices with no one-time key left: told once, tried again after a pause
that doubles, forgotten once reached. Pure."""

from __future__ import annotations

from bots.framework.trust.sharing import no_olm_content
from bots.framework.trust.unreachable import Unreachable


def test_a_failed_device_waits_a_doubling_pause_up_to_the_cap() -> None:
    u = Unreachable(first_retry_s=60, max_retry_s=300)
    assert u.due("dev", now=0)
    assert u.failed("dev", now=0) == 60
    assert not u.due("dev", now=59)
    assert u.due("dev", now=60)
    assert u.failed("dev", now=60) == 180  # 120 s later
    assert u.failed("dev", now=180) == 420  # 240 s later
    assert u.failed("dev", now=420) == 720  # capped at 300 s
    assert u.retry_at(["dev", "other"]) == 720
    assert u.retry_at(["other"]) is None


def test_each_device_is_told_once_until_it_is_reached() -> None:
    u = Unreachable()
    assert u.to_tell(["a", "b", "a"]) == ["a", "b"]
    assert u.to_tell(["a", "b", "c"]) == ["c"]
    u.failed("a", now=0)
    u.reached("a")
    # Reached: no pause left, and told again should it run out once more.
    assert u.due("a", now=0)
    assert u.retry_at(["a"]) is None
    assert u.to_tell(["a"]) == ["a"]


def test_the_notice_names_no_room_or_session() -> None:
    content = no_olm_content("curve-key")
    assert content["code"] == "m.no_olm"
    assert content["sender_key"] == "curve-key"
    assert "room_id" not in content
    assert "session_id" not in content
