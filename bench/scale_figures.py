"""E2EE at community scale, each figure beside a floor from the same run.

    cd /work/main && .venv/bin/python -m bench.scale_figures \
        [--sizes 500 1000] [--rounds 3] [--pings 5]

Starts a private Synapse on a free loopback port (passwords hashed with 4
bcrypt rounds, so that setting up 1,000 accounts does not take the cores
the figures are measured on) and a crowd: one cross-signed device per
member, every member in the big room, the first of them in the smaller
rooms. Then:

1. **The first message into a room of each size.** A fresh sender device
   sends its first message (one-time keys claimed, an Olm session with
   every device, the room key to each, the send), then a second (encrypt
   and send only). Hearth's: the bot's key-sharing layer (trust policy
   "cross-signed", nio's store written in rounds, 250 devices a request).
   The floor: Element's stack, matrix-js-sdk with Rust crypto in
   "exclude insecure devices" (the same policy), from the project's Node
   tooling (``tests/interop/js/first_message.mjs``). Rounds alternate
   the order (ABC, CBA); each uses new devices. A third sender does the same with Olm
   sessions made beforehand (untimed), as the bot makes them ahead when
   members join: its first message only sends the room key.
2. **The bot under an announcement.** The bot runs in its own process,
   in the big room and in a small one. Joining the big room, it makes Olm
   sessions with its members' devices in the background: a member's
   ``!ping`` in the small room meanwhile, answered, again and again until
   the bot's log says every device has one (and how long that took).
   Quiet: a member's ``!ping`` in the small room, answered (median of
   *pings*). Loaded: a member's ``!ping``
   in the big room (the bot's first message there: the room key to every
   device; the member's own key went out beforehand) and, 50 ms later,
   the same ``!ping`` in the small room. Then the bot's resident memory,
   with every member's device known.

Prints a table and one JSON line; never asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from nio import RoomSendError

from bench.harness import device, err, private_homeserver, run_bench, versions
from bench.report import Row, print_report, ratio
from bench.trust_figures import bot_identities
from bots.framework.logging import configure_logging
from bots.framework.trust.policy import KeySharing
from bots.framework.trust.sharing import KeySharer
from bots.framework.trust.warming import SessionWarmer
from tests.support.bot_process import bot_process
from tests.support.homeserver import Homeserver, User, member, wait_joined, write_bot_yaml
from tests.support.js_client import run_script

SETUP_CONCURRENCY = 8
CONTENT = {"msgtype": "m.text", "body": "Welcome, everyone"}


async def crowd(hs: Homeserver, tmp: Path, rooms: dict[str, int], users: list[User]) -> None:
    """User number i joins each room of *rooms* (id → how many of the
    users are in it) it is one of, with one cross-signed device."""
    slots = asyncio.Semaphore(SETUP_CONCURRENCY)
    done = 0

    async def one(i: int, user: User) -> None:
        nonlocal done
        async with slots:
            client = await device(hs, user, tmp / "crowd" / str(i))
            try:
                for room, size in rooms.items():
                    if i < size:
                        await client.join(room)
            finally:
                await client.close()
            done += 1
            if done % 100 == 0:
                err.print(f"  {done} members set up")

    await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))


async def hearth_sends(
    hs: Homeserver, sender: User, store: Path, room: str, ahead: bool = False
) -> tuple[float, float]:
    """(first, second) message's milliseconds with the bot's key sharing;
    *ahead*: with Olm sessions made beforehand (untimed), as the bot's
    SessionWarmer makes them when members join."""
    client = await device(hs, sender, store, rounds=True)
    try:
        await client.sync(timeout=0, full_state=True)
        async with bot_identities(client, store / "bot.db") as identities:
            sharer = KeySharer(client, identities, KeySharing.CROSS_SIGNED)
            if ahead:
                warmer = SessionWarmer(sharer, identities, KeySharing.CROSS_SIGNED)
                others = [u for u in client.rooms[room].users if u != client.user_id]
                await warmer.warm(others)
            times = []
            for body in ("Welcome, everyone", "And a second message"):
                t0 = time.perf_counter()
                await sharer.ensure_shared(room)
                resp = await client.room_send(room, "m.room.message", {**CONTENT, "body": body})
                times.append((time.perf_counter() - t0) * 1000)
                if isinstance(resp, RoomSendError):
                    raise RuntimeError(f"send failed: {resp.status_code}")
        return times[0], times[1]
    finally:
        await client.logout()
        await client.close()


async def element_sends(hs: Homeserver, sender: User, room: str) -> tuple[float, float]:
    """The same two messages from matrix-js-sdk with Rust crypto."""
    args = ["--homeserver", hs.base_url, "--user", sender.user_id, "--room", room]
    line = await run_script("first_message.mjs", args, sender.password)
    return float(line["first_ms"]), float(line["second_ms"])


async def first_message_figures(
    hs: Homeserver, tmp: Path, creator: User, rooms: dict[int, str], rounds: int
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size, room in rooms.items():
        hearth_user, js_user = await hs.users(f"h{size}", f"e{size}")
        await hs.exempt_from_rate_limits(hearth_user, js_user)
        api = await hs.api(creator)
        for user in (hearth_user, js_user):
            await api.invite(room, user.user_id)
            await (await hs.api(user)).request("POST", f"/_matrix/client/v3/join/{room}", {})
        ours: list[tuple[float, float]] = []
        ahead: list[tuple[float, float]] = []
        floor: list[tuple[float, float]] = []
        for i in range(rounds):
            order = [("hearth", ours), ("element", floor), ("ahead", ahead)]
            for who, into in order if i % 2 == 0 else order[::-1]:
                if who == "element":
                    into.append(await element_sends(hs, js_user, room))
                else:
                    store = tmp / "senders" / f"{size}-{i}-{who}"
                    into.append(await hearth_sends(hs, hearth_user, store, room, who == "ahead"))
            err.print(
                f"  {size} members, round {i + 1}: Hearth {ours[-1][0]:.0f} / "
                f"{ours[-1][1]:.0f} ms (sessions made ahead: {ahead[-1][0]:.0f} ms), "
                f"Element {floor[-1][0]:.0f} / {floor[-1][1]:.0f} ms"
            )
        results[f"first_{size}_ahead_ms"] = [r[0] for r in ahead]
        results[f"first_{size}_ahead_median_ms"] = statistics.median(r[0] for r in ahead)
        for name, runs in (("hearth", ours), ("element", floor)):
            results[f"first_{size}_{name}_ms"] = [r[0] for r in runs]
            results[f"second_{size}_{name}_ms"] = [r[1] for r in runs]
            results[f"first_{size}_{name}_median_ms"] = statistics.median(r[0] for r in runs)
            results[f"second_{size}_{name}_median_ms"] = statistics.median(r[1] for r in runs)
    return results


def sessions_made_ahead(log: Path) -> int:
    """The most Olm sessions the bot's log says it has made ahead."""
    made = 0
    for line in log.read_text().splitlines():
        if '"olm sessions made ahead"' in line:
            made = max(made, int(json.loads(line)["devices"]))
    return made


