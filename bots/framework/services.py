"""The features' long-running services: started once the bot has synced,
restarted with backoff if they fail, stopped with the bot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from bots.base.backoff import Backoff
from bots.base.errors import StateError
from bots.framework.actions import Action
from bots.framework.dispatch.context import Contexts
from bots.framework.feature import Context, Feature, Running, Service
from bots.framework.logging import get_logger
from bots.framework.outbox.queue import Outbox
from bots.framework.storage import as_state_error

log = get_logger(__name__)


class Services:
    def __init__(
        self,
        features: Sequence[Feature[Any]],
        contexts: Contexts,
        outbox: Outbox,
        on_fatal: Callable[[StateError], None],
    ) -> None:
        self.features = tuple(features)
        self.contexts = contexts
        self.outbox = outbox
        self.on_fatal = on_fatal
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for feature in self.features:
            for service in feature.services:
                self._tasks.append(asyncio.create_task(self._run(feature, service)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, feature: Feature[Any], service: Service[Any]) -> None:
        def context() -> Context[Any]:
            ctx = self.contexts.of(feature)
            assert ctx is not None
            return ctx

        async def submit(key: str, actions: Sequence[Action]) -> None:
            await self.outbox.submit(f"service:{feature.name}:{key}", actions)

        running = Running(context, submit)
        backoff = Backoff()
        while True:
            try:
                await service.run(running, context())
                return
            except Exception as exc:
                fatal = as_state_error(exc)
                if fatal is not None:
                    self.on_fatal(fatal)
                    return
                delay = backoff.next_delay()
                log.exception(
                    "service failed, restarting",
                    feature=feature.name,
                    service=service.name,
                    retry_in_s=round(delay, 1),
                )
                await asyncio.sleep(delay)
