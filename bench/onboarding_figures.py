"""Migration day: many newcomers at once, against a floor from the same run.

    cd /work/main && .venv/bin/python -m bench.onboarding_figures [--applicants 500]

Starts a private Synapse (loading hearth_synapse), the admin agent and the
bot with onboarding, then:

1. *applicants* newcomers register with the group's token, spread evenly
   over one minute (several at once, as from many phones); timed from the
   first registration until every one has been welcomed (the bot's welcome
   is in each one's DM). Synapse hashes passwords with 4 bcrypt rounds
   here, not 12, so that its hashing does not take the two cores the bot
   is measured on;
2. each accepts the code of conduct (the group asks no questions, so that
   puts every application before the moderators);
3. a moderator approves them all; timed until every approval has produced
   its invites (each newcomer invited to the group's room).

The floor does the bot's work with no bot logic: a bare nio client opens
the same number of encrypted DMs with one message each. Then a second
client sends it the same `!approve` commands, one after another, in an
encrypted staff room, and it syncs, decrypts each and sends what the bot
sends for it, one request at a time: two invites, a message in the DM and
a notice in the staff room; timed, like Hearth, from the first command.
The sending alone (the same requests with no command to receive) is
printed beside it, as the floor was before 2026-12-08. Also printed: the
bot's resident memory with every application in flight, and newcomers
welcomed twice or never (must be 0).
Never asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from nio import AsyncClient, MegolmEvent, RoomMessageText, RoomSendError, SyncError

from bench.bot_figures import rss_mb
from bench.harness import device, err, private_homeserver, run_bench, versions
from bench.report import Row, print_report, ratio
from bots.devserver.synapse_config import registrations_dir
from bots.framework.logging import configure_logging
from bots.framework.session import SYNC_FILTER
from bots.onboarding.config import OnboardingConfig
from provisioning.provision import provision
from provisioning.tokens import Tokens
from tests.support.community import make_community, running_agent
from tests.support.homeserver import Homeserver, User, running_bot
from tests.support.registration import register

CONCURRENCY = 8
SPREAD_S = 60.0  # "registering within one minute"


async def direct_rooms(hs: Homeserver, bot: User) -> dict[str, list[str]]:
    api = await hs.api(bot)
    path = f"/_matrix/client/v3/user/{bot.user_id}/account_data/m.direct"
    try:
        data = await api.request("GET", path)
    except Exception:
        return {}
    return {k: v for k, v in data.items() if isinstance(v, list)}


async def bot_messages(hs: Homeserver, admin: User, room: str, bot: str) -> int:
    api = await hs.api(admin)
    chunk = (await api.request("GET", f"/_synapse/admin/v1/rooms/{room}/messages?dir=b&limit=100"))[
        "chunk"
    ]
    return sum(1 for e in chunk if e["sender"] == bot and e["type"] == "m.room.encrypted")


async def agree_all(hs: Homeserver, tmp: Path, newcomers: list[User], dms: dict[str, str]) -> None:
    """Each newcomer joins their DM and sends !agree, a few at a time."""
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int, user: User) -> None:
        async with slots:
            client = await device(hs, user, tmp / "newcomers" / str(i))
            try:
                await client.join(dms[user.user_id])
                await client.sync(timeout=0, full_state=True)
                await send(client, dms[user.user_id], "!agree")
            finally:
                await client.close()

    await asyncio.gather(*(one(i, u) for i, u in enumerate(newcomers)))


async def register_spread(hs: Homeserver, token: str, n: int, t0: float) -> list[User]:
    """*n* registrations, the i-th started no earlier than i/n of SPREAD_S
    after *t0*, a few in flight at once."""
    slots = asyncio.Semaphore(CONCURRENCY * 2)

    async def one(i: int) -> User:
        await asyncio.sleep(max(0.0, t0 + i * SPREAD_S / n - time.perf_counter()))
        async with slots:
            status, data, user = await register(hs.base_url, token)
        if status != 200 or user is None:
            raise RuntimeError(f"registration failed: {status} {data}")
        return user

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def invited(hs: Homeserver, admin: User, room: str) -> set[str]:
    api = await hs.api(admin)
    state = await api.request("GET", f"/_matrix/client/v3/rooms/{room}/members?membership=invite")
    return {e["state_key"] for e in state.get("chunk", [])}


async def hearth_run(hs: Homeserver, tmp: Path, n: int) -> dict[str, Any]:
    mod, bot = await hs.users("mod", "bot")
    await hs.exempt_from_rate_limits(mod)
    groups = [{"key": "carers", "name": "Carers", "questions": []}]
    community = await make_community(hs, tmp, groups, moderators=[mod], bots=[bot])
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    group_room, mods_room = ids["group/carers/general"], ids["moderators"]
    section = OnboardingConfig(
        community=community.path,
        registrations=registrations_dir(hs.dir),
        poll_s=0.2,
        wait_for_verification_s=0,
    )
    config = hs.bot_config(
        bot,
        tmp / "bot",
        moderators_room=mods_room,
        admin_socket=tmp / "agent-home" / "agent" / "agent.sock",
        feature_sections={"onboarding": section},
        log={"level": "warning"},
    )
    admin = community.admin
    tokens = Tokens(await hs.api(admin), admin.user_id)
    token = (await tokens.create(n, timedelta(days=1), "carers")).token
    # What this process holds before the bot starts: the floor for its memory.
    out: dict[str, Any] = {"rss_before_mb": rss_mb(os.getpid())}
    async with running_agent(community, tmp / "agent-home"), running_bot(config, timeout=60):
        mod_client = await device(hs, mod, tmp / "mod")
        await mod_client.join(mods_room)
        err.print(f"Hearth: {n} newcomers register within {SPREAD_S:.0f} s")
        t0 = time.perf_counter()
        newcomers = await register_spread(hs, token, n, t0)
        out["register_s"] = time.perf_counter() - t0
        while True:
            direct = await direct_rooms(hs, bot)
            if all(u.user_id in direct for u in newcomers):
                break
            await asyncio.sleep(0.5)
        dms = {u.user_id: direct[u.user_id][0] for u in newcomers}
        for user in newcomers:
            while await bot_messages(hs, admin, dms[user.user_id], bot.user_id) < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        out["welcomed_s"] = time.perf_counter() - t0
        out["welcome_lag_s"] = out["welcomed_s"] - out["register_s"]
        # The bot runs in this process, beside the bench's own clients.
        out["rss_mb"] = rss_mb(os.getpid())
        err.print("Hearth: each agrees, then a moderator approves them all")
        await agree_all(hs, tmp, newcomers, dms)
        await mod_client.sync(timeout=0, full_state=True)
        t1 = time.perf_counter()
        for user in newcomers:
            await send(mod_client, mods_room, f"!approve {user.user_id}")
        wanted = {u.user_id for u in newcomers}
        while not wanted <= await invited(hs, admin, group_room):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        out["approved_s"] = time.perf_counter() - t1
        await mod_client.close()
        counts = [await bot_messages(hs, admin, dms[u.user_id], bot.user_id) for u in newcomers]
        # The welcome, "a moderator will look", "you're in": three each, exactly.
        out["doubled"] = sum(1 for c in counts if c > 3)
        out["lost"] = sum(1 for c in counts if c < 3)
    return out


async def floor_run(hs: Homeserver, tmp: Path, n: int) -> dict[str, Any]:
    """The same work by a bare client. Welcomes: n encrypted DMs, each
    created and sent one message. Approvals, timed like Hearth's from the
    moderator's first `!approve`: a second client sends the same n
    commands in an encrypted staff room; the bare client syncs, decrypts
    each and sends what the bot sends for it, one request after another:
    two invites (the Space and the group's room), a message in the DM and
    a notice in the staff room. Then, for comparison, the sending alone
    (no commands to receive) into two fresh rooms."""
    sender, creator, asker = await hs.users("floor", "floor-creator", "floor-mod")
    await hs.exempt_from_rate_limits(sender)
    await hs.exempt_from_rate_limits(asker)
    people = [await hs.user(f"f{i}") for i in range(n)]
    space, room, space2, room2 = [
        await hs.encrypted_room(creator, [sender], power={sender.user_id: 100}) for _ in range(4)
    ]
    staff = await hs.encrypted_room(creator, [sender, asker])
    for who, joined in [(sender, r) for r in (space, room, space2, room2, staff)] + [
        (asker, staff)
    ]:
        await (await hs.api(who)).request("POST", f"/_matrix/client/v3/join/{joined}", {})
    client = await device(hs, sender, tmp / "floor")
    mod = await device(hs, asker, tmp / "floor-mod")

    async def approve(space: str, room: str, user_id: str, dm: str) -> None:
        await client.room_invite(space, user_id)
        await client.room_invite(room, user_id)
        await send(client, dm, "You're in", "m.notice")
        await send(client, staff, f"approved {user_id}", "m.notice")

    out: dict[str, Any] = {}
    dms: list[str] = []
    try:
        await client.sync(timeout=0, full_state=True)
        t0 = time.perf_counter()
        for person in people:
            made = await client.room_create(
                is_direct=True,
                invite=[person.user_id],
                initial_state=[
                    {
                        "type": "m.room.encryption",
                        "state_key": "",
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                    }
                ],
            )
            dm = getattr(made, "room_id", None)
            if not dm:
                raise RuntimeError("floor DM not created")
            dms.append(dm)
            await client.sync(timeout=0)
            await send(client, dm, "Welcome", "m.notice")
        out["floor_welcomed_s"] = time.perf_counter() - t0
        await mod.sync(timeout=0, full_state=True)
        await client.sync(timeout=0)
        dm_of = {p.user_id: dm for p, dm in zip(people, dms, strict=True)}
        t1 = time.perf_counter()
        await asyncio.gather(
            ask(mod, staff, [f"!approve {p.user_id}" for p in people]),
            answer(client, staff, dm_of, lambda who, dm: approve(space, room, who, dm)),
        )
        out["floor_invites_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        for person, dm in zip(people, dms, strict=True):
            await approve(space2, room2, person.user_id, dm)
        out["floor_sending_s"] = time.perf_counter() - t2
    finally:
        await client.close()
        await mod.close()
    return out


async def send(client: AsyncClient, room: str, body: str, msgtype: str = "m.text") -> None:
    """One encrypted message from *client*; a refusal stops the bench."""
    resp = await client.room_send(
        room, "m.room.message", {"msgtype": msgtype, "body": body},
        ignore_unverified_devices=True,
    )  # fmt: skip
    if isinstance(resp, RoomSendError):
        raise RuntimeError(f"{body.split()[0]} not sent: {resp.status_code}")


async def ask(client: AsyncClient, room: str, commands: list[str]) -> None:
    """Send *commands* one after another, as the moderator does."""
    for body in commands:
        await send(client, room, body)


async def answer(
    client: AsyncClient,
    room: str,
    dm_of: dict[str, str],
    approve: Callable[[str, str], Awaitable[None]],
) -> None:
    """The bare client: a sync loop that queues each `!approve` decrypted in
    *room*, and one worker that sends what approving takes, in order, until
    all are done. The loop keeps syncing while the worker sends, as any bot
    must, so that no command falls out of a sync's timeline."""
    commands: asyncio.Queue[str] = asyncio.Queue()

    async def listen() -> None:
        while True:
            # A long timeline, as the bot's.
            resp = await client.sync(timeout=30_000, sync_filter=SYNC_FILTER)
            if isinstance(resp, SyncError):
                raise RuntimeError(f"floor sync failed: {resp.status_code}")
            joined = resp.rooms.join.get(room)
            if joined is None:
                continue
            if joined.timeline.limited:
                raise RuntimeError("the floor's sync skipped commands (a limited timeline)")
            for event in joined.timeline.events:
                if isinstance(event, MegolmEvent):
                    raise RuntimeError("the floor could not decrypt a command")
                if isinstance(event, RoomMessageText) and event.body.startswith("!approve "):
                    commands.put_nowait(event.body.split()[1])

    async def work() -> None:
        todo = dict(dm_of)
        while todo:
            who = await commands.get()
            dm = todo.pop(who, None)
            if dm is not None:
                await approve(who, dm)

    listening = asyncio.create_task(listen())
    try:
        worker = asyncio.create_task(work())
        done, _ = await asyncio.wait({listening, worker}, return_when=asyncio.FIRST_COMPLETED)
        if worker not in done:
            worker.cancel()
        for task in done:
            task.result()  # the listener's failure, if that ended it
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)


