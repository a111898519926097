"""A volunteer, as a program: writes the inventory and runs ansible-playbook as the README says."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.container import Container

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK_DIR = REPO / "deploy/ansible"
DEPLOY_VENV = REPO / "tests/deploy/.venv"
DOMAIN = "hearth.test"
RECAP = re.compile(
    r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE
)


@dataclass
class Ports:
    http: int
    https: int
    synapse: int


@dataclass
class Run:
    rc: int
    output: str
    seconds: float

    @property
    def recap(self) -> dict[str, int]:
        m = RECAP.findall(self.output)
        assert m, f"no PLAY RECAP in:\n{self.output[-3000:]}"
        ok, changed, unreachable, failed = (int(x) for x in m[-1])
        return {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


class Volunteer:
    """Writes inventories and runs ansible-playbook the way the README says."""

    def __init__(self, container: Container, workdir: Path, ports: Ports) -> None:
        self.container = container
        self.workdir = workdir
        self.ports = ports
        self.runs = 0

    @property
    def base_url(self) -> str:
        return f"https://{DOMAIN}:{self.ports.https}"

    def settings(self) -> dict[str, Any]:
        """The README's five settings, plus what a test machine needs: an
        offline CA, free ports, and no firewall loading (the container
        shares this machine's network)."""
        return {
            "hearth_domain": DOMAIN,
            "hearth_matrix_host": DOMAIN,
            "hearth_admin_email": f"it@{DOMAIN}",
            "hearth_community_file": "files/community.yaml",
            "hearth_federation_enabled": False,
            "hearth_tls_mode": "internal",
            "hearth_proxy_http_port": self.ports.http,
            "hearth_proxy_https_port": self.ports.https,
            "hearth_synapse_port": self.ports.synapse,
            "hearth_firewall_apply": False,
        }

    def community(self) -> dict[str, Any]:
        """The example community file, for this server."""
        example = PLAYBOOK_DIR / "inventory.example/files/community.yaml"
        data: dict[str, Any] = yaml.safe_load(example.read_text())
        data["community"]["homeserver"] = self.base_url
        data["community"]["admin"]["user_id"] = f"@hearth-admin:{DOMAIN}"
        data["bots"] = [{"user_id": f"@hearth-bot:{DOMAIN}", "power_level": 50}]
        return data

    def inventory(
        self,
        settings: dict[str, Any] | None = None,
        community: str | dict[str, Any] | None = None,
    ) -> Path:
        self.runs += 1
        inv = self.workdir / f"inventory-{self.runs}"
        (inv / "group_vars/hearth").mkdir(parents=True)
        (inv / "files").mkdir()
        hosts = {"hearth": {"hosts": {"hearth-test": self.container.inventory_vars()}}}
        (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
        vars_yml = yaml.safe_dump(self.settings() if settings is None else settings)
        (inv / "group_vars/hearth/vars.yml").write_text(vars_yml)
        body = self.community() if community is None else community
        text = body if isinstance(body, str) else yaml.safe_dump(body, sort_keys=False)
        (inv / "files/community.yaml").write_text(text)
        return inv / "hosts.yml"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PATH=f"{DEPLOY_VENV / 'bin'}:{env.get('PATH', '')}",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            PYTHONUNBUFFERED="1",
        )
        return env

    def play(self, inventory: Path, timeout: float = 1800) -> Run:
        t0 = time.monotonic()
        proc = subprocess.run(
            [str(DEPLOY_VENV / "bin/ansible-playbook"), "-i", str(inventory), "site.yml"],
            cwd=PLAYBOOK_DIR,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        run = Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0)
        (self.workdir / f"{inventory.parent.name}.log").write_text(run.output)
        return run

    def play_and_interrupt(self, inventory: Path, marker: str, after_s: float) -> Run:
        """Start a run and press Ctrl-C *after_s* seconds after *marker* is printed."""
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [str(DEPLOY_VENV / "bin/ansible-playbook"), "-i", str(inventory), "site.yml"],
            cwd=PLAYBOOK_DIR,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                time.sleep(after_s)
                break
        # Ansible can swallow a Ctrl-C that lands while it holds its logging
        # lock ("Exception ignored in _releaseLock"); a person presses again.
        for _ in range(20):
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=2)
                break
            except subprocess.TimeoutExpired:
                continue
        lines.extend(proc.stdout)
        rc = proc.wait(timeout=120)
        run = Run(rc, "".join(lines), time.monotonic() - t0)
        (self.workdir / f"{inventory.parent.name}-interrupted.log").write_text(run.output)
        return run
