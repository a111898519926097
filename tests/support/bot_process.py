"""Run the bot with the test features in its own process, so tests can kill
it: ``python -m tests.support.bot_process BOT.yaml``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bots import core
from bots.base.errors import HearthError
from bots.framework.config import load_bot_config
from bots.framework.logging import configure_logging
from bots.framework.runtime import BotRuntime
from tests.support.features import notes_feature, slow_feature


def main(path: str) -> int:
    features = [core.feature, slow_feature(), notes_feature()]
    config = load_bot_config(Path(path), {f.name: f.config_model for f in features})
    configure_logging("info", "json")
    from bots.cli import _serve_bot

    try:
        asyncio.run(_serve_bot(BotRuntime(config, features)))
    except HearthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
