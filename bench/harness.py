"""What every bench script does around its measurements."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
from nio import AsyncClient, AsyncClientConfig
from rich.console import Console

from bots.devserver.supervisor import SynapseProcess
from bots.devserver.synapse_config import configured_port, free_port, write_dev_config
from bots.framework.cross_signing import ensure_cross_signed
from bots.framework.trust.store import RoundStore
from tests.support.homeserver import SERVER_NAME, Homeserver, User

err = Console(stderr=True)


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def run_bench(
    measure: Callable[[], Coroutine[Any, Any, dict[str, Any]]],
    report: Callable[[dict[str, Any]], None],
    interrupted: str,
) -> int:
    """Run *measure*, print its report and one JSON line; SIGTERM and Ctrl-C
    cancel it so its own clean-up (stopping Synapse) runs. Exit status 130
    when interrupted."""

    async def guarded() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await measure()

    try:
        results = asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print(interrupted)
        return 130
    report(results)
    print(json.dumps(rounded(results), sort_keys=True))
    return 0


@contextlib.asynccontextmanager
async def private_homeserver(
    prefix: str, keep: bool, overrides: dict[str, Any] | None = None
) -> AsyncIterator[tuple[Homeserver, Path]]:
    """A Synapse of its own on a free loopback port, in a temporary folder
    (kept if *keep*), stopped whatever happens; *overrides* replace
    top-level settings of its homeserver.yaml."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    hs_dir = tmp / "synapse"
    hs_config = write_dev_config(hs_dir, free_port(None), SERVER_NAME, overrides)
    url = f"http://127.0.0.1:{configured_port(hs_config)}"
    hs = Homeserver(hs_dir, SynapseProcess(hs_config, url, hs_dir / "synapse.log"))
    try:
        await hs.process.start()
        hs.http = aiohttp.ClientSession()
        yield hs, tmp
    finally:
        await hs.stop()
        if keep:
            err.print(f"Kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of *pid* (all its threads)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def versions() -> dict[str, Any]:
    """What a figure was measured on."""
    return {
        "date": dt.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "synapse": version("matrix-synapse"),
        "nio": version("matrix-nio"),
    }


async def device(hs: Homeserver, user: User, store: Path, *, rounds: bool = False) -> AsyncClient:
    """A new, cross-signed device of *user*, logged in, keys uploaded, not
    syncing; with *rounds*, its crypto store is the bot's (written in rounds)."""
    store.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {"store": RoundStore} if rounds else {}
    client = AsyncClient(
        hs.base_url,
        user.user_id,
        store_path=str(store),
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False, **extra),
    )
    await client.login(password=user.password, device_name="bench")
    if client.should_upload_keys:
        await client.keys_upload()
    await ensure_cross_signed(client, user.password, store / "cross_signing.json")
    return client