def report(r: dict[str, Any]) -> None:
    welcomed, approved = r["welcomed_s"], r["approved_s"]
    rows = [
        Row(
            "Until every newcomer is welcomed",
            f"{welcomed:.1f} s",
            f"{r['floor_welcomed_s']:.1f} s",
            ratio(welcomed, r["floor_welcomed_s"]),
        ),
        Row(
            "Until every approval has its invites",
            f"{approved:.1f} s",
            f"{r['floor_invites_s']:.1f} s",
            ratio(approved, r["floor_invites_s"]),
            "≤ 1.3×",
            approved <= 1.3 * r["floor_invites_s"],
        ),
    ]
    if "floor_sending_s" in r:
        rows.append(
            Row(
                "The same, against the sending alone",
                f"{approved:.1f} s",
                f"{r['floor_sending_s']:.1f} s",
                ratio(approved, r["floor_sending_s"]),
            )
        )
    rows.append(
        Row("Newcomers with a message doubled / lost", f"{r['doubled']} / {r['lost']}", "0")
    )
    rows.append(
        Row(
            "RSS with all in flight (bot and bench share it)",
            f"{r['rss_mb']:.0f} MB",
            f"{r['rss_before_mb']:.0f} MB before the bot",
            # The bot's own share: the difference, not a ratio of two processes' totals.
            f"+{r['rss_mb'] - r['rss_before_mb']:.0f} MB",
        )
    )
    title = f"Migration day: {r['applicants']} newcomers ({r['date']}, {r['cpus']} CPUs)"
    notes = [
        f"Registration of all {r['applicants']} took {r['register_s']:.1f} s; the last"
        f" was welcomed {r['welcome_lag_s']:.1f} s after the last registration.",
        "Approvals' floor: a bare client that syncs, decrypts the same !approve commands"
        " and sends the same requests for each, one at a time;",
        "the sending alone: the same requests with no command received.",
    ]
    print_report(title, rows, notes, floor="Floor (bare client)")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    results = versions() | {"applicants": args.applicants}
    fast_hashing = {"bcrypt_rounds": 4}
    async with private_homeserver("hearth-onboarding-", args.keep, fast_hashing) as (hs, tmp):
        results |= await hearth_run(hs, tmp, args.applicants)
        results |= await floor_run(hs, tmp, args.applicants)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--applicants", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    return run_bench(lambda: run(args), report, "Interrupted; Synapse was stopped.")


if __name__ == "__main__":
    sys.exit(main())
