"""Hearth's bot figures, each beside a floor measured in the same run.

    cd /work/main && .venv/bin/python -m bench.bot_figures [--pings 200] [--keep]

Starts a private Synapse on a free loopback port in a temporary folder, then
measures the !ping round trip, the bot's memory and its start-up time (see
bench/README.md). Prints a table and one final JSON line. Never asserts a
timing: it exits 0 unless something broke.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from nio import MatrixRoom, RoomMessageText
from rich.console import Console

from bench.harness import run_bench
from bench.report import Row, print_report, ratio
from bots.devserver.supervisor import SynapseProcess, stop_process
from bots.devserver.synapse_config import configured_port, free_port, write_dev_config
from bots.framework.logging import configure_logging
from bots.framework.secrets import write_secret
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from tests.support.homeserver import SERVER_NAME, Homeserver, User, member, running_bot
from tests.support.member_client import MemberClient, reply_target

BIN = Path(sys.prefix) / "bin"
PING_EVERY_S = 0.25
MARKS = ("logged in", "bot ready", "command handled")  # bot log events timed after spawn
err = Console(stderr=True)
Proc = asyncio.subprocess.Process


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def med_p90(ms: list[float]) -> tuple[float, float]:
    return statistics.median(ms), statistics.quantiles(ms, n=10)[-1] if len(ms) > 1 else ms[0]


class Children:
    """Every process we spawn, so that all of them are stopped whatever happens."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    async def spawn(self, *argv: str, **kw: Any) -> Proc:
        # Own session: a Ctrl-C reaches only us, and we stop the children in order.
        proc = await asyncio.create_subprocess_exec(*argv, start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    @staticmethod
    async def stop(proc: Proc, timeout: float = 10) -> None:
        # `hearth run` shuts down cleanly on SIGINT.
        await stop_process(proc, signal.SIGINT, timeout)

    async def stop_all(self) -> None:
        for proc in self.procs:
            await self.stop(proc)


# --- 1. !ping round trip, against a client-to-client round trip ---


def install_echo(b: MemberClient, room_id: str, from_user: str) -> None:
    """B answers each decrypted m.text from A with the very reply the bot sends."""
    tasks: set[asyncio.Task[Any]] = set()

    async def reply(event_id: str) -> None:
        content = {
            "msgtype": "m.notice",
            "body": "pong",
            "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
            "m.mentions": {},
        }
        await b.client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)

    def on_text(room: MatrixRoom, event: RoomMessageText) -> None:
        if room.room_id == room_id and event.sender == from_user and event.decrypted:
            task = asyncio.create_task(reply(event.event_id))  # off the sync loop, like the bot
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    b.client.add_event_callback(on_text, RoomMessageText)


async def sees_member(m: MemberClient, room_id: str, user_id: str) -> None:
    for _ in range(400):
        room = m.client.rooms.get(room_id)
        if room is not None and user_id in room.users:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{m.user_id} never saw {user_id} join {room_id}")


async def round_trips(hs: Homeserver, tmp: Path, pings: int, warmup: int) -> dict[str, float]:
    bot, a_user, b_user = await hs.users("bot", "a", "b")
    bot_room = await hs.encrypted_room(a_user, [bot])
    floor_room = await hs.encrypted_room(a_user, [b_user])
    async with (
        running_bot(hs.bot_config(bot, tmp / "inproc" / "state")),
        member(hs, a_user, tmp / "a") as a,
        member(hs, b_user, tmp / "b") as b,
    ):
        await b.join(floor_room)
        await sees_member(a, bot_room, bot.user_id)
        await sees_member(a, floor_room, b.user_id)
        install_echo(b, floor_room, a.user_id)
        series: dict[str, list[float]] = {bot_room: [], floor_room: []}
        for i in range(warmup + pings):
            # Alternate which goes first (ABBA), so drift and ordering cancel out.
            for room in (bot_room, floor_room) if i % 2 == 0 else (floor_room, bot_room):
                t0 = time.perf_counter()
                await a.wait_for_reply(await a.send(room, "!ping"))
                if i >= warmup:
                    series[room].append((time.perf_counter() - t0) * 1000)
            if (i + 1) % 50 == 0:
                err.print(f"  {i + 1}/{warmup + pings} rounds")
    out: dict[str, float] = {}
    for who, room in (("bot", bot_room), ("floor", floor_room)):
        out[f"ping_{who}_median_ms"], out[f"ping_{who}_p90_ms"] = med_p90(series[room])
    return out | {"ping_ratio": out["ping_bot_median_ms"] / out["ping_floor_median_ms"]}


