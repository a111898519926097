"""The community bot and a group's archive rooms: which rooms it trusts, and
what it does for them. Pure."""

from __future__ import annotations

from typing import Any

from bots.archives.plan import Archive, archives, steps
from bots.framework.actions import Invite, SetState
from bots.framework.community import CommunityRooms
from provisioning.schema import CommunityFile

BRIDGE = "@hearth-bridge:care.example"
BOT = "@hearth-bot:care.example"


def community(history: bool = True) -> CommunityFile:
    return CommunityFile.model_validate(
        {
            "community": {
                "key": "circle",
                "name": "Circle",
                "homeserver": "https://care.example",
                "admin": {"user_id": "@admin:care.example", "access_token_file": "admin.token"},
                "code_of_conduct": "Be kind.",
                "crisis_resources": "Call 112.",
            },
            "bots": [{"user_id": BOT}],
            "groups": [
                {"key": "other", "name": "Other"},
                {"key": "carers", "name": "Carers", "history_before_joining": history},
            ],
        }
    )


def marker(**changes: Any) -> dict[str, Any]:
    return {
        "community": "circle",
        "kind": "archive",
        "group": "carers",
        "complete": True,
        **changes,
    }


def made_by(creators: dict[str, frozenset[str]]) -> Any:
    return lambda room: creators.get(room, frozenset())


def test_only_a_complete_archive_the_archive_bot_created_alone_counts() -> None:
    cfg = community()
    markers = {
        "!ok:x": marker(),
        "!busy:x": marker(complete=False),
        "!forged:x": marker(),  # a member's room wearing the marker
        "!shared:x": marker(),  # the archive bot named as one of two creators
        "!elsewhere:x": marker(community="another"),
        "!nogroup:x": marker(group="gone"),
    }
    creators = made_by(
        {
            "!ok:x": frozenset({BRIDGE}),
            "!busy:x": frozenset({BRIDGE}),
            "!forged:x": frozenset({"@mallory:care.example"}),
            "!shared:x": frozenset({"@mallory:care.example", BRIDGE}),
            "!elsewhere:x": frozenset({BRIDGE}),
            "!nogroup:x": frozenset({BRIDGE}),
        }
    )
    assert archives(markers, cfg, creators) == [Archive("!ok:x", "carers")]


def test_a_group_that_keeps_history_from_newcomers_has_no_archive() -> None:
    cfg = community(history=False)
    assert archives({"!a:x": marker()}, cfg, made_by({"!a:x": frozenset({BRIDGE})})) == []


def test_an_archive_is_listed_after_its_group_s_rooms_and_its_members_invited() -> None:
    cfg = community()
    rooms = CommunityRooms("!space:x", {"carers": ("!chat:x", "!news:x")})
    members = {
        "!chat:x": frozenset({BOT, "@ann:care.example", "@bob:care.example"}),
        "!news:x": frozenset({BOT, "@cat:care.example"}),
        "!arch:x": frozenset({BOT, "@bob:care.example"}),
    }
    planned = steps(
        Archive("!arch:x", "carers"), cfg, rooms, {}, lambda r: members.get(r, frozenset())
    )
    assert planned[0] == (
        "archive-listed:!arch:x",
        [
            SetState(
                "!space:x",
                "m.space.child",
                {"via": ["care.example"], "order": "001.99", "suggested": False},
                state_key="!arch:x",
            ),
            SetState(
                "!arch:x",
                "m.space.parent",
                {"via": ["care.example"], "canonical": True},
                state_key="!space:x",
            ),
        ],
    )
    # Everyone in the group's rooms who is not in the archive yet; never the bots.
    assert planned[1:] == [
        ("archive-invite:!arch:x:@ann:care.example", [Invite("!arch:x", "@ann:care.example")]),
        ("archive-invite:!arch:x:@cat:care.example", [Invite("!arch:x", "@cat:care.example")]),
    ]


def test_a_listed_archive_with_everyone_in_it_needs_nothing() -> None:
    cfg = community()
    rooms = CommunityRooms("!space:x", {"carers": ("!chat:x",)})
    everyone = frozenset({BOT, "@ann:care.example"})
    listed = {"!arch:x": {"via": ["care.example"]}}
    assert steps(Archive("!arch:x", "carers"), cfg, rooms, listed, lambda _r: everyone) == []
