"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from bots.framework.scheduler import SCHEMA, connect


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    """A scheduler's database (the jobs table, as the bot's database holds it)."""
    path = tmp_path / "bot.db"
    async with aiosqlite.connect(path) as setup:
        await setup.executescript(SCHEMA)
    conn = await connect(path)
    yield conn
    await conn.close()
