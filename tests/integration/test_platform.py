"""The bot platform on a real Synapse: features the runtime has never heard
of, direct messages, kills, SIGTERM, rate limits and a second process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiosqlite
import pytest
from nio.crypto.attachments import decrypt_attachment

from bots.app import build_bot
from bots.base.errors import StateError
from bots.core.feature import FEATURE as CORE
from bots.framework.actions import SendNotice, to_record
from bots.framework.config import BotConfig
from bots.framework.dispatch.decide import APOLOGY
from bots.framework.session import TIMELINE_LIMIT
from bots.framework.storage import Storage
from bots.matrix.nio_client import TransportClient
from tests.support.bot_process import bot_process
from tests.support.features import GadgetsConfig, NotesConfig, gadgets_feature, notes_feature
from tests.support.homeserver import (
    Cast,
    Homeserver,
    bot_and_member,
    cast,
    member,
    running_bot,
    wait_joined,
    write_bot_yaml,
)
from tests.support.member_client import MemberClient, reply_target

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def replies(m: MemberClient, event_id: str) -> int:
    return sum(1 for ev in m.received if reply_target(ev.content) == event_id)


async def test_a_feature_defined_only_in_the_tests_runs_unchanged(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    config = c.config.model_copy(
        update={"feature_sections": {"notes": NotesConfig(greeting="hi there")}}
    )
    async with (
        running_bot(config, [CORE, notes_feature()]),
        member(homeserver, c.alice, state / "alice") as m,
    ):
        await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
        await m.join(c.room)
        # Its command, with its own config section and its own table...
        asked = await m.send(c.room, "!remind")
        reply = await m.wait_for_reply(asked)
        assert reply.content["body"] == "hi there: I'll nudge you"
        # ...its scheduled job, which pings only the member named...
        nudge = await m.wait_for(lambda ev: ev.content.get("body", "").startswith("nudge for"))
        assert nudge.content["body"] == f"nudge for {c.alice.user_id} (1 asked)"
        assert nudge.content["m.mentions"] == {"user_ids": [c.alice.user_id]}
        # ...and its event handler, for reactions.
        await m.send_event(
            c.room,
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": asked, "key": "👍"}},
        )
        reacted = await m.wait_for(lambda ev: "reacted" in ev.content.get("body", ""))
        assert reacted.content["body"] == "you reacted with 👍"
        assert reply_target(reacted.content) == asked


async def test_a_failing_handler_gets_the_member_an_apology_and_the_bot_goes_on(
    homeserver: Homeserver, state: Path
) -> None:
    async with bot_and_member(homeserver, state, [CORE, notes_feature()]) as s:
        failed = await s.member.wait_for_reply(await s.member.send(s.room, "!boom my words"))
        assert failed.content["body"] == APOLOGY
        pong = await s.member.wait_for_reply(await s.member.send(s.room, "!ping"))
        assert pong.content["body"] == "pong"


async def test_the_bot_keeps_one_encrypted_dm_per_member(
    homeserver: Homeserver, state: Path
) -> None:
    async with bot_and_member(homeserver, state, [CORE, notes_feature()]) as s:
        m, room, bot, alice = s.member, s.room, s.bot, s.alice
        await m.send(room, "!whisper")
        dm = await wait_for_invite(m)
        await m.join(dm)
        first = await m.wait_for(lambda ev: ev.room_id == dm)
        assert first.content["body"] == "a private word"
        assert first.decrypted, "the DM was not encrypted"
        api = await homeserver.api(bot)
        encryption = await api.state(dm, "m.room.encryption")
        assert encryption["algorithm"] == "m.megolm.v1.aes-sha2"
        direct = await api.request(
            "GET", f"/_matrix/client/v3/user/{bot.user_id}/account_data/m.direct"
        )
        assert direct[alice.user_id][0] == dm

        # Asked again, the bot reuses the room it has.
        await m.send(room, "!whisper")
        await m.wait_for(lambda ev: ev.room_id == dm and ev.event_id != first.event_id)
        assert not m.client.invited_rooms

        # Once the member leaves it, the next word opens a new one.
        await m.client.room_leave(dm)
        await asyncio.sleep(1)
        await m.send(room, "!whisper")
        again = await wait_for_invite(m)
        assert again != dm


async def wait_for_invite(m: MemberClient, timeout: float = 30) -> str:
    async with asyncio.timeout(timeout):
        # The member's sync loop fills invited_rooms; nio signals nothing.
        while not m.client.invited_rooms:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return next(iter(m.client.invited_rooms))


async def test_a_second_bot_on_the_same_state_folder_is_refused(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    async with running_bot(c.config):
        with pytest.raises(StateError, match="already running"):
            async with running_bot(c.config):
                pass


# --- the bot in its own process, to kill it ---


def bot_yaml(config: BotConfig, path: Path) -> Path:
    return write_bot_yaml(config, path, sync_timeout_ms=5000, stop_timeout_s=30)


Restart = Callable[[], contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]]


@contextlib.asynccontextmanager
async def killable_scene(
    homeserver: Homeserver, state: Path
) -> AsyncIterator[tuple[Cast, MemberClient, asyncio.subprocess.Process, Restart]]:
    """The bot in its own process, answering a member in an encrypted room;
    *restart* starts it again on the same state."""
    c = await cast(homeserver, state)
    config_path = bot_yaml(c.config, state / "bot.yaml")

    def restart() -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
        return bot_process(config_path, state / "bot.log")

    async with member(homeserver, c.alice, state / "alice") as m, restart() as proc:
        await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
        await m.join(c.room)
        await m.wait_for_reply(await m.send(c.room, "!ping"))
        yield c, m, proc, restart


async def test_killed_mid_handler_the_reply_exists_exactly_once(
    homeserver: Homeserver, state: Path
) -> None:
    async with killable_scene(homeserver, state) as (c, m, proc, restart):
        slow = await m.send(c.room, "!slow 4")
        # Killed while the handler sleeps: it has decided nothing yet.
        await asyncio.sleep(2)
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
        assert replies(m, slow) == 0
        async with restart():
            reply = await m.wait_for_reply(slow)
            assert reply.content["body"] == "slow done"
            control = await m.send(c.room, "!ping")
            await m.wait_for_reply(control)
            await asyncio.sleep(1)
        assert replies(m, slow) == 1


async def test_sigterm_with_work_queued_loses_nothing(homeserver: Homeserver, state: Path) -> None:
    async with killable_scene(homeserver, state) as (c, m, proc, restart):
        # One room's events are handled in order: these queue up.
        sent = [await m.send(c.room, "!slow 1") for _ in range(4)]
        await asyncio.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            assert await proc.wait() == 0
        async with restart():
            for event_id in sent:
                await m.wait_for_reply(event_id, timeout=60)
            await asyncio.sleep(1)
        assert [replies(m, e) for e in sent] == [1, 1, 1, 1]


# --- rate limits ---


async def test_rate_limited_bot_answers_everything_once_and_quiet_rooms_first(
    tmp_path: Path,
) -> None:
    """A private Synapse whose message limit the bot keeps running into."""
    strict = {"rc_message": {"per_second": 4, "burst_count": 4}}
    hs = await Homeserver.start(tmp_path / "hs", overrides=strict)
    try:
        bot, mod, alice = await hs.users("bot", "mod", "alice")
        await hs.exempt_from_rate_limits(mod, alice)
        rooms = [
            await hs.encrypted_room(mod, [bot, alice], power={bot.user_id: 100}) for _ in range(5)
        ]
        config = hs.bot_config(bot, tmp_path / "bot")
        async with running_bot(config) as runtime, member(hs, alice, tmp_path / "alice") as m:
            for room in rooms:
                await wait_joined(hs, mod, room, bot.user_id)
                await m.join(room)
            busy, quiet = rooms[:4], rooms[4]
            sent: list[str] = []
            for i in range(99):
                sent.append(await m.send(busy[i % 4], "!ping"))
            quiet_ping = await m.send(quiet, "!ping")
            sent.append(quiet_ping)
            for event_id in sent:
                await m.wait_for_reply(event_id, timeout=120)
            await asyncio.sleep(2)
            counts = Counter(reply_target(ev.content) for ev in m.received)
            assert all(counts[e] == 1 for e in sent), "a reply was missing or doubled"
            client = runtime.session.client
            assert isinstance(client, TransportClient)
            assert client.transport.rate_limited > 0, "the limit was never reached"
            # The quiet room's reply did not wait for the busy rooms' queues.
            order = [reply_target(ev.content) for ev in m.received]
            last_busy = max(order.index(e) for e in sent[:-1])
            assert order.index(quiet_ping) < last_busy
    finally:
        await hs.stop()


async def test_a_refused_password_exits_with_its_own_status(
    homeserver: Homeserver, state: Path
) -> None:
    """3, which the playbook's unit does not restart on (a crash is 1)."""
    bot = await homeserver.user("bot")
    config = homeserver.bot_config(bot, state / "bot")
    config.password_file.write_text("not-the-password")
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.prefix) / "bin" / "hearth"),
        "run",
        "--config",
        str(bot_yaml(config, state / "bot.yaml")),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 3
    assert "refused the bot's login" in err.decode()
    assert "not-the-password" not in err.decode()


