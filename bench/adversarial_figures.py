"""`!ping` while a member sends the worst inputs found, against the quiet
`!ping` from the same run.

    cd /work/main && .venv/bin/python -m bench.adversarial_figures [--pings 60] [--every-s 0.5]

Starts a private Synapse, provisions a community of two groups and runs the
bot (core, moderation following a ban list, meetings) as its own
`hearth run` process. A, one of the community's moderators (the flood
protection lets it ping at any pace), pings the bot in one group's room;
member M, in the other group (flood protection off, so that every input
reaches the bot), where a moderator has added a daily meeting, is the
attacker, and owns the ban list the community follows. A sends on a fixed
beat (every *ping_every_s*, answered or not, so that a stall delays every
ping sent meanwhile) and measures, in order:

1. the floor: A's encrypted message answered by member B (no bot);
2. the bot's `!ping` round trip, quiet;
3. the bot's `!ping` round trips, in turn with the floor's (so that the
   homeserver's own slowdown shows in the floor too), while M sends 20
   inputs, one every *every_s* seconds (see ATTACK), until the bot has
   answered them all.

Each input once held the bot's event loop for seconds before issue 23's
bounds: a date in the year 9999 (dateutil stepped day by day to it), a
vote naming such a date, a message that made the link check scan on from
every "<a", a followed list's glob bomb. Prints a table and one JSON line.
Never asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from bench.bot_figures import BIN, Children, install_echo, med_p90, sees_member
from bench.harness import cpu_s, err, private_homeserver, run_bench, versions
from bench.report import Row, print_report, ratio
from bots.base.errors import HearthError
from bots.framework.logging import configure_logging
from bots.framework.secrets import write_secret
from provisioning.provision import provision
from tests.support.community import make_community
from tests.support.homeserver import Homeserver, User, member
from tests.support.member_client import MemberClient, Received, reply_target

TARGET = 1.5  # attacked !ping median, at most this times the quiet one
ANSWERS_WITHIN_S = 180.0
POLL_START = "org.matrix.msc3381.poll.start"
POLL_RESPONSE = "org.matrix.msc3381.poll.response"
RULE = "m.policy.rule.user"
# Under Synapse's largest event once encrypted (base64 grows it by a third).
LINK_SCAN = "<a " * 12_000

# (name, how many) in the order sent; 20 in all.
ATTACK = (
    ("!rsvp 1 yes 9999-12-31 (daily meeting)", 5),
    ("!rsvp 1 maybe 31 december 9999", 1),
    ("poll vote naming 9999-12-31", 3),
    ('message of 12,000 "<a " (link check)', 3),
    ("ban-list glob rule (bomb, sweeping)", 4),
    ("!tz with a 1,960-character zone", 2),
    ("!meetings ics", 2),
)
GLOBS = ("@********:*.invalid", "@*:localhost", "@a*a*a*a*a*a*a*a:*.invalid", "@*?*:*")


async def paced(
    a: MemberClient,
    rooms: tuple[str, ...],
    every_s: float,
    n: int = 0,
    until: asyncio.Event | None = None,
) -> dict[str, list[float]]:
    """Round trips of pings sent on a fixed beat, *every_s*, whether or not
    the last was answered, to *rooms* in turn: *n* of them, or until
    *until* is set. A bot that stalls for eight seconds then delays every
    ping sent meanwhile, as it delays every member; pings sent one after
    another's answer would count such a stall once, and look fine."""
    waits: list[tuple[str, asyncio.Task[float]]] = []

    async def answered(event_id: str, t0: float) -> float:
        await a.wait_for_reply(event_id, timeout=300)
        return (time.perf_counter() - t0) * 1000

    start = time.perf_counter()
    while (len(waits) < n) if until is None else not until.is_set():
        await asyncio.sleep(max(0.0, start + len(waits) * every_s - time.perf_counter()))
        room = rooms[len(waits) % len(rooms)]
        t0 = time.perf_counter()
        waits.append((room, asyncio.create_task(answered(await a.send(room, "!ping"), t0))))
    out: dict[str, list[float]] = {room: [] for room in rooms}
    for room, task in waits:
        out[room].append(await task)
    return out


