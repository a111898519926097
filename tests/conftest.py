from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.homeserver import Homeserver


@pytest.fixture(scope="session")
async def homeserver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Homeserver]:
    """One real Synapse on a free loopback port for the whole test session."""
    hs = await Homeserver.start(tmp_path_factory.mktemp("synapse"))
    yield hs
    await hs.stop()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path
