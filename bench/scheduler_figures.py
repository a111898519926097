"""Hearth's scheduler figures, each beside a floor measured in the same run.

    cd /work/main && .venv/bin/python -m bench.scheduler_figures [--jobs 10000]
        [--window-s 3600] [--idle-s 60]

Fills a scheduler database (WAL, set up as the bot's) with JOBS pending jobs
spread at random over WINDOW seconds, then measures the time to start, how
late each job fires and the CPU used while idle (see the table's notes).
Prints a table and one final JSON line. Never asserts a timing: it exits 0
unless something broke.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiosqlite
from rich.console import Console

from bench.harness import run_bench
from bench.report import Row, print_report, ratio
from bots.framework.logging import configure_logging
from bots.framework.scheduler import SCHEMA, Job, JobKind, Scheduler, SystemClock, connect

err = Console(stderr=True)
FAR_S = 30 * 86400.0  # "far in the future": jobs due a month from now
LEAD_S = 3.0  # between planning the firing run and its first due job
START_ROUNDS = 6
MS = 1000.0  # the JSON line keeps 3 decimals: figures are in ms
PAYLOAD = {"room": "!AbCdEfGhIjKlMnOp:example.org", "user": "@member-0000:example.org", "step": 3}


def parse_payload(payload: Mapping[str, Any]) -> tuple[str, str, int]:
    """What a feature's parse() does: check the fields it needs."""
    return str(payload["room"]), str(payload["user"]), int(payload["step"])


