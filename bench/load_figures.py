"""`!ping` under load, against the quiet client-to-client floor, same run.

    cd /work/main && .venv/bin/python -m bench.load_figures [--pings 100] [--rate 50] [--gap-s 0]

Starts a private Synapse and the bot as its own `hearth run` process. Member
A measures, in order:

1. the floor: A's encrypted message answered by member B (no load);
2. the bot's `!ping` round trip with no load (for reference);
3. the bot's `!ping` round trip while a third member, in its own process,
   sends *rate* encrypted messages a second into four other rooms the bot is
   in (the bot takes each one in: decrypts, records, routes).

Prints a table and one JSON line. Never asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench.bot_figures import BIN, Children, install_echo, med_p90, sees_member
from bench.harness import cpu_s, err, private_homeserver, run_bench, versions
from bench.report import Row, print_report, ratio
from bots.framework.logging import configure_logging
from bots.framework.secrets import write_secret
from tests.support.homeserver import Homeserver, member
from tests.support.member_client import MemberClient


async def series(
    a: MemberClient, room: str, n: int, warmup: int, gap_s: float = 0.0
) -> list[float]:
    out = []
    for i in range(warmup + n):
        if gap_s:
            await asyncio.sleep(gap_s)
        t0 = time.perf_counter()
        await a.wait_for_reply(await a.send(room, "!ping"), timeout=60)
        if i >= warmup:
            out.append((time.perf_counter() - t0) * 1000)
    return out


async def measure(
    hs: Homeserver, tmp: Path, pings: int, warmup: int, rate: float, gap_s: float
) -> dict[str, Any]:
    bot, a_user, b_user, c_user = await hs.users("bot", "a", "b", "c")
    await hs.exempt_from_rate_limits(a_user, b_user, c_user)
    bot_room = await hs.encrypted_room(a_user, [bot])
    floor_room = await hs.encrypted_room(a_user, [b_user])
    busy = [await hs.encrypted_room(c_user, [bot]) for _ in range(4)]
    write_secret(tmp / "bot.password", bot.password)
    write_secret(tmp / "c.password", c_user.password)
    config = tmp / "bot.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "bot": {
                    "homeserver": hs.base_url,
                    "user_id": bot.user_id,
                    "password_file": str(tmp / "bot.password"),
                    "state_dir": str(tmp / "bot-state"),
                    "log": {"level": "warning", "format": "json"},
                }
            }
        )
    )
    children = Children()
    out: dict[str, Any] = {}
    try:
        with (tmp / "bot.log").open("wb") as log:
            bot_proc = await children.spawn(
                str(BIN / "hearth"), "run", "--config", str(config), stdout=log, stderr=log
            )
        async with member(hs, a_user, tmp / "a") as a, member(hs, b_user, tmp / "b") as b:
            await b.join(floor_room)
            await sees_member(a, floor_room, b.user_id)
            for _ in range(600):
                if bot.user_id in await (await hs.api(a_user)).joined_members(bot_room):
                    break
                await asyncio.sleep(0.1)
            for room in busy:
                for _ in range(600):
                    if bot.user_id in await (await hs.api(c_user)).joined_members(room):
                        break
                    await asyncio.sleep(0.1)
            await sees_member(a, bot_room, bot.user_id)
            install_echo(b, floor_room, a.user_id)
            err.print(f"Floor: {pings} client-to-client round trips, no load")
            floor = await series(a, floor_room, pings, warmup, gap_s)
            err.print(f"Bot: {pings} !ping round trips, no load")
            quiet = await series(a, bot_room, pings, warmup, gap_s)
            # Long enough for the loaded series; the chatter stops by itself.
            seconds = max(30.0, pings * (1.0 + 2 * gap_s))
            err.print(f"Bot: {pings} !ping round trips while {rate:g} messages/s go to 4 rooms")
            traffic = await children.spawn(
                str(BIN / "python"), "-m", "bench.traffic", hs.base_url, c_user.user_id,
                str(tmp / "c.password"), str(tmp / "c-store"), str(rate), str(seconds), *busy,
                stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parents[1],
            )  # fmt: skip
            await asyncio.sleep(5)  # let the chatter reach its rate
            # Who uses the two cores while the loaded series runs: a process
            # near 100% of one core is saturated, and its queue is the delay.
            pids = {"synapse": hs.process.pid, "bot": bot_proc.pid, "chatter": traffic.pid}
            cpu0 = {k: cpu_s(pid) for k, pid in pids.items()} | {"bench": time.process_time()}
            t0 = time.perf_counter()
            # Bot and floor alternate under the same load (ABBA), so the
            # homeserver's own slowdown shows in the floor too.
            loaded: list[float] = []
            floor_loaded: list[float] = []
            for i in range(pings):
                pair = [(bot_room, loaded), (floor_room, floor_loaded)]
                for room, into in pair if i % 2 == 0 else pair[::-1]:
                    into.extend(await series(a, room, 1, 1 if i == 0 else 0, gap_s))
            wall = time.perf_counter() - t0
            cpu1 = {k: cpu_s(pid) for k, pid in pids.items()} | {"bench": time.process_time()}
            for name, before in cpu0.items():
                out[f"cpu_share_{name}"] = (cpu1[name] - before) / wall
            assert traffic.stdout is not None
            chatter = json.loads((await traffic.stdout.readline()) or b"{}")
            await traffic.wait()
    finally:
        await children.stop_all()
    runs = (("floor", floor), ("quiet", quiet), ("loaded", loaded), ("floor_loaded", floor_loaded))
    for name, values in runs:
        out[f"{name}_median_ms"], out[f"{name}_p90_ms"] = med_p90(values)
    out["background_rate"] = chatter.get("rate", 0.0)
    out["background_sent"] = chatter.get("sent", 0)
    return out


def report(r: dict[str, Any]) -> None:
    rows = []
    for stat in ("median", "p90"):
        bot, floor = r[f"loaded_{stat}_ms"], r[f"floor_{stat}_ms"]
        shown = (f"{bot:.1f} ms", f"{floor:.1f} ms", ratio(bot, floor))
        rows.append(Row(f"!ping under load, {stat}", *shown, "≤ 1.2× floor", bot / floor <= 1.2))
    for stat in ("median", "p90"):
        bot, floor = r[f"quiet_{stat}_ms"], r[f"floor_{stat}_ms"]
        rows.append(
            Row(f"!ping, no load, {stat}", f"{bot:.1f} ms", f"{floor:.1f} ms", ratio(bot, floor))
        )
    bot, floor = r["loaded_median_ms"], r["floor_loaded_median_ms"]
    rows.append(
        Row(
            "!ping under load vs floor under load, median",
            f"{bot:.1f} ms",
            f"{floor:.1f} ms",
            ratio(bot, floor),
        )
    )
    shares = ", ".join(
        f"{name} {r[f'cpu_share_{name}']:.0%}" for name in ("synapse", "bot", "chatter", "bench")
    )
    notes = (
        f"CPU while loaded, share of one core: {shares} (of {r['cpus']} cores).",
        f"Background: {r['background_sent']} messages at {r['background_rate']:.1f}/s into 4 "
        "rooms the bot is in, from a member in its own process. Floor: member B answers A's "
        "encrypted message in another room, measured before the load (and, last row, "
        "alternated with the bot's under the same load).",
    )
    title = f"!ping under load ({r['pings']} per series, {r['date']})"
    print_report(title, rows, notes, value="Bot", floor="Quiet floor")


async def run(pings: int, warmup: int, rate: float, gap_s: float, keep: bool) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    results = versions() | {"pings": pings, "warmup": warmup, "rate": rate, "gap_s": gap_s}
    async with private_homeserver("hearth-load-", keep) as (hs, tmp):
        results |= await measure(hs, tmp, pings, warmup, rate, gap_s)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pings", type=int, default=100, help="measured round trips per series")
    parser.add_argument("--warmup", type=int, default=5, help="uncounted rounds first")
    parser.add_argument("--rate", type=float, default=50.0, help="background messages a second")
    parser.add_argument(
        "--gap-s",
        type=float,
        default=0.0,
        help="pause before each round trip (0: back to back, as before), so that the "
        "measuring itself is not most of the homeserver's load",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    args = parser.parse_args()
    return run_bench(
        lambda: run(args.pings, args.warmup, args.rate, args.gap_s, args.keep),
        report,
        "Interrupted; Synapse and the bot were stopped.",
    )


if __name__ == "__main__":
    sys.exit(main())
