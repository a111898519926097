"""The provisioning planner without a homeserver.

`plan` is a pure function (desired config, current server state) -> actions.
These tests drive it against :class:`FakeSynapse`, an in-memory stand-in that
does what Synapse does with the three kinds of action (createRoom, PUT state,
invite) and answers /sync in the filtered shape `parse_sync` reads. That lets
us check the planner's key property on many configurations: whatever the
server holds, plan -> apply -> plan again is empty.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioning.desired import (
    BAN_LIST,
    MARKER,
    MODERATION_LOG,
    MODERATOR_LEVEL,
    MODERATORS,
    REVIEWER_LEVEL,
    ROOM_VERSION,
    SPACE,
    desired_rooms,
    group_label,
    placeholder,
)
from provisioning.meetings import MEETING
from provisioning.planner import (
    Action,
    CreateRoom,
    Invite,
    Plan,
    PutState,
    create_body,
    plan,
    render,
    resolve,
)
from provisioning.protections import OVERRIDES
from provisioning.schema import CommunityFile, load_community
from provisioning.state import CREATORS_IMPLICIT, STATE_TYPES, ServerState, parse_sync

JsonDict = dict[str, Any]
StateKey = tuple[str, str]

_REPO = Path(__file__).resolve().parents[2]
EXAMPLE = _REPO / "config" / "community.example.yaml"

SERVER = "example.org"
ADMIN = f"@hearth-admin:{SERVER}"
MOD = f"@mod:{SERVER}"
MOD2 = f"@mod2:{SERVER}"
GROUP_MOD = f"@group-mod:{SERVER}"
BOT = f"@bot:{SERVER}"
LOW_BOT = f"@low-bot:{SERVER}"
STRANGER = f"@stranger:{SERVER}"

# Like tests/integration/test_provision.py, plus a group moderator.
GROUPS: list[JsonDict] = [
    {
        "key": "newly-diagnosed",
        "name": "Newly diagnosed",
        "topic": "For the first months",
        "join": "space",
        "moderators": [GROUP_MOD],
        "rooms": [
            {"key": "general", "name": "General"},
            {"key": "announcements", "name": "Announcements", "kind": "announcements"},
            {"key": "meetings", "name": "Meetings", "kind": "meetings", "topic": "Dates"},
        ],
    },
    {"key": "carers", "name": "Carers", "join": "knock", "history_before_joining": True},
    {"key": "research", "name": "Research", "join": "invite"},
]

ND_GENERAL = group_label("newly-diagnosed", "general")
ND_ANNOUNCEMENTS = group_label("newly-diagnosed", "announcements")
ND_MEETINGS = group_label("newly-diagnosed", "meetings")
CARERS = group_label("carers", "general")
RESEARCH = group_label("research", "general")
GROUP_LABELS = [ND_GENERAL, ND_ANNOUNCEMENTS, ND_MEETINGS, CARERS, RESEARCH]
ALL_LABELS = [SPACE, MODERATORS, MODERATION_LOG, *GROUP_LABELS]


# --- configuration ---------------------------------------------------------------------------


def community(
    groups: list[JsonDict] | None = None,
    *,
    moderators: tuple[str, ...] = (MOD,),
    bots: tuple[tuple[str, int], ...] = ((BOT, 100),),
    admin: str = ADMIN,
    key: str = "circle",
    name: str = "Test Circle",
) -> CommunityFile:
    data: JsonDict = {
        "community": {
            "key": key,
            "name": name,
            "topic": "A private home",
            "homeserver": f"https://{SERVER}",
            "admin": {"user_id": admin, "access_token_file": "/nonexistent/admin.token"},
            "code_of_conduct": "Be kind.",
            "crisis_resources": "Call 112.",
            "moderators": list(moderators),
        },
        "bots": [{"user_id": u, "power_level": lvl} for u, lvl in bots],
        "groups": copy.deepcopy(GROUPS if groups is None else groups),
    }
    return CommunityFile.model_validate(data)


def with_groups(cfg: CommunityFile, groups: list[JsonDict]) -> CommunityFile:
    data = cfg.model_dump(mode="json")
    data["groups"] = groups
    return CommunityFile.model_validate(data)


def random_config(seed: int) -> CommunityFile:
    """A random but valid community: overlapping roles, every join rule and kind."""
    rng = random.Random(seed)
    pool = [f"@user{i}:{SERVER}" for i in range(8)]
    # The admin may turn up in any role; it must never be invited or listed.
    candidates = [*pool, ADMIN]
    bots = tuple(
        (u, rng.choice([1, 30, 50, 100])) for u in rng.sample(candidates, rng.randint(0, 3))
    )
    groups: list[JsonDict] = []
    for gi in range(rng.randint(0, 6)):
        group: JsonDict = {
            "key": f"g{gi}-{rng.randint(0, 999)}",
            "name": f"Group {gi}",
            "join": rng.choice(["invite", "knock", "space"]),
            "history_before_joining": rng.random() < 0.5,
            "moderators": rng.sample(candidates, rng.randint(0, 3)),
        }
        if rng.random() < 0.5:
            group["topic"] = f"Topic {gi}"
        if rng.random() < 0.75:  # otherwise the default single "general" room
            group["rooms"] = [
                {
                    "key": f"r{ri}",
                    "name": f"Room {ri}",
                    "kind": rng.choice(["chat", "announcements", "meetings"]),
                    **({"topic": f"Room topic {ri}"} if rng.random() < 0.3 else {}),
                }
                for ri in range(rng.randint(1, 4))
            ]
        groups.append(group)
    return community(
        groups,
        moderators=tuple(rng.sample(candidates, rng.randint(0, 3))),
        bots=bots,
        key=rng.choice(["circle", "c2"]),
    )


# --- a fake homeserver -----------------------------------------------------------------------


class Rejected(Exception):
    """What Synapse would answer with an error."""


def _placeholders(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("$ref:"):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _placeholders(k)
            yield from _placeholders(v)
    elif isinstance(value, list):
        for v in value:
            yield from _placeholders(v)


def synapse_default_power(version: str, creator: str) -> JsonDict:
    """Synapse's power levels for a new room, before the override is applied."""
    return {
        "users": {} if version in CREATORS_IMPLICIT else {creator: 100},
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 150 if version in CREATORS_IMPLICIT else 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 50,
        "historical": 100,
        "notifications": {"room": 50},
    }


class FakeRoom:
    def __init__(self, room_id: str, version: str, creators: frozenset[str]) -> None:
        self.room_id = room_id
        self.version = version
        self.creators = creators
        self.state: dict[StateKey, JsonDict] = {}


