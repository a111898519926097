"""Carrying a Facebook group's history over: import speed and peak memory,
each beside a floor from the same run.

    cd /work/main && .venv/bin/python -m bench.bridge_figures [--items 50000]
        [--small 12500] [--memory-only | --plan-only]

A private Synapse (loopback) with the bridge's registration, a community
of two groups and its bot (the archives feature on). Synthetic exports of
three members (posts, and comments on each other's posts, text only) are
written as ZIPs of ITEMS and of SMALL posts and comments. Then, each
command in its own process so its peak memory (VmHWM, read while it runs) is its own:

1. ``hearth import facebook plan`` of each export set;
2. ``hearth import facebook apply`` of each review, SMALL first: events
   per second of the large one, and both peak memories (flat as the export
   grows: the review is streamed, one line at a time);
3. the floor: the same events' contents sent by a bare application-service
   loop (the same token, ``?ts=``, one at a time in the same order, thread
   replies pointing at their posts) into a room of the same members,
   without encryption.

Prints a table and one final JSON line; never asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import err, private_homeserver, run_bench, versions
from bench.report import Row, print_report
from bots.archives.config import ArchivesConfig
from bots.framework.logging import configure_logging
from bridge.appservice import AppService
from bridge.facebook.messages import text_content, txn_id
from bridge.importer import read_lines
from provisioning.provision import provision
from tests.support.community import make_community
from tests.support.facebook_exports import Comment, FakeExport, Post
from tests.support.homeserver import Homeserver, running_bot

FB_GROUP = "Carers UK"
WORDS = [
    *(
        [
            "today",
            "chemo",
            "tired",
            "hope",
            "garden",
            "walk",
            "tea",
            "scan",
            "results",
            "nurse",
            "appointment",
            "sleep",
        ]
    ),
    *(
        [
            "pain",
            "better",
            "worse",
            "family",
            "friends",
            "thank",
            "you",
            "all",
            "week",
            "again",
            "day",
            "night",
        ]
    ),
]
T0 = 1_500_000_000


def exports(folder: Path, items: int, seed: int) -> list[Path]:
    """Three members' exports holding *items* posts and comments between them."""
    rng = random.Random(seed)
    names = ("Alicja Wróbel", "Bob Nowak", "Chidi Okafor")
    members = {n: FakeExport(n, layout="new" if i % 2 else "old") for i, n in enumerate(names)}
    ts = T0
    last_post: tuple[str, int] | None = None
    for i in range(items):
        ts += rng.randint(30, 600)
        text = " ".join(rng.choices(WORDS, k=rng.randint(5, 40)))
        if i % 3 == 2 and last_post is not None:
            author = rng.choice([n for n in names if n != last_post[0]])
            members[author].comments.append(Comment(ts, text, FB_GROUP, last_post[0]))
        else:
            author = rng.choice(names)
            members[author].posts.append(Post(ts, text, FB_GROUP))
            last_post = (author, ts)
    folder.mkdir(parents=True, exist_ok=True)
    return [m.write(folder / f"member{i}.zip") for i, m in enumerate(members.values())]


def peak_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB; 0 once gone.

    Not ru_maxrss: Linux starts a child's at its parent's peak when it
    forks, so every child would report at least the bench's own size."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for row in f:
                if row.startswith("VmHWM:"):
                    return int(row.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def hearth(*args: str) -> tuple[float, float, str]:
    """Run ``hearth ARGS`` in its own process: (seconds, peak MB, stderr)."""
    started = time.perf_counter()
    # Its messages to a file, not a pipe: a full pipe would stall it.
    with tempfile.TemporaryFile() as said:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bots.cli", *args], stdout=subprocess.DEVNULL, stderr=said
        )
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, peak_mb(proc.pid))
            time.sleep(0.2)
        said.seek(0)
        problems = said.read().decode(errors="replace")
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"hearth {args[0]} {args[1]} {args[2]} failed: {problems[-2000:]}")
    return elapsed, peak, problems


async def floor(base_url: str, review: Path, bot: str, as_token: str) -> tuple[int, float]:
    """The same events, plain, through a bare application-service loop."""
    async with aiohttp.ClientSession() as http:
        service = AppService(base_url, as_token, "@hearth-bridge:localhost", http)
        room = await service.create_room({"preset": "private_chat", "invite": [bot]})
        for _ in range(240):
            if bot in await service.joined(room):
                break
            await asyncio.sleep(0.5)
        roots: dict[str, str] = {}
        sent = 0
        started = time.perf_counter()
        for line in read_lines(review):
            root = roots.get(line.thread_of) if line.thread_of else None
            content = text_content(line, root)
            event_id = await service.send(
                room, "m.room.message", content, txn_id(room, line.id, 0), line.ts * 1000
            )
            roots[line.id] = root or event_id
            sent += 1
        return sent, time.perf_counter() - started


