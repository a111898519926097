"""`hearth provision` against a real Synapse: every property, idempotence, drift."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from provisioning.desired import MARKER
from provisioning.provision import provision
from tests.support.community import Community, make_community
from tests.support.homeserver import Homeserver
from tests.support.room_state import first_events, full_state

pytestmark = pytest.mark.integration

HEARTH = str(Path(sys.executable).with_name("hearth"))

GROUPS: list[dict[str, Any]] = [
    {
        "key": "newly-diagnosed",
        "name": "Newly diagnosed",
        "join": "space",
        "rooms": [
            {"key": "general", "name": "General"},
            {"key": "announcements", "name": "Announcements", "kind": "announcements"},
        ],
    },
    {"key": "carers", "name": "Carers", "join": "knock", "history_before_joining": True},
    {"key": "research", "name": "Research", "join": "invite"},
]


async def run(community: Community, dry_run: bool = False) -> tuple[Any, str]:
    out = io.StringIO()
    outcome = await provision(community.load(), community.path, dry_run=dry_run, out=out)
    return outcome, out.getvalue()


async def test_community_is_created_encrypted_and_second_run_changes_nothing(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    mod, bot = await homeserver.users("mod", "bot")
    community = await make_community(homeserver, tmp_path, GROUPS, moderators=[mod], bots=[bot])
    outcome, text = await run(community)
    assert "Test Circle" in text
    ids = outcome.room_ids
    assert set(ids) == {
        "space",
        "moderators",
        "moderation-log",
        "group/newly-diagnosed/general",
        "group/newly-diagnosed/announcements",
        "group/carers/general",
        "group/research/general",
    }
    api = await homeserver.api(community.admin)
    space = await full_state(api, ids["space"])
    assert space[("m.room.create", "")]["type"] == "m.space"
    for label, room_id in ids.items():
        state = await full_state(api, room_id)
        assert state[("m.room.encryption", "")]["algorithm"] == "m.megolm.v1.aes-sha2", label
        assert state[("m.room.guest_access", "")]["guest_access"] == "forbidden", label
        assert state[(MARKER, "")]["community"] == "circle"
        power = state[("m.room.power_levels", "")]
        assert power["users"][mod.user_id] == 50, label
        assert power["users"][bot.user_id] == 100, label
        assert power["events"]["m.room.encryption"] == 100
        # Encrypted from the first event: nothing but state precedes it.
        timeline = await first_events(api, room_id)
        enc_at = next(i for i, e in enumerate(timeline) if e["type"] == "m.room.encryption")
        assert all("state_key" in e for e in timeline[:enc_at]), label
        # Staff were invited at creation.
        assert state[("m.room.member", mod.user_id)]["membership"] == "invite"
        # Not in the public room directory.
        vis = await api.request("GET", f"/_matrix/client/v3/directory/list/room/{quote(room_id)}")
        assert vis["visibility"] == "private", label

    general = await full_state(api, ids["group/newly-diagnosed/general"])
    assert general[("m.room.join_rules", "")] == {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": ids["space"]}],
    }
    assert general[("m.room.history_visibility", "")]["history_visibility"] == "joined"
    assert general[("m.space.parent", ids["space"])]["canonical"] is True
    assert general[("m.room.power_levels", "")]["events_default"] == 0
    announcements = await full_state(api, ids["group/newly-diagnosed/announcements"])
    assert announcements[("m.room.power_levels", "")]["events_default"] == 50
    carers = await full_state(api, ids["group/carers/general"])
    assert carers[("m.room.join_rules", "")]["join_rule"] == "knock"
    assert carers[("m.room.history_visibility", "")]["history_visibility"] == "shared"
    research = await full_state(api, ids["group/research/general"])
    assert research[("m.room.join_rules", "")]["join_rule"] == "invite"
    mods_room = await full_state(api, ids["moderators"])
    assert mods_room[("m.room.join_rules", "")]["join_rule"] == "invite"
    for label in (
        "group/newly-diagnosed/general",
        "group/carers/general",
        "group/research/general",
    ):
        assert ("m.space.child", ids[label]) in space
    # The staff rooms are not listed in the Space.
    assert ("m.space.child", ids["moderators"]) not in space

    again, text2 = await run(community)
    assert again.plan.empty
    assert "no changes" in text2
    assert again.writes == 0
    assert again.room_ids == ids


async def test_drift_is_shown_then_repaired(homeserver: Homeserver, tmp_path: Path) -> None:
    mod = await homeserver.user("mod")
    community = await make_community(homeserver, tmp_path, GROUPS, moderators=[mod])
    ids = (await run(community))[0].room_ids
    api = await homeserver.api(community.admin)
    research = ids["group/research/general"]
    carers = ids["group/carers/general"]
    # Someone changes things by hand.
    await api.put_state(research, "m.room.join_rules", "", {"join_rule": "public"})
    power = (await full_state(api, carers))[("m.room.power_levels", "")]
    power["users"][mod.user_id] = 100
    await api.put_state(carers, "m.room.power_levels", "", power)
    await api.put_state(ids["space"], "m.space.child", ids["group/newly-diagnosed/general"], {})

    dry, text = await run(community, dry_run=True)
    assert "group/research/general: join rule public → invite" in text
    assert f"group/carers/general: power level of {mod.user_id}: 100 → 50" in text
    assert "list group/newly-diagnosed/general in the Space" in text
    assert dry.writes == 0
    assert (await full_state(api, research))[("m.room.join_rules", "")]["join_rule"] == "public"

    fixed, _ = await run(community)
    assert len(fixed.plan.actions) == 3
    assert (await full_state(api, research))[("m.room.join_rules", "")]["join_rule"] == "invite"
    carers_power = (await full_state(api, carers))[("m.room.power_levels", "")]
    assert carers_power["users"][mod.user_id] == 50
    space = await full_state(api, ids["space"])
    assert space[("m.space.child", ids["group/newly-diagnosed/general"])]["via"]
    assert (await run(community))[0].plan.empty


async def test_renaming_a_group_renames_its_rooms_without_duplicates(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    community = await make_community(homeserver, tmp_path, GROUPS)
    ids = (await run(community))[0].room_ids
    community.data["groups"][2]["name"] = "Research and trials"
    community.save()
    outcome, text = await run(community)
    assert "group/research/general: name changed" in text
    assert [a.change for a in outcome.plan.actions] == ["name changed"]  # type: ignore[union-attr]
    assert outcome.room_ids == ids
    api = await homeserver.api(community.admin)
    state = await full_state(api, ids["group/research/general"])
    assert state[("m.room.name", "")]["name"] == "Research and trials"


async def test_record_names_the_staff_rooms_after_each_run(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    """`--record` is how the playbook tells the bots their moderators' room."""
    community = await make_community(homeserver, tmp_path, GROUPS[2:])
    record = tmp_path / "deploy" / "provisioned.json"

    async def provision_and_record(*extra: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            HEARTH,
            "provision",
            str(community.path),
            "--record",
            str(record),
            *extra,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await provision_and_record("--dry-run")
    assert code == 2
    assert "--record" in err
    assert not record.parent.exists()

    code, out, err = await provision_and_record()
    assert code == 0, err
    assert "Applied" in out
    first = json.loads(record.read_text())
    assert stat.S_IMODE(record.stat().st_mode) == 0o640
    record.unlink()
    # Nothing to change: the same rooms are recorded again.
    code, out, err = await provision_and_record()
    assert code == 0, err
    assert "no changes" in out
    assert json.loads(record.read_text()) == first
    ids = (await run(community))[0].room_ids
    assert first == {
        "community": "circle",
        "space": ids["space"],
        "moderators_room": ids["moderators"],
        "moderation_log": ids["moderation-log"],
        "ban_list": None,
    }
