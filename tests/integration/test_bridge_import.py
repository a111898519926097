"""`hearth import facebook apply` on a real Synapse, read back with Element's crypto.

Members' exports (two of them overlapping, photos with real EXIF and GPS)
are planned into a review file and imported as the bridge's application
service. The import is interrupted and run again. A member who joins the
group afterwards, on matrix-js-sdk with its Rust crypto, is invited to the
archive by the community bot and reads it: in date order, with the
original times, comments in their post's thread, photos that decrypt and
carry no metadata, and nothing twice.
"""

from __future__ import annotations

import asyncio
import base64
import io
import sqlite3
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image

from bots.archives.config import ArchivesConfig
from bots.base.errors import InputError
from bots.framework.cross_signing import device_is_signed, server_key
from bridge.facebook.planning import plan_import
from bridge.importer import apply_review, check_review
from provisioning.provision import provision
from tests.support.community import Community, make_community
from tests.support.facebook_exports import (
    GPS_IFD,
    VIDEO_CAMERA,
    VIDEO_FRAMES,
    VIDEO_GPS,
    Comment,
    FakeExport,
    Post,
    photo,
    video,
)
from tests.support.homeserver import Homeserver, User, running_bot
from tests.support.js_client import JsMember

pytestmark = [pytest.mark.integration, pytest.mark.interop]

FB_GROUP = "Carers UK"
MEDIA = "your_facebook_activity/posts/media/garden.jpg"
CLIP = "your_facebook_activity/posts/media/walk.mp4"
BRIDGE = "@hearth-bridge:localhost"
T0 = 1_560_000_000  # June 2019


def exports(tmp: Path) -> list[Path]:
    alicja = FakeExport(
        "Alicja Wróbel",
        posts=[
            Post(T0, "Our garden today, after the first chemo week", FB_GROUP, media=(MEDIA,)),
            Post(T0 + 7200, "שלום לכולם 💙 — a hello in Hebrew", FB_GROUP, media=(CLIP,)),
        ],
        files={MEDIA: photo(size=(80, 60)), CLIP: video()},
    )
    bob = FakeExport(
        "Bob Nowak",
        layout="old",
        comments=[
            Comment(T0 + 600, "Beautiful. Dana Kowalska would love it", FB_GROUP, "Alicja Wróbel"),
            Comment(T0 + 9000, "Replying to a post nobody handed in", FB_GROUP, "Eve Stranger"),
        ],
        posts=[Post(T0 + 3600, "", FB_GROUP, link="https://example.org/leaflet")],
    )
    return [
        alicja.write(tmp / "alicja.zip"),
        bob.write(tmp / "bob.zip"),
        alicja.write(tmp / "alicja-again.zip"),  # handed in twice
    ]


async def set_up(hs: Homeserver, state: Path) -> tuple[Community, dict[str, str], User, User]:
    mod, bot = await hs.users("mod", "bot")
    groups = [{"key": "carers", "name": "Carers", "history_before_joining": True}]
    bridge = {"as_token_file": str(hs.dir / "bridge-as-token"), "state_dir": "bridge"}
    community = await make_community(
        hs, state, groups, moderators=[mod], bots=[bot], extra={"bridge": bridge}
    )
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    return community, ids, mod, bot


def review_file(community: Community, state: Path) -> Path:
    roster = state / "roster.csv"
    roster.write_text("facebook_name,shown_as\nAlicja Wróbel,Alicja W.\nDana Kowalska,\n")
    out = state / "review.jsonl"
    plan_import(exports(state), "carers", roster, FB_GROUP, out)
    return out


async def archive_events(hs: Homeserver, community: Community, room: str) -> list[dict[str, Any]]:
    """Every event of the archive room as the server holds it (Synapse's admin API)."""
    api = await hs.api(community.admin)
    data = await api.request(
        "GET",
        f"/_synapse/admin/v1/rooms/{quote(room)}/messages",
        params={"dir": "f", "limit": "1000"},
    )
    return list(data["chunk"])


