"""Hearth's provisioning figures: requests against the plan's minimum, seconds against a floor.

    cd /work/main && .venv/bin/python -m bench.provision_figures [--groups 20 --rooms 4] [--keep]

Starts a private Synapse on a free loopback port in a temporary folder,
creates an admin, two moderators and a bot account, declares a community of
GROUPS x ROOMS rooms and measures `provision()` from nothing, then its no-op
re-run, beside bare `createRoom` calls by the same admin in the same run (see
bench/README.md). Prints tables and one final JSON line. Never asserts a
timing: it exits 0 unless something broke.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import inspect
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import aiohttp
from rich.console import Console
from rich.table import Table

from bench.harness import cpu_s, run_bench
from bench.report import Row, console, print_report, ratio
from bots.devserver.supervisor import SynapseProcess
from bots.devserver.synapse_config import configured_port, free_port, write_dev_config
from bots.framework.logging import configure_logging
from bots.matrix.client_api import ClientAPI
from provisioning.desired import ROOM_VERSION
from provisioning.planner import CreateRoom, Invite, Plan, PutState, plan
from provisioning.preflight import declared_users
from provisioning.provision import Outcome, provision
from provisioning.schema import CommunityFile
from provisioning.state import ServerState
from tests.support.community import make_community
from tests.support.homeserver import SERVER_NAME, Homeserver

T = TypeVar("T")
err = Console(stderr=True)
JOINS = ("space", "knock", "invite")
KINDS = ("chat", "announcements", "meetings")
WARMUP_ROOMS = 3
ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}


# --- what every ClientAPI request costs, by kind ---


def kind_of(method: str, path: str) -> str:
    p = path.split("?")[0]
    if p.endswith("/account/whoami"):
        return "GET whoami"
    if p.endswith("/override_ratelimit"):
        return f"{method} override_ratelimit"
    if "/_synapse/admin/v2/users/" in p:
        return "GET admin users/<id>"
    if p.endswith("/sync"):
        return "GET filtered /sync"
    if p.endswith("/createRoom"):
        return "POST createRoom"
    if method == "PUT" and "/state/" in p:
        return f"PUT state {unquote(p.split('/state/')[1].split('/')[0])}"
    if p.endswith("/invite"):
        return "POST invite"
    return f"{method} {p}"


@dataclass(frozen=True)
class Call:
    kind: str
    seconds: float
    attempts: int  # > 1 when ClientAPI waited out a 429


class Recorder:
    """Wraps ClientAPI.request for the whole process; the bench reads slices of it."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = ClientAPI.request
        signature = inspect.signature(original)
        calls = self.calls

        async def request(api: ClientAPI, *args: Any, **kwargs: Any) -> dict[str, Any]:
            bound = signature.bind(api, *args, **kwargs).arguments
            before = sum(api.requests.values())
            t0 = time.perf_counter()
            try:
                return await original(api, *args, **kwargs)
            finally:
                calls.append(
                    Call(
                        kind_of(str(bound["method"]), str(bound["path"])),
                        time.perf_counter() - t0,
                        sum(api.requests.values()) - before,
                    )
                )

        ClientAPI.request = request  # type: ignore[method-assign, assignment]
        try:
            yield
        finally:
            ClientAPI.request = original  # type: ignore[method-assign]


@dataclass
class Phase:
    wall_s: float = 0.0
    synapse_cpu_s: float = 0.0
    bench_cpu_s: float = 0.0
    calls: list[Call] = field(default_factory=list)

    @property
    def retries_429(self) -> int:
        return sum(c.attempts - 1 for c in self.calls)

    def by_kind(self) -> dict[str, tuple[int, float]]:
        count: Counter[str] = Counter()
        secs: dict[str, float] = {}
        for c in self.calls:
            count[c.kind] += 1
            secs[c.kind] = secs.get(c.kind, 0.0) + c.seconds
        return {k: (count[k], secs[k]) for k in sorted(count, key=lambda k: -secs[k])}

    def summary(self) -> dict[str, Any]:
        in_http = sum(c.seconds for c in self.calls)
        return {
            "wall_s": self.wall_s,
            "synapse_cpu_s": self.synapse_cpu_s,
            "bench_cpu_s": self.bench_cpu_s,
            "outside_http_s": self.wall_s - in_http,
            "retries_429": self.retries_429,
            "by_kind": {k: {"n": n, "s": s} for k, (n, s) in self.by_kind().items()},
        }


