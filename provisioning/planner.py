"""From (desired community, current server state) to a list of actions. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioning.desired import (
    MARKER,
    MODERATOR_LEVEL,
    ROOM_VERSION,
    SPACE,
    DesiredRoom,
    JsonDict,
    desired_rooms,
    group_label,
    placeholder,
    power_levels,
)
from provisioning.meetings import MEETING
from provisioning.protections import OVERRIDES
from provisioning.protections import drift as protections_drift
from provisioning.schema import CommunityFile, JoinRule
from provisioning.state import RoomSnapshot, ServerState


@dataclass(frozen=True)
class CreateRoom:
    label: str
    body: JsonDict
    summary: str


@dataclass(frozen=True)
class PutState:
    label: str
    event_type: str
    state_key: str
    content: JsonDict
    change: str


@dataclass(frozen=True)
class Invite:
    label: str
    user_id: str


Action = CreateRoom | PutState | Invite


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.actions


def resolve(value: Any, ids: dict[str, str]) -> Any:
    """Replace room-ID placeholders with the IDs known in *ids*."""
    if isinstance(value, str) and value.startswith("$ref:"):
        return ids.get(value[len("$ref:") :], value)
    if isinstance(value, dict):
        return {resolve(k, ids): resolve(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ids) for v in value]
    return value


def describe_join(room: DesiredRoom) -> str:
    return {"invite": "invite only", "knock": "ask to join", "space": "open to Space members"}[
        room.join.value
    ]


def create_body(room: DesiredRoom, admin: str, server_name: str) -> JsonDict:
    state = room.managed_state(server_name)
    initial = [
        {"type": t, "state_key": k, "content": c}
        for (t, k), c in state.items()
        if t != "m.room.name"
    ]
    body: JsonDict = {
        "room_version": ROOM_VERSION,
        "name": room.name,
        "preset": "private_chat",
        "visibility": "private",
        # m.room.encryption is in initial_state: encrypted from the first event.
        "initial_state": initial,
        "power_level_content_override": power_levels(
            {u: lvl for u, lvl in room.users.items() if u != admin}, room.events_default
        ),
        "invite": [m for m in room.members if m != admin],
    }
    if room.is_space:
        body["creation_content"] = {"type": "m.space"}
    return body


def _matches(current: JsonDict | None, desired: JsonDict) -> bool:
    return current is not None and all(current.get(k) == v for k, v in desired.items())


def _power_drift(
    room: DesiredRoom, snap: RoomSnapshot, admin: str
) -> tuple[JsonDict, list[str]] | None:
    current = snap.get("m.room.power_levels") or {}
    creators = snap.creators if snap.creators_implicit else frozenset()
    want_users = {u: lvl for u, lvl in room.users.items() if u not in creators}
    if not snap.creators_implicit:
        want_users[admin] = 100
    desired = power_levels(want_users, room.events_default)
    have_users = {
        u: int(lvl)
        for u, lvl in (current.get("users") or {}).items()
        if lvl != desired["users_default"] and u not in creators
    }
    changes = [
        f"power level of {u}: {have_users.get(u, 0)} → {want_users.get(u, 0)}"
        for u in sorted(set(have_users) | set(want_users))
        if have_users.get(u, 0) != want_users.get(u, 0)
    ]
    for key, value in desired.items():
        if key == "users":
            continue
        if key in ("events", "notifications"):
            have = current.get(key) or {}
            for k, v in value.items():
                if have.get(k) != v:
                    changes.append(f"power needed for {k}: {have.get(k, 'default')} → {v}")
        elif current.get(key) != value:
            changes.append(f"{key.replace('_', ' ')}: {current.get(key, 'unset')} → {value}")
    if not changes:
        return None
    merged = dict(current)
    merged.update({k: v for k, v in desired.items() if k not in ("events", "notifications")})
    for key in ("events", "notifications"):
        merged[key] = {**(current.get(key) or {}), **desired[key]}
    return merged, changes


_WHAT = {
    "m.room.encryption": "encryption",
    "m.room.name": "name",
    "m.room.topic": "topic",
    "m.room.join_rules": "join rule",
    "m.room.history_visibility": "history visibility",
    "m.room.guest_access": "guest access",
    "m.space.parent": "link to the Space",
    MARKER: "Hearth's record of what this room is",
    MEETING: "meeting",
}


def _state_drift(
    room: DesiredRoom, snap: RoomSnapshot, ids: dict[str, str], server_name: str
) -> list[Action]:
    actions: list[Action] = []
    for (etype, key), content in room.managed_state(server_name).items():
        key_r, content_r = resolve(key, ids), resolve(content, ids)
        # Empty content is how state is removed: treat it as missing.
        current = (snap.get(etype, key_r) if not key_r.startswith("$ref:") else None) or None
        if _matches(current, content_r):
            continue
        what = _WHAT.get(etype, etype)
        if current is None and etype == MEETING:
            change = f"declare meeting {key} ({content['title']}) for the meetings bot"
        elif current is None:
            change = f"{what} missing"
        elif etype == "m.room.join_rules":
            change = f"join rule {current.get('join_rule')} → {content_r['join_rule']}"
        elif etype == "m.room.history_visibility":
            change = (
                f"history {current.get('history_visibility')} → {content_r['history_visibility']}"
            )
        elif etype == "m.room.guest_access":
            change = f"guest access {current.get('guest_access')} → forbidden"
        elif etype == MEETING:
            change = f"meeting {key} ({content['title']}) changed in the file"
        else:
            change = f"{what} changed"
        actions.append(PutState(room.label, etype, key, content, change))
    wanted = {key for key, _ in room.meetings}
    for (etype, key), content in sorted(snap.state.items()):
        if etype == MEETING and key not in wanted and content:
            # Empty content withdraws it: the bot cancels the meeting.
            actions.append(
                PutState(room.label, MEETING, key, {}, f"withdraw meeting {key} (not in the file)")
            )
    return actions


def _child_content(room: DesiredRoom, server_name: str) -> JsonDict:
    return {"via": [server_name], "order": room.child_order, "suggested": False}


def _unlisted_staff_rooms(desired: list[DesiredRoom], current: ServerState) -> list[Action]:
    """Rooms that must not appear in the Space (the staff rooms) but do."""
    space = current.rooms.get(SPACE)
    if space is None:
        return []
    out: list[Action] = []
    for room in desired:
        room_id = current.room_id(room.label)
        if room.is_space or room.child_order is not None or room_id is None:
            continue
        if space.get("m.space.child", room_id):
            out.append(
                PutState(
                    SPACE,
                    "m.space.child",
                    placeholder(room.label),
                    {},
                    f"{room.label} is listed in the Space; unlist it",
                )
            )
    return out


def plan(cfg: CommunityFile, current: ServerState, server_name: str) -> Plan:
    admin = cfg.community.admin.user_id
    desired = desired_rooms(cfg)
    ids = {label: snap.room_id for label, snap in current.rooms.items()}
    creates: list[Action] = []
    changes: list[Action] = []
    invites: list[Action] = []
    links: list[Action] = []
    banned: list[str] = []
    for room in desired:
        snap = current.rooms.get(room.label)
        if snap is None:
            subject = "the Space" if room.is_space else f"room {room.label}"
            summary = (
                f'create {subject} "{room.name}" '
                f"(encrypted; {describe_join(room)}; history "
                f"{'from before joining' if room.history == 'shared' else 'from joining'})"
            )
            creates.append(CreateRoom(room.label, create_body(room, admin, server_name), summary))
        else:
            changes.extend(_state_drift(room, snap, ids, server_name))
            drift = _power_drift(room, snap, admin)
            if drift is not None:
                content, what = drift
                changes.append(
                    PutState(room.label, "m.room.power_levels", "", content, "; ".join(what))
                )
            for m in room.members:
                membership = snap.membership(m)
                if m == admin or membership in ("join", "invite"):
                    continue
                if membership == "ban":
                    # Synapse refuses to invite a banned user; a moderator must
                    # unban them first, so say so instead of failing every run.
                    banned.append(
                        f"{m} is banned from {room.label}; unban them to let it invite them"
                    )
                    continue
                invites.append(Invite(room.label, m))
        if room.child_order is not None:
            child_id = ids.get(room.label)
            space = current.rooms.get(SPACE)
            # An m.space.child with empty content is how a link is removed.
            have = (space.get("m.space.child", child_id) if space and child_id else None) or None
            want = _child_content(room, server_name)
            if not _matches(have, want):
                links.append(
                    PutState(
                        SPACE,
                        "m.space.child",
                        placeholder(room.label),
                        want,
                        f"list {room.label} in the Space"
                        if have is None
                        else f"listing of {room.label} in the Space changed",
                    )
                )
    links.extend(_unlisted_staff_rooms(desired, current))
    notes = banned
    wanted = {r.label for r in desired}
    for label in sorted(set(current.rooms) - wanted):
        notes.append(
            f"{label} exists on the server but not in the config (created with a bot command?); "
            "left alone. Add it to the YAML to manage it."
        )
    for group in cfg.groups:
        if group.history_before_joining and group.join is JoinRule.SPACE:
            # MSC4268: clients take a room's history only with an invitation.
            notes.append(
                f"group {group.key}: members who join through the Space will not see its "
                "history (Element accepts history only with an invitation); they can read "
                "it if the bot invites them"
            )
    for group in cfg.groups:
        main = current.rooms.get(group_label(group.key, group.rooms[0].key))
        changed = main.get(OVERRIDES, group.key) if main else None
        for line in protections_drift(group.protections, changed or {}):
            # Moderators changed it in chat (!protections): kept, not undone.
            notes.append(
                f"group {group.key}: {line}, changed in chat and kept; put it in the "
                "community file to keep it for good, or !protections reset to drop it"
            )
    for label, rooms in sorted(current.duplicates.items()):
        notes.append(
            f"{label} is claimed by {len(rooms)} rooms ({', '.join(rooms)}); using the first."
        )
    return Plan(tuple(creates + changes + links + invites), tuple(notes))


def _is_link(action: Action) -> bool:
    return isinstance(action, PutState) and action.event_type == "m.space.child"


def render(plan: Plan, community_name: str) -> str:
    lines = []
    for action in plan.actions:
        if isinstance(action, CreateRoom):
            lines.append(f"  + {action.summary}")
        elif isinstance(action, PutState):
            sign = "+" if _is_link(action) and action.change.startswith("list ") else "~"
            where = "" if _is_link(action) else f"{action.label}: "
            lines.append(f"  {sign} {where}{action.change}")
        else:
            lines.append(f"  + invite {action.user_id} to {action.label}")
    lines.extend(f"  ! {note}" for note in plan.notes)
    if plan.empty:
        head = f'Community "{community_name}": no changes.'
    else:
        counts = {
            "to create": sum(isinstance(a, CreateRoom) for a in plan.actions),
            "to change": sum(isinstance(a, PutState) and not _is_link(a) for a in plan.actions),
            "to link": sum(_is_link(a) for a in plan.actions),
            "to invite": sum(isinstance(a, Invite) for a in plan.actions),
        }
        head = f'Community "{community_name}": ' + ", ".join(f"{n} {w}" for w, n in counts.items())
    return "\n".join([head, *lines])


__all__ = [
    "MODERATOR_LEVEL",
    "Action",
    "CreateRoom",
    "Invite",
    "Plan",
    "PutState",
    "plan",
    "render",
]
