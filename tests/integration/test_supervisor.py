"""The Synapse supervisor leaves nothing running, whatever happens."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bots.base.errors import HomeserverError
from bots.devserver.supervisor import SynapseProcess
from bots.devserver.synapse_config import configured_port, free_port, write_dev_config

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split()[2] != "Z"


async def test_cancelled_start_stops_synapse(tmp_path: Path) -> None:
    config = write_dev_config(tmp_path, free_port(None))
    proc = SynapseProcess(
        config, f"http://127.0.0.1:{configured_port(config)}", tmp_path / "synapse.log"
    )
    task = asyncio.create_task(proc.start())
    for _ in range(100):
        if proc.pid is not None:
            break
        await asyncio.sleep(0.01)
    pid = proc.pid
    assert pid is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(pid)


async def test_failed_start_names_the_log(tmp_path: Path) -> None:
    config = write_dev_config(tmp_path, free_port(None))
    config.write_text(config.read_text().replace("server_name:", "server_nam:"))
    proc = SynapseProcess(config, "http://127.0.0.1:9", tmp_path / "synapse.log")
    with pytest.raises(HomeserverError, match=r"Its log is .*synapse\.log"):
        await proc.start(timeout=60)