class Attacker:
    """M's inputs, each a coroutine; the commands among them are kept, to
    wait for the bot's answers."""

    def __init__(
        self, hs: Homeserver, who: User, m: MemberClient, room: str, ban_list: str, poll: Received
    ) -> None:
        self.hs, self.who, self.m, self.room = hs, who, m, room
        self.ban_list, self.poll = ban_list, poll
        self.commands: list[str] = []
        self.refused = 0  # inputs the server would no longer take from M
        self.globs = iter(GLOBS)

    async def command(self, text: str) -> None:
        self.commands.append(await self.m.send(self.room, text))

    async def vote(self) -> None:
        await self.m.send_event(
            self.room,
            POLL_RESPONSE,
            {
                "m.relates_to": {"rel_type": "m.reference", "event_id": self.poll.event_id},
                POLL_RESPONSE: {"answers": ["hearth.1.99991231.yes"]},
            },
        )

    async def rule(self) -> None:
        entity = next(self.globs)
        api = await self.hs.api(self.who)
        await api.request(
            "PUT",
            # Keyed by position: a state key starting with "@" is that user's alone.
            f"/_matrix/client/v3/rooms/{quote(self.ban_list)}/state/{RULE}/"
            f"bench-{GLOBS.index(entity)}",
            {"entity": entity, "recommendation": "m.ban", "reason": "bench"},
        )

    async def link_scan(self) -> None:
        await self.m.send(self.room, LINK_SCAN)

    def inputs(self) -> list[Callable[[], Awaitable[None]]]:
        kinds: dict[str, Callable[[], Awaitable[None]]] = {
            ATTACK[0][0]: lambda: self.command("!rsvp 1 yes 9999-12-31"),
            ATTACK[1][0]: lambda: self.command("!rsvp 1 maybe 31 december 9999"),
            ATTACK[2][0]: self.vote,
            ATTACK[3][0]: self.link_scan,
            ATTACK[4][0]: self.rule,
            ATTACK[5][0]: lambda: self.command("!tz " + "Europe/Berlinx" * 140),
            ATTACK[6][0]: lambda: self.command("!meetings ics"),
        }
        return [kinds[name] for name, count in ATTACK for _ in range(count)]


async def attacked_series(
    a: MemberClient,
    rooms: tuple[str, str],
    attacker: Attacker,
    watcher: MemberClient,
    every_s: float,
    ping_every_s: float,
) -> tuple[dict[str, list[float]], float, int]:
    """A's paced pings, to the bot's room and the floor's in turn, from M's
    first input until the bot has answered M's last command, as *watcher*
    (a moderator in M's room) sees: the bot handles a room's events in
    order, so by then it has handled them all. (M, banned by the old code's
    sweeping glob, would see no answer.) Returns (round trips by room,
    seconds, answers)."""
    inputs = attacker.inputs()
    done = asyncio.Event()

    async def attack() -> None:
        try:
            for send in inputs:
                try:
                    await send()
                except HearthError:
                    # Refused by the server: M was banned (or muted) meanwhile.
                    attacker.refused += 1
                await asyncio.sleep(every_s)
            deadline = time.monotonic() + ANSWERS_WITHIN_S
            for sent in attacker.commands:
                left = deadline - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await watcher.wait_for_reply(sent, timeout=max(left, 0.1))
        finally:
            done.set()

    task = asyncio.create_task(attack())
    t0 = time.perf_counter()
    # The two rooms in turn on the quiet series' beat: each every other beat,
    # and A's pings load the homeserver as much as in the quiet series.
    pings = await paced(a, rooms, ping_every_s, until=done)
    seconds = time.perf_counter() - t0
    await task
    answered = sum(
        1
        for ev in watcher.received
        if ev.room_id == attacker.room and reply_target(ev.content) in set(attacker.commands)
    )
    return pings, seconds, answered