def resident_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for row in f:
            if row.startswith(("VmRSS:", "VmHWM:")):
                values[row.split(":")[0]] = int(row.split()[1]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def bot_figures(
    hs: Homeserver, tmp: Path, creator: User, big_room: str, members: int, pings: int
) -> dict[str, Any]:
    bot, pinger, caller = await hs.users("bot", "pinger", "caller")
    await hs.exempt_from_rate_limits(bot, pinger, caller)
    api = await hs.api(creator)
    for user in (bot, caller):
        await api.invite(big_room, user.user_id)
    small = await hs.encrypted_room(pinger, [bot], power={bot.user_id: 100})
    config = hs.bot_config(bot, tmp / "bot")
    config_path = write_bot_yaml(config, tmp / "bot.yaml", sync_timeout_ms=10_000)
    async with (
        member(hs, pinger, tmp / "pinger") as p,
        member(hs, caller, tmp / "caller") as c,
        bot_process(config_path, tmp / "bot.log") as proc,
    ):
        await wait_joined(hs, pinger, small, bot.user_id)
        await wait_joined(hs, creator, big_room, bot.user_id)
        joined_at = time.perf_counter()
        await c.join(big_room)
        # The caller's own room key goes to every member now: nio shares it
        # slowly and on this process's event loop, which would otherwise be
        # timed as the bot's announcement and hold up the pinger's clock.
        await c.send(big_room, "Hello, everyone")
        await p.sync_until_joined(small)

        async def ping(m: Any, room: str) -> float:
            t0 = time.perf_counter()
            await m.wait_for_reply(await m.send(room, "!ping"), timeout=300)
            return (time.perf_counter() - t0) * 1000

        # The bot makes Olm sessions with the big room's members in the
        # background; a member's pings meanwhile, until it says it is done.
        during: list[float] = []
        while (made := sessions_made_ahead(tmp / "bot.log")) < members:
            during.append(await ping(p, small))
        warming_s = time.perf_counter() - joined_at
        quiet = [await ping(p, small) for _ in range(pings + 1)][1:]  # the first warms up
        before_mb = resident_mb(proc.pid)
        announcement = asyncio.create_task(ping(c, big_room))
        await asyncio.sleep(0.05)
        loaded = await ping(p, small)
        announced = await announcement
        after_mb = resident_mb(proc.pid)
    return {
        "warming_s": warming_s,
        "sessions_made_ahead": made,
        "warming_ping_ms": during,
        "warming_ping_median_ms": statistics.median(during) if during else None,
        "quiet_ping_ms": quiet,
        "quiet_ping_median_ms": statistics.median(quiet),
        "loaded_ping_ms": loaded,
        "announcement_ms": announced,
        "announcement_members": members,
        "bot_rss_before_mb": before_mb[0],
        "bot_rss_after_mb": after_mb[0],
        "bot_peak_mb": after_mb[1],
    }


def report(r: dict[str, Any]) -> None:
    def beside(figure: str, ours: float, floor: float, what: str, goal: float | None) -> Row:
        shown = (f"{ours:.0f} ms", f"{floor:.0f} ms ({what})", ratio(ours, floor))
        if goal is None:
            return Row(figure, *shown)
        return Row(figure, *shown, f"≤ {goal}×", ours / floor <= goal)

    rows = []
    for size in r["sizes"]:
        for which, goal in (("first", 1.0), ("second", None)):
            rows.append(
                beside(
                    f"{which.title()} message, {size} members (median)",
                    r[f"{which}_{size}_hearth_median_ms"],
                    r[f"{which}_{size}_element_median_ms"],
                    "Element's stack",
                    goal,
                )
            )
        rows.append(
            beside(
                f"First message, {size} members, sessions made ahead (median)",
                r[f"first_{size}_ahead_median_ms"],
                r[f"first_{size}_element_median_ms"],
                "Element's stack, first message",
                1.0,
            )
        )
    quiet = r["quiet_ping_median_ms"]
    rows.append(
        beside(
            f"!ping while announcing to {r['announcement_members']}",
            r["loaded_ping_ms"],
            quiet,
            "quiet, median",
            None,
        )
    )
    if r["warming_ping_median_ms"] is not None:
        rows.append(
            beside(
                f"!ping while making sessions ahead ({len(r['warming_ping_ms'])} pings)",
                r["warming_ping_median_ms"],
                quiet,
                "quiet, median",
                None,
            )
        )
    rows.append(
        Row(
            f"Sessions made ahead with {r['sessions_made_ahead']} devices",
            f"{r['warming_s']:.1f} s",
        )
    )
    members = r["announcement_members"]
    element = r.get(f"first_{members}_element_median_ms")
    label = f"The announcement through the bot ({members} members, sessions made ahead)"
    if element:
        rows.append(beside(label, r["announcement_ms"], element, "Element's first message", None))
    else:  # the room of that size was not among --sizes: no floor for it
        rows.append(Row(label, f"{r['announcement_ms']:.0f} ms"))
    rows.append(
        Row(
            "Bot's resident memory, every device known",
            f"{r['bot_rss_after_mb']:.0f} MB",
            f"{r['bot_rss_before_mb']:.0f} MB before the announcement",
            target="< 150 MB",
            met=r["bot_rss_after_mb"] < 150,
        )
    )
    print_report("E2EE at community scale", rows)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    results = versions() | {"sizes": args.sizes, "rounds": args.rounds}
    biggest = max(args.sizes)
    async with private_homeserver("hearth-scale-", args.keep, {"bcrypt_rounds": 4}) as (hs, tmp):
        creator = await hs.user("creator")
        err.print(f"Registering {biggest} members…")
        users = [await hs.user(f"m{i}") for i in range(biggest)]
        await hs.exempt_from_rate_limits(creator, *users)
        rooms = {}
        for size in sorted(args.sizes):
            rooms[size] = await hs.encrypted_room(creator, users[:size])
        err.print("Each member joins with one cross-signed device…")
        await crowd(hs, tmp, {room: size for size, room in rooms.items()}, users)
        results |= await first_message_figures(hs, tmp, creator, rooms, args.rounds)
        err.print(f"The bot, quiet and while announcing to {biggest} members…")
        results |= await bot_figures(hs, tmp, creator, rooms[biggest], biggest, args.pings)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pings", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    return run_bench(lambda: run(args), report, "Interrupted; Synapse was stopped.")


if __name__ == "__main__":
    sys.exit(main())
