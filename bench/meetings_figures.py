"""Meeting reminders at scale: 10,000 across 200 encrypted rooms, each figure
beside a floor from the same run.

    cd /work/main && .venv/bin/python -m bench.meetings_figures [--rooms 200]
        [--per-room 50] [--fire 400] [--window-s 120] [--idle-s 60]

A private Synapse (loopback), a community of ROOMS groups (one encrypted
room each) and the bot with meetings on, joined to every room. The bot's
database is then given ROOMS x PER_ROOM one-off meetings with a 15-minute
reminder each, written as the feature writes them (its records, and its
reminder jobs through the platform's scheduler): FIRE reminders fall due
spread evenly over WINDOW seconds, the rest a month away. Then:

1. start-up: the bot started with all those rows, against the same bot
   started with none (its restart before the rows were written);
2. lateness of each of the FIRE reminders: when its job ran, and when its
   encrypted notice was accepted by Synapse (the outbox's finish time),
   both against its due time. The floor: a bare nio client that sleeps
   until each of the same due times and sends the same encrypted notice
   to the same room, run afterwards;
3. idle CPU of the bot's process over IDLE seconds with the remaining
   jobs pending, against an idle Python process (asyncio.sleep) over the
   same seconds, against a bare nio client doing nothing but its sync loop
   (the bot's long-poll timeout), and against the bot idle with no jobs.

Prints a table and one final JSON line; never asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
from nio import AsyncClient, RoomSendError

from bench.harness import device, err, private_homeserver, run_bench, versions
from bench.report import Row, print_report, ratio
from bots.dates.recurrence import Schedule, occurrences
from bots.framework.actions import PutRecord
from bots.framework.logging import configure_logging
from bots.framework.scheduler import JobKind, Scheduler, connect
from bots.framework.storage import Storage
from bots.meetings.config import MeetingsConfig
from bots.meetings.model import FEATURE, Meeting, meetings_kind
from bots.meetings.plan import REMIND, Remind, reminder_jobs
from provisioning.provision import provision
from tests.support.community import make_community
from tests.support.homeserver import Homeserver, running_bot, wait_joined

LEAD_S = 20.0  # from the bot's start to the first reminder due
BEFORE = timedelta(minutes=15)
FAR = timedelta(days=30)
# An idle Python process: its CPU counted from after its imports.
IDLE_FLOOR = (
    "import asyncio, sys, time; t = time.process_time(); "
    "asyncio.run(asyncio.sleep(float(sys.argv[1]))); print(time.process_time() - t)"
)


def med_p99(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.quantiles(values, n=100)[98]


def cpu_s() -> float:
    return time.process_time()


def due_times(fire: int, burst: int, t0: float, window_s: float) -> list[float]:
    """FIRE - BURST due times spread evenly over the window, then BURST at
    one instant after it (every group's 19:00 meeting has its reminder at
    18:45)."""
    spread = fire - burst
    return [t0 + i * window_s / max(1, spread) for i in range(spread)] + [
        t0 + window_s + 10
    ] * burst


async def fill(state: Path, rooms: list[str], per_room: int, dues: list[float]) -> dict[str, float]:
    """Write the meetings and their reminder jobs into the bot's database,
    as the feature would; the due time of each firing reminder, by job key."""
    storage = await Storage.open(state / "bot.db")
    db = await connect(state / "bot.db")

    async def unused(job: Any) -> None:
        raise AssertionError("the bench only schedules")

    scheduler = Scheduler(db, [JobKind(FEATURE, REMIND, unused, parse=Remind.parse)])
    firing: dict[str, float] = {}
    writes: list[PutRecord] = []
    now = datetime.fromtimestamp(time.time(), UTC)
    total = len(rooms) * per_room
    every = max(1, total // max(1, len(dues)))
    pending = list(dues)
    for i in range(total):
        room, n = rooms[i % len(rooms)], i // len(rooms) + 1
        fires = bool(pending) and i % every == 0
        due = pending.pop(0) if fires else (now + FAR).timestamp() + i
        # Meetings start on the minute; a reminder some seconds over 15
        # minutes before lands on the due time wanted, to the second.
        start = datetime.fromtimestamp(due, UTC) + BEFORE
        start = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        before = timedelta(seconds=round(start.timestamp() - due))
        local = start.replace(tzinfo=None)
        m = Meeting(room, n, f"Bench {i}", Schedule(local, "UTC", BEFORE), (before,))
        writes.append(PutRecord(FEATURE, meetings_kind(room), str(n), m.to_record()))
        (occ,) = occurrences(m.schedule, now, 1)
        (job,) = reminder_jobs(m, occ, now)
        await scheduler.add(job.feature, job.kind, job.due, job.payload, job.key)
        if fires:
            firing[job.key] = job.due
    await storage.enqueue([], writes)
    await storage.close()
    await db.close()
    return firing


async def bot_lateness(state: Path, firing: dict[str, float]) -> dict[str, list[float]]:
    async with aiosqlite.connect(state / "bot.db") as db:
        jobs = await db.execute_fetchall(
            "SELECT key, due, finished_at, state FROM scheduled_jobs WHERE kind = 'remind'"
        )
        sent = dict(
            await db.execute_fetchall(
                "SELECT key, finished_at FROM outbox WHERE state = 'done' AND key LIKE 'job:%'"
            )
        )
    ran = [fin - due for key, due, fin, st in jobs if key in firing and st == "done" and fin]
    delivered = [
        sent[f"job:{key}/0"] - due
        for key, due, _, _ in jobs
        if key in firing and f"job:{key}/0" in sent
    ]
    return {"ran": ran, "delivered": delivered}


async def floor_lateness(
    client: AsyncClient, rooms: list[str], dues: list[float], t0: float
) -> list[float]:
    """A bare client: sleep until each due time, send, note how late it was."""
    late: list[float] = []
    for i, due in enumerate(sorted(dues)):
        when = t0 + (due - min(dues))
        await asyncio.sleep(max(0.0, when - time.time()))
        resp = await client.room_send(
            rooms[i % len(rooms)],
            "m.room.message",
            {"msgtype": "m.notice", "body": f"Reminder: floor {i}", "m.mentions": {}},
            ignore_unverified_devices=True,
        )
        if not isinstance(resp, RoomSendError):
            late.append(time.time() - when)
    return late


async def idle_cpu(seconds: float) -> tuple[float, float]:
    """(this process's CPU, an idle Python process's) over *seconds*."""
    floor = await asyncio.create_subprocess_exec(
        sys.executable, "-c", IDLE_FLOOR, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    before = cpu_s()
    await asyncio.sleep(seconds)
    ours = cpu_s() - before
    out, _ = await floor.communicate()
    return ours, float(out.decode().strip())


async def measure(hs: Homeserver, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    (bot,) = await hs.users("bot")
    groups = [{"key": f"g{i:03d}", "name": f"Group {i}"} for i in range(args.rooms)]
    err.print(f"Provisioning {args.rooms} groups...")
    community = await make_community(hs, tmp, groups, bots=[bot])
    admin_user = community.admin  # in every room: the floor's sender
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    rooms = [ids[f"group/g{i:03d}/general"] for i in range(args.rooms)]
    await hs.exempt_from_rate_limits(bot, admin_user)
    config = hs.bot_config(
        bot,
        tmp / "bot",
        feature_sections={"meetings": MeetingsConfig(community=community.path)},
        log={"level": "warning"},
    )
    out: dict[str, Any] = {}
    err.print("The bot joins every room...")
    async with running_bot(config, timeout=300):
        for room in rooms:
            await wait_joined(hs, community.admin, room, bot.user_id)

    # Start-up with no jobs, then its idle CPU (a reference beside the floor).
    t = time.perf_counter()
    async with running_bot(config, timeout=300):
        out["start_empty_s"] = time.perf_counter() - t
        err.print(f"Idle for {args.idle_s:g} s with no jobs...")
        out["idle_empty_cpu_s"], _ = await idle_cpu(args.idle_s)

    total = args.rooms * args.per_room
    err.print(f"Writing {total} meetings and reminders...")
    t = time.perf_counter()
    # After the rows are written (a few ms each) and the bot has started.
    t0 = time.time() + LEAD_S + total * 0.005
    dues = due_times(args.fire, args.burst, t0, args.window_s)
    firing = await fill(tmp / "bot", rooms, args.per_room, dues)
    out["fill_s"] = time.perf_counter() - t
    out["firing"] = len(firing)
    t = time.perf_counter()
    async with running_bot(config, timeout=300):
        out["start_full_s"] = time.perf_counter() - t
        last = max(firing.values())
        err.print(f"{len(firing)} reminders fall due over {args.window_s:g} s...")
        await asyncio.sleep(max(0.0, last - time.time()) + 15)
        err.print(f"Idle for {args.idle_s:g} s with {total - len(firing)} jobs pending...")
        out["idle_cpu_s"], out["idle_floor_cpu_s"] = await idle_cpu(args.idle_s)
    burst_due = max(firing.values())
    spread = {k: d for k, d in firing.items() if d < burst_due}
    burst = {k: d for k, d in firing.items() if d >= burst_due}
    for name, part in (("", spread), ("burst_", burst)):
        lateness = await bot_lateness(tmp / "bot", part)
        out[f"{name}ran_n"], out[f"{name}delivered_n"] = (
            len(lateness["ran"]),
            len(lateness["delivered"]),
        )
        out[f"{name}ran_median_s"], out[f"{name}ran_p99_s"] = med_p99(lateness["ran"])
        out[f"{name}delivered_median_s"], out[f"{name}delivered_p99_s"] = med_p99(
            lateness["delivered"]
        )
        out[f"{name}delivered_max_s"] = max(lateness["delivered"])

    err.print("The floor: a bare client sending at the same due times...")
    client = await device(hs, admin_user, tmp / "floor")
    await client.sync(timeout=0, full_state=True)
    if client.should_query_keys:
        await client.keys_query()
    # A Matrix client idling: nio's sync loop with the bot's long-poll timeout.
    err.print(f"A bare nio client syncing idle for {args.idle_s:g} s...")
    syncing = asyncio.create_task(client.sync_forever(timeout=config.sync_timeout_ms))
    await asyncio.sleep(2)
    out["idle_nio_cpu_s"], _ = await idle_cpu(args.idle_s)
    syncing.cancel()
    await asyncio.gather(syncing, return_exceptions=True)
    floor = await floor_lateness(client, rooms, sorted(firing.values()), time.time() + 5)
    await client.close()
    spread_floor, burst_floor = floor[: len(spread)], floor[len(spread) :]
    out["floor_n"] = len(floor)
    out["floor_median_s"], out["floor_p99_s"] = med_p99(spread_floor)
    out["burst_floor_median_s"], out["burst_floor_p99_s"] = med_p99(burst_floor)
    out["burst_floor_max_s"] = max(burst_floor)
    return out


def report(r: dict[str, Any]) -> None:
    def row(
        name: str,
        ours: float,
        floor: float,
        unit: str,
        what: str,
        target: str = "",
        met: bool | None = None,
    ) -> Row:
        scale = 1000 if unit == "ms" else 1
        shown = (f"{ours * scale:.1f} {unit}", f"{floor * scale:.1f} {unit} ({what})")
        return Row(name, *shown, ratio(ours, floor), target, met)

    p99 = r["delivered_p99_s"]
    rows = (
        row("Reminder sent, lateness median", r["delivered_median_s"], r["floor_median_s"], "ms",
            "bare client"),
        row("Reminder sent, lateness p99", p99, r["floor_p99_s"], "ms", "bare client",
            "p99 < 1 s", p99 < 1),
        row("Job ran, lateness median", r["ran_median_s"], r["floor_median_s"], "ms", "bare send"),
        row("Job ran, lateness p99", r["ran_p99_s"], r["floor_p99_s"], "ms", "bare send"),
        row(f"A burst of {r['burst']} due at once, median", r["burst_delivered_median_s"],
            r["burst_floor_median_s"], "ms", "bare client"),
        row("  …the last of the burst sent", r["burst_delivered_max_s"], r["burst_floor_max_s"],
            "ms", "bare client"),
        row("CPU over the idle window", r["idle_cpu_s"], r["idle_floor_cpu_s"], "ms",
            "idle Python", "near idle Python"),
        row("  …the bot with no jobs", r["idle_empty_cpu_s"], r["idle_floor_cpu_s"], "ms",
            "idle Python"),
        row("  …against a client", r["idle_cpu_s"], r["idle_nio_cpu_s"], "ms", "nio syncing"),
        row("Start-up, to ready", r["start_full_s"], r["start_empty_s"], "s", "no jobs"),
    )  # fmt: skip
    title = (
        f"{r['rooms'] * r['per_room']} meeting reminders in {r['rooms']} rooms, "
        f"{r['firing']} due over {r['window_s']:g} s ({r['date']}, {r['cpus']} CPUs)"
    )
    note = (
        f"{r['delivered_n'] + r['burst_delivered_n']} of {r['firing']} reminders sent "
        f"({r['ran_n'] + r['burst_ran_n']} jobs ran); "
        f"the floor sent {r['floor_n']}. Writing the rows took {r['fill_s']:.1f} s."
    )
    print_report(title, rows, [note])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    results = versions() | {
        k: getattr(args, k) for k in ("rooms", "per_room", "fire", "burst", "window_s", "idle_s")
    }
    async with private_homeserver("hearth-meetings-", args.keep) as (hs, tmp):
        results |= await measure(hs, tmp, args)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--per-room", type=int, default=50)
    parser.add_argument("--fire", type=int, default=400)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--window-s", type=float, default=120)
    parser.add_argument("--idle-s", type=float, default=60)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    return run_bench(lambda: run(args), report, "Interrupted; Synapse was stopped.")


if __name__ == "__main__":
    sys.exit(main())
