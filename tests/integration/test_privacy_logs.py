"""Nothing a member writes, nor any secret, reaches the bot's logs."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from bots.core.feature import FEATURE as CORE
from bots.framework.logging import configure_logging
from tests.support.features import notes_feature
from tests.support.homeserver import Homeserver, member, running_bot, wait_joined
from tests.support.member_client import body
from tests.support.moderation_scene import (
    in_group,
    set_up,
    until_level,
    until_redacted,
    watching,
)

pytestmark = pytest.mark.integration

MARKER = "ZEBRA-7f3a-MARKER"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    # Everything at DEBUG, libraries included: the redactor must hold anyway.
    configure_logging(level="debug", fmt="json", stream=stream, library_level="debug")
    yield stream
    configure_logging(level="info", fmt="console", stream=sys.stderr)


async def test_marker_in_bodies_names_and_args_never_logged(
    homeserver: Homeserver, state: Path, captured_logs: io.StringIO
) -> None:
    bot, mod, alice = await homeserver.users("bot", "mod", "alice")
    alice_api = await homeserver.api(alice)
    await alice_api.request(
        "PUT",
        f"/_matrix/client/v3/profile/{quote(alice.user_id)}/displayname",
        {"displayname": f"Alice {MARKER}"},
    )
    room = await homeserver.encrypted_room(mod, [bot, alice], power={bot.user_id: 100})
    config = homeserver.bot_config(bot, state / "bot")
    features = [CORE, notes_feature()]
    async with running_bot(config, features), member(homeserver, alice, state / "alice") as m:
        await wait_joined(homeserver, mod, room, bot.user_id)
        await m.join(room)
        for body in (
            "!ping",
            f"my test results came back: {MARKER}",
            f"!ping {MARKER}",
            f"!{MARKER}",
            f"!help {MARKER}",
            f"!boom {MARKER}",
        ):
            sent = await m.send(room, body)
            if body.startswith("!"):
                await m.wait_for_reply(sent)
        # Malformed and unexpected events, all encrypted, all carrying the marker.
        for event_type, content in (
            ("m.room.message", {"body": f"no msgtype {MARKER}"}),
            ("m.room.message", {"msgtype": "m.text", "body": {"nested": MARKER}}),
            ("m.room.message", {"msgtype": MARKER, "body": MARKER}),
            ("org.example.unknown", {"body": MARKER, "data": [MARKER]}),
            ("m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "key": MARKER}}),
            ("m.room.message", {"msgtype": "m.text", "body": f"!ping {MARKER * 1500}"}),
            ("org.matrix.msc3381.poll.start", {"org.matrix.msc3381.poll.start": MARKER}),
        ):
            await m.send_event(room, event_type, content)
        # Events in a room are handled in order: once this is answered, the
        # bot has been through every one of them.
        await m.wait_for_reply(await m.send(room, "!ping"))

    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    # The capture really saw the bot at work...
    assert sum(1 for e in lines if e.get("event") == "command handled") == 7
    # The failing handler's traceback was logged, its exception text cut.
    assert any(e.get("event") == "handler failed" and "exception" in e for e in lines)
    assert any(e.get("logger", "").startswith("nio") for e in lines)
    # ...and none of it names what members wrote, who they are, or a secret.
    assert MARKER not in text
    assert alice.user_id not in text
    assert alice.password not in text
    assert bot.password not in text
    token = json.loads((state / "bot" / "credentials.json").read_text())["access_token"]
    assert token not in text
    assert (state / "bot" / "pickle.key").read_text().strip() not in text
    # Synapse's own log neither: it sees ciphertext and the display name.
    synapse_log = homeserver.process.log_path.read_text(errors="replace")
    assert "synapse" in synapse_log.lower()
    assert MARKER not in synapse_log


async def test_moderation_at_work_logs_nothing_a_member_wrote(
    homeserver: Homeserver, state: Path, captured_logs: io.StringIO
) -> None:
    """Protections and moderators' commands act on messages, reasons and
    reports carrying the marker: none of it reaches a log."""
    scene = await set_up(
        homeserver,
        state,
        {"flood": {"messages": 4, "seconds": 60}, "words": {"patterns": [MARKER]}},
    )
    mods_room = scene.ids["moderators"]
    alice = await homeserver.user("alice")
    await (await homeserver.api(alice)).request(
        "PUT",
        f"/_matrix/client/v3/profile/{quote(alice.user_id)}/displayname",
        {"displayname": f"Alice {MARKER}"},
    )
    async with (
        watching(homeserver, scene, state) as m,
        in_group(homeserver, scene, alice, state / "alice") as a,
    ):
        listed = await a.send(scene.room, f"buy my {MARKER} now")  # a listed word
        await until_redacted(homeserver, scene, listed)
        await a.send(scene.room, f"I want to die {MARKER}")  # crisis language
        await m.wait_for(lambda ev: "may need support" in body(ev))
        for i in range(4):  # a flood: warned, then muted
            await a.send(scene.room, f"{MARKER} {i}")
        await until_level(homeserver, scene, alice.user_id, -1)
        for command in (
            f"!warn {alice.user_id} {MARKER}",
            f"!unmute {alice.user_id} {MARKER}",
            f"!ban {alice.user_id} 1h {MARKER}",
            f"!audit {alice.user_id}",
            f"!redact {alice.user_id} {MARKER}",
        ):
            await m.wait_for_reply(await m.send(mods_room, command))

    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    # The capture saw the bot at work (the five commands)...
    assert sum(1 for e in lines if e.get("event") == "command handled") == 5
    # ...and nothing of what was written, nor who wrote it.
    assert MARKER not in text
    assert alice.user_id not in text
    synapse_log = homeserver.process.log_path.read_text(errors="replace")
    assert MARKER not in synapse_log


async def test_meetings_at_work_log_nothing_a_member_wrote(
    homeserver: Homeserver, state: Path, captured_logs: io.StringIO
) -> None:
    """A meeting's title and link, a vote, an RSVP, a time zone and the
    calendar file all carry the marker (or are a member's own): none of it
    reaches a log."""
    from tests.support import meetings_scene as meetings

    scene = await meetings.set_up(homeserver, state)
    alice = await homeserver.user("alice")
    day = f"{meetings.tomorrow_at(48):%Y-%m-%d}"
    async with (
        meetings.bot_at(scene, homeserver) as device,
        meetings.in_group(homeserver, scene, scene.mod, state / "mod") as mod,
        meetings.in_group(homeserver, scene, alice, state / "alice") as a,
    ):
        await meetings.know_bot(scene, device, mod, a)
        for command in (
            f'!meeting add "{MARKER}" on {day} 18:00 link https://meet.example/{MARKER}',
            f"!meeting edit 1 title {MARKER}-2",
            f"!meeting move 1 {day} 19:00",
        ):
            await meetings.ask(mod, scene, command)
        poll = await a.wait_for(
            meetings.from_bot(scene, lambda ev: ev.event_type == meetings.POLL_START)
        )
        await meetings.vote(a, scene, poll, "yes")
        for command in (
            f"!rsvp 1 yes {MARKER}",
            "!tz Pacific/Chatham",
            f"!tz {MARKER}",
            "!meetings",
            "!meetings ics",
            "!tz clear",
        ):
            await meetings.ask(a, scene, command)
        await meetings.ask(mod, scene, "!meeting cancel 1")

    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    handled = [e.get("command") for e in lines if e.get("event") == "command handled"]
    # The capture saw the bot at work (the last command's line may come
    # after the bot stopped)...
    assert handled[:9] == [
        "meeting add",
        "meeting edit",
        "meeting move",
        "rsvp",
        "tz",
        "tz",
        "meetings",
        "meetings ics",
        "tz",
    ]
    assert MARKER not in text
    assert "Pacific/Chatham" not in text  # a member's time zone is theirs
    assert alice.user_id not in text
    synapse_log = homeserver.process.log_path.read_text(errors="replace")
    assert MARKER not in synapse_log
