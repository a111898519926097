"""A fresh Debian 12 "server" for the deploy test: systemd-nspawn, reached over SSH.

The root file system is built once with debootstrap and kept under
~/.cache/hearth/deploy/ (the downloaded packages as debootstrap's tarball,
and the installed tree); each test run copies the tree, boots it with
systemd as PID 1 and starts sshd on a free loopback port, so Ansible drives
it exactly as it drives a VPS.

The container shares this machine's network (no --private-network): its
services listen on this machine's ports, so the test picks free ones, and it
has no CAP_NET_ADMIN, so the playbook may write firewall rules but not load
them (the test loads them in a network namespace of its own instead).
Everything it starts is in one memory cgroup, which gives the stack's memory
use and lets `stop()` end every process even after a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What a minimal cloud image of Debian 12 has: systemd, Python (Ansible
# needs it), sshd and the CA certificates.
INCLUDE = ("systemd", "systemd-sysv", "dbus", "python3", "openssh-server", "ca-certificates")
CACHE = Path(os.environ.get("HEARTH_DEPLOY_CACHE", Path.home() / ".cache/hearth/deploy"))
SOURCES = f"""deb {MIRROR} {SUITE} main
deb {MIRROR} {SUITE}-updates main
deb http://deb.debian.org/debian-security {SUITE}-security main
"""
PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=True, text=True, capture_output=True)


def _cache_key() -> str:
    return hashlib.sha256(f"{SUITE} {MIRROR} {INCLUDE} {SOURCES}".encode()).hexdigest()[:12]


def pristine_tree() -> Path:
    """The installed, unbooted Debian 12 tree, built on first use (about a minute)."""
    key = _cache_key()
    tree = CACHE / f"rootfs-{key}"
    if (tree / ".hearth-complete").exists():
        return tree
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = CACHE / f"debs-{key}.tgz"
    common = ["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}"]
    if not debs.exists():
        scratch = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="hearth-debs-"))
        try:
            run([*common, f"--make-tarball={debs}.part", SUITE, str(scratch), MIRROR])
            Path(f"{debs}.part").rename(debs)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(tree, ignore_errors=True)
    run([*common, f"--unpack-tarball={debs}", SUITE, str(tree), MIRROR])
    # What a provider's image has and debootstrap leaves out.
    (tree / "etc/apt/sources.list").write_text(SOURCES)
    (tree / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost\n")
    (tree / "etc/hostname").write_text("hearth-test\n")
    (tree / ".hearth-complete").touch()
    return tree


@dataclass
class Container:
    """One booted container; `stop()` always cleans up, whatever state it is in."""

    root: Path
    ssh_port: int
    key: Path
    known_hosts: Path
    name: str
    # Its own cgroup in each hierarchy: memory (to measure and to kill), and
    # the ones systemd uses (so that two containers never share a "payload").
    cgroups: list[Path] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: Path("/dev/null"))

    @classmethod
    def create(cls, workdir: Path) -> Container:
        """Copy the pristine tree and prepare SSH; does not boot yet."""
        pristine = pristine_tree()
        root = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="hearth-deploy-"))
        run(["cp", "-a", "--reflink=auto", f"{pristine}/.", str(root)])
        key = workdir / "id_ed25519"
        if not key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
        ssh_port = free_port()
        name = f"hearth-deploy-{os.getpid()}"
        c = cls(root, ssh_port, key, workdir / "known_hosts", name, log=workdir / "nspawn.log")
        c._prepare()
        return c

    def _prepare(self) -> None:
        r = self.root
        ssh_dir = r / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        auth = ssh_dir / "authorized_keys"
        auth.write_text(Path(f"{self.key}.pub").read_text())
        auth.chmod(0o600)
        (r / "etc/ssh/sshd_config.d/hearth-test.conf").write_text(
            f"Port {self.ssh_port}\nListenAddress 127.0.0.1\n"
        )
        # Name resolution as on this machine.
        resolv = r / "etc/resolv.conf"
        resolv.unlink(missing_ok=True)
        shutil.copyfile("/etc/resolv.conf", resolv)
        self._mirror_host_trust()

    def _mirror_host_trust(self) -> None:
        """Trust what this machine trusts: here, HTTPS to PyPI passes a proxy
        whose CA is only in this machine's store. A real VPS needs none of it."""
        if not HOST_CA_BUNDLE.exists():
            return
        mine = set(PEM.findall((self.root / "etc/ssl/certs/ca-certificates.crt").read_text()))
        extra = [pem for pem in PEM.findall(HOST_CA_BUNDLE.read_text()) if pem not in mine]
        if not extra:
            return
        for i, pem in enumerate(extra):
            (self.root / f"usr/local/share/ca-certificates/host-{i}.crt").write_text(pem + "\n")
        run(["chroot", str(self.root), "update-ca-certificates"])
        # pip uses its own CA list unless told otherwise.
        (self.root / "etc/pip.conf").write_text(
            "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
        )

    def _make_cgroups(self) -> None:
        for hierarchy in ("memory", "systemd", "unified", ""):
            base = Path("/sys/fs/cgroup") / hierarchy
            if not (base / "cgroup.procs").exists():
                continue
            cg = base / self.name
            with contextlib.suppress(OSError):
                cg.mkdir(exist_ok=True)
                self.cgroups.append(cg)
            if hierarchy == "":  # a pure cgroup v2 machine: that one is all there is
                break

    @property
    def memory_cgroup(self) -> Path | None:
        for cg in self.cgroups:
            if (cg / "memory.stat").exists():
                return cg
        return None

    def boot(self, timeout: float = 90) -> None:
        self._make_cgroups()
        procs = [cg / "cgroup.procs" for cg in self.cgroups]

        def enter_cgroups() -> None:
            os.setsid()
            for p in procs:
                with contextlib.suppress(OSError):
                    p.write_text(str(os.getpid()))

        argv = [
            "systemd-nspawn",
            f"--directory={self.root}",
            f"--machine={self.name}",
            "--boot",
            # No systemd (nor machined) runs on the machine itself.
            "--register=no",
            "--keep-unit",
            "--console=passive",
        ]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=enter_cgroups
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited: {self.log.read_text()[-2000:]}")
            if self.ssh("true", check=False, timeout=10).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no SSH on port {self.ssh_port} after {timeout}s")
            time.sleep(0.5)
        state = self.ssh("systemctl is-system-running --wait", check=False, timeout=timeout)
        if state.stdout.strip() not in {"running", "degraded"}:
            raise RuntimeError(f"container did not boot: {state.stdout} {state.stderr}")

    def ssh_argv(self) -> list[str]:
        return [
            "ssh",
            "-i",
            str(self.key),
            "-p",
            str(self.ssh_port),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "root@127.0.0.1",
        ]

    def ssh(
        self, command: str, *, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.ssh_argv(), command],
            check=check,
            text=True,
            capture_output=True,
            timeout=timeout,
        )

    def inventory_vars(self) -> dict[str, object]:
        """How the volunteer's inventory reaches this "server"."""
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.ssh_port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": (
                f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=accept-new"
            ),
        }

    def pids(self) -> list[int]:
        cg = self.memory_cgroup or (self.cgroups[0] if self.cgroups else None)
        if cg is None:
            return []
        found: set[int] = set()
        for procs in cg.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                found.update(int(p) for p in procs.read_text().split())
        return sorted(found)

    def memory(self) -> dict[str, float]:
        """Memory of everything in the container, in MB.

        rss_mb: resident memory of all its processes (shared pages counted
        once per process); pss_mb: the same with shared pages divided among
        the processes sharing them (the fair "what the stack costs");
        cgroup_anon_mb / cgroup_file_mb: the kernel's account for the
        container's memory cgroup (process memory / page cache, which the
        kernel drops under pressure)."""
        rss = pss = 0
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        out = {"rss_mb": rss / 1024, "pss_mb": pss / 1024, "processes": float(len(pids))}
        cg = self.memory_cgroup
        if cg is not None:
            stat = dict(line.split() for line in (cg / "memory.stat").read_text().splitlines())
            anon = int(stat.get("total_rss", stat.get("anon", 0)))
            cache = int(stat.get("total_cache", stat.get("file", 0)))
            out["cgroup_anon_mb"] = anon / 2**20
            out["cgroup_file_mb"] = cache / 2**20
        return out

    def stop(self, *, keep_tree: bool = False) -> None:
        """Shut down (orderly if possible), kill leftovers, free the ports, remove the tree."""
        if self.process is not None and self.process.poll() is None:
            # systemd-nspawn turns SIGTERM into an orderly shutdown of the container.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        for _ in range(20):
            left = self.pids()
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.25)
        for cg in self.cgroups:
            # Children first: systemd inside made its own below "payload".
            for sub in sorted(cg.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if sub.is_dir():
                    with contextlib.suppress(OSError):
                        sub.rmdir()
            with contextlib.suppress(OSError):
                cg.rmdir()
        if not keep_tree:
            shutil.rmtree(self.root, ignore_errors=True)