def floor_process(base_url: str, review: Path, bot: str, as_token_file: Path) -> tuple[int, float]:
    """:func:`floor` in its own process, as the import runs in its own."""
    code = (
        "import asyncio, sys; from pathlib import Path; from bench.bridge_figures import floor; "
        "n, s = asyncio.run(floor(sys.argv[1], Path(sys.argv[2]), sys.argv[3], "
        "Path(sys.argv[4]).read_text().strip())); print(n, s)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, base_url, str(review), bot, str(as_token_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    sent, seconds = done.stdout.split()
    return int(sent), float(seconds)


async def measure(hs: Homeserver, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    mod, bot = await hs.users("mod", "bot")
    groups = [
        {"key": key, "name": key.title(), "history_before_joining": True}
        for key in ("small", "large")
    ]
    as_token_file = hs.dir / "bridge-as-token"
    bridge = {"as_token_file": str(as_token_file), "state_dir": str(tmp / "bridge")}
    community = await make_community(
        hs, tmp, groups, moderators=[mod], bots=[bot], extra={"bridge": bridge}
    )
    await provision(community.load(), community.path, out=io.StringIO())
    results: dict[str, Any] = {"items": args.items, "small": args.small}
    reviews: dict[str, Path] = {}
    for name, items in (("small", args.small), ("large", args.items)):
        err.print(f"Writing {items} posts and comments as three members' exports…")
        zips = exports(tmp / f"exports-{name}", items, seed=items)
        out = tmp / f"review-{name}.jsonl"
        err.print(f"Planning {name}…")
        plan_s, plan_mb, _ = await asyncio.to_thread(
            hearth, "import", "facebook", "plan", *map(str, zips), "--group", name,
            "--facebook-group", FB_GROUP, "--out", str(out),
        )  # fmt: skip
        reviews[name] = out
        results[f"plan_{name}_s"] = plan_s
        results[f"plan_{name}_mb"] = plan_mb
        results[f"lines_{name}"] = sum(1 for _ in read_lines(out))
    if args.plan_only:
        return results
    config = hs.bot_config(
        bot,
        tmp / "bot",
        feature_sections={"archives": ArchivesConfig(community=community.path, poll_s=5)},
    )
    async with running_bot(config, timeout=120):
        for name in ("small", "large"):
            err.print(f"Importing {name} ({results[f'lines_{name}']} lines)…")
            apply_s, apply_mb, _ = await asyncio.to_thread(
                hearth, "import", "facebook", "apply", str(reviews[name]),
                "--community", str(community.path),
            )  # fmt: skip
            results[f"apply_{name}_s"] = apply_s
            results[f"apply_{name}_mb"] = apply_mb
        if not args.memory_only:
            err.print("The floor: the same events through a bare application-service loop…")
            sent, floor_s = await asyncio.to_thread(
                floor_process, hs.base_url, reviews["large"], bot.user_id, as_token_file
            )
    results["apply_eps"] = results["lines_large"] / results["apply_large_s"]
    if not args.memory_only:
        results["floor_events"] = sent
        results["floor_s"] = floor_s
        results["floor_eps"] = sent / floor_s
        results["ratio"] = results["apply_eps"] / results["floor_eps"]
    results["python_mb"] = await asyncio.to_thread(idle_python_mb)
    return results


def idle_python_mb() -> float:
    """A bare Python process with the importer's modules loaded."""
    code = (
        "import bridge.importer, bots.cli; "
        "print(next(r for r in open('/proc/self/status') if r.startswith('VmHWM')).split()[1])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout) / 1024


def report(r: dict[str, Any]) -> None:
    rows = []
    if "ratio" in r:  # not with --memory-only or --plan-only
        rows.append(
            Row(
                "Import speed",
                f"{r['apply_eps']:.0f} ev/s",
                f"{r['floor_eps']:.0f} ev/s (plain AS sends)",
                f"{r['ratio']:.2f}×",
                "≥ 0.7× floor",
                r["ratio"] >= 0.7,
            )
        )
    if "apply_large_mb" in r:
        rows.append(
            Row(
                "Peak memory, apply",
                f"{r['apply_large_mb']:.0f} MB",
                f"{r['python_mb']:.0f} MB (Python, modules loaded)",
                target="< 300 MB",
                met=r["apply_large_mb"] < 300,
            )
        )
        small = f"{r['apply_small_mb']:.0f} MB"
        rows.append(Row(f"  …at {r['small']} items", small, target="flat as it grows"))
    rows.append(
        Row(
            "Peak memory, plan",
            f"{r['plan_large_mb']:.0f} MB",
            f"{r['plan_small_mb']:.0f} MB (at {r['small']} items)",
            target="< 300 MB, flat as it grows",
        )
    )
    note = (
        f"plan {r['plan_large_s']:.1f} s for {r['lines_large']} lines"
        + (f"; apply {r['apply_large_s']:.1f} s" if "apply_large_s" in r else "")
        + (f"; floor {r['floor_s']:.1f} s for {r['floor_events']} events." if "ratio" in r else ".")
    )
    print_report(f"Facebook import ({r['items']} posts and comments)", rows, [note])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    results = versions()
    async with private_homeserver("hearth-bridge-", args.keep) as (hs, tmp):
        results |= await measure(hs, tmp, args)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=12_500)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--memory-only", action="store_true", help="leave the floor out (memory figures only)"
    )
    parser.add_argument(
        "--plan-only", action="store_true", help="only plan both exports (minutes, not an hour)"
    )
    args = parser.parse_args()
    return run_bench(lambda: run(args), report, "Interrupted; Synapse was stopped.")


if __name__ == "__main__":
    sys.exit(main())