def forget_last_send(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM sent WHERE rowid = (SELECT MAX(rowid) FROM sent)")


def exif_of(data: bytes) -> dict[int, Any]:
    with Image.open(io.BytesIO(data)) as img:
        exif = img.getexif()
        return {**dict(exif), **{GPS_IFD: dict(exif.get_ifd(GPS_IFD))}} if exif else {}


async def test_an_import_resumed_after_a_kill_is_read_by_a_late_joiner_in_element(
    homeserver: Homeserver, state: Path
) -> None:
    hs = homeserver
    community, ids, mod, bot = await set_up(hs, state)
    review = review_file(community, state)
    expected = check_review(review)
    cfg = community.load()
    config = hs.bot_config(
        bot,
        state / "bot",
        feature_sections={"archives": ArchivesConfig(community=community.path, poll_s=1)},
    )
    reader = await hs.user("reader")
    async with running_bot(config):
        first = await apply_review(review, cfg, stop_after=2)
        assert (first.sent, first.resumed) == (2, False)
        # Killed between a send and its record: the archive holds the photo,
        # the progress file does not know it.
        forget_last_send(state / "bridge" / "imports.db")
        second = await apply_review(review, cfg)
        assert second.resumed
        assert second.room_id == first.room_id
        # The photo was read back from the archive, not sent again.
        assert second.sent == second.in_archive - 2
        room = second.room_id
        # The organiser runs it once more by mistake: refused, nothing sent.
        with pytest.raises(InputError, match="already imported"):
            await apply_review(review, cfg)

        # The group's moderator is invited once the import is complete.
        api = await hs.api(community.admin)
        for _ in range(100):
            state_now = await api.request("GET", f"/_synapse/admin/v1/rooms/{quote(room)}/state")
            members = {
                e["state_key"]: e for e in state_now["state"] if e["type"] == "m.room.member"
            }
            if mod.user_id in members:
                break
            await asyncio.sleep(0.2)
        assert members[mod.user_id]["content"]["membership"] == "invite"
        assert members[mod.user_id]["sender"] == bot.user_id
        space = await api.state(ids["space"], "m.space.child", room)
        assert space["via"] == ["localhost"]

        # A member who joins the group later is invited to the archive too,
        # by the bot, with its keys. Element's default setting: in its opt-in
        # "exclude insecure devices" mode, Element's crypto (matrix-sdk-crypto
        # 0.19) refuses history from a bundle as soon as it meets the device
        # that first sent it (an imported key cannot prove that device owns
        # it), whoever that sender is; see the README's bridge section.
        js = JsMember(
            hs, reader, room, bot.user_id,
            history_from=BRIDGE, history_count=expected.lines + 2, read_only=True, timeout=120,
            isolation="all",
        )  # fmt: skip
        await js.start()
        assert (await js.step()).get("ready"), "the reader's device did not start"
        await api.invite(ids["group/carers/general"], reader.user_id)
        result = await js.result()

    assert result["ok"], result
    assert result["inviter"] == bot.user_id
    history = result["history"]
    assert history["failures"] == [], history
    details = history["details"]
    # Nothing twice: the interrupted run's two events are not repeated.
    raw = [e for e in await archive_events(hs, community, room) if e["sender"] == BRIDGE]
    sent = [e for e in raw if e["type"] == "m.room.encrypted"]
    assert len(sent) == len(details) == second.in_archive
    assert all(e["type"] != "m.room.message" for e in raw), "nothing in the clear"
    # Date order, original times (a photo a millisecond after its post).
    times = [d["ts"] for d in details]
    assert times == sorted(times)
    assert times[0] == T0 * 1000
    bodies = [d["body"] for d in details]
    assert bodies[0].startswith("Alicja W. · Facebook, 8 June 2019")
    assert "Our garden today" in bodies[0]
    assert details[1]["msgtype"] == "m.image"
    assert details[1]["ts"] == T0 * 1000 + 1
    # A comment in its post's thread; the one without a known post is a message.
    comment = next(d for d in details if "Beautiful" in d["body"])
    assert comment["thread_root"] == details[0]["event_id"]
    assert "Member " in comment["body"]
    assert "Dana" not in comment["body"]
    orphan = next(d for d in details if "nobody handed in" in d["body"])
    assert orphan["thread_root"] is None
    assert "could not be told for sure" in orphan["body"]
    assert any("שלום לכולם 💙" in b for b in bodies)
    assert any("https://example.org/leaflet" in b for b in bodies)
    assert all(d["mentions"] == {} for d in details)
    # The photo decrypts, is a picture, and carries no EXIF or GPS.
    picture = base64.b64decode(details[1]["file"]["base64"])
    with Image.open(io.BytesIO(picture)) as img:
        assert img.size == (80, 60)
    assert exif_of(picture) == {}
    assert b"HearthTestCam" not in picture
    assert b"203.0.113.7" not in picture
    # The video follows its post, decrypts to the same frames, and says
    # nothing of where or with what it was filmed.
    hello = next(i for i, d in enumerate(details) if "שלום" in d["body"])
    clip = details[hello + 1]
    assert clip["msgtype"] == "m.video"
    assert clip["ts"] == (T0 + 7200) * 1000 + 1
    film = base64.b64decode(clip["file"]["base64"])
    assert len(film) == len(video())
    assert VIDEO_FRAMES in film
    assert VIDEO_GPS.encode() not in film
    assert VIDEO_CAMERA.encode() not in film
    # The archive bot's device is cross-signed by its owner.
    keys = await (await hs.api(community.admin)).request(
        "POST", "/_matrix/client/v3/keys/query", {"device_keys": {BRIDGE: []}}
    )
    self_signing = server_key(keys, "self_signing_keys", BRIDGE)
    (device,) = keys["device_keys"][BRIDGE].values()
    assert self_signing is not None
    assert device_is_signed(device, BRIDGE, self_signing)
    # Nothing members wrote reached Synapse's log.
    log = (hs.dir / "synapse.log").read_text(encoding="utf-8", errors="replace")
    for secret in ("Our garden today", "Alicja", "Beautiful", "שלום"):
        assert secret not in log
    # The archive bot's state is private.
    folder = state / "bridge"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("credentials.json", "pickle.key", "cross_signing.json", "imports.db"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