# --- 2 and 3. `hearth run` as its own process: time to first reply, memory ---


def log_marks(log: Path, t0_wall: float) -> dict[str, float]:
    marks: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            rec = json.loads(line)
            if rec["event"] in MARKS:
                ts = dt.datetime.fromisoformat(rec["timestamp"]).timestamp()
                marks.setdefault(rec["event"], ts - t0_wall)
    return marks


async def start_until_pong(
    children: Children, config: Path, log: Path, m: MemberClient, room: str, bot_id: str
) -> tuple[float, float, dict[str, float]]:
    """Spawn `hearth run`, ping until it answers: (seconds, RSS MB, log marks)."""
    sent: set[str] = set()

    async def pinger() -> None:
        while True:  # a new message each time: the bot ignores events from before it started
            t = time.monotonic()
            sent.add(await m.send(room, "!ping"))
            await asyncio.sleep(max(0.0, PING_EVERY_S - (time.monotonic() - t)))

    with log.open("wb") as fh:
        t0_wall, t0 = time.time(), time.monotonic()
        proc = await children.spawn(
            str(BIN / "hearth"), "run", "--config", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=fh, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    pinging = asyncio.create_task(pinger())
    got = asyncio.create_task(
        m.wait_for(lambda ev: ev.sender == bot_id and reply_target(ev.content) in sent, 90)
    )
    died = asyncio.create_task(proc.wait())
    try:
        await asyncio.wait({pinging, got, died}, return_when=asyncio.FIRST_COMPLETED)
        if not got.done():
            if pinging.done():
                pinging.result()  # raises why the member could not send
            raise RuntimeError(f"hearth run exited with {proc.returncode}; see {log}")
        got.result()
        seconds = time.monotonic() - t0
        rss = rss_mb(proc.pid)
    finally:
        for task in (pinging, got, died):
            task.cancel()
        await asyncio.gather(pinging, got, died, return_exceptions=True)
    await children.stop(proc)
    return seconds, rss, log_marks(log, t0_wall)


async def join_without_device(hs: Homeserver, user: User, room_id: str) -> None:
    """Put the bot account in the room before its first start, leaving no device behind."""
    assert hs.http is not None
    token = await ClientAPI.login(
        hs.base_url, user.user_id, user.password, Transport(hs.http), "bench"
    )
    api = ClientAPI(hs.base_url, token, Transport(hs.http))
    await api.join(room_id)
    await api.request("POST", "/_matrix/client/v3/logout", {})


async def start_figures(hs: Homeserver, tmp: Path, children: Children) -> dict[str, Any]:
    bot, alice = await hs.users("bot", "alice")
    room = await hs.encrypted_room(alice, [bot])
    await join_without_device(hs, bot, room)
    password_file = tmp / "proc" / "bot.password"
    write_secret(password_file, bot.password)
    config = tmp / "proc" / "bot.yaml"
    bot_cfg = {
        "homeserver": hs.base_url,
        "user_id": bot.user_id,
        "password_file": str(password_file),
        "state_dir": str(tmp / "proc" / "state"),
        "log": {"level": "info", "format": "json"},
    }
    config.write_text(yaml.safe_dump({"bot": bot_cfg}))
    out: dict[str, Any] = {}
    async with member(hs, alice, tmp / "alice") as m:
        await m.sync_until_joined(room)
        for name, log in (("first", "first.log"), ("restart", "again.log")):
            secs, rss, marks = await start_until_pong(
                children, config, tmp / log, m, room, bot.user_id
            )
            out |= {f"start_{name}_s": secs, f"rss_{name}_mb": rss, f"marks_{name}_s": marks}
    return out


async def spawn_to_exit_s(children: Children, code: str, runs: int = 3) -> float:
    times = []
    quiet = {"stdout": asyncio.subprocess.DEVNULL, "stderr": asyncio.subprocess.DEVNULL}
    for _ in range(runs):  # median: the first run may find a cold page cache
        t0 = time.monotonic()
        await (await children.spawn(str(BIN / "python"), "-c", code, **quiet)).wait()
        times.append(time.monotonic() - t0)
    return statistics.median(times)


async def floors(children: Children) -> dict[str, float]:
    idle = "import nio, sys; print('ready', flush=True); sys.stdin.read()"
    pipe = asyncio.subprocess.PIPE
    proc = await children.spawn(str(BIN / "python"), "-c", idle, stdin=pipe, stdout=pipe)
    assert proc.stdin is not None
    assert proc.stdout is not None
    await proc.stdout.readline()
    rss = rss_mb(proc.pid)
    proc.stdin.close()
    await proc.wait()
    return {
        "rss_nio_mb": rss,
        "import_floor_s": await spawn_to_exit_s(children, "import nio, structlog, aiosqlite"),
    }


# --- report ---

ROWS = (  # label, bot key, floor key, unit, target
    ("!ping round trip, median", "ping_bot_median_ms", "ping_floor_median_ms", "ms", 1.5),
    ("!ping round trip, p90", "ping_bot_p90_ms", "ping_floor_p90_ms", "ms", None),
    ("RSS after start-up, fresh state", "rss_first_mb", "rss_nio_mb", "MB", 150),
    ("RSS after start-up, restart", "rss_restart_mb", "rss_nio_mb", "MB", 150),
    ("Start → first reply, fresh state", "start_first_s", "import_floor_s", "s", 3),
    ("Start → first reply, restart", "start_restart_s", "import_floor_s", "s", 3),
)


def report(r: dict[str, Any]) -> None:
    rows = []
    for label, bot_key, floor_key, unit, target in ROWS:
        bot, floor = r[bot_key], r[floor_key]
        goal, met = "", None
        if target is not None:  # round trips against the floor, the rest absolute
            met = bot / floor <= target if unit == "ms" else bot < target
            goal = f"≤ {target}× floor" if unit == "ms" else f"< {target} {unit}"
        shown = (f"{bot:.1f} {unit}", f"{floor:.1f} {unit}")
        rows.append(Row(label, *shown, ratio(bot, floor), goal, met))
    notes = [
        f"`hearth run` log, {name} start, after spawn: "
        + ", ".join(f"{k} +{v:.2f} s" for k, v in r[f"marks_{name}_s"].items())
        for name in ("first", "restart")
    ]
    notes.append(
        "Floors: ping = client-to-client encrypted round trip (member B echoes A), alternated "
        "with the bot's; RSS = idle `python -c 'import nio'`; start = `python -c 'import nio, "
        "structlog, aiosqlite'`, spawn to exit, median of 3."
    )
    title = f"Hearth bot figures ({r['pings']} pings per series, {r['date']})"
    print_report(title, rows, notes, value="Hearth bot", floor="Floor / reference")


async def run(pings: int, warmup: int, keep: bool) -> dict[str, Any]:
    # The in-process bot of figure 1 and nio's key-sharing warnings stay quiet.
    configure_logging("warning", library_level="error")
    tmp = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    hs_dir = tmp / "synapse"
    hs_config = write_dev_config(hs_dir, free_port(None), SERVER_NAME)
    url = f"http://127.0.0.1:{configured_port(hs_config)}"
    # Homeserver.start() inlined, so a Ctrl-C during Synapse's start-up still stops it.
    hs = Homeserver(hs_dir, SynapseProcess(hs_config, url, hs_dir / "synapse.log"))
    children = Children()
    results: dict[str, Any] = {"date": dt.date.today().isoformat(), "cpus": os.cpu_count()}
    results |= {"pings": pings, "warmup": warmup}
    results |= {"synapse": version("matrix-synapse"), "nio": version("matrix-nio")}
    try:
        err.print(f"Starting Synapse at {url} in {tmp}")
        await hs.process.start()
        hs.http = aiohttp.ClientSession()
        err.print("Figures 2 and 3: `hearth run` start-up (fresh, then restart) and memory")
        results |= await start_figures(hs, tmp, children)
        results |= await floors(children)
        err.print(f"Figure 1: {warmup} warm-up + {pings} rounds of bot and floor round trips")
        results |= await round_trips(hs, tmp, pings, warmup)
    finally:
        await children.stop_all()
        await hs.stop()
        if keep:
            err.print(f"Kept {tmp} (bot logs first.log, again.log; synapse/synapse.log)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pings", type=int, default=200, help="measured round trips per series")
    parser.add_argument("--warmup", type=int, default=5, help="uncounted rounds first")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    args = parser.parse_args()

    return run_bench(
        lambda: run(args.pings, args.warmup, args.keep),
        report,
        "Interrupted; Synapse and the bots were stopped.",
    )


if __name__ == "__main__":
    sys.exit(main())
