"""The bot's background work (alarms sent, rooms left, keys waited for):
each in a task of its own, ending like a room worker's when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from bots.base.errors import StateError
from bots.framework.logging import get_logger
from bots.framework.storage import as_state_error

log = get_logger(__name__)


class Background:
    def __init__(self, on_fatal: Callable[[StateError], None]) -> None:
        """*on_fatal* stops the bot: its state folder cannot be written."""
        self._on_fatal = on_fatal
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        """A state folder that cannot be written stops the bot; anything
        else is logged."""
        self.tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        fatal = as_state_error(exc)
        if fatal is not None:
            self._on_fatal(fatal)
            return
        log.error("background task failed", problem=type(exc).__name__)

    async def finish(self) -> None:
        """Until the work in hand is done."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