class FakeSynapse:
    """Rooms as Synapse would hold them after the planner's requests.

    *room_version* forces the version of new rooms (to simulate rooms made
    before version 12); otherwise the body's ``room_version`` is used.
    """

    def __init__(self, admin: str = ADMIN, room_version: str | None = None) -> None:
        self.admin = admin
        self.room_version = room_version
        self.rooms: dict[str, FakeRoom] = {}
        self.left: set[str] = set()
        self.requests = 0

    # The three requests the applier makes.

    def create_room(self, body: JsonDict) -> str:
        self._check_resolved(body)
        version = self.room_version or str(body.get("room_version", "10"))
        room_id = f"!room{len(self.rooms) + 1:03d}"
        if version not in CREATORS_IMPLICIT:
            room_id += f":{SERVER}"
        room = FakeRoom(room_id, version, frozenset({self.admin}))
        state = room.state
        state[("m.room.create", "")] = {"room_version": version, **body.get("creation_content", {})}
        state[("m.room.member", self.admin)] = {"membership": "join"}
        power = synapse_default_power(version, self.admin)
        # Synapse applies the override with a shallow dict.update.
        power.update(copy.deepcopy(body.get("power_level_content_override") or {}))
        self._check_power(room, power)
        state[("m.room.power_levels", "")] = power
        assert body.get("preset") == "private_chat"
        state[("m.room.join_rules", "")] = {"join_rule": "invite"}
        state[("m.room.history_visibility", "")] = {"history_visibility": "shared"}
        state[("m.room.guest_access", "")] = {"guest_access": "can_join"}
        for event in body.get("initial_state", []):
            state[(event["type"], event.get("state_key", ""))] = copy.deepcopy(event["content"])
        if "name" in body:
            state[("m.room.name", "")] = {"name": body["name"]}
        if "topic" in body:
            state[("m.room.topic", "")] = {"topic": body["topic"]}
        self.rooms[room_id] = room
        for user in body.get("invite", []):
            self._invite(room, user)
        self.requests += 1
        return room_id

    def put_state(self, room_id: str, event_type: str, state_key: str, content: JsonDict) -> None:
        self._check_resolved([room_id, event_type, state_key, content])
        room = self.rooms[room_id]
        if event_type == "m.room.power_levels":
            self._check_power(room, content)
        if event_type in ("m.space.child", "m.space.parent"):
            assert state_key in self.rooms, f"{event_type} to unknown room {state_key}"
        room.state[(event_type, state_key)] = copy.deepcopy(content)
        self.requests += 1

    def invite(self, room_id: str, user_id: str) -> None:
        self._check_resolved([room_id, user_id])
        self._invite(self.rooms[room_id], user_id)
        self.requests += 1

    # What /sync answers with the provisioning filter.

    def sync(self) -> JsonDict:
        join: JsonDict = {}
        for room_id, room in self.rooms.items():
            if room_id in self.left:
                continue
            events = [
                {
                    "type": etype,
                    "state_key": key,
                    "content": copy.deepcopy(content),
                    "sender": self.admin,
                    "event_id": f"$e{i}",
                }
                for i, ((etype, key), content) in enumerate(room.state.items())
                if etype in STATE_TYPES
            ]
            join[room_id] = {"state": {"events": events}, "timeline": {"events": []}}
        return {"next_batch": "s1", "rooms": {"join": join}}

    def read(self, community_key: str) -> ServerState:
        return parse_sync(self.sync(), community_key)

    # Hand changes, as a user with a Matrix client would make them.

    def set(self, room_id: str, event_type: str, state_key: str, content: JsonDict) -> None:
        self.rooms[room_id].state[(event_type, state_key)] = content

    def delete(self, room_id: str, event_type: str, state_key: str = "") -> None:
        del self.rooms[room_id].state[(event_type, state_key)]

    def get(self, room_id: str, event_type: str, state_key: str = "") -> JsonDict:
        return self.rooms[room_id].state[(event_type, state_key)]

    def membership(self, room_id: str, user_id: str) -> str | None:
        content = self.rooms[room_id].state.get(("m.room.member", user_id))
        return content["membership"] if content else None

    def join(self, room_id: str, user_id: str) -> None:
        self.set(room_id, "m.room.member", user_id, {"membership": "join"})

    # Checks Synapse makes that the planner must never trip.

    def _invite(self, room: FakeRoom, user_id: str) -> None:
        if user_id == self.admin or room.state.get(("m.room.member", user_id), {}).get(
            "membership"
        ) in ("join", "ban"):
            raise Rejected(f"cannot invite {user_id} to {room.room_id}")
        room.state[("m.room.member", user_id)] = {"membership": "invite"}

    def _check_power(self, room: FakeRoom, content: JsonDict) -> None:
        if room.version in CREATORS_IMPLICIT and room.creators & set(content.get("users") or {}):
            raise Rejected("room version 12: creators must not be listed in power levels")

    @staticmethod
    def _check_resolved(value: Any) -> None:
        left = list(_placeholders(value))
        if left:
            raise AssertionError(f"unresolved placeholders sent to the server: {left}")


def apply(actions: tuple[Action, ...] | list[Action], hs: FakeSynapse, ids: dict[str, str]) -> None:
    """What provisioning/applier.py does, against the fake."""
    for action in actions:
        if isinstance(action, CreateRoom):
            ids[action.label] = hs.create_room(resolve(action.body, ids))
        elif isinstance(action, PutState):
            hs.put_state(
                ids[action.label],
                action.event_type,
                resolve(action.state_key, ids),
                resolve(action.content, ids),
            )
        else:
            hs.invite(ids[action.label], action.user_id)


def ids_of(state: ServerState) -> dict[str, str]:
    return {label: snap.room_id for label, snap in state.rooms.items()}


def plan_for(cfg: CommunityFile, hs: FakeSynapse, server: str = SERVER) -> Plan:
    return plan(cfg, hs.read(cfg.community.key), server)


def run_once(cfg: CommunityFile, hs: FakeSynapse, server: str = SERVER) -> Plan:
    """Read, plan and apply once, like `hearth provision`."""
    current = hs.read(cfg.community.key)
    the_plan = plan(cfg, current, server)
    apply(the_plan.actions, hs, ids_of(current))
    return the_plan


def provisioned(cfg: CommunityFile, server: str = SERVER, **kwargs: Any) -> FakeSynapse:
    hs = FakeSynapse(admin=cfg.community.admin.user_id, **kwargs)
    run_once(cfg, hs, server)
    return hs


def room_ids(cfg: CommunityFile, hs: FakeSynapse) -> dict[str, str]:
    return ids_of(hs.read(cfg.community.key))


def initial(body: JsonDict) -> dict[StateKey, JsonDict]:
    events = body["initial_state"]
    pairs = [(e["type"], e["state_key"]) for e in events]
    assert len(pairs) == len(set(pairs)), "initial_state sets a state event twice"
    return {(e["type"], e["state_key"]): e["content"] for e in events}


def creates(the_plan: Plan) -> dict[str, CreateRoom]:
    return {a.label: a for a in the_plan.actions if isinstance(a, CreateRoom)}


def puts(the_plan: Plan) -> list[PutState]:
    return [a for a in the_plan.actions if isinstance(a, PutState)]


def invites(the_plan: Plan) -> set[tuple[str, str]]:
    return {(a.label, a.user_id) for a in the_plan.actions if isinstance(a, Invite)}


@pytest.fixture
def cfg() -> CommunityFile:
    return community()


@pytest.fixture
def first(cfg: CommunityFile) -> Plan:
    return plan(cfg, ServerState(), SERVER)


# --- from nothing ----------------------------------------------------------------------------


def test_from_nothing_creates_every_room_space_first_then_links_only(
    cfg: CommunityFile, first: Plan
) -> None:
    kinds = [type(a) for a in first.actions]
    assert first.actions[0] == creates(first)[SPACE]
    assert list(creates(first)) == ALL_LABELS
    # Creates first, then the Space listings; nothing to repair or invite yet.
    n = len(ALL_LABELS)
    assert kinds == [CreateRoom] * n + [PutState] * len(GROUP_LABELS)
    assert first.notes == ()
    assert creates(first)[SPACE].body["creation_content"] == {"type": "m.space"}
    for label in ALL_LABELS[1:]:
        assert "creation_content" not in creates(first)[label].body


def test_every_create_body_is_encrypted_private_and_marked(first: Plan) -> None:
    for label, action in creates(first).items():
        body = action.body
        state = initial(body)
        assert state[("m.room.encryption", "")] == {"algorithm": "m.megolm.v1.aes-sha2"}, label
        assert body["room_version"] == ROOM_VERSION == "12"
        assert body["preset"] == "private_chat"
        assert body["visibility"] == "private"
        assert state[("m.room.guest_access", "")] == {"guest_access": "forbidden"}
        assert state[(MARKER, "")]["community"] == "circle"
        # The name comes from the body's "name", once.
        assert ("m.room.name", "") not in state
        assert body["name"]
        assert "org.hearth.room" in body["power_level_content_override"]["events"]


