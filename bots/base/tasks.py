"""Waiting for a long-running task to say it is ready."""

from __future__ import annotations

import asyncio
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
