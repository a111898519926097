"""One Element Web and one headless Chromium for each browser test module.
Where either is missing, the tests skip with one line saying why."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.browser.driver import Browser, element_copy, missing, serving
from tests.support.homeserver import SERVER_NAME, Homeserver


@pytest.fixture(scope="module")
async def element_url(
    homeserver: Homeserver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """Element Web, served on a free loopback port, pointed at the test Synapse."""
    why = missing()
    if why is not None:
        pytest.skip(f"browser tests skipped: {why}")
    webapp = element_copy(tmp_path_factory.mktemp("element"), homeserver.base_url, SERVER_NAME)
    async with serving(webapp) as url:
        yield url


@pytest.fixture(scope="module")
async def browser(
    element_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Browser]:
    """One Chromium for the module; failing steps' screenshots go to its
    temporary folder."""
    async with Browser.running(tmp_path_factory.mktemp("screenshots")) as running:
        yield running
