"""What every bench script does around its measurements."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from rich.console import Console

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
