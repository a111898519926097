"""Trust and history figures, each beside a floor measured in the same run.

    cd /work/main && .venv/bin/python -m bench.trust_figures \
        [--members 200] [--messages 5000] [--rounds 5]

Starts a private Synapse on a free loopback port, then:

1. **Key sharing with the device filter.** A room of *members* people, each
   with one cross-signed device. Two fresh senders send their first message
   into it, alternating (ABBA) over *rounds* rounds, each round with new
   devices so every first message sets up its Olm sessions afresh: the floor
   is plain nio sharing with every device (what the bot did before); the
   figure is Hearth's sharing (cross-signing read and checked, the policy
   applied, 250 devices per request, the bot's signed device keys in each
   Olm message).
2. **A history bundle.** A member posts *messages* messages (nio starts a
   new Megolm session every 100, so 5,000 messages are 50 sessions, all
   marked shareable) into a group the bot is in. The figure is the bot's
   whole bundle for a newcomer: export, encrypt, upload, Olm-encrypt and
   send to the newcomer's verified device. The floor is the unavoidable
   part: an encrypted upload of the same number of bytes.

Prints a table and one JSON line. Never asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nio import AsyncClient, RoomSendError

from bench.harness import device, err, private_homeserver, run_bench, versions
from bench.report import Row, print_report, ratio
from bots.framework.logging import configure_logging
from bots.framework.storage import Storage
from bots.framework.trust.channel import CryptoChannel
from bots.framework.trust.identities import Identities
from bots.framework.trust.policy import KeySharing
from bots.framework.trust.sharing import KeySharer
from tests.support.features import doorkeeper_feature
from tests.support.homeserver import Homeserver, User, member, running_bot

# Members' devices are set up this many at a time.
SETUP_CONCURRENCY = 8


async def _nothing(_: str) -> None:
    return None


@contextlib.asynccontextmanager
async def bot_identities(client: AsyncClient, db: Path) -> AsyncIterator[Identities]:
    """The bot's identity cache, its pins in a real bot database (closed at
    the end: an open one keeps its thread, and the bench, from ending)."""
    storage = await Storage.open(db)
    try:
        yield Identities(
            CryptoChannel(client), storage, holds_power=lambda _: False, report_change=_nothing
        )
    finally:
        await storage.close()


async def crowd(hs: Homeserver, tmp: Path, room: str, users: list[User]) -> None:
    """Each user joins *room* with one cross-signed device (then goes quiet)."""
    slots = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(i: int, user: User) -> None:
        async with slots:
            client = await device(hs, user, tmp / "crowd" / str(i))
            try:
                await client.join(room)
            finally:
                await client.close()

    await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))


async def first_message(
    hs: Homeserver, sender: User, store: Path, room: str, filtered: bool
) -> float:
    """Milliseconds from asking to send until the homeserver accepted the
    first message of a fresh device (sessions, key sharing and the send)."""
    client = await device(hs, sender, store)
    try:
        await client.sync(timeout=0, full_state=True)
        content = {"msgtype": "m.text", "body": "Welcome, everyone"}
        t0 = time.perf_counter()
        if filtered:
            async with bot_identities(client, store / "bot.db") as identities:
                sharer = KeySharer(client, identities, KeySharing.CROSS_SIGNED)
                await sharer.ensure_shared(room)
                resp = await client.room_send(room, "m.room.message", content)
                ms = (time.perf_counter() - t0) * 1000
        else:
            resp = await client.room_send(
                room, "m.room.message", content, ignore_unverified_devices=True
            )
            ms = (time.perf_counter() - t0) * 1000
        if isinstance(resp, RoomSendError):
            raise RuntimeError(f"send failed: {resp.status_code}")
        return ms
    finally:
        await client.logout()
        await client.close()


async def sharing_figures(hs: Homeserver, tmp: Path, members: int, rounds: int) -> dict[str, Any]:
    creator, plain, hearth = await hs.users("creator", "plain", "hearth")
    crowd_users = [await hs.user(f"m{i}") for i in range(members)]
    await hs.exempt_from_rate_limits(creator, plain, hearth, *crowd_users)
    room = await hs.encrypted_room(creator, [plain, hearth, *crowd_users])
    err.print(f"Sharing: {members} members join with one cross-signed device each")
    await crowd(hs, tmp, room, crowd_users)
    for user in (plain, hearth):
        await (await hs.api(user)).request("POST", f"/_matrix/client/v3/join/{room}", {})
    floor: list[float] = []
    filtered: list[float] = []
    for i in range(rounds):
        order = [(False, floor), (True, filtered)]
        for is_hearth, into in order if i % 2 == 0 else order[::-1]:
            who = hearth if is_hearth else plain
            store = tmp / "senders" / f"{who.localpart}-{i}"
            into.append(await first_message(hs, who, store, room, is_hearth))
        err.print(f"  round {i + 1}: nio {floor[-1]:.0f} ms, Hearth {filtered[-1]:.0f} ms")
    return {
        "members": members,
        "share_floor_ms": floor,
        "share_hearth_ms": filtered,
        "share_floor_median_ms": statistics.median(floor),
        "share_hearth_median_ms": statistics.median(filtered),
    }


async def post(hs: Homeserver, poster: User, store: Path, room: str, messages: int) -> None:
    """*messages* encrypted posts whose keys are marked shareable (a Hearth
    sharer sets the flag, as Element does in a group with shared history)."""
    client = await device(hs, poster, store)
    try:
        await client.sync(timeout=0, full_state=True)
        async with bot_identities(client, store / "bot.db") as identities:
            sharer = KeySharer(client, identities, shared_history=lambda _room: True)
            for i in range(messages):
                await sharer.ensure_shared(room)
                resp = await client.room_send(
                    room, "m.room.message", {"msgtype": "m.text", "body": f"story {i}"}
                )
                if isinstance(resp, RoomSendError):
                    raise RuntimeError(f"post failed: {resp.status_code}")
                if (i + 1) % 1000 == 0:
                    err.print(f"  {i + 1} posted")
    finally:
        await client.close()


async def bundle_figures(hs: Homeserver, tmp: Path, messages: int, rounds: int) -> dict[str, Any]:
    bot, mod, poster, newcomer = await hs.users("bot", "mod", "poster", "newcomer")
    await hs.exempt_from_rate_limits(poster)
    room = await hs.encrypted_room(mod, [bot, poster], power={bot.user_id: 100}, history="shared")
    config = hs.bot_config(bot, tmp / "bot", log={"level": "warning"})
    from bots.core.feature import FEATURE as core

    async with (
        running_bot(config, [core, doorkeeper_feature()], timeout=60) as runtime,
        member(hs, newcomer, tmp / "newcomer"),
    ):
        client = runtime.session.client
        assert client is not None
        assert client.olm is not None
        for _ in range(600):
            if room in client.rooms and bot.user_id in client.rooms[room].users:
                break
            await asyncio.sleep(0.1)
        await (await hs.api(poster)).request("POST", f"/_matrix/client/v3/join/{room}", {})
        err.print(f"Bundle: a member posts {messages} messages")
        await post(hs, poster, tmp / "poster", room, messages)
        expected = -(-messages // 100)
        assert runtime.storage is not None
        for _ in range(1200):
            if len(await runtime.storage.shareable_sessions(room)) >= expected:
                break
            await asyncio.sleep(0.1)
        sessions = sum(len(v) for v in client.olm.inbound_group_store[room].values())
        history = runtime.history
        assert history is not None
        built: list[float] = []
        uploads: list[float] = []
        for i in range(rounds):
            t0 = time.perf_counter()
            await history.before_invite(room, newcomer.user_id)
            built.append((time.perf_counter() - t0) * 1000)
            assert history.last is not None
            size = history.last.size
            t0 = time.perf_counter()
            await history.upload(os.urandom(size))
            uploads.append((time.perf_counter() - t0) * 1000)
            err.print(
                f"  round {i + 1}: bundle {built[-1]:.0f} ms, upload alone {uploads[-1]:.0f} ms"
            )
        stats = history.last
        assert stats is not None
    return {
        "messages": messages,
        "sessions_in_room": sessions,
        "bundle_sessions": stats.sessions,
        "bundle_withheld": stats.withheld,
        "bundle_devices": stats.devices,
        "bundle_bytes": stats.size,
        "bundle_ms": built,
        "upload_floor_ms": uploads,
        "bundle_median_ms": statistics.median(built),
        "upload_floor_median_ms": statistics.median(uploads),
    }


def report(r: dict[str, Any]) -> None:
    def row(figure: str, ours: float, floor: float) -> Row:
        # The difference beside the ratio: what the extra work costs, in ms.
        extra = f"{ratio(ours, floor)} ({ours - floor:+.0f} ms)"
        return Row(figure, f"{ours:.0f} ms", f"{floor:.0f} ms", extra)

    rows = []
    if "share_hearth_median_ms" in r:
        rows.append(
            row(
                f"First message, {r['members']} members, median (floor: nio, every device)",
                r["share_hearth_median_ms"],
                r["share_floor_median_ms"],
            )
        )
    if "bundle_median_ms" in r:
        rows.append(
            row(
                f"History bundle, {r['bundle_sessions']} sessions ({r['messages']} messages), "
                "median (floor: the upload alone)",
                r["bundle_median_ms"],
                r["upload_floor_median_ms"],
            )
        )
    notes = []
    if "bundle_bytes" in r:
        notes.append(
            f"Bundle: {r['bundle_bytes']:,} bytes before encryption, {r['bundle_sessions']} "
            f"sessions shared, {r['bundle_withheld']} withheld, sent to "
            f"{r['bundle_devices']} device(s)."
        )
    print_report(f"Trust and history ({r['date']}, {r['cpus']} CPUs)", rows, notes)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    results = versions()
    async with private_homeserver("hearth-trust-", args.keep) as (hs, tmp):
        if args.members:
            results |= await sharing_figures(hs, tmp, args.members, args.rounds)
        if args.messages:
            results |= await bundle_figures(hs, tmp, args.messages, args.rounds)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=200, help="room size (0: skip)")
    parser.add_argument("--messages", type=int, default=5000, help="history (0: skip)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per figure")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    return run_bench(lambda: run(args), report, "Interrupted; Synapse was stopped.")


if __name__ == "__main__":
    sys.exit(main())
