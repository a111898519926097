"""Start, watch and stop a Synapse process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

from bots.base.errors import HomeserverError
from bots.framework.logging import get_logger
from bots.matrix.transport import open_session

log = get_logger(__name__)


async def wait_until_ready(
    base_url: str, timeout: float, proc: asyncio.subprocess.Process | None = None
) -> None:
    """Poll ``/_matrix/client/versions`` until it answers 200."""
    deadline = time.monotonic() + timeout
    async with open_session() as http:
        while time.monotonic() < deadline:
            if proc is not None and proc.returncode is not None:
                raise HomeserverError(f"Synapse exited with status {proc.returncode}")
            try:
                async with http.get(
                    f"{base_url}/_matrix/client/versions", timeout=aiohttp.ClientTimeout(total=2)
                ) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise HomeserverError(f"Synapse did not answer at {base_url} within {timeout:.0f} s")


class SynapseProcess:
    """One Synapse, its output appended to ``<state_dir>/synapse.log``."""

    def __init__(self, config_path: Path, base_url: str, log_path: Path) -> None:
        self.config_path = config_path
        self.base_url = base_url
        self.log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self, timeout: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logfile = self.log_path.open("ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "synapse.app.homeserver",
                "--config-path",
                str(self.config_path),
                stdout=logfile,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                # Its own process group: a Ctrl-C in the terminal reaches Hearth,
                # which then stops Synapse in order instead of both racing.
                start_new_session=True,
            )
        finally:
            logfile.close()
        try:
            await wait_until_ready(self.base_url, timeout, self._proc)
        except HomeserverError as exc:
            await self.stop()
            raise HomeserverError(
                f"{exc}. Its log is {self.log_path}:\n{self.log_tail()}"
            ) from None
        except BaseException:
            # Cancelled (Ctrl-C during start-up): Synapse runs in its own
            # session, so nothing else would ever stop it.
            await asyncio.shield(self.stop())
            raise
        log.info("synapse started", url=self.base_url, pid=self._proc.pid)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    async def stop(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        log.info("synapse stopped")

    async def __aenter__(self) -> SynapseProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def stop_process(
    proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM, timeout: float = 10.0
) -> None:
    """Ask *proc* to stop with *sig*; SIGKILL if it has not ended within *timeout*."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