async def measure(
    hs: Homeserver, tmp: Path, pings: int, warmup: int, every_s: float, ping_every_s: float
) -> dict[str, Any]:
    mod, bot, a_user, b_user, m_user = await hs.users("mod", "bot", "a", "b", "m")
    await hs.exempt_from_rate_limits(a_user, b_user, m_user)
    groups: list[dict[str, Any]] = [
        # Flood protection off where M is: it would mute M after ten messages,
        # and every input is to reach the bot.
        {
            "key": "carers",
            "name": "Carers",
            "timezone": "Europe/Berlin",
            "protections": {"flood": {"enabled": False}},
        },
        {"key": "walkers", "name": "Walkers"},
    ]
    # A measures as a moderator, whom the protections let ping at any pace.
    community = await make_community(hs, tmp, groups, moderators=[mod, a_user], bots=[bot])
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    attack_room, ping_room = ids["group/carers/general"], ids["group/walkers/general"]
    admin = await hs.api(community.admin)
    await admin.invite(attack_room, m_user.user_id)
    await admin.invite(attack_room, mod.user_id)
    await admin.invite(ping_room, a_user.user_id)
    floor_room = await hs.encrypted_room(a_user, [b_user])
    # The attacker's own ban list, which the community follows.
    ban_list = await (await hs.api(m_user)).create_room({"preset": "public_chat"})
    write_secret(tmp / "bot.password", bot.password)
    config = tmp / "bot.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "bot": {
                    "homeserver": hs.base_url,
                    "user_id": bot.user_id,
                    "password_file": str(tmp / "bot.password"),
                    "state_dir": str(tmp / "bot-state"),
                    "moderators_room": ids["moderators"],
                    "log": {"level": "warning", "format": "json"},
                },
                "moderation": {"community": str(community.path), "follow": [ban_list]},
                "meetings": {"community": str(community.path)},
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
        async with (
            member(hs, a_user, tmp / "a") as a,
            member(hs, b_user, tmp / "b") as b,
            member(hs, m_user, tmp / "m") as m,
            member(hs, mod, tmp / "mod") as moderator,
        ):
            await b.join(floor_room)
            for client, room in ((a, ping_room), (m, attack_room), (moderator, attack_room)):
                await client.join(room)
                await sees_member(client, room, bot.user_id)
            await sees_member(a, floor_room, b.user_id)
            # Each client knows the bot's device before writing: a message
            # encrypted before that would never reach the bot.
            found = await admin.request(
                "GET", f"/_synapse/admin/v2/users/{quote(bot.user_id)}/devices"
            )
            # The one `hearth run` uses; registering the account made another.
            running = max(found["devices"], key=lambda d: d.get("last_seen_ts") or 0)
            for client in (a, m, moderator):
                await client.knows_device(bot.user_id, running["device_id"])
            install_echo(b, floor_room, a.user_id)
            added = await moderator.wait_for_reply(
                await moderator.send(attack_room, '!meeting add "Daily" every day 19:00'), 120
            )
            assert "added" in str(added.content.get("body")), added.content
            poll = await m.wait_for(
                lambda ev: ev.room_id == attack_room and ev.event_type == POLL_START, 120
            )
            for _ in range(600):
                if bot.user_id in await (await hs.api(m_user)).joined_members(ban_list):
                    break
                await asyncio.sleep(0.1)
            attacker = Attacker(hs, m_user, m, attack_room, ban_list, poll)
            beat = f"one every {ping_every_s:g} s"
            await paced(a, (floor_room,), ping_every_s, warmup)
            err.print(f"Floor: {pings} client-to-client round trips, {beat}")
            floor = (await paced(a, (floor_room,), ping_every_s, pings))[floor_room]
            await paced(a, (ping_room,), ping_every_s, warmup)
            err.print(f"Bot: {pings} !ping round trips, {beat}, quiet")
            quiet = (await paced(a, (ping_room,), ping_every_s, pings))[ping_room]
            err.print(
                f"Bot and floor in turn, {beat}, while M sends 20 inputs, one every {every_s:g} s"
            )
            cpu0 = cpu_s(bot_proc.pid)
            under, seconds, answered = await attacked_series(
                a, (ping_room, floor_room), attacker, moderator, every_s, ping_every_s
            )
            attacked, floor_attacked = under[ping_room], under[floor_room]
            out["cpu_share_bot"] = (cpu_s(bot_proc.pid) - cpu0) / seconds
            out["attack_s"] = seconds
            out["attacker_commands"] = len(attacker.commands)
            out["attacker_answered"] = answered
            out["attacker_refused_sends"] = attacker.refused
            # Nobody was banned by the list's globs: the attacker least of all.
            state = await admin.state(attack_room, "m.room.member", m_user.user_id)
            out["attacker_membership"] = state.get("membership")
    finally:
        await children.stop_all()
    runs = (
        ("floor", floor),
        ("quiet", quiet),
        ("attacked", attacked),
        ("floor_attacked", floor_attacked),
    )
    for name, values in runs:
        out[f"{name}_median_ms"], out[f"{name}_p90_ms"] = med_p90(values)
        out[f"{name}_n"] = len(values)
    out["attacked_max_ms"] = max(attacked)
    out["ratio"] = out["attacked_median_ms"] / out["quiet_median_ms"]
    return out