def test_markers_name_each_room(first: Plan) -> None:
    markers = {label: initial(a.body)[(MARKER, "")] for label, a in creates(first).items()}
    assert markers[SPACE] == {"community": "circle", "kind": "space"}
    assert markers[MODERATORS] == {"community": "circle", "kind": "moderators"}
    assert markers[MODERATION_LOG] == {"community": "circle", "kind": "moderation-log"}
    assert markers[ND_ANNOUNCEMENTS] == {
        "community": "circle",
        "kind": "group",
        "group": "newly-diagnosed",
        "room": "announcements",
        "room_kind": "announcements",
    }
    assert markers[CARERS]["room_kind"] == "chat"


def test_creator_is_not_listed_and_moderators_and_bots_get_their_levels() -> None:
    # The admin is also named as a moderator and a bot: it must still be left out.
    cfg = community(moderators=(MOD, ADMIN), bots=((BOT, 100), (LOW_BOT, 30), (ADMIN, 100)))
    for label, action in creates(plan(cfg, ServerState(), SERVER)).items():
        users = action.body["power_level_content_override"]["users"]
        assert ADMIN not in users, label
        assert users[MOD] == MODERATOR_LEVEL == 50
        assert users[BOT] == 100
        assert users[LOW_BOT] == 30
        # Group moderators have power in their group's rooms, not the Space;
        # in the moderators' room, a reviewer's level, to decide on
        # applications to their group.
        assert (GROUP_MOD in users) == (label in (*GROUP_LABELS[:3], MODERATORS)), label
        if GROUP_MOD in users:
            assert users[GROUP_MOD] == (REVIEWER_LEVEL if label == MODERATORS else 50)


def test_power_levels_restrict_privacy_settings_to_the_top_level(first: Plan) -> None:
    for label, action in creates(first).items():
        power = action.body["power_level_content_override"]
        assert power["users_default"] == 0
        for event in (
            "m.room.join_rules",
            "m.room.history_visibility",
            "m.room.guest_access",
            "m.room.encryption",
            "m.room.power_levels",
            MARKER,
        ):
            assert power["events"][event] == 100, (label, event)
        assert power["invite"] == power["kick"] == power["ban"] == 50
        assert power["events"]["m.reaction"] == power["events"]["m.room.redaction"] == 0


def test_only_moderators_post_in_announcements_and_in_the_space(first: Plan) -> None:
    defaults = {
        label: a.body["power_level_content_override"]["events_default"]
        for label, a in creates(first).items()
    }
    assert defaults == {
        SPACE: 50,
        MODERATORS: 0,
        MODERATION_LOG: 0,
        ND_GENERAL: 0,
        ND_ANNOUNCEMENTS: 50,
        ND_MEETINGS: 0,
        CARERS: 0,
        RESEARCH: 0,
    }


def test_join_rules_follow_each_group(first: Plan) -> None:
    rules = {
        label: initial(a.body)[("m.room.join_rules", "")] for label, a in creates(first).items()
    }
    restricted = {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": placeholder(SPACE)}],
    }
    assert rules == {
        SPACE: {"join_rule": "invite"},
        MODERATORS: {"join_rule": "invite"},
        MODERATION_LOG: {"join_rule": "invite"},
        ND_GENERAL: restricted,
        ND_ANNOUNCEMENTS: restricted,
        ND_MEETINGS: restricted,
        CARERS: {"join_rule": "knock"},
        RESEARCH: {"join_rule": "invite"},
    }


def test_history_is_from_joining_unless_the_group_says_otherwise(first: Plan) -> None:
    history = {
        label: initial(a.body)[("m.room.history_visibility", "")]["history_visibility"]
        for label, a in creates(first).items()
    }
    assert history == {
        SPACE: "joined",
        MODERATORS: "shared",
        MODERATION_LOG: "shared",
        ND_GENERAL: "joined",
        ND_ANNOUNCEMENTS: "joined",
        ND_MEETINGS: "joined",
        CARERS: "shared",
        RESEARCH: "joined",
    }


def test_group_rooms_point_to_the_space_and_staff_rooms_do_not(first: Plan) -> None:
    for label, action in creates(first).items():
        parents = {k: c for (t, k), c in initial(action.body).items() if t == "m.space.parent"}
        if label in GROUP_LABELS:
            assert parents == {placeholder(SPACE): {"via": [SERVER], "canonical": True}}, label
        else:
            assert parents == {}, label


def test_staff_rooms_are_invite_only_shared_and_not_listed(first: Plan) -> None:
    staff = [creates(first)[MODERATORS], creates(first)[MODERATION_LOG]]
    for action in staff:
        state = initial(action.body)
        assert state[("m.room.join_rules", "")] == {"join_rule": "invite"}
        assert state[("m.room.history_visibility", "")] == {"history_visibility": "shared"}
    # Group moderators review their applications in the moderators' room;
    # the moderation log is the community moderators' alone.
    assert creates(first)[MODERATORS].body["invite"] == [MOD, BOT, GROUP_MOD]
    assert creates(first)[MODERATION_LOG].body["invite"] == [MOD, BOT]
    listed = {a.state_key for a in puts(first)}
    assert placeholder(MODERATORS) not in listed
    assert placeholder(MODERATION_LOG) not in listed


def test_every_group_room_is_listed_in_the_space_in_config_order(first: Plan) -> None:
    links = puts(first)
    assert all(a.label == SPACE and a.event_type == "m.space.child" for a in links)
    assert [a.state_key for a in links] == [placeholder(label) for label in GROUP_LABELS]
    assert [a.content for a in links] == [
        {"via": [SERVER], "order": order, "suggested": False}
        for order in ("000.00", "000.01", "000.02", "001.00", "002.00")
    ]
    assert [a.change for a in links] == [f"list {label} in the Space" for label in GROUP_LABELS]


def test_rooms_are_named_after_their_group(first: Plan) -> None:
    names = {label: a.body["name"] for label, a in creates(first).items()}
    assert names[SPACE] == "Test Circle"
    assert names[MODERATORS] == "Test Circle: moderators"
    assert names[MODERATION_LOG] == "Test Circle: moderation log"
    # A group with several rooms names each; a group with one room is just the group.
    assert names[ND_ANNOUNCEMENTS] == "Newly diagnosed: Announcements"
    assert names[CARERS] == "Carers"
    topics = {
        label: initial(a.body)[("m.room.topic", "")]["topic"] for label, a in creates(first).items()
    }
    assert topics[ND_GENERAL] == "For the first months"  # the group's
    assert topics[ND_MEETINGS] == "Dates"  # the room's own
    assert topics[CARERS] == ""


def test_create_invites_staff_and_group_moderators_but_never_the_admin() -> None:
    cfg = community(moderators=(MOD, ADMIN), bots=((BOT, 100), (ADMIN, 100)))
    invited = {
        label: a.body["invite"] for label, a in creates(plan(cfg, ServerState(), SERVER)).items()
    }
    assert invited[SPACE] == [MOD, BOT, GROUP_MOD]
    assert invited[MODERATORS] == [MOD, BOT, GROUP_MOD]
    assert invited[ND_GENERAL] == [MOD, BOT, GROUP_MOD]
    assert invited[CARERS] == [MOD, BOT]


def test_create_summaries_describe_privacy(first: Plan) -> None:
    summaries = {label: a.summary for label, a in creates(first).items()}
    assert summaries[SPACE].startswith("create ")
    assert "Space" in summaries[SPACE]
    assert summaries[SPACE].endswith('"Test Circle" (encrypted; invite only; history from joining)')
    assert summaries[ND_GENERAL] == (
        f'create room {ND_GENERAL} "Newly diagnosed: General" '
        "(encrypted; open to Space members; history from joining)"
    )
    assert summaries[CARERS].endswith("(encrypted; ask to join; history from before joining)")
    assert summaries[RESEARCH].endswith("(encrypted; invite only; history from joining)")


def test_create_body_matches_managed_state(cfg: CommunityFile) -> None:
    for room in desired_rooms(cfg):
        body = create_body(room, ADMIN, SERVER)
        managed = room.managed_state(SERVER)
        assert initial(body) == {k: v for k, v in managed.items() if k[0] != "m.room.name"}
        assert body["name"] == managed[("m.room.name", "")]["name"]


