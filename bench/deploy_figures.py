"""The deploy figures: playbook run times and the whole stack's idle memory.

    sudo .venv/bin/python -m bench.deploy_figures [--settle 120] [--keep]

Boots a fresh Debian 12 container (the deploy test's, see
tests/deploy/container.py), measures its memory as booted (the floor: a bare
Debian 12 with systemd and sshd), runs the playbook over SSH as a volunteer
would (first run), runs it again (no-op run, must report changed=0), lets the
stack idle for --settle seconds and measures its memory again. Prints a table
and one final JSON line. Never asserts a figure; exits 0 unless something
broke. Needs root and tests/deploy/setup.sh; about 10 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.deploy.container import Container, free_port
from tests.deploy.volunteer import Ports, Volunteer

# Process groups for the breakdown, by command line.
GROUPS = (
    ("synapse", "synapse.app"),
    ("postgresql", "postgres"),
    ("hearth bots", "hearth run"),
    ("caddy", "caddy"),
)


def breakdown(c: Container) -> dict[str, float]:
    """PSS in MB per part of the stack (shared pages split fairly)."""
    out: dict[str, float] = {}
    for pid in c.pids():
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            pss = 0
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
            group = next((g for g, needle in GROUPS if needle in cmd), "system (systemd, sshd, …)")
            out[group] = out.get(group, 0.0) + pss / 1024
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settle", type=float, default=120, help="idle seconds before measuring")
    p.add_argument("--keep", action="store_true", help="keep the container's tree")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("deploy_figures: needs root (systemd-nspawn)", file=sys.stderr)
        return 2
    err = Console(stderr=True)
    work = Path(tempfile.mkdtemp(prefix="hearth-deploy-figures-"))
    c = Container.create(work)
    try:
        t0 = time.monotonic()
        c.boot()
        boot_s = time.monotonic() - t0
        time.sleep(10)
        floor = c.memory()
        v = Volunteer(c, work, Ports(free_port(), free_port(), free_port()))
        inventory = v.inventory()
        err.print("first run…")
        first = v.play(inventory)
        if first.rc != 0:
            err.print(first.output[-4000:])
            return 1
        err.print(f"first run {first.seconds:.0f} s; no-op run…")
        second = v.play(inventory)
        if second.rc != 0:
            err.print(second.output[-4000:])
            return 1
        err.print(f"idle for {args.settle:.0f} s…")
        time.sleep(args.settle)
        idle = c.memory()
        parts = breakdown(c)
        cpu = c.ssh("nproc").stdout.strip()
    finally:
        c.stop(keep_tree=args.keep)

    table = Table(title="Deploy figures (fresh Debian 12 container, loopback SSH)")
    table.add_column("Figure")
    table.add_column("Value", justify="right")
    table.add_column("Floor / note")
    table.add_row("container boot to SSH", f"{boot_s:.1f} s", "")
    table.add_row("first run", f"{first.seconds:.0f} s", f"changed={first.recap['changed']}")
    table.add_row("no-op re-run", f"{second.seconds:.0f} s", f"changed={second.recap['changed']}")
    table.add_row(
        "idle memory, PSS of all processes",
        f"{idle['pss_mb']:.0f} MB",
        f"bare Debian 12: {floor['pss_mb']:.0f} MB",
    )
    table.add_row(
        "idle memory, cgroup anon (process memory)",
        f"{idle.get('cgroup_anon_mb', 0):.0f} MB",
        f"bare: {floor.get('cgroup_anon_mb', 0):.0f} MB",
    )
    table.add_row(
        "page cache (cgroup file, droppable)",
        f"{idle.get('cgroup_file_mb', 0):.0f} MB",
        "reclaimed under memory pressure",
    )
    for group, mb in sorted(parts.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  PSS: {group}", f"{mb:.0f} MB", "")
    Console().print(table)
    print(
        json.dumps(
            {
                "date": dt.date.today().isoformat(),
                "cpus": int(cpu),
                "boot_s": round(boot_s, 1),
                "first_run_s": round(first.seconds, 1),
                "first_run_changed": first.recap["changed"],
                "noop_run_s": round(second.seconds, 1),
                "noop_run_changed": second.recap["changed"],
                "settle_s": args.settle,
                "idle": {k: round(v, 1) for k, v in idle.items()},
                "floor": {k: round(v, 1) for k, v in floor.items()},
                "pss_by_part_mb": {k: round(v, 1) for k, v in parts.items()},
            },
            sort_keys=True,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
