"""Run the bot with the test features in its own process, so tests can kill
it: ``python -m tests.support.bot_process BOT.yaml``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from bots.base.errors import HearthError
from bots.core.feature import FEATURE as CORE
from bots.framework.config import load_bot_config
from bots.framework.logging import configure_logging
from bots.framework.runtime import BotRuntime
from tests.support.features import notes_feature, slow_feature


def main(path: str) -> int:
    features = [CORE, slow_feature(), notes_feature()]
    config = load_bot_config(Path(path), {f.name: f.config_model for f in features})
    configure_logging("info", "json")
    from bots.cli import _serve_bot

    try:
        asyncio.run(_serve_bot(BotRuntime(config, features)))
    except HearthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def bot_process(config_path: Path, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """This module as a process of its own, once it says the bot is ready;
    killed at the end if it is still running."""
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.bot_process",
            str(config_path),
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    try:
        async with asyncio.timeout(60):
            while b"bot ready" not in log.read_bytes():
                if proc.returncode is not None:
                    raise RuntimeError(f"bot exited: {log.read_text()[-2000:]}")
                await asyncio.sleep(0.1)
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