def test_a_community_without_groups_has_the_space_and_staff_rooms() -> None:
    the_plan = plan(community([]), ServerState(), SERVER)
    assert list(creates(the_plan)) == [SPACE, MODERATORS, MODERATION_LOG]
    assert len(the_plan.actions) == 3


def test_applying_the_first_plan_gives_what_the_integration_test_sees(cfg: CommunityFile) -> None:
    hs = provisioned(cfg)
    ids = room_ids(cfg, hs)
    assert set(ids) == set(ALL_LABELS)
    space = ids[SPACE]
    assert hs.get(space, "m.room.create")["type"] == "m.space"
    assert hs.get(ids[ND_GENERAL], "m.room.join_rules")["allow"][0]["room_id"] == space
    assert hs.get(ids[ND_GENERAL], "m.space.parent", space)["canonical"] is True
    for label in GROUP_LABELS:
        assert hs.get(space, "m.space.child", ids[label])["via"] == [SERVER]
    assert ("m.space.child", ids[MODERATORS]) not in hs.rooms[space].state
    for room_id in ids.values():
        assert hs.membership(room_id, MOD) == "invite"
        assert hs.get(room_id, "m.room.power_levels")["users"][BOT] == 100


# --- idempotence -----------------------------------------------------------------------------


def assert_converges(cfg: CommunityFile, hs: FakeSynapse, server: str = SERVER) -> None:
    """One apply suffices: the next plan is empty and the server holds no duplicates."""
    run_once(cfg, hs, server)
    again = plan_for(cfg, hs, server)
    assert again.actions == (), render(again, cfg.community.name)
    state = hs.read(cfg.community.key)
    assert state.duplicates == {}
    assert set(state.rooms) == {r.label for r in desired_rooms(cfg)}


def test_example_config_is_idempotent() -> None:
    cfg = load_community(EXAMPLE)
    server = cfg.community.admin.user_id.split(":", 1)[1]
    hs = FakeSynapse(admin=cfg.community.admin.user_id)
    assert_converges(cfg, hs, server)
    assert "no changes" in render(plan_for(cfg, hs, server), cfg.community.name)


def test_test_config_is_idempotent(cfg: CommunityFile) -> None:
    assert_converges(cfg, FakeSynapse())


@pytest.mark.parametrize("seed", range(40))
def test_random_configs_are_idempotent(seed: int) -> None:
    cfg = random_config(seed)
    hs = FakeSynapse()
    assert_converges(cfg, hs)
    # Still nothing to do after the staff accept their invitations.
    for room_id in room_ids(cfg, hs).values():
        for (etype, user), content in list(hs.rooms[room_id].state.items()):
            if etype == "m.room.member" and content["membership"] == "invite":
                hs.join(room_id, user)
    assert plan_for(cfg, hs).empty


@pytest.mark.parametrize("seed", range(20))
def test_random_config_changes_converge(seed: int) -> None:
    """Provision one random config, then switch to another with the same key."""
    before, after = random_config(seed), random_config(seed + 1000)
    after = with_groups(before, after.model_dump(mode="json")["groups"])
    hs = provisioned(before)
    run_once(after, hs)
    again = plan_for(after, hs)
    assert again.actions == (), render(again, "after")


# --- drift -----------------------------------------------------------------------------------

Change = Callable[[FakeSynapse, dict[str, str]], None]


def _set(label: str, etype: str, content: JsonDict, key: str = "") -> Change:
    def change(hs: FakeSynapse, ids: dict[str, str]) -> None:
        hs.set(ids[label], etype, ids.get(key, key), content)

    return change


def _power(label: str, edit: Callable[[JsonDict], None]) -> Change:
    def change(hs: FakeSynapse, ids: dict[str, str]) -> None:
        power = copy.deepcopy(hs.get(ids[label], "m.room.power_levels"))
        edit(power)
        hs.set(ids[label], "m.room.power_levels", "", power)

    return change


def _delete(label: str, etype: str) -> Change:
    def change(hs: FakeSynapse, ids: dict[str, str]) -> None:
        hs.delete(ids[label], etype)

    return change


def _child(label: str, content: JsonDict) -> Change:
    def change(hs: FakeSynapse, ids: dict[str, str]) -> None:
        hs.set(ids[SPACE], "m.space.child", ids[label], content)

    return change


def _remove_parent(label: str) -> Change:
    def change(hs: FakeSynapse, ids: dict[str, str]) -> None:
        hs.set(ids[label], "m.space.parent", ids[SPACE], {})

    return change


def _raise(user: str, level: int) -> Callable[[JsonDict], None]:
    def edit(power: JsonDict) -> None:
        power["users"][user] = level

    return edit


def _key(key: str, value: Any) -> Callable[[JsonDict], None]:
    def edit(power: JsonDict) -> None:
        power[key] = value

    return edit


def _event_level(event: str, value: int) -> Callable[[JsonDict], None]:
    def edit(power: JsonDict) -> None:
        power["events"][event] = value

    return edit


# (hand change, label, event type, state key as planned, change text)
DRIFTS: dict[str, tuple[Change, str, str, str, str]] = {
    "join rule made public": (
        _set(RESEARCH, "m.room.join_rules", {"join_rule": "public"}),
        RESEARCH,
        "m.room.join_rules",
        "",
        "join rule public → invite",
    ),
    "space-only group made invite only": (
        _set(ND_GENERAL, "m.room.join_rules", {"join_rule": "invite"}),
        ND_GENERAL,
        "m.room.join_rules",
        "",
        "join rule invite → restricted",
    ),
    "knock group made public": (
        _set(CARERS, "m.room.join_rules", {"join_rule": "public"}),
        CARERS,
        "m.room.join_rules",
        "",
        "join rule public → knock",
    ),
    "space made public": (
        _set(SPACE, "m.room.join_rules", {"join_rule": "public"}),
        SPACE,
        "m.room.join_rules",
        "",
        "join rule public → invite",
    ),
    "history opened": (
        _set(RESEARCH, "m.room.history_visibility", {"history_visibility": "world_readable"}),
        RESEARCH,
        "m.room.history_visibility",
        "",
        "history world_readable → joined",
    ),
    "history closed where it should be shared": (
        _set(CARERS, "m.room.history_visibility", {"history_visibility": "joined"}),
        CARERS,
        "m.room.history_visibility",
        "",
        "history joined → shared",
    ),
    "staff history closed": (
        _set(MODERATORS, "m.room.history_visibility", {"history_visibility": "invited"}),
        MODERATORS,
        "m.room.history_visibility",
        "",
        "history invited → shared",
    ),
    "guests allowed": (
        _set(MODERATION_LOG, "m.room.guest_access", {"guest_access": "can_join"}),
        MODERATION_LOG,
        "m.room.guest_access",
        "",
        "guest access can_join → forbidden",
    ),
    "renamed by hand": (
        _set(CARERS, "m.room.name", {"name": "Something else"}),
        CARERS,
        "m.room.name",
        "",
        "name changed",
    ),
    "topic changed by hand": (
        _set(ND_MEETINGS, "m.room.topic", {"topic": "Our diagnoses"}),
        ND_MEETINGS,
        "m.room.topic",
        "",
        "topic changed",
    ),
    "encryption missing": (
        _delete(RESEARCH, "m.room.encryption"),
        RESEARCH,
        "m.room.encryption",
        "",
        "encryption missing",
    ),
    "space parent removed": (
        _remove_parent(CARERS),
        CARERS,
        "m.space.parent",
        placeholder(SPACE),
        # The wording is loose ("changed" for a removed link); only the subject is pinned.
        "link to the Space…",
    ),
    "space child removed": (
        _child(RESEARCH, {}),
        SPACE,
        "m.space.child",
        placeholder(RESEARCH),
        f"list {RESEARCH} in the Space",
    ),
    "space child reordered": (
        _child(CARERS, {"via": [SERVER], "order": "zzz", "suggested": False}),
        SPACE,
        "m.space.child",
        placeholder(CARERS),
        f"listing of {CARERS} in the Space changed",
    ),
    "space child suggested": (
        _child(ND_GENERAL, {"via": [SERVER], "order": "000.00", "suggested": True}),
        SPACE,
        "m.space.child",
        placeholder(ND_GENERAL),
        f"listing of {ND_GENERAL} in the Space changed",
    ),
    "moderator raised to 100": (
        _power(CARERS, _raise(MOD, 100)),
        CARERS,
        "m.room.power_levels",
        "",
        f"power level of {MOD}: 100 → 50",
    ),
    "stranger added at 100": (
        _power(RESEARCH, _raise(STRANGER, 100)),
        RESEARCH,
        "m.room.power_levels",
        "",
        f"power level of {STRANGER}: 100 → 0",
    ),
    "bot lowered": (
        _power(SPACE, _raise(BOT, 50)),
        SPACE,
        "m.room.power_levels",
        "",
        f"power level of {BOT}: 50 → 100",
    ),
    "group moderator removed": (
        _power(ND_MEETINGS, lambda p: p["users"].pop(GROUP_MOD)),
        ND_MEETINGS,
        "m.room.power_levels",
        "",
        f"power level of {GROUP_MOD}: 0 → 50",
    ),
    "everyone may post in announcements": (
        _power(ND_ANNOUNCEMENTS, _key("events_default", 0)),
        ND_ANNOUNCEMENTS,
        "m.room.power_levels",
        "",
        "events default: 0 → 50",
    ),
    "everyone a moderator": (
        _power(CARERS, _key("users_default", 50)),
        CARERS,
        "m.room.power_levels",
        "",
        "users default: 50 → 0",
    ),
    "anyone may invite": (
        _power(MODERATORS, _key("invite", 0)),
        MODERATORS,
        "m.room.power_levels",
        "",
        "invite: 0 → 50",
    ),
    "moderators may turn encryption settings": (
        _power(RESEARCH, _event_level("m.room.encryption", 50)),
        RESEARCH,
        "m.room.power_levels",
        "",
        "power needed for m.room.encryption: 50 → 100",
    ),
    "join rule level lost": (
        _power(RESEARCH, lambda p: p["events"].pop("m.room.join_rules")),
        RESEARCH,
        "m.room.power_levels",
        "",
        "power needed for m.room.join_rules: default → 100",
    ),
}