def offsets(jobs: int, window_s: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return sorted(rng.uniform(0, window_s) for _ in range(jobs))


def med_p99(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.quantiles(values, n=100)[98]


class CountingClock(SystemClock):
    """The system clock, counting the loop's sleeps (its wake-ups)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        await super().sleep(seconds)


# --- floors, each run as its own plain process (`--floor ...`) ---


async def floor_idle(seconds: float) -> dict[str, float]:
    print("ready", flush=True)
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    return {"cpu_s": time.process_time() - cpu}


async def floor_late(base: float, jobs: int, window_s: float, seed: int) -> dict[str, float]:
    """One loop sleeping with asyncio.sleep to each due time in turn, as the scheduler's does."""
    late = []
    for offset in offsets(jobs, window_s, seed):
        due = base + offset
        await asyncio.sleep(max(0.0, due - time.time()))
        late.append(time.time() - due)
    median, p99 = med_p99(late)
    return {"median_s": median, "p99_s": p99}


async def spawn_floor(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.scheduler_figures", "--floor", *args,
        stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def floor_result(proc: asyncio.subprocess.Process) -> dict[str, float]:
    assert proc.stdout is not None
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"floor process exited with {proc.returncode}")
    result: dict[str, float] = json.loads(out.decode().splitlines()[-1])
    return result


# --- the figures ---


async def populate(path: Path, jobs: int, window_s: float, seed: int) -> dict[str, float]:
    """Add the jobs through Scheduler.add(), a month from now; returns their base time too."""
    db = await connect(path)
    try:
        await db.executescript(SCHEMA)
        sched = Scheduler(db, [JobKind("onboarding", "remind", noop, parse=parse_payload)])
        base = time.time() + FAR_S
        t0 = time.perf_counter()
        for i, offset in enumerate(offsets(jobs, window_s, seed)):
            payload = PAYLOAD | {"user": f"@member-{i:04d}:example.org"}
            await sched.add("onboarding", "remind", base + offset, payload, f"remind:{i}")
        add_s = time.perf_counter() - t0
    finally:
        await db.close()
    return {"add_ms_per_job": add_s / jobs * MS, "far_base": base}


async def noop(job: Job) -> None:
    return None


async def start_once(path: Path) -> float:
    t0 = time.perf_counter()
    db = await connect(path)
    try:
        sched = Scheduler(db, [JobKind("onboarding", "remind", noop, parse=parse_payload)])
        await sched.start()
        await sched.next_due()
        return time.perf_counter() - t0
    finally:
        await db.close()


async def count_once(path: Path) -> float:
    t0 = time.perf_counter()
    async with aiosqlite.connect(path) as db:
        async with db.execute("SELECT count(*) FROM scheduled_jobs") as cur:
            await cur.fetchone()
        return time.perf_counter() - t0


async def start_figures(path: Path) -> dict[str, float]:
    ours: list[float] = []
    floor: list[float] = []
    for i in range(START_ROUNDS):  # ABBA, so drift lands on both series alike
        for which in ("ours", "floor") if i % 4 in (0, 3) else ("floor", "ours"):
            if which == "ours":
                ours.append(await start_once(path))
            else:
                floor.append(await count_once(path))
    return {
        "start_ms": statistics.median(ours) * MS,
        "start_floor_ms": statistics.median(floor) * MS,
    }


async def idle_figures(path: Path, idle_s: float) -> dict[str, float]:
    db = await connect(path)
    clock = CountingClock()
    sched = Scheduler(db, [JobKind("onboarding", "remind", noop, parse=parse_payload)], clock=clock)
    await sched.start()
    serving = asyncio.create_task(sched.serve())
    floor = await spawn_floor("idle", str(idle_s))
    try:
        assert floor.stdout is not None
        await floor.stdout.readline()  # "ready": its imports are done
        wakes, cpu = clock.sleeps, time.process_time()
        await asyncio.sleep(idle_s)
        cpu = time.process_time() - cpu
        wakes = clock.sleeps - wakes
        floor_cpu = (await floor_result(floor))["cpu_s"]
    finally:
        sched.stop()
        await serving
        await db.close()
        with contextlib.suppress(ProcessLookupError):
            floor.kill()
    return {"idle_cpu_ms": cpu * MS, "idle_floor_cpu_ms": floor_cpu * MS, "idle_loop_passes": wakes}


async def fire_figures(
    path: Path, far_base: float, jobs: int, window_s: float, seed: int
) -> dict[str, float]:
    base = time.time() + LEAD_S
    async with aiosqlite.connect(path) as db:  # bring the month-away jobs to *base*
        await db.execute("UPDATE scheduled_jobs SET due = due - ?", (far_base - base,))
        await db.commit()
    floor = await spawn_floor("late", repr(base), str(jobs), str(window_s), str(seed))
    late: list[float] = []
    all_fired = asyncio.Event()

    async def fire(job: Job) -> None:
        late.append(time.time() - job.due)
        if len(late) == jobs:
            all_fired.set()

    db = await connect(path)
    sched = Scheduler(db, [JobKind("onboarding", "remind", fire, parse=parse_payload)])
    try:
        await sched.start()
        serving = asyncio.create_task(sched.serve())
        cpu = time.process_time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_fired.wait(), LEAD_S + window_s + 60)
        cpu = time.process_time() - cpu
        sched.stop()
        await serving
        floor_late = await floor_result(floor)
    finally:
        sched.stop()
        await db.close()
        with contextlib.suppress(ProcessLookupError):
            floor.kill()
    median, p99 = med_p99(late)
    return {
        "fired": len(late),
        "late_median_ms": median * MS,
        "late_p99_ms": p99 * MS,
        "late_max_ms": max(late) * MS,
        "late_floor_median_ms": floor_late["median_s"] * MS,
        "late_floor_p99_ms": floor_late["p99_s"] * MS,
        "firing_cpu_ms_per_job": cpu / max(1, len(late)) * MS,
    }


async def run(jobs: int, window_s: float, idle_s: float, seed: int) -> dict[str, Any]:
    configure_logging("warning")
    tmp = Path(tempfile.mkdtemp(prefix="hearth-sched-bench-"))
    path = tmp / "bot.db"
    results: dict[str, Any] = {"date": dt.date.today().isoformat(), "cpus": os.cpu_count()}
    results |= {"jobs": jobs, "window_s": window_s, "idle_s": idle_s, "seed": seed}
    try:
        err.print(f"Adding {jobs} jobs in {path}")
        results |= await populate(path, jobs, window_s, seed)
        far_base = results.pop("far_base")
        err.print(f"Start: {START_ROUNDS} rounds each, against open + count(*)")
        results |= await start_figures(path)
        err.print(f"Idle: {idle_s:g} s with every job a month away, beside an idle process")
        results |= await idle_figures(path, idle_s)
        err.print(f"Firing: {jobs} jobs over {window_s:g} s, beside an asyncio.sleep loop")
        results |= await fire_figures(path, far_base, jobs, window_s, seed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def report(r: dict[str, Any]) -> None:
    def row(label: str, ours: float, floor: float, goal: str = "", met: bool | None = None) -> Row:
        return Row(label, f"{ours:.3f} ms", f"{floor:.3f} ms", ratio(ours, floor), goal, met)

    rows = (
        row("Start: connect, start(), next_due()", r["start_ms"], r["start_floor_ms"], "< 1 s",
            r["start_ms"] < MS),
        row("Firing lateness, median", r["late_median_ms"], r["late_floor_median_ms"]),
        row("Firing lateness, p99", r["late_p99_ms"], r["late_floor_p99_ms"], "p99 < 1 s",
            r["late_p99_ms"] < MS),
        row(f"CPU over {r['idle_s']:g} s idle", r["idle_cpu_ms"], r["idle_floor_cpu_ms"],
            "≤ 2× floor", r["idle_cpu_ms"] <= 2 * r["idle_floor_cpu_ms"]),
    )  # fmt: skip
    notes = (
        f"Fired {r['fired']}/{r['jobs']} (latest {r['late_max_ms']:.1f} ms late); "
        f"CPU while firing {r['firing_cpu_ms_per_job']:.3f} ms per job; add() "
        f"{r['add_ms_per_job']:.3f} ms per job; {r['idle_loop_passes']} loop passes while idle.",
        "Floors: start = aiosqlite.connect + SELECT count(*) on the same file (median of "
        f"{START_ROUNDS}, ABBA with ours); lateness = a separate process whose one loop "
        "asyncio.sleeps to each due time in turn, over the same seconds; idle CPU = a "
        "separate `asyncio.sleep` process over the same seconds (process_time).",
    )
    title = f"Scheduler figures ({r['jobs']} jobs over {r['window_s']:g} s, {r['date']})"
    print_report(title, rows, notes, value="Scheduler")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="pending jobs")
    parser.add_argument("--window-s", type=float, default=3600.0, help="seconds they spread over")
    parser.add_argument("--idle-s", type=float, default=60.0, help="idle period for the CPU figure")
    parser.add_argument("--seed", type=int, default=1, help="seed of the due times")
    parser.add_argument("--floor", nargs="+", help=argparse.SUPPRESS)  # the floors' own processes
    args = parser.parse_args()
    if args.floor:
        kind, *rest = args.floor
        if kind == "idle":
            floor = floor_idle(float(rest[0]))
        else:
            floor = floor_late(float(rest[0]), int(rest[1]), float(rest[2]), int(rest[3]))
        print(json.dumps(asyncio.run(floor)), flush=True)
        return 0
    return run_bench(
        lambda: run(args.jobs, args.window_s, args.idle_s, args.seed),
        report,
        "Interrupted; the temporary database was removed.",
    )


if __name__ == "__main__":
    sys.exit(main())