def report(r: dict[str, Any]) -> None:
    def row(
        figure: str, bot: float, beside: float, what: str, goal: str = "", met: bool | None = None
    ) -> Row:
        shown = (f"{bot:.1f} ms", f"{beside:.1f} ms ({what})")
        return Row(figure, *shown, ratio(bot, beside), goal, met)

    bot, quiet = r["attacked_median_ms"], r["quiet_median_ms"]
    rows = [
        row(
            f"!ping under attack, median (n={r['attacked_n']})",
            bot,
            quiet,
            "quiet",
            f"≤ {TARGET}× quiet",
            bot / quiet <= TARGET,
        ),
        row("!ping under attack, p90", r["attacked_p90_ms"], r["quiet_p90_ms"], "quiet"),
        Row("!ping under attack, slowest", f"{r['attacked_max_ms']:.1f} ms"),
        row(
            "!ping under attack vs floor under attack, median",
            bot,
            r["floor_attacked_median_ms"],
            "client floor",
        ),
    ]
    for stat in ("median", "p90"):
        rows.append(
            row(
                f"!ping, quiet, {stat} (n={r['quiet_n']})",
                r[f"quiet_{stat}_ms"],
                r[f"floor_{stat}_ms"],
                "client floor",
            )
        )
    kinds = "; ".join(f"{n}× {name}" for name, n in ATTACK)
    note = (
        f"A pings every {r['ping_every_s']:g} s, answered or not. Inputs: {kinds}. "
        f"Sent over {r['attack_s']:.1f} s (one every {r['every_s']:g} s, then until "
        f"answered); {r['attacker_answered']}/{r['attacker_commands']} of the "
        f"attacker's commands answered, {r['attacker_refused_sends']} inputs refused by the "
        f"server; the attacker's membership after: "
        f"{r['attacker_membership']}. Bot CPU meanwhile: {r['cpu_share_bot']:.0%} of a core."
    )
    title = f"!ping while a member sends the worst inputs ({r['date']})"
    print_report(title, rows, [note], value="Bot", floor="Beside")


async def run(
    pings: int, warmup: int, every_s: float, ping_every_s: float, keep: bool
) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    results = versions() | {
        "pings": pings,
        "warmup": warmup,
        "every_s": every_s,
        "ping_every_s": ping_every_s,
    }
    async with private_homeserver("hearth-adversarial-", keep) as (hs, tmp):
        results |= await measure(hs, tmp, pings, warmup, every_s, ping_every_s)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pings", type=int, default=60, help="round trips per quiet series")
    parser.add_argument("--warmup", type=int, default=5, help="uncounted rounds first")
    parser.add_argument(
        "--every-s", type=float, default=0.5, help="pause after each of the attacker's inputs"
    )
    parser.add_argument(
        "--ping-every-s", type=float, default=0.25, help="the beat A's pings are sent on"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    args = parser.parse_args()
    return run_bench(
        lambda: run(args.pings, args.warmup, args.every_s, args.ping_every_s, args.keep),
        report,
        "Interrupted; Synapse and the bot were stopped.",
    )


if __name__ == "__main__":
    sys.exit(main())
