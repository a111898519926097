"""Who the bot makes Olm sessions with ahead of time: members who joined an
encrypted room, as a sync shows them. Pure (nio's parsed sync)."""

from __future__ import annotations

from typing import Any

from nio import SyncResponse

from bots.framework.trust.warming import joined_users

ME = "@bot:x.org"


def member(user: str, membership: str) -> dict[str, Any]:
    return {
        "type": "m.room.member",
        "state_key": user,
        "sender": user,
        "event_id": f"${user}{membership}",
        "origin_server_ts": 1,
        "content": {"membership": membership},
    }


def sync(rooms: dict[str, dict[str, list[dict[str, Any]]]]) -> SyncResponse:
    join = {
        room: {
            "state": {"events": parts.get("state", [])},
            "timeline": {"events": parts.get("timeline", []), "limited": False},
        }
        for room, parts in rooms.items()
    }
    resp = SyncResponse.from_dict({"next_batch": "s1", "rooms": {"join": join}})
    assert isinstance(resp, SyncResponse)
    return resp


def test_members_of_encrypted_rooms_who_joined_are_warmed_and_nobody_else() -> None:
    resp = sync(
        {
            "!enc:x.org": {
                "state": [member("@ann:x.org", "join"), member(ME, "join")],
                "timeline": [
                    member("@bob:x.org", "join"),
                    member("@cat:x.org", "invite"),
                    member("@dan:x.org", "leave"),
                ],
            },
            "!plain:x.org": {"timeline": [member("@eve:x.org", "join")]},
        }
    )
    assert joined_users(resp, ME, lambda room: room == "!enc:x.org") == {"@ann:x.org", "@bob:x.org"}
