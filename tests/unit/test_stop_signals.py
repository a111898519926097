"""Ctrl-C and SIGTERM: the first asks for the command's graceful stop, a
second cancels it (bots/cli.py)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from bots.base.tasks import StopHook
from bots.cli import _until_signalled


async def _command(
    hook: StopHook, offer: bool, log: list[str], graceful: asyncio.Event | None = None
) -> None:
    stopping = asyncio.Event()
    if offer:
        hook.offer(stopping.set)
    try:
        await stopping.wait()
        log.append("graceful")
        if graceful is not None:
            graceful.set()
        # The work in hand, which a second signal cuts short.
        await asyncio.sleep(30)
        log.append("finished")
    except asyncio.CancelledError:
        log.append("cancelled")
        raise


async def _signal_when(event: asyncio.Event, sig: signal.Signals) -> None:
    await event.wait()
    os.kill(os.getpid(), sig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_first_signal_stops_gracefully_and_a_second_cuts_it_short(
    sig: signal.Signals,
) -> None:
    log: list[str] = []
    hook = StopHook()
    graceful = asyncio.Event()
    run = asyncio.create_task(_until_signalled(_command(hook, True, log, graceful), hook))
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), sig)
    second = asyncio.create_task(_signal_when(graceful, sig))
    async with asyncio.timeout(10):
        await run
    await second
    assert log == ["graceful", "cancelled"]
    # The loop's handlers are gone again: Python's own is back for Ctrl-C.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def test_without_a_graceful_stop_the_first_signal_cancels() -> None:
    log: list[str] = []
    hook = StopHook()
    run = asyncio.create_task(_until_signalled(_command(hook, False, log), hook))
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)
    async with asyncio.timeout(10):
        await run
    assert log == ["cancelled"]
