"""A flood into a group's encrypted room: how soon the flooder is muted, and
how the bot answers a moderator meanwhile.

    cd /work/main && .venv/bin/python -m bench.moderation_figures [--rate 50] [--seconds 20]

A private Synapse, a provisioned community and the bot with moderation on
(the group's default protections: more than 10 messages a minute is a
flood; the first offence is a warning, the second a mute). Then:

1. quiet: a moderator's `!ping` in the group's room, answered (median of 5);
2. flood: a member sends *rate* encrypted messages a second into the room
   for *seconds* (or until the homeserver refuses them, muted), while the
   moderator sends `!ping` half a second in and times the answer;
3. timed from the flood's first message until an observer's client sees
   the flooder's power level drop below the posting level.

The floor for the mute, from the same run, is when the same observer had
received the message that made it a flood (the eleventh within the
minute, then the twelfth, the second offence): no bot can act sooner. The
floor for the reply is the quiet figure. Never asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from nio import AsyncClient, RoomMessage, RoomSendError, UnknownEvent

from bench.harness import device, err, private_homeserver, run_bench, versions
from bench.report import Row, print_report, ratio
from bots.framework.logging import configure_logging
from bots.moderation.config import ModerationConfig
from provisioning.provision import provision
from tests.support.community import make_community
from tests.support.homeserver import Homeserver, running_bot, wait_joined

SECOND_OFFENCE = 12  # the 12th message in a minute, with the default limit of 10


class Watcher:
    """A client that records when each message and power change arrives."""

    def __init__(self, client: AsyncClient, room: str) -> None:
        self.client, self.room = client, room
        self.bodies: list[tuple[float, str, str]] = []  # (arrival, sender, body)
        self.muted_at: float | None = None
        self.replies: dict[str, float] = {}
        client.add_event_callback(self._on_message, (RoomMessage, UnknownEvent))
        self._task: asyncio.Task[None] | None = None

    async def _on_message(self, room: Any, event: Any) -> None:
        if room.room_id != self.room:
            return
        content = event.source.get("content", {})
        relates = content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
        if relates:
            self.replies.setdefault(relates, time.perf_counter())
        self.bodies.append((time.perf_counter(), event.sender, str(content.get("body", ""))))

    def start(self, flooder: str) -> None:
        async def loop() -> None:
            while True:
                await self.client.sync(timeout=1000)
                room = self.client.rooms.get(self.room)
                if room and self.muted_at is None:
                    level = room.power_levels.get_user_level(flooder)
                    if level < room.power_levels.defaults.events_default:
                        self.muted_at = time.perf_counter()
                await self.client.send_to_device_messages()
                if self.client.should_query_keys:
                    await self.client.keys_query()

        self._task = asyncio.create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def nth_from(self, sender: str, n: int) -> float | None:
        got = [t for t, s, _ in self.bodies if s == sender]
        return got[n - 1] if len(got) >= n else None


async def send(client: AsyncClient, room: str, body: str) -> str | None:
    resp = await client.room_send(
        room, "m.room.message", {"msgtype": "m.text", "body": body}, ignore_unverified_devices=True
    )
    return None if isinstance(resp, RoomSendError) else str(resp.event_id)


async def ping(mod: AsyncClient, watcher: Watcher, room: str) -> float:
    sent = time.perf_counter()
    event_id = await send(mod, room, "!ping")
    assert event_id is not None
    while event_id not in watcher.replies:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    return (watcher.replies[event_id] - sent) * 1000


async def measure(hs: Homeserver, tmp: Path, rate: float, seconds: float) -> dict[str, Any]:
    mod, bot, flooder = await hs.users("mod", "bot", "flooder")
    groups = [{"key": "carers", "name": "Carers"}]
    community = await make_community(hs, tmp, groups, moderators=[mod], bots=[bot])
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    room = ids["group/carers/general"]
    admin_api = await hs.api(community.admin)
    await admin_api.invite(room, flooder.user_id)
    for user in (mod, bot):
        await hs.exempt_from_rate_limits(user)
    await hs.exempt_from_rate_limits(flooder)  # the flood is the bot's to stop, not Synapse's
    config = hs.bot_config(
        bot,
        tmp / "bot",
        moderators_room=ids["moderators"],
        feature_sections={"moderation": ModerationConfig(community=community.path)},
        log={"level": "warning"},
    )
    out: dict[str, Any] = {}
    async with running_bot(config, timeout=60):
        await wait_joined(hs, community.admin, room, bot.user_id)
        mod_client = await device(hs, mod, tmp / "mod")
        flood_client = await device(hs, flooder, tmp / "flooder")
        for client in (mod_client, flood_client):
            await client.join(room)
            await client.sync(timeout=0, full_state=True)
        watcher = Watcher(mod_client, room)
        watcher.start(flooder.user_id)
        await asyncio.sleep(2)  # the watcher's first syncs
        quiet = [await ping(mod_client, watcher, room) for _ in range(5)]
        out["quiet_ping_ms"] = statistics.median(quiet)

        err.print(f"Flood: {rate:g} messages a second for {seconds:g} s")
        t0 = time.perf_counter()
        sent = refused = 0

        async def flood() -> None:
            nonlocal sent, refused
            for i in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
                if await send(flood_client, room, f"flood {i}") is None:
                    refused += 1
                    if refused >= 5:
                        return  # muted: the homeserver refuses them now
                else:
                    sent += 1

        flooding = asyncio.create_task(flood())
        await asyncio.sleep(0.5)
        out["flood_ping_ms"] = await ping(mod_client, watcher, room)
        await flooding
        while watcher.muted_at is None and time.perf_counter() - t0 < seconds + 60:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        out["sent"], out["refused"] = sent, refused
        out["muted_s"] = None if watcher.muted_at is None else watcher.muted_at - t0
        nth = watcher.nth_from(flooder.user_id, SECOND_OFFENCE)
        out["floor_s"] = None if nth is None else nth - t0
        await watcher.stop()
        for client in (mod_client, flood_client):
            await client.close()
    return out


def report(r: dict[str, Any]) -> None:
    muted, floor = r["muted_s"], r["floor_s"]
    rows = (
        Row(
            "From the flood's start to the flooder muted",
            "never" if muted is None else f"{muted:.2f} s",
            "n/a" if floor is None else f"{floor:.2f} s (12th message seen)",
            "" if muted is None else ratio(muted, floor),
        ),
        Row(
            "A moderator's !ping answered, during the flood",
            f"{r['flood_ping_ms']:.0f} ms",
            f"{r['quiet_ping_ms']:.0f} ms (quiet room)",
            ratio(r["flood_ping_ms"], r["quiet_ping_ms"]),
        ),
    )
    title = f"A flood of {r['rate']:g}/s for {r['seconds']:g} s ({r['date']}, {r['cpus']} CPUs)"
    note = f"The flooder's messages: {r['sent']} accepted, then {r['refused']} refused."
    print_report(title, rows, [note])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    results = versions() | {"rate": args.rate, "seconds": args.seconds}
    async with private_homeserver("hearth-moderation-", False) as (hs, tmp):
        results |= await measure(hs, tmp, args.rate, args.seconds)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    return run_bench(lambda: run(args), report, "Interrupted; Synapse was stopped.")


if __name__ == "__main__":
    sys.exit(main())