async def test_polls_files_kicks_state_and_reactions_reach_members(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    bob = await homeserver.user("bob")
    await (await homeserver.api(c.mod)).invite(c.room, bob.user_id)
    await (await homeserver.api(bob)).join(c.room)
    notes = b"Tuesday: bring the leaflets.\n"
    attachment = state / "notes.txt"
    attachment.write_bytes(notes)
    config = c.config.model_copy(
        update={"feature_sections": {"gadgets": GadgetsConfig(attachment=str(attachment))}}
    )
    async with (
        running_bot(config, [CORE, gadgets_feature()]),
        member(homeserver, c.alice, state / "alice") as m,
    ):
        await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
        await m.join(c.room)

        # A poll Element can show, and the member's vote taken in.
        await m.send(c.room, "!poll")
        poll = await m.wait_for(lambda ev: ev.event_type == "org.matrix.msc3381.poll.start")
        start = poll.content["org.matrix.msc3381.poll.start"]
        assert start["question"]["org.matrix.msc1767.text"] == "Which day suits you?"
        assert [a["org.matrix.msc1767.text"] for a in start["answers"]] == ["Monday", "Tuesday"]
        assert poll.decrypted
        tuesday = start["answers"][1]["id"]
        await m.send_event(
            c.room,
            "org.matrix.msc3381.poll.response",
            {
                "m.relates_to": {"rel_type": "m.reference", "event_id": poll.event_id},
                "org.matrix.msc3381.poll.response": {"answers": [tuesday]},
            },
        )
        counted = await m.wait_for_reply(poll.event_id)
        assert counted.content["body"] == f"vote counted: {tuesday}"

        # A file, encrypted before upload: only members can read it.
        await m.send(c.room, "!file")
        shared = await m.wait_for(lambda ev: ev.content.get("msgtype") == "m.file")
        file = shared.content["file"]
        assert "url" not in shared.content
        server, media_id = file["url"].removeprefix("mxc://").split("/")
        api = await homeserver.api(c.alice)
        assert homeserver.http is not None
        async with homeserver.http.get(
            f"{homeserver.base_url}/_matrix/client/v1/media/download/{server}/{media_id}",
            headers={"Authorization": f"Bearer {api.access_token}"},
        ) as resp:
            ciphertext = await resp.read()
        assert notes not in ciphertext
        plain = decrypt_attachment(
            ciphertext, file["key"]["k"], file["hashes"]["sha256"], file["iv"]
        )
        assert plain == notes

        # A kick, a state change and a reaction, all from one command.
        tidy = await m.send(c.room, f"!tidy {bob.user_id}")
        reaction = await m.wait_for(lambda ev: ev.event_type == "m.reaction")
        assert reaction.content["m.relates_to"] == {
            "rel_type": "m.annotation",
            "event_id": tidy,
            "key": "✅",
        }
        mod_api = await homeserver.api(c.mod)
        assert bob.user_id not in await mod_api.joined_members(c.room)
        assert (await mod_api.state(c.room, "m.room.topic"))["topic"] == "tidied"


async def test_an_action_decided_before_a_crash_shows_once_even_if_sent_twice(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    text = "decided before the crash"
    record = to_record(SendNotice(c.room, text))
    async with member(homeserver, c.alice, state / "alice") as m:
        async with running_bot(c.config):
            await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
            await m.join(c.room)
            await m.wait_for_reply(await m.send(c.room, "!ping"))
        # As a crash leaves it: decided and written down, not yet performed.
        store = await Storage.open(c.config.state_dir / "bot.db")
        await store.enqueue([("crash-test/0", c.room, record)])
        await store.close()
        async with running_bot(c.config):
            await m.wait_for(lambda ev: ev.content.get("body") == text)
        # As a crash just after the send leaves it: performed but not marked
        # done. The retry reuses the transaction id, so Synapse drops it.
        db = await aiosqlite.connect(c.config.state_dir / "bot.db")
        await db.execute(
            "UPDATE outbox SET state = 'pending', action = ? WHERE key = 'crash-test/0'",
            (json.dumps(record),),
        )
        await db.commit()
        await db.close()
        async with running_bot(c.config) as runtime:
            await m.wait_for_reply(await m.send(c.room, "!ping"))
            assert runtime.storage is not None
            async with asyncio.timeout(30):
                while await runtime.storage.pending_outbox():  # noqa: ASYNC110 (a table)
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1)
    assert sum(1 for ev in m.received if ev.content.get("body") == text) == 1


async def test_a_full_state_folder_stops_the_bot_clearly_and_loses_nothing(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    async with member(homeserver, c.alice, state / "alice") as m:
        runtime = build_bot(c.config)
        task = asyncio.create_task(runtime.run())
        await asyncio.wait_for(runtime.ready.wait(), 30)
        await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
        await m.join(c.room)
        await m.wait_for_reply(await m.send(c.room, "!ping"))
        # The disk fills up (SQLite's page cap on the bot's connection gives
        # the very error a full disk gives).
        assert runtime.storage is not None
        async with runtime.storage.db.execute("PRAGMA page_count") as cur:
            row = await cur.fetchone()
        assert row is not None
        await runtime.storage.db.execute(f"PRAGMA max_page_count = {row[0]}")
        during = await m.send(c.room, "!ping " + "x" * 20_000)
        with pytest.raises(StateError, match="cannot be written"):
            await asyncio.wait_for(task, 60)
        # Room again: the command from the full moment is answered, once
        # (with the usage message: it is too long for a !ping).
        async with running_bot(c.config):
            reply = await m.wait_for_reply(during)
            assert "too long" in reply.content["body"]
            await m.wait_for_reply(await m.send(c.room, "!ping"))
        assert replies(m, during) == 1


async def test_a_command_buried_under_a_busy_downtime_is_still_answered(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    async with member(homeserver, c.alice, state / "alice") as m:
        async with running_bot(c.config):
            await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
            await m.join(c.room)
            await m.wait_for_reply(await m.send(c.room, "!ping"))
        # More events than one sync carries: the bot must page back for it.
        buried = await m.send(c.room, "!ping")
        for i in range(TIMELINE_LIMIT + 20):
            await m.send(c.room, f"chatter {i}")
        async with running_bot(c.config):
            reply = await m.wait_for_reply(buried, timeout=60)
            assert reply.content["body"] == "pong"
            await m.wait_for_reply(await m.send(c.room, "!ping"))
        assert replies(m, buried) == 1