async def measure(hs: Homeserver, rec: Recorder, work: Awaitable[T]) -> tuple[T, Phase]:
    start = len(rec.calls)
    s0, b0, t0 = cpu_s(hs.process.pid), time.process_time(), time.perf_counter()
    result = await work
    wall = time.perf_counter() - t0
    phase = Phase(
        wall,
        cpu_s(hs.process.pid) - s0,
        time.process_time() - b0,
        rec.calls[start:],
    )
    return result, phase


# --- the community ---


def group_decls(groups: int, rooms: int, moderators: list[str]) -> list[dict[str, Any]]:
    """Join rules cycle space/knock/invite, history alternates, rooms mix the kinds."""
    decls = []
    for g in range(groups):
        room_decls = [
            {
                "key": "general" if r == 0 else f"{KINDS[r % 3]}-{r}",
                "name": "General" if r == 0 else f"{KINDS[r % 3].capitalize()} {r}",
                "kind": KINDS[r % 3],
            }
            for r in range(rooms)
        ]
        decls.append(
            {
                "key": f"group-{g:02d}",
                "name": f"Group {g:02d}",
                "topic": f"Peer support, group {g}",
                "join": JOINS[g % 3],
                "history_before_joining": g % 2 == 1,
                "moderators": [moderators[g % len(moderators)]],
                "rooms": room_decls,
            }
        )
    return decls


@dataclass(frozen=True)
class Minimum:
    """Requests the from-nothing plan cannot do without."""

    plan: Plan
    users: int  # distinct declared accounts, each checked once

    @property
    def writes(self) -> int:
        return len(self.plan.actions)

    def reads(self, applying: bool) -> int:
        # whoami, admin check, one per declared user, one filtered /sync,
        # and (only when something is applied) the rate-limit override GET.
        return 2 + self.users + 1 + (1 if applying else 0)


def minimum(cfg: CommunityFile) -> Minimum:
    empty = plan(cfg, ServerState(), SERVER_NAME)
    return Minimum(empty, len({user for _, user in declared_users(cfg)}))


def counts(p: Plan) -> dict[str, int]:
    return {
        "creates": sum(isinstance(a, CreateRoom) for a in p.actions),
        "puts": sum(isinstance(a, PutState) for a in p.actions),
        "invites": sum(isinstance(a, Invite) for a in p.actions),
    }


# --- the floor: bare encrypted createRoom calls by the same admin ---


async def bare_rooms(api: ClientAPI, n: int) -> list[str]:
    body = {"preset": "private_chat", "room_version": ROOM_VERSION, "initial_state": [ENCRYPTION]}
    return [await api.create_room(body) for _ in range(n)]


async def leave(api: ClientAPI, room_ids: list[str]) -> None:
    """So that provisioning's /sync does not also carry the floor's rooms."""
    for room_id in room_ids:
        await api.request("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/leave", {})


