"""What the runtime does at start, with a fake homeserver client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nio import RoomResolveAliasError, RoomResolveAliasResponse

from bots.base.errors import ConfigError, StateError
from bots.framework import moderators_room
from bots.framework.state_lock import StateLock

MODS = "#mods:example.org"


class FakeClient:
    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def room_resolve_alias(self, alias: str) -> Any:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(moderators_room.asyncio, "sleep", fake_sleep)
    return slept


async def test_a_homeserver_error_while_resolving_the_moderators_room_is_retried(
    tmp_path: Path, no_sleep: list[float]
) -> None:
    client = FakeClient(
        RoomResolveAliasError("bad gateway", "502"),
        ConnectionRefusedError("refused"),
        RoomResolveAliasResponse(MODS, "!mods:example.org", ["example.org"]),
    )
    found = await moderators_room.find(client, MODS, None, "@bot:example.org")  # type: ignore[arg-type]
    assert found == "!mods:example.org"
    assert client.calls == 3
    assert len(no_sleep) == 2


async def test_a_moderators_alias_that_does_not_exist_is_a_config_error(
    tmp_path: Path, no_sleep: list[float]
) -> None:
    client = FakeClient(RoomResolveAliasError("no such alias", "M_NOT_FOUND"))
    with pytest.raises(ConfigError, match=r"bot\.moderators_room"):
        await moderators_room.find(client, MODS, None, "@bot:example.org")  # type: ignore[arg-type]


def test_a_second_lock_on_a_state_folder_is_refused_and_freed_on_release(tmp_path: Path) -> None:
    first, second = StateLock(tmp_path), StateLock(tmp_path)
    first.acquire()
    with pytest.raises(StateError, match="already running"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_the_state_folder_is_made_private(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    lock = StateLock(folder)
    lock.acquire()
    lock.release()
    assert folder.stat().st_mode & 0o777 == 0o700
