"""Long-running tasks: waiting for one to be ready, and stopping one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def until_ready(
    task: asyncio.Task[Any], ready: asyncio.Event, what: str, timeout: float | None = None
) -> None:
    """Return once *ready* is set; raise why *task* ended first, or
    TimeoutError if neither happened within *timeout*."""
    waiter = asyncio.create_task(ready.wait())
    try:
        done, _ = await asyncio.wait(
            {task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        waiter.cancel()
    if task in done:
        task.result()
    if waiter not in done:
        raise TimeoutError(f"{what} did not become ready")


class StopHook:
    """What the first Ctrl-C or SIGTERM does: the command's graceful stop,
    once it has one to offer (a bot stops taking in events and finishes the
    work in hand); before that, cancellation."""

    def __init__(self) -> None:
        self._stop: Callable[[], None] | None = None

    def offer(self, stop: Callable[[], None]) -> None:
        self._stop = stop

    def __call__(self) -> bool:
        """Start the graceful stop; False when there is none yet."""
        if self._stop is None:
            return False
        self._stop()
        return True