async def state_events(api: ClientAPI, room_id: str) -> int:
    """How many state events *room_id* holds now (invites included)."""
    return len(await api.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state"))


async def run_provision(cfg: CommunityFile, path: Path) -> Outcome:
    return await provision(cfg, path, out=io.StringIO())


def synapse_429s(log: Path) -> int:
    """Access-log lines answered 429 (Synapse logs each request at INFO)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return -1
    return sum(1 for line in text.splitlines() if "synapse.access" in line and " 429 " in line)


async def figures(hs: Homeserver, tmp: Path, groups: int, rooms: int) -> dict[str, Any]:
    rec = Recorder()
    mod_a, mod_b, bot = await hs.users("mod", "mod", "bot")
    community = await make_community(
        hs, tmp, group_decls(groups, rooms, [mod_a.user_id, mod_b.user_id]), bots=[bot]
    )
    cfg = community.load()
    least = minimum(cfg)
    shape = counts(least.plan)
    n_floor = shape["creates"]
    api = await hs.api(community.admin)
    out: dict[str, Any] = {"rooms_declared": n_floor, "actions": least.writes, **shape}
    out["min_reads"], out["min_writes"] = least.reads(True), least.writes
    out["min_noop_reads"] = least.reads(False)
    out["declared_users"] = least.users

    with rec.installed():
        err.print(f"Warm-up: {WARMUP_ROOMS} bare createRoom calls (not counted)")
        scratch = await bare_rooms(api, WARMUP_ROOMS)
        err.print(f"Floor A: {n_floor} bare encrypted createRoom calls, sequential")
        rooms_a, floor_a = await measure(hs, rec, bare_rooms(api, n_floor))
        await leave(api, scratch + rooms_a)

        err.print(f"Provisioning from nothing: {least.writes} actions planned ({shape})")
        first, prov = await measure(hs, rec, run_provision(cfg, community.path))
        err.print("No-op re-run")
        again, noop = await measure(hs, rec, run_provision(community.load(), community.path))
        if not again.plan.empty or again.room_ids != first.room_ids:
            raise RuntimeError(f"the re-run was not a no-op: {len(again.plan.actions)} actions")

        err.print(f"Floor B: {n_floor} bare encrypted createRoom calls, sequential")
        rooms_b, floor_b = await measure(hs, rec, bare_rooms(api, n_floor))

    err.print("Counting the state events each side created (not timed)")
    prov_events = [await state_events(api, room_id) for room_id in first.room_ids.values()]
    # Both floor series send the same bodies; count the rooms of the one still joined.
    floor_events = sum([await state_events(api, room_id) for room_id in rooms_b])
    out["prov_state_events"] = sum(prov_events)
    out["floor_state_events"] = floor_events
    out["prov_ms_per_event"] = prov.wall_s / sum(prov_events) * 1000
    out["floor_ms_per_event"] = (
        statistics.mean([floor_a.wall_s, floor_b.wall_s]) / floor_events * 1000
    )

    out["prov_plan_actions"] = len(first.plan.actions)
    out["prov_reads"], out["prov_writes"] = first.reads, first.writes
    out["prov_requests"] = first.reads + first.writes
    out["write_ratio"] = first.writes / least.writes
    out["total_ratio"] = out["prov_requests"] / (least.writes + least.reads(True))
    out["noop_reads"], out["noop_writes"] = again.reads, again.writes
    out["prov_s"], out["noop_s"] = prov.wall_s, noop.wall_s
    out["floor_a_s"], out["floor_b_s"] = floor_a.wall_s, floor_b.wall_s
    out["floor_s"] = statistics.mean([floor_a.wall_s, floor_b.wall_s])
    out["prov_over_floor"] = prov.wall_s / out["floor_s"]
    floor_calls = [c.seconds for c in floor_a.calls + floor_b.calls]
    out["floor_create_median_ms"] = statistics.median(floor_calls) * 1000
    prov_creates = [c.seconds for c in prov.calls if c.kind == "POST createRoom"]
    out["prov_create_median_ms"] = statistics.median(prov_creates) * 1000
    out["retries_429"] = sum(p.retries_429 for p in (floor_a, prov, noop, floor_b))
    out["synapse_cpu_prov_s"] = prov.synapse_cpu_s
    out["synapse_cpu_floor_s"] = statistics.mean([floor_a.synapse_cpu_s, floor_b.synapse_cpu_s])
    out["phases"] = {
        "provision": prov.summary(),
        "noop": noop.summary(),
        "floor_a": floor_a.summary(),
        "floor_b": floor_b.summary(),
    }
    return out


# --- report ---


def ratio_row(label: str, got: int, least: int, target: float | None) -> Row:
    met = None if target is None else bool(least) and got / least <= target
    goal = "" if target is None else f"≤ {target}×"
    return Row(label, str(got), str(least), ratio(got, least), goal, met)


def report(r: dict[str, Any]) -> None:
    total_min = r["min_writes"] + r["min_reads"]

    def beside(label: str, ours: float, floor: float, shown: str) -> Row:
        return Row(label, shown.format(ours), shown.format(floor), ratio(ours, floor))

    rows = (
        ratio_row("From nothing: writes", r["prov_writes"], r["min_writes"], 1.2),
        ratio_row("From nothing: reads", r["prov_reads"], r["min_reads"], None),
        ratio_row("From nothing: all requests", r["prov_requests"], total_min, 1.2),
        Row(
            "From nothing: wall time",
            f"{r['prov_s']:.2f} s",
            f"{r['floor_s']:.2f} s",
            f"{r['prov_over_floor']:.2f}×",
        ),
        beside(
            "  createRoom, median",
            r["prov_create_median_ms"],
            r["floor_create_median_ms"],
            "{:.1f} ms",
        ),
        beside("  state events created", r["prov_state_events"], r["floor_state_events"], "{}"),
        beside(
            "  wall time per state event",
            r["prov_ms_per_event"],
            r["floor_ms_per_event"],
            "{:.1f} ms",
        ),
        beside("  Synapse CPU", r["synapse_cpu_prov_s"], r["synapse_cpu_floor_s"], "{:.2f} s"),
        Row(
            "No-op re-run: writes",
            str(r["noop_writes"]),
            "0",
            target="= 0",
            met=r["noop_writes"] == 0,
        ),
        ratio_row("No-op re-run: reads", r["noop_reads"], r["min_noop_reads"], None),
        Row("No-op re-run: wall time", f"{r['noop_s']:.2f} s"),
    )
    title = (
        f"Hearth provisioning figures ({r['groups']} groups x {r['rooms_per_group']} rooms = "
        f"{r['rooms_declared']} rooms with Space and staff rooms, {r['date']})"
    )
    notes = (
        f"Minimum = {r['min_writes']} plan actions ({r['creates']} createRoom, {r['puts']} PUT "
        f"state, {r['invites']} invites) + reads: whoami, admin check, {r['declared_users']} "
        "account checks, 1 filtered /sync, 1 override_ratelimit GET (not on a no-op).",
        f"Floor = {r['rooms_declared']} bare encrypted createRoom calls (room version "
        f"{ROOM_VERSION}, no invites) by the same admin, sequential: mean of one series before "
        f"({r['floor_a_s']:.2f} s) and one after ({r['floor_b_s']:.2f} s) the provisioning.",
        f"Requests retried after a 429: {r['retries_429']} (ClientAPI); 429s in Synapse's "
        f"access log: {r['synapse_429s']}.",
    )
    print_report(title, rows, notes, floor="Minimum / floor")
    console().print(where_the_time_goes(r))


def where_the_time_goes(r: dict[str, Any]) -> Table:
    """Not a figure beside a floor: the seconds of each run, by request kind."""
    where = Table(title="Where the time goes")
    for col in ("Run", "Request kind", "Count", "Seconds", "Mean ms", "Share of wall"):
        where.add_column(col, justify="left" if col in ("Run", "Request kind") else "right")
    runs = (("provision", "from nothing"), ("noop", "no-op"), ("floor_a", "floor A"))
    for run_key, run_name in runs:
        ph = r["phases"][run_key]
        rows = [(k, v["n"], v["s"]) for k, v in ph["by_kind"].items()]
        rows.append(("(outside HTTP: planning, parsing, Python)", "", ph["outside_http_s"]))
        for kind, n, s in rows:
            mean = f"{s / n * 1000:.1f}" if n else ""
            where.add_row(run_name, kind, str(n), f"{s:.3f}", mean, f"{s / ph['wall_s']:.0%}")
            run_name = ""
        where.add_row(
            "",
            f"CPU: Synapse {ph['synapse_cpu_s']:.2f} s, bench process {ph['bench_cpu_s']:.2f} s",
            "",
            f"{ph['wall_s']:.3f}",
            "",
            "",
            end_section=True,
        )
    return where


async def run(groups: int, rooms: int, keep: bool) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    tmp = Path(tempfile.mkdtemp(prefix="hearth-bench-provision-"))
    hs_dir = tmp / "synapse"
    hs_config = write_dev_config(hs_dir, free_port(None), SERVER_NAME)
    url = f"http://127.0.0.1:{configured_port(hs_config)}"
    # Homeserver.start() inlined, so that Synapse is stopped whatever happens after spawn.
    hs = Homeserver(hs_dir, SynapseProcess(hs_config, url, hs_dir / "synapse.log"))
    results: dict[str, Any] = {"date": dt.date.today().isoformat(), "cpus": os.cpu_count()}
    results |= {"groups": groups, "rooms_per_group": rooms, "synapse": version("matrix-synapse")}
    results["load_before"] = os.getloadavg()[0]
    try:
        err.print(f"Starting Synapse at {url} in {tmp}")
        await hs.process.start()
        hs.http = aiohttp.ClientSession()
        (tmp / "community").mkdir()
        results |= await figures(hs, tmp / "community", groups, rooms)
    finally:
        await hs.stop()
        results["synapse_429s"] = synapse_429s(hs_dir / "synapse.log")
        if keep:
            err.print(f"Kept {tmp} (community/community.yaml, synapse/synapse.log)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--groups", type=int, default=20, help="groups in the community")
    parser.add_argument("--rooms", type=int, default=4, help="rooms per group")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    args = parser.parse_args()
    if args.groups < 1 or args.rooms < 1:
        parser.error("--groups and --rooms must be at least 1")

    return run_bench(
        lambda: run(args.groups, args.rooms, args.keep), report, "Interrupted; Synapse was stopped."
    )


if __name__ == "__main__":
    sys.exit(main())
