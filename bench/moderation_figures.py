"""Floods into a group's encrypted room: how soon each flooder is muted, and
how the bot answers a moderator meanwhile.

    cd /work/main && .venv/bin/python -m bench.moderation_figures [--rate 50] [--rounds 5]

A private Synapse, a provisioned community and the bot with moderation on
(the group's default protections: more than 10 messages a minute is a
flood; the first offence is a warning, the second a mute), run as its own
`hearth run` process, as deployed: the flooders' and the moderator's
clients share no process with it. Then:

1. quiet: a moderator's `!ping` in the group's room, sent on a fixed beat
   (every PING_EVERY_S, answered or not), median of QUIET_PINGS; then, the
   same way, a member (the asker) writing to another (the echoer, whose
   client answers each of their messages as the bot answers a `!ping`) in
   the same room: the client-to-client round trip;
2. *rounds* floods, one member each: they send *rate* encrypted messages a
   second into the room (for at most *seconds*, until the homeserver
   refuses them, muted); half a second in, the moderator sends one
   `!ping` and the asker one message, at once; the median of the rounds'
   round trips, each;
3. each flood timed from its first message until an observer's client
   sees the flooder's power level drop below the posting level; median.

The floor for the mute, from the same round, is when the same observer had
received the message that made it a flood (the eleventh within the
minute, then the twelfth, the second offence): no bot can act sooner. The
floor for the `!ping` is the quiet figure (the target's), and also the
client-to-client round trip in the same floods: what the homeserver
itself is slowed by the flood shows there, and what is left is the bot's.
Set HEARTH_BENCH_LOG=info and
HEARTH_BENCH_KEEP=1 to keep the bot's log (its "command handled" lines
time each `!ping` inside the bot). Never asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from nio import AsyncClient, RoomMessage, RoomSendError, UnknownEvent

from bench.bot_figures import BIN, Children, install_echo, sees_member
from bench.harness import device, err, private_homeserver, run_bench, versions
from bench.report import Row, print_report, ratio
from bots.framework.logging import configure_logging
from bots.framework.secrets import write_secret
from provisioning.provision import provision
from tests.support.community import make_community
from tests.support.homeserver import Homeserver, User, member, wait_joined

SECOND_OFFENCE = 12  # the 12th message in a minute, with the default limit of 10
PING_EVERY_S = 0.5
ECHO = "are you there?"  # what the asker writes; the echoing member answers it
QUIET_PINGS = 9
TARGET = 1.5  # the flood's median !ping, at most this times the quiet one


class Watcher:
    """A client that records when each message and power change arrives."""

    def __init__(self, client: AsyncClient, room: str) -> None:
        self.client, self.room = client, room
        self.bodies: list[tuple[float, str, str]] = []  # (arrival, sender, body)
        self.muted_at: dict[str, float] = {}  # flooder: when seen muted
        self.flooders: set[str] = set()
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

    def start(self) -> None:
        async def loop() -> None:
            while True:
                await self.client.sync(timeout=1000)
                room = self.client.rooms.get(self.room)
                for flooder in self.flooders - set(self.muted_at) if room else ():
                    level = room.power_levels.get_user_level(flooder)
                    if level < room.power_levels.defaults.events_default:
                        self.muted_at[flooder] = time.perf_counter()
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


async def answered(watcher: Watcher, event_id: str, sent: float, timeout: float = 60) -> float:
    deadline = time.perf_counter() + timeout
    while event_id not in watcher.replies:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{event_id} never answered")
        await asyncio.sleep(0.005)
    return (watcher.replies[event_id] - sent) * 1000


async def round_trip(client: AsyncClient, watcher: Watcher, room: str, body: str) -> float:
    """*client* sends *body*; ms until *watcher* sees the answer to it."""
    sent = time.perf_counter()
    event_id = await send(client, room, body)
    if event_id is None:
        raise RuntimeError(f"{body!r} was refused")
    return await answered(watcher, event_id, sent)


async def paced(client: AsyncClient, watcher: Watcher, room: str, body: str, n: int) -> list[float]:
    """Round trips of *n* messages sent every PING_EVERY_S, answered or not
    (a stall then delays every one sent meanwhile)."""
    waits: list[asyncio.Task[float]] = []
    start = time.perf_counter()
    while len(waits) < n:
        await asyncio.sleep(max(0.0, start + len(waits) * PING_EVERY_S - time.perf_counter()))
        waits.append(asyncio.create_task(round_trip(client, watcher, room, body)))
    return list(await asyncio.gather(*waits))


async def until_answering(client: AsyncClient, watcher: Watcher, room: str, body: str) -> None:
    """Send until the answer comes (a message sent before the sender's
    client knew the answerer's device could never be read by it)."""
    for _ in range(60):
        with contextlib.suppress(TimeoutError):
            sent = time.perf_counter()
            event_id = await send(client, room, body)
            if event_id is not None:
                await answered(watcher, event_id, sent, timeout=2)
                return
    raise TimeoutError(f"{body!r} never answered")


async def caught_up(client: AsyncClient) -> None:
    """A client that does not sync on its own learns the room's members and
    their devices (a new flooder's among them) before it writes."""
    await client.sync(timeout=0)
    if client.should_query_keys:
        await client.keys_query()


async def one_flood(
    hs: Homeserver,
    tmp: Path,
    clients: tuple[AsyncClient, AsyncClient],
    watcher: Watcher,
    room: str,
    rate: float,
    seconds: float,
    flooder: User,
) -> dict[str, Any]:  # fmt: skip
    """One member floods until muted; half a second in, the moderator pings
    the bot and the asker writes to the echoing member, at once."""
    mod, asker = clients
    flood_client = await device(hs, flooder, tmp / flooder.localpart)
    await flood_client.join(room)
    await flood_client.sync(timeout=0, full_state=True)
    for client in clients:
        await caught_up(client)
    watcher.flooders.add(flooder.user_id)
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
    ping_ms, echo_ms = await asyncio.gather(
        round_trip(mod, watcher, room, "!ping"), round_trip(asker, watcher, room, ECHO)
    )
    await flooding
    deadline = t0 + seconds + 60
    while flooder.user_id not in watcher.muted_at and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await flood_client.close()
    muted = watcher.muted_at.get(flooder.user_id)
    nth = watcher.nth_from(flooder.user_id, SECOND_OFFENCE)
    return {
        "ping_ms": ping_ms,
        "echo_ms": echo_ms,
        "sent": sent,
        "refused": refused,
        "muted_s": None if muted is None else muted - t0,
        "floor_s": None if nth is None else nth - t0,
    }


async def measure(
    hs: Homeserver, tmp: Path, rate: float, seconds: float, rounds: int
) -> dict[str, Any]:
    mod, bot, asker, echoer = await hs.users("mod", "bot", "asker", "echoer")
    flooders = [await hs.user(f"flooder{i}") for i in range(rounds)]
    groups = [{"key": "carers", "name": "Carers"}]
    # The asker and the echoer are moderators, so that the protections
    # leave their round trips alone.
    community = await make_community(hs, tmp, groups, moderators=[mod, asker, echoer], bots=[bot])
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    room = ids["group/carers/general"]
    admin_api = await hs.api(community.admin)
    for user in (asker, echoer, *flooders):
        await admin_api.invite(room, user.user_id)
    # The flood is the bot's to stop, not Synapse's.
    await hs.exempt_from_rate_limits(mod, bot, asker, echoer, *flooders)
    write_secret(tmp / "bot.password", bot.password)
    config = tmp / "bot.yaml"
    level = os.environ.get("HEARTH_BENCH_LOG", "warning")  # "info" to read the bot's log
    bot_section = {
        "homeserver": hs.base_url,
        "user_id": bot.user_id,
        "password_file": str(tmp / "bot.password"),
        "state_dir": str(tmp / "bot-state"),
        "moderators_room": ids["moderators"],
        "log": {"level": level, "format": "json"},
    }
    config.write_text(
        yaml.safe_dump({"bot": bot_section, "moderation": {"community": str(community.path)}})
    )
    children = Children()
    out: dict[str, Any] = {"rounds": rounds}
    try:
        with (tmp / "bot.log").open("wb") as log:
            await children.spawn(
                str(BIN / "hearth"), "run", "--config", str(config), stdout=log, stderr=log
            )
        await wait_joined(hs, community.admin, room, bot.user_id)
        async with member(hs, echoer, tmp / "echoer") as echo:
            await echo.join(room)
            install_echo(echo, room, asker.user_id)
            mod_client = await device(hs, mod, tmp / "mod")
            asker_client = await device(hs, asker, tmp / "asker")
            for client in (mod_client, asker_client):
                await client.join(room)
                await client.sync(timeout=0, full_state=True)
            watcher = Watcher(mod_client, room)
            watcher.start()
            await sees_member(echo, room, asker.user_id)
            await caught_up(asker_client)
            await until_answering(mod_client, watcher, room, "!ping")
            await until_answering(asker_client, watcher, room, ECHO)
            quiet = await paced(mod_client, watcher, room, "!ping", QUIET_PINGS)
            out["quiet_ping_ms"] = statistics.median(quiet)
            quiet = await paced(asker_client, watcher, room, ECHO, QUIET_PINGS)
            out["quiet_echo_ms"] = statistics.median(quiet)
            floods = []
            for i, flooder in enumerate(flooders, 1):
                err.print(f"Flood {i} of {rounds}: {rate:g} messages a second, until muted")
                clients = (mod_client, asker_client)
                floods.append(
                    await one_flood(hs, tmp, clients, watcher, room, rate, seconds, flooder)
                )
                await asyncio.sleep(3)  # the room settles before the next
            await watcher.stop()
            for client in (mod_client, asker_client):
                await client.close()
    finally:
        await children.stop_all()
    for name in ("ping", "echo"):
        out[f"flood_{name}s_ms"] = [f[f"{name}_ms"] for f in floods]
        out[f"flood_{name}_ms"] = statistics.median(out[f"flood_{name}s_ms"])
    out["sent"] = [f["sent"] for f in floods]
    out["refused"] = [f["refused"] for f in floods]
    muted = [f["muted_s"] for f in floods]
    floors = [f["floor_s"] for f in floods]
    out["muted_all"], out["floor_all"] = muted, floors
    out["muted_s"] = None if None in muted else statistics.median(m for m in muted if m is not None)
    out["floor_s"] = (
        None if None in floors else statistics.median(f for f in floors if f is not None)
    )
    return out


def report(r: dict[str, Any]) -> None:
    muted, floor = r["muted_s"], r["floor_s"]
    n = r["rounds"]
    rows = (
        Row(
            f"From a flood's start to the flooder muted (median of {n})",
            "never" if muted is None else f"{muted:.2f} s",
            "n/a" if floor is None else f"{floor:.2f} s (12th message seen)",
            "" if muted is None else ratio(muted, floor),
        ),
        Row(
            f"A moderator's !ping answered during a flood (median of {n})",
            f"{r['flood_ping_ms']:.0f} ms",
            f"{r['quiet_ping_ms']:.0f} ms (quiet room, median of {QUIET_PINGS})",
            ratio(r["flood_ping_ms"], r["quiet_ping_ms"]),
            f"≤ {TARGET:g}×",
            r["flood_ping_ms"] <= TARGET * r["quiet_ping_ms"],
        ),
        Row(
            f"The same !ping, against a member answering a member, same floods (median of {n})",
            f"{r['flood_ping_ms']:.0f} ms",
            f"{r['flood_echo_ms']:.0f} ms (client to client)",
            ratio(r["flood_ping_ms"], r["flood_echo_ms"]),
        ),
        Row(
            "A member answering a member: during a flood, against quiet",
            f"{r['flood_echo_ms']:.0f} ms",
            f"{r['quiet_echo_ms']:.0f} ms (quiet room, median of {QUIET_PINGS})",
            ratio(r["flood_echo_ms"], r["quiet_echo_ms"]),
        ),
    )
    title = f"Floods of {r['rate']:g}/s ({r['date']}, {r['cpus']} CPUs)"
    pings = ", ".join(f"{ms:.0f}" for ms in r["flood_pings_ms"])
    echoes = ", ".join(f"{ms:.0f}" for ms in r["flood_echos_ms"])
    notes = [
        f"Each flood's !ping: {pings} ms; client to client: {echoes} ms.",
        f"Each flooder's messages accepted: {r['sent']}; then refused: {r['refused']}.",
    ]
    print_report(title, rows, notes)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    results = versions() | {"rate": args.rate, "seconds": args.seconds}
    keep = bool(os.environ.get("HEARTH_BENCH_KEEP"))
    async with private_homeserver("hearth-moderation-", keep) as (hs, tmp):
        results |= await measure(hs, tmp, args.rate, args.seconds, args.rounds)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=20, help="each flood's longest")
    parser.add_argument("--rounds", type=int, default=5, help="floods, one flooder each")
    args = parser.parse_args()
    return run_bench(lambda: run(args), report, "Interrupted; Synapse was stopped.")


if __name__ == "__main__":
    sys.exit(main())
