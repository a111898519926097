"""Meetings in a group's encrypted room, on a real Synapse, with members'
real clients: the announcement poll, RSVPs by vote and by command, the
reminder that pings only those going (late after a restart that spanned it,
and never twice), skip, move and cancel, and the calendar file downloaded,
decrypted and read back.

The bot's clock can be set ahead (``running_bot(clock=...)``): its
scheduler and its handlers share it, so a reminder a day away falls due
within the test, as it would for a bot that was down until then.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from nio import MemoryDownloadResponse
from nio.crypto.attachments import decrypt_attachment

from bots.framework.commands.authorize import REFUSAL
from bots.meetings.config import MeetingsConfig
from provisioning.provision import provision
from tests.support.community import make_community
from tests.support.homeserver import Homeserver, wait_joined
from tests.support.js_client import JsMember
from tests.support.meetings_scene import (
    BERLIN,
    POLL_END,
    POLL_START,
    ZONE,
    ask,
    bot_at,
    bot_joined,
    from_bot,
    in_group,
    know_bot,
    mentions,
    poll_of,
    set_up,
    tomorrow_at,
    until_said,
    vote,
)
from tests.support.member_client import MemberClient, Received, body
from tests.support.moderation_scene import Scene

pytestmark = pytest.mark.integration


def reminders_seen(m: MemberClient, scene: Scene) -> list[Received]:
    return [
        ev
        for ev in m.received
        if ev.sender == scene.bot.user_id and "Reminder: Carers check-in" in body(ev)
    ]


async def test_poll_rsvps_and_a_late_reminder_that_pings_only_those_going(
    homeserver: Homeserver, state: Path
) -> None:
    scene = await set_up(homeserver, state)
    alice, bob, carol = await homeserver.users("alice", "bob", "carol")
    start = tomorrow_at(24.5)  # a day-before reminder half an hour from now
    day = f"{start:%Y-%m-%d}"
    device = await bot_joined(scene, homeserver)
    async with (
        in_group(homeserver, scene, scene.mod, state / "mod") as mod,
        in_group(homeserver, scene, alice, state / "alice") as a,
        in_group(homeserver, scene, bob, state / "bob") as b,
        in_group(homeserver, scene, carol, state / "carol") as c,
    ):
        await know_bot(scene, device, mod, a, b, c)
        async with bot_at(scene, homeserver):
            said = await ask(
                mod,
                scene,
                f'!meeting add "Carers check-in" on {day} {start:%H:%M} for 45m remind 1d,15m '
                "link https://meet.example/carers",
            )
            assert said.startswith("Meeting 1 added: Carers check-in.")
            assert f"{start:%a %-d %b %Y, %H:%M}" in said
            assert ZONE in said

            poll = await a.wait_for(from_bot(scene, lambda ev: ev.event_type == POLL_START))
            assert poll.decrypted
            question = poll_of(poll)["question"]["org.matrix.msc1767.text"]
            assert "Carers check-in" in question
            assert "https://meet.example/carers" in question
            answers = [x["org.matrix.msc1767.text"] for x in poll_of(poll)["answers"]]
            assert answers == ["Going", "Maybe", "Can't make it"]

            # Alice taps "Going" in her client; Bob and Carol type.
            await vote(a, scene, poll, "yes")
            assert (await ask(b, scene, "!rsvp 1 no")).startswith("Noted: you can't make")
            assert (await ask(c, scene, "!rsvp 1 maybe")).startswith("Noted: you might come")
            assert "yes, maybe or no" in await ask(b, scene, "!rsvp 1 perhaps")
            assert "no meeting 7" in await ask(b, scene, "!rsvp 7 yes")
            assert await ask(b, scene, f'!meeting add "Mine" on {day} 10:00') == REFUSAL
            listing = await until_said(c, scene, "!meetings", "1 going")
            assert "1 · Carers check-in" in listing
            assert reminders_seen(b, scene) == []

        # The bot is down until ten minutes before the meeting: both
        # reminders fell due meanwhile. Each is sent once, late and saying
        # so; the last one pings Alice alone.
        ahead = start.timestamp() - 600 - time.time()
        async with bot_at(scene, homeserver, ahead):
            late = await b.wait_for(
                from_bot(scene, lambda ev: "starts" in body(ev) and bool(mentions(ev))), 60
            )
            assert body(late).startswith("(Late: I was offline when this was due.) Reminder:")
            assert mentions(late) == [alice.user_id]
            assert "1 going" in body(late)
            assert "https://meet.example/carers" in body(late)
            await a.wait_for(lambda ev: ev.event_id == late.event_id)
            day_before = [ev for ev in reminders_seen(b, scene) if not mentions(ev)]
            assert len(day_before) == 1
            assert body(day_before[0]).startswith("(Late:")

        # Restarted again, after the meeting began: nothing is sent twice,
        # the poll is closed, and answers for that date are refused.
        after = start.timestamp() + 3600 - time.time()
        async with bot_at(scene, homeserver, after):
            ended = await b.wait_for(from_bot(scene, lambda ev: ev.event_type == POLL_END))
            assert ended.content["m.relates_to"]["event_id"] == poll.event_id
            assert len(reminders_seen(b, scene)) == 2
            assert "has no more dates" in await ask(b, scene, "!rsvp 1 yes")
            assert "has already begun" in await ask(b, scene, f"!rsvp 1 yes {day}")
            assert "No meetings coming up" in await ask(b, scene, "!meetings")


async def test_skip_move_cancel_and_the_calendar_file(homeserver: Homeserver, state: Path) -> None:
    scene = await set_up(homeserver, state)
    alice, bob = await homeserver.users("alice", "bob")
    today = datetime.now(BERLIN).date()
    # A weekly meeting on the weekday three days from now, at 18:00 Berlin.
    first = today + timedelta(days=3)
    weekday = f"{first:%A}".lower()
    second, third = first + timedelta(weeks=1), first + timedelta(weeks=2)
    async with (
        bot_at(scene, homeserver) as device,
        in_group(homeserver, scene, scene.mod, state / "mod") as mod,
        in_group(homeserver, scene, alice, state / "alice") as a,
        in_group(homeserver, scene, bob, state / "bob") as b,
    ):
        await know_bot(scene, device, mod, a, b)
        said = await ask(mod, scene, f'!meeting add "Weekly" every {weekday} 18:00 remind 1h')
        assert said.startswith("Meeting 1 added")
        assert f"{first:%a %-d %b %Y}, 18:00" in said
        assert f"{third:%a %-d %b %Y}, 18:00" in said  # the next three dates
        poll = await a.wait_for(from_bot(scene, lambda ev: ev.event_type == POLL_START))
        await vote(a, scene, poll, "yes")
        await until_said(b, scene, "!meetings", "1 going")

        # Moved: Alice, who is going, is told (pinged); Bob is not.
        assert await ask(mod, scene, f"!meeting move 1 {first:%Y-%m-%d} 19:30") == "Done."
        moved = await a.wait_for(from_bot(scene, lambda ev: "moves to" in body(ev)))
        assert f"{first:%a %-d %b %Y}, 19:30" in body(moved)
        assert mentions(moved) == [alice.user_id]
        # Skipped: the second date.
        assert await ask(mod, scene, f"!meeting skip 1 {second:%Y-%m-%d}") == "Done."
        await a.wait_for(from_bot(scene, lambda ev: "will not take place" in body(ev)))
        assert "already skipped" in await ask(mod, scene, f"!meeting skip 1 {second:%Y-%m-%d}")
        assert "has no date" in await ask(
            mod, scene, f"!meeting skip 1 {first + timedelta(days=1):%Y-%m-%d}"
        )
        # Not a moderator: refused.
        assert await ask(b, scene, "!meeting cancel 1") == REFUSAL
        assert await ask(b, scene, f"!meeting move 1 {third:%Y-%m-%d} 10:00") == REFUSAL

        # The calendar file: encrypted, downloaded, decrypted and read back.
        sent = await b.send(scene.room, "!meetings ics")
        file_ev = await b.wait_for(
            from_bot(scene, lambda ev: ev.content.get("msgtype") == "m.file"), 60
        )
        await b.wait_for_reply(sent)
        assert file_ev.decrypted
        info = file_ev.content["file"]
        assert "url" not in file_ev.content  # only the encrypted form
        resp = await b.client.download(mxc=info["url"])
        assert isinstance(resp, MemoryDownloadResponse)
        assert b"BEGIN:VCALENDAR" not in resp.body  # the server holds ciphertext only
        plain = decrypt_attachment(
            resp.body, info["key"]["k"], info["hashes"]["sha256"], info["iv"]
        )
        cal = icalendar.Calendar.from_ical(plain)
        now = datetime.now(UTC)
        expanded = sorted(
            e["DTSTART"].dt.astimezone(BERLIN).replace(tzinfo=None)
            for e in recurring_ical_events.of(cal).between(now, now + timedelta(days=25))
        )
        expected = [
            datetime.combine(first, datetime.min.time()).replace(hour=19, minute=30),
            datetime.combine(third, datetime.min.time()).replace(hour=18),
            datetime.combine(third + timedelta(weeks=1), datetime.min.time()).replace(hour=18),
        ]
        assert expanded[:3] == expected

        # Cancelled: announced, Alice pinged, the open poll closed; RSVPs to
        # it are refused with a reason.
        assert await ask(mod, scene, "!meeting cancel 1") == "Done."
        gone = await a.wait_for(from_bot(scene, lambda ev: "is cancelled" in body(ev)))
        assert mentions(gone) == [alice.user_id]
        end = await a.wait_for(from_bot(scene, lambda ev: ev.event_type == POLL_END))
        assert end.content["m.relates_to"]["event_id"] == poll.event_id
        assert "was cancelled" in await ask(b, scene, "!rsvp 1 yes")
        assert "No meetings coming up" in await ask(b, scene, "!meetings")


async def test_time_zones_are_each_member_s_own_and_a_room_holds_so_many(
    homeserver: Homeserver, state: Path
) -> None:
    scene = await set_up(homeserver, state, max_per_room=2)
    alice, bob = await homeserver.users("alice", "bob")
    start = date.today() + timedelta(days=10)
    async with (
        bot_at(scene, homeserver) as device,
        in_group(homeserver, scene, scene.mod, state / "mod") as mod,
        in_group(homeserver, scene, alice, state / "alice") as a,
        in_group(homeserver, scene, bob, state / "bob") as b,
    ):
        await know_bot(scene, device, mod, a, b)
        await ask(mod, scene, f'!meeting add "Coffee" on {start:%Y-%m-%d} 18:00')
        assert "Did you mean America/Chicago?" in await ask(a, scene, "!tz America/Chicag")
        assert "now America/Chicago" in await ask(a, scene, "!tz america/chicago")
        chicago = datetime.combine(start, datetime.min.time()).replace(hour=18, tzinfo=BERLIN)
        local = chicago.astimezone(ZoneInfo("America/Chicago"))
        assert f"{local:%H:%M}" in await ask(a, scene, "!meetings")
        assert "(America/Chicago)" in await ask(a, scene, "!meetings")
        assert "18:00" in await ask(b, scene, "!meetings")  # Bob sees the group's zone
        assert "forgotten" in await ask(a, scene, "!tz clear")
        await ask(mod, scene, f'!meeting add "Tea" on {start:%Y-%m-%d} 10:00')
        full = await ask(mod, scene, f'!meeting add "Cake" on {start:%Y-%m-%d} 12:00')
        assert "already has 2 meetings, the most it can hold" in full
        assert "(Europe/Berlin)" in await ask(a, scene, "!meetings")
        mods_room = scene.ids["moderators"]
        await wait_joined(homeserver, scene.community.admin, mods_room, scene.bot.user_id)
        assert "Meetings belong to a group's rooms" in await ask_in(mod, mods_room, "!meetings")


async def ask_in(m: MemberClient, room: str, text: str) -> str:
    await m.join(room)
    sent = await m.send(room, text)
    return body(await m.wait_for_reply(sent, timeout=60))


async def test_declared_meetings_follow_the_community_file(
    homeserver: Homeserver, state: Path
) -> None:
    mod, bot, alice = await homeserver.users("mod", "bot", "alice")
    weekday = f"{datetime.now(BERLIN).date() + timedelta(days=2):%A}".lower()
    declared = {"key": "check-in", "title": "Check-in", "when": f"every {weekday} 18:00"}
    # Declared once Alice is in: the bot's notice is for the room's members
    # then, and one who joins after it would not hold its key (as in Element).
    groups = [{"key": "carers", "name": "Carers", "timezone": ZONE, "meetings": []}]
    community = await make_community(homeserver, state, groups, moderators=[mod], bots=[bot])

    async def provisioned() -> dict[str, str]:
        return (await provision(community.load(), community.path, out=io.StringIO())).room_ids

    ids = await provisioned()
    config = homeserver.bot_config(
        bot,
        state / "bot",
        feature_sections={"meetings": MeetingsConfig(community=community.path, declared_poll_s=1)},
    )
    scene = Scene(community, ids, bot, mod, config)
    async with (
        bot_at(scene, homeserver) as device,
        in_group(homeserver, scene, alice, state / "alice") as a,
    ):
        await know_bot(scene, device, a)
        # The bot's reply is readable once its key reaches her device: she
        # is a member it trusts, as a member would be before the news.
        assert "pong" in (await ask(a, scene, "!ping")).lower()
        community.data["groups"][0]["meetings"] = [declared]
        community.save()
        await provisioned()
        added = await a.wait_for(from_bot(scene, lambda ev: "from the community file" in body(ev)))
        assert body(added).startswith("Meeting 101 added from the community file: Check-in.")
        poll = await a.wait_for(from_bot(scene, lambda ev: ev.event_type == POLL_START))
        assert "Check-in" in poll_of(poll)["question"]["org.matrix.msc1767.text"]
        assert "101 · Check-in" in await ask(a, scene, "!meetings")
        # The file owns it: edited or cancelled there, not in chat.
        async with in_group(homeserver, scene, mod, state / "mod") as m:
            await know_bot(scene, device, m)
            refused = await ask(m, scene, "!meeting cancel 101")
            assert "comes from the community file" in refused

        community.data["groups"][0]["meetings"] = [{**declared, "title": "Weekly check-in"}]
        community.save()
        await provisioned()
        changed = await a.wait_for(
            from_bot(scene, lambda ev: "changed in the community" in body(ev))
        )
        assert "Weekly check-in" in body(changed)
        assert "101 · Weekly check-in" in await ask(a, scene, "!meetings")

        community.data["groups"][0]["meetings"] = []
        community.save()
        await provisioned()
        await a.wait_for(from_bot(scene, lambda ev: "taken out of the community" in body(ev)))
        end = await a.wait_for(from_bot(scene, lambda ev: ev.event_type == POLL_END))
        assert end.content["m.relates_to"]["event_id"] == poll.event_id
        assert "No meetings coming up" in await ask(a, scene, "!meetings")


@pytest.mark.interop
async def test_element_s_crypto_reads_the_poll_and_its_tap_is_counted(
    homeserver: Homeserver, state: Path
) -> None:
    """matrix-js-sdk with its Rust crypto (Element's) decrypts the bot's
    poll and answers it as Element's poll view does; the bot counts it."""
    scene = await set_up(homeserver, state)
    alice = await homeserver.user("alice")
    start = tomorrow_at(30)
    async with (
        bot_at(scene, homeserver) as device,
        in_group(homeserver, scene, scene.mod, state / "mod") as mod,
    ):
        await know_bot(scene, device, mod)
        await (await homeserver.api(scene.community.admin)).invite(scene.room, alice.user_id)
        js = JsMember(
            homeserver, alice, scene.room, scene.bot.user_id,
            sends=("!ping", "!meetings"), vote="Going", timeout=120,
        )  # fmt: skip
        await js.start()
        # Once the bot's reply to Alice's !ping reached her, her device
        # holds the bot's room key: the poll will be readable there too.
        pinged = await js.step()
        assert pinged["ok"], pinged
        await ask(mod, scene, f'!meeting add "Check-in" on {start:%Y-%m-%d} {start:%H:%M}')
        voted = (await js.step())["vote"]
        assert voted["encrypted"]
        assert voted["answers"] == ["Going", "Maybe", "Can't make it"]
        assert "Check-in" in voted["question"]
        assert voted["response_type"] in ("org.matrix.msc3381.poll.response", "m.poll.response")
        listed = await js.step()
        assert listed["ok"], listed
        assert "1 going" in listed["reply_body"]
        await js.result()