@pytest.fixture
def converged(cfg: CommunityFile) -> tuple[FakeSynapse, dict[str, str]]:
    hs = provisioned(cfg)
    assert plan_for(cfg, hs).empty
    return hs, room_ids(cfg, hs)


@pytest.mark.parametrize("name", list(DRIFTS))
def test_drift_is_repaired_by_exactly_one_action(
    name: str, cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    change, label, etype, state_key, text = DRIFTS[name]
    hs, ids = converged
    markers = {room_id: copy.deepcopy(hs.get(room_id, MARKER)) for room_id in ids.values()}
    change(hs, ids)

    drift = plan_for(cfg, hs)
    assert len(drift.actions) == 1, render(drift, "x")
    (action,) = drift.actions
    assert isinstance(action, PutState)
    assert (action.label, action.event_type, action.state_key) == (label, etype, state_key)
    if text.endswith("…"):
        assert action.change.startswith(text[:-1])
        text = action.change
    else:
        assert action.change == text
    rendered = render(drift, "x").splitlines()
    assert len(rendered) == 2
    assert rendered[1].endswith(text)
    if etype != "m.space.child":
        assert rendered[1] == f"  ~ {label}: {text}"

    apply(drift.actions, hs, ids)
    assert plan_for(cfg, hs).empty
    # The marker is never touched: it is how the rooms are found.
    assert {room_id: hs.get(room_id, MARKER) for room_id in ids.values()} == markers


@pytest.mark.parametrize("name", [n for n in DRIFTS if DRIFTS[n][2] != "m.room.power_levels"])
def test_repaired_state_is_the_desired_state(
    name: str, cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    change, label, *_ = DRIFTS[name]
    hs, ids = converged
    before = copy.deepcopy(hs.rooms[ids[label]].state)
    change(hs, ids)
    apply(plan_for(cfg, hs).actions, hs, ids)
    assert hs.rooms[ids[label]].state == before


def test_several_hand_changes_are_all_listed_then_repaired(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    """The scenario of the integration test's drift case."""
    hs, ids = converged
    for name in ("join rule made public", "moderator raised to 100", "space child removed"):
        DRIFTS[name][0](hs, ids)
    drift = plan_for(cfg, hs)
    text = render(drift, cfg.community.name)
    assert f"{RESEARCH}: join rule public → invite" in text
    assert f"{CARERS}: power level of {MOD}: 100 → 50" in text
    assert f"list {RESEARCH} in the Space" in text
    assert len(drift.actions) == 3
    apply(drift.actions, hs, ids)
    assert plan_for(cfg, hs).empty


def test_a_restricted_rule_pointing_elsewhere_is_drift(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    other = {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": "!x"}]}
    hs.set(ids[ND_GENERAL], "m.room.join_rules", "", other)
    (action,) = plan_for(cfg, hs).actions
    assert isinstance(action, PutState)
    assert action.content["allow"] == [{"type": "m.room_membership", "room_id": placeholder(SPACE)}]
    apply([action], hs, ids)
    assert hs.get(ids[ND_GENERAL], "m.room.join_rules")["allow"][0]["room_id"] == ids[SPACE]


def test_extra_keys_in_managed_state_are_not_drift(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    enc = {"algorithm": "m.megolm.v1.aes-sha2", "rotation_period_ms": 604800000}
    hs.set(ids[RESEARCH], "m.room.encryption", "", enc)
    hs.set(ids[RESEARCH], "m.room.topic", "", {"topic": "", "m.topic": []})
    assert plan_for(cfg, hs).empty


def test_a_room_kind_change_updates_marker_and_posting_level(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    groups = copy.deepcopy(GROUPS)
    groups[0]["rooms"][0]["kind"] = "announcements"
    changed = with_groups(cfg, groups)
    actions = plan_for(changed, hs).actions
    assert {(a.label, a.event_type) for a in actions if isinstance(a, PutState)} == {
        (ND_GENERAL, MARKER),
        (ND_GENERAL, "m.room.power_levels"),
    }
    assert len(actions) == 2
    apply(actions, hs, ids)
    assert hs.get(ids[ND_GENERAL], MARKER)["room_kind"] == "announcements"
    assert hs.get(ids[ND_GENERAL], "m.room.power_levels")["events_default"] == 50
    assert plan_for(changed, hs).empty


def test_a_lost_space_is_recreated_and_every_link_repaired(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    hs.left.add(ids[SPACE])  # e.g. the admin left it by mistake
    the_plan = plan_for(cfg, hs)
    assert the_plan.actions[0] == creates(the_plan)[SPACE]
    assert list(creates(the_plan)) == [SPACE]
    changed = {(a.label, a.event_type) for a in puts(the_plan)}
    for label in GROUP_LABELS:
        assert (label, "m.space.parent") in changed
        assert (SPACE, "m.space.child") in changed
    for label in (ND_GENERAL, ND_ANNOUNCEMENTS, ND_MEETINGS):
        assert (label, "m.room.join_rules") in changed
    new_ids = room_ids(cfg, hs)
    apply(the_plan.actions, hs, new_ids)
    assert new_ids[SPACE] != ids[SPACE]
    assert plan_for(cfg, hs).empty
    assert hs.get(ids[ND_GENERAL], "m.room.join_rules")["allow"][0]["room_id"] == new_ids[SPACE]


def test_a_staff_room_listed_in_the_space_by_hand_is_unlisted(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    hs.set(ids[SPACE], "m.space.child", ids[MODERATORS], {"via": [SERVER]})
    the_plan = plan_for(cfg, hs)
    assert not the_plan.empty
    apply(the_plan.actions, hs, ids)
    assert not hs.rooms[ids[SPACE]].state.get(("m.space.child", ids[MODERATORS]))


def test_group_reordering_only_relists(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    reordered = with_groups(cfg, [GROUPS[2], GROUPS[0], GROUPS[1]])
    actions = plan_for(reordered, hs).actions
    assert all(
        isinstance(a, PutState) and a.event_type == "m.space.child" and a.label == SPACE
        for a in actions
    )
    assert {a.state_key for a in puts(Plan(actions))} == {placeholder(x) for x in GROUP_LABELS}
    apply(actions, hs, ids)
    assert hs.get(ids[SPACE], "m.space.child", ids[RESEARCH])["order"] == "000.00"
    assert plan_for(reordered, hs).empty


# --- power levels ----------------------------------------------------------------------------


def test_creators_are_not_wanted_in_room_version_12(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    state = hs.read("circle")
    for room_id in ids.values():
        assert ADMIN not in hs.get(room_id, "m.room.power_levels")["users"]
    assert all(snap.creators == {ADMIN} and snap.version == "12" for snap in state.rooms.values())
    # A repair in a version 12 room does not list the creator either.
    DRIFTS["moderator raised to 100"][0](hs, ids)
    (action,) = plan_for(cfg, hs).actions
    assert isinstance(action, PutState)
    assert ADMIN not in action.content["users"]


def test_older_rooms_must_list_the_admin_at_100(cfg: CommunityFile) -> None:
    # Synapse replaces the default users with the override's: in a version 10
    # room made from our body, the admin is left without power.
    hs = provisioned(cfg, room_version="10")
    ids = room_ids(cfg, hs)
    assert all(snap.version == "10" for snap in hs.read("circle").rooms.values())
    repair = plan_for(cfg, hs)
    assert {a.label for a in repair.actions} == set(ALL_LABELS)
    for action in repair.actions:
        assert isinstance(action, PutState)
        assert action.event_type == "m.room.power_levels"
        assert action.change == f"power level of {ADMIN}: 0 → 100"
        assert action.content["users"][ADMIN] == 100
    apply(repair.actions, hs, ids)
    assert plan_for(cfg, hs).empty
    # A later repair keeps the admin at 100.
    hs.set(ids[CARERS], "m.room.power_levels", "", {**hs.get(ids[CARERS], "m.room.power_levels")})
    hs.get(ids[CARERS], "m.room.power_levels")["users"] = {MOD: 100, BOT: 100}
    (action,) = plan_for(cfg, hs).actions
    assert isinstance(action, PutState)
    assert action.content["users"] == {ADMIN: 100, BOT: 100, MOD: 50}
    assert action.change == f"power level of {ADMIN}: 0 → 100; power level of {MOD}: 100 → 50"


def test_admin_lowered_in_an_older_room_is_raised_again(cfg: CommunityFile) -> None:
    hs = provisioned(cfg, room_version="10")
    run_once(cfg, hs)
    ids = room_ids(cfg, hs)
    hs.get(ids[RESEARCH], "m.room.power_levels")["users"][ADMIN] = 50
    (action,) = plan_for(cfg, hs).actions
    assert isinstance(action, PutState)
    assert action.change == f"power level of {ADMIN}: 50 → 100"


def test_unrelated_power_level_keys_are_kept(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    power = hs.get(ids[CARERS], "m.room.power_levels")
    assert power["historical"] == 100  # Synapse's, untouched by the override
    power["org.example.custom"] = {"a": 1}
    power["events"]["org.example.poll"] = 20
    power["notifications"]["org.example.ping"] = 75
    assert plan_for(cfg, hs).empty  # unknown keys are not drift
    power["users"][MOD] = 100
    (action,) = plan_for(cfg, hs).actions
    assert isinstance(action, PutState)
    assert action.content["historical"] == 100
    assert action.content["org.example.custom"] == {"a": 1}
    assert action.content["events"]["org.example.poll"] == 20
    assert action.content["notifications"] == {"room": 50, "org.example.ping": 75}
    assert action.content["users"][MOD] == 50
    apply([action], hs, ids)
    assert plan_for(cfg, hs).empty


def test_users_at_the_default_level_are_not_drift(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    hs.get(ids[RESEARCH], "m.room.power_levels")["users"][STRANGER] = 0
    assert plan_for(cfg, hs).empty


def test_a_room_without_power_levels_gets_the_full_set(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    hs.delete(ids[RESEARCH], "m.room.power_levels")
    (action,) = plan_for(cfg, hs).actions
    assert isinstance(action, PutState)
    assert action.content["users"] == {BOT: 100, MOD: 50}
    apply([action], hs, ids)
    assert plan_for(cfg, hs).empty


def test_a_bot_that_is_also_a_group_moderator_keeps_its_level() -> None:
    groups = [{"key": "carers", "name": "Carers", "moderators": [BOT]}]
    cfg = community(groups, bots=((BOT, 100),))
    for label, action in creates(plan(cfg, ServerState(), SERVER)).items():
        assert action.body["power_level_content_override"]["users"][BOT] == 100, label


# --- config changes --------------------------------------------------------------------------


def test_renaming_a_group_only_renames(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    groups = copy.deepcopy(GROUPS)
    groups[0]["name"] = "Recently diagnosed"
    groups[2]["name"] = "Research and trials"
    renamed = with_groups(cfg, groups)
    the_plan = plan_for(renamed, hs)
    assert not creates(the_plan)
    assert [(a.label, a.event_type, a.change) for a in puts(the_plan)] == [
        (label, "m.room.name", "name changed")
        for label in (ND_GENERAL, ND_ANNOUNCEMENTS, ND_MEETINGS, RESEARCH)
    ]
    assert len(the_plan.actions) == 4
    apply(the_plan.actions, hs, ids)
    assert hs.get(ids[ND_MEETINGS], "m.room.name") == {"name": "Recently diagnosed: Meetings"}
    assert hs.get(ids[RESEARCH], "m.room.name") == {"name": "Research and trials"}
    assert room_ids(renamed, hs) == ids
    assert plan_for(renamed, hs).empty


def test_renaming_the_community_renames_space_and_staff_rooms(
    converged: tuple[FakeSynapse, dict[str, str]],
) -> None:
    hs, _ = converged
    the_plan = plan_for(community(name="New Circle"), hs)
    assert [(a.label, a.change) for a in puts(the_plan)] == [
        (SPACE, "name changed"),
        (MODERATORS, "name changed"),
        (MODERATION_LOG, "name changed"),
    ]
    assert len(the_plan.actions) == 3


def test_a_removed_group_is_left_alone_with_a_note(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    without = with_groups(cfg, [GROUPS[0], GROUPS[2]])  # carers removed
    the_plan = plan_for(without, hs)
    assert all(a.label != CARERS and a.state_key != placeholder(CARERS) for a in puts(the_plan))
    # research moved up one place: only its listing changes.
    assert [(a.label, a.state_key, a.change) for a in puts(the_plan)] == [
        (SPACE, placeholder(RESEARCH), f"listing of {RESEARCH} in the Space changed")
    ]
    assert len(the_plan.actions) == 1
    (note,) = the_plan.notes
    assert note.startswith(f"{CARERS} exists on the server but not in the config")
    assert "left alone" in note
    apply(the_plan.actions, hs, ids)
    again = plan_for(without, hs)
    assert again.empty
    assert again.notes == the_plan.notes
    assert ("m.space.child", ids[CARERS]) in hs.rooms[ids[SPACE]].state


def test_a_new_room_in_a_group_is_created_and_listed(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    groups = copy.deepcopy(GROUPS)
    groups[1]["rooms"] = [{"key": "general", "name": "General"}, {"key": "chat", "name": "Chat"}]
    grown = with_groups(cfg, groups)
    the_plan = plan_for(grown, hs)
    new = group_label("carers", "chat")
    assert list(creates(the_plan)) == [new]
    # The group now has two rooms, so its first room's name gains a suffix.
    assert [(a.label, a.change) for a in puts(the_plan)] == [
        (CARERS, "name changed"),
        (SPACE, f"list {new} in the Space"),
    ]
    apply(the_plan.actions, hs, ids)
    assert plan_for(grown, hs).empty


def test_duplicate_labels_on_the_server_are_noted(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    # A second room claiming to be the carers' room (e.g. made by hand).
    body = creates(plan(cfg, ServerState(), SERVER))[CARERS].body
    copy_id = hs.create_room(resolve(body, ids))
    state = hs.read("circle")
    assert state.duplicates == {CARERS: [ids[CARERS], copy_id]}
    the_plan = plan(cfg, state, SERVER)
    assert the_plan.notes == (
        f"{CARERS} is claimed by 2 rooms ({ids[CARERS]}, {copy_id}); using the first.",
    )
    assert not creates(the_plan)
    assert f"  ! {the_plan.notes[0]}" in render(the_plan, "x")


def test_another_communitys_rooms_are_ignored(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, _ = converged
    other = community(key="other")
    run_once(other, hs)
    assert plan_for(cfg, hs).empty
    assert plan_for(cfg, hs).notes == ()
    assert plan_for(other, hs).empty


# --- invites ---------------------------------------------------------------------------------


def test_joined_and_invited_staff_are_not_invited_again(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    for room_id in ids.values():
        hs.join(room_id, MOD)
    assert plan_for(cfg, hs).empty  # MOD joined, BOT still invited


def test_staff_who_left_or_were_never_invited_are_invited(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    hs.set(ids[CARERS], "m.room.member", MOD, {"membership": "leave"})
    hs.delete(ids[RESEARCH], "m.room.member", BOT)
    hs.set(ids[ND_GENERAL], "m.room.member", GROUP_MOD, {"membership": "leave"})
    the_plan = plan_for(cfg, hs)
    assert the_plan.actions == (
        Invite(ND_GENERAL, GROUP_MOD),
        Invite(CARERS, MOD),
        Invite(RESEARCH, BOT),
    )
    assert "  + invite @mod:example.org to group/carers/general" in render(the_plan, "x")
    apply(the_plan.actions, hs, ids)
    assert plan_for(cfg, hs).empty


def test_a_new_moderator_is_invited_everywhere_and_given_power(
    converged: tuple[FakeSynapse, dict[str, str]],
) -> None:
    hs, ids = converged
    cfg = community(moderators=(MOD, MOD2))
    the_plan = plan_for(cfg, hs)
    assert invites(the_plan) == {(label, MOD2) for label in ALL_LABELS}
    assert {a.label for a in puts(the_plan)} == set(ALL_LABELS)
    assert all(a.change == f"power level of {MOD2}: 0 → 50" for a in puts(the_plan))
    # Changes are listed before invitations.
    kinds = [type(a) for a in the_plan.actions]
    assert kinds == sorted(kinds, key=lambda k: k is Invite)
    apply(the_plan.actions, hs, ids)
    assert plan_for(cfg, hs).empty


def test_a_new_group_moderator_is_invited_to_the_space_the_group_and_to_review(
    converged: tuple[FakeSynapse, dict[str, str]],
) -> None:
    hs, _ = converged
    groups = copy.deepcopy(GROUPS)
    groups[1]["moderators"] = [MOD2]
    the_plan = plan_for(community(groups), hs)
    assert invites(the_plan) == {(SPACE, MOD2), (CARERS, MOD2), (MODERATORS, MOD2)}


def test_the_admin_is_never_invited() -> None:
    groups = copy.deepcopy(GROUPS)
    groups[1]["moderators"] = [ADMIN]
    cfg = community(groups, moderators=(ADMIN, MOD), bots=((ADMIN, 100), (BOT, 100)))
    hs = FakeSynapse()
    first = plan_for(cfg, hs)
    for action in creates(first).values():
        assert ADMIN not in action.body["invite"]
    apply(first.actions, hs, {})
    # Even if the server shows the admin as not joined somewhere.
    ids = room_ids(cfg, hs)
    hs.delete(ids[CARERS], "m.room.member", ADMIN)
    again = plan_for(cfg, hs)
    assert all(user != ADMIN for _, user in invites(again))
    assert again.empty


def test_a_banned_staff_member_does_not_block_provisioning(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    hs.set(ids[CARERS], "m.room.member", MOD, {"membership": "ban"})
    the_plan = plan_for(cfg, hs)
    assert (CARERS, MOD) not in invites(the_plan)
    apply(the_plan.actions, hs, ids)  # the fake, like Synapse, refuses the invite


# --- crash and resume ------------------------------------------------------------------------


def resume_after(cfg: CommunityFile, k: int) -> None:
    hs = FakeSynapse(admin=cfg.community.admin.user_id)
    first = plan_for(cfg, hs)
    apply(first.actions[:k], hs, {})  # then the process dies
    made = {a.label for a in first.actions[:k] if isinstance(a, CreateRoom)}

    second = plan_for(cfg, hs)
    assert set(creates(second)).isdisjoint(made), f"k={k}: would create a room twice"
    assert set(creates(second)) | made == set(creates(first))
    if made:
        assert SPACE in made  # the Space always goes first
    apply(second.actions, hs, room_ids(cfg, hs))
    assert plan_for(cfg, hs).empty, f"k={k}"
    state = hs.read(cfg.community.key)
    assert state.duplicates == {}
    assert len(hs.rooms) == len(desired_rooms(cfg))


def test_resume_after_a_crash_at_any_point(cfg: CommunityFile) -> None:
    n = len(plan(cfg, ServerState(), SERVER).actions)
    for k in range(n + 1):
        resume_after(cfg, k)


def test_resume_after_a_crash_of_the_example_config() -> None:
    cfg = load_community(EXAMPLE)
    n = len(plan(cfg, ServerState(), SERVER).actions)
    for k in range(n + 1):
        resume_after(cfg, k)


@pytest.mark.parametrize("seed", range(15))
def test_resume_random_configs(seed: int) -> None:
    cfg = random_config(seed)
    n = len(plan(cfg, ServerState(), SERVER).actions)
    for k in sorted({0, 1, n // 2, n - 1, n, random.Random(seed).randint(0, n)}):
        resume_after(cfg, max(k, 0))


def test_resume_of_a_repair_plan(cfg: CommunityFile) -> None:
    hs = provisioned(cfg)
    changed = community(moderators=(MOD, MOD2), name="New Circle")
    repair = plan_for(changed, hs)
    for k in range(len(repair.actions) + 1):
        hs_k = provisioned(cfg)
        apply(repair.actions[:k], hs_k, room_ids(cfg, hs_k))
        rest = plan_for(changed, hs_k)
        assert len(rest.actions) == len(repair.actions) - k
        apply(rest.actions, hs_k, room_ids(cfg, hs_k))
        assert plan_for(changed, hs_k).empty


# --- render ----------------------------------------------------------------------------------


def test_render_an_empty_plan() -> None:
    assert render(Plan(()), "Circle") == 'Community "Circle": no changes.'


def test_render_an_empty_plan_still_shows_notes() -> None:
    text = render(Plan((), ("group/x/y is odd",)), "Circle")
    assert text.splitlines() == ['Community "Circle": no changes.', "  ! group/x/y is odd"]


def counts(text: str) -> dict[str, int]:
    """The numbers on the heading line: {"to create": 2, ...}."""
    head = text.splitlines()[0]
    found = re.findall(r"(\d+) (to \w+)", head)
    assert found, head
    return {what: int(n) for n, what in found}


def test_render_counts_and_one_line_per_action() -> None:
    the_plan = Plan(
        (
            CreateRoom("space", {}, 'create the Space "Circle"'),
            CreateRoom("moderators", {}, "create room moderators"),
            PutState("group/a/b", "m.room.name", "", {"name": "B"}, "name changed"),
            Invite("group/a/b", MOD),
        ),
        ("one note", "another"),
    )
    text = render(the_plan, "Circle")
    lines = text.splitlines()
    assert lines[0].startswith('Community "Circle": ')
    assert {k: v for k, v in counts(text).items() if v} == {
        "to create": 2,
        "to change": 1,
        "to invite": 1,
    }
    assert lines[1:] == [
        '  + create the Space "Circle"',
        "  + create room moderators",
        "  ~ group/a/b: name changed",
        f"  + invite {MOD} to group/a/b",
        "  ! one note",
        "  ! another",
    ]


def test_render_the_first_plan(first: Plan) -> None:
    text = render(first, "Test Circle")
    lines = text.splitlines()
    assert lines[0].startswith('Community "Test Circle": ')
    numbers = counts(text)
    assert numbers["to create"] == 8
    assert numbers["to invite"] == 0
    # The five Space listings are counted once, as changes or as links.
    assert sum(numbers.values()) == len(first.actions) == 13
    assert len(lines) == 1 + len(first.actions)
    for action, line in zip(first.actions, lines[1:], strict=True):
        if isinstance(action, CreateRoom):
            assert line == f"  + {action.summary}"
        else:
            assert isinstance(action, PutState)
            assert line.endswith(action.change)
    assert "no changes" not in text


# --- resolve ---------------------------------------------------------------------------------


def test_resolve_replaces_placeholders_everywhere() -> None:
    ids = {"space": "!s", "group/a/b": "!ab"}
    value = {
        "allow": [{"type": "m.room_membership", "room_id": "$ref:space"}],
        "$ref:group/a/b": {"nested": ["$ref:space", ["$ref:group/a/b"], 3, None]},
        "plain": "space",
        "n": 1,
    }
    assert resolve(value, ids) == {
        "allow": [{"type": "m.room_membership", "room_id": "!s"}],
        "!ab": {"nested": ["!s", ["!ab"], 3, None]},
        "plain": "space",
        "n": 1,
    }


def test_resolve_leaves_unknown_placeholders_and_copies() -> None:
    value = {"a": ["$ref:unknown"], "$ref:other": "x"}
    resolved = resolve(value, {})
    assert resolved == value
    assert resolved is not value
    assert resolve("$ref:space", {"space": "!s"}) == "!s"
    assert resolve("x$ref:space", {"space": "!s"}) == "x$ref:space"
    assert resolve(placeholder("moderators"), {"moderators": "!m"}) == "!m"


def test_a_history_group_joined_through_the_space_is_noted(cfg: CommunityFile) -> None:
    groups = copy.deepcopy(GROUPS)
    groups[1]["join"] = "space"  # carers keep their history_before_joining
    the_plan = plan(with_groups(cfg, groups), ServerState(), SERVER)
    (note,) = the_plan.notes
    assert note.startswith("group carers: members who join through the Space")
    assert "if the bot invites them" in note


def test_a_ban_list_room_only_when_asked_for_with_its_followers_invited() -> None:
    assert BAN_LIST not in creates(plan(community(), ServerState(), SERVER))
    data = community().model_dump(mode="json")
    data["ban_list"] = {"share_with": ["@bot:other.example"]}
    cfg = CommunityFile.model_validate(data)
    made = creates(plan(cfg, ServerState(), SERVER))[BAN_LIST]
    assert made.body["invite"] == [MOD, BOT, "@bot:other.example"]
    state = initial(made.body)
    assert state[(MARKER, "")] == {"community": "circle", "kind": "ban-list"}
    assert state[("m.room.join_rules", "")] == {"join_rule": "invite"}
    users = made.body["power_level_content_override"]["users"]
    assert "@bot:other.example" not in users  # follows the list, cannot write it


def test_protections_changed_in_chat_are_shown_as_drift_and_kept(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, ids = converged
    hs.set(ids[ND_GENERAL], OVERRIDES, "newly-diagnosed", {"flood.messages": 20})
    the_plan = plan_for(cfg, hs)
    assert the_plan.empty  # nothing to undo it with
    (note,) = [n for n in the_plan.notes if "protections" in n or "flood" in n]
    assert note.startswith(
        "group newly-diagnosed: flood.messages is 20 (the community file says 10), "
        "changed in chat and kept"
    )
    # Back to the file's (the bot writes an empty change set): no note.
    hs.set(ids[ND_GENERAL], OVERRIDES, "newly-diagnosed", {})
    assert not [n for n in plan_for(cfg, hs).notes if "flood" in n]


# --- declared meetings ---------------------------------------------------------------------------

CHECK_IN = {"key": "check-in", "title": "Check-in", "when": "every tuesday 19:00"}


def with_meetings(cfg: CommunityFile, *meetings: JsonDict, group: int = 0) -> CommunityFile:
    data = cfg.model_dump(mode="json", by_alias=True)
    data["groups"][group]["meetings"] = list(meetings)
    return CommunityFile.model_validate(data)


def test_declared_meetings_go_to_the_group_s_meetings_room_or_its_first(
    cfg: CommunityFile,
) -> None:
    cfg = with_meetings(cfg, CHECK_IN)
    cfg = with_meetings(cfg, {**CHECK_IN, "key": "carers-call", "for": "90m"}, group=1)
    bodies = creates(plan_for(cfg, FakeSynapse()))
    nd = initial(bodies[ND_MEETINGS].body)[(MEETING, "check-in")]
    assert nd == {
        "title": "Check-in",
        "when": "every tuesday 19:00",
        "for": "60m",
        "remind": ["1d", "15m"],
        "link": None,
        "zone": "UTC",
    }
    assert (MEETING, "check-in") not in initial(bodies[ND_GENERAL].body)
    assert initial(bodies[CARERS].body)[(MEETING, "carers-call")]["for"] == "90m"


def test_a_declared_meeting_is_added_changed_and_withdrawn_like_any_state(
    cfg: CommunityFile, converged: tuple[FakeSynapse, dict[str, str]]
) -> None:
    hs, _ = converged
    added = with_meetings(cfg, CHECK_IN)
    (put,) = run_once(added, hs).actions
    assert isinstance(put, PutState)
    assert put.change == "declare meeting check-in (Check-in) for the meetings bot"
    assert plan_for(added, hs).empty  # applied: nothing left to do
    changed = with_meetings(cfg, {**CHECK_IN, "when": "every wednesday 19:00"})
    (put,) = run_once(changed, hs).actions
    assert isinstance(put, PutState)
    assert put.change == "meeting check-in (Check-in) changed in the file"
    (put,) = run_once(cfg, hs).actions  # taken out of the file
    assert isinstance(put, PutState)
    assert (put.event_type, put.state_key, put.content) == (MEETING, "check-in", {})
    assert put.change == "withdraw meeting check-in (not in the file)"
    assert plan_for(cfg, hs).empty


def test_declared_meetings_are_checked_with_the_chat_reader(cfg: CommunityFile) -> None:
    bad = [
        ({**CHECK_IN, "when": "every blursday 19:00"}, "isn't a day of the week"),
        ({**CHECK_IN, "when": "on 5 january 10:00"}, "needs its full date"),
        ({**CHECK_IN, "when": "every tuesday 19:00 Europe/Berln"}, "Did you mean Europe/Berlin?"),
        ({**CHECK_IN, "for": "3d"}, "isn't a meeting length"),
        ({**CHECK_IN, "remind": ["30d"]}, "at most 14 days"),
        ({**CHECK_IN, "link": "ftp://x"}, "web address"),
        ({**CHECK_IN, "every": "day"}, "Extra inputs are not permitted"),
    ]
    for meeting, needle in bad:
        with pytest.raises(ValueError, match=re.escape(needle)):
            with_meetings(cfg, meeting)
    with pytest.raises(ValueError, match="used twice"):
        with_meetings(cfg, CHECK_IN, CHECK_IN)
