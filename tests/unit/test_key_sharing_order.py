"""A send in a room waits for a share of that room's key already under way.

A share starts by clearing what asked for it (a member's changed devices)
and only then sends the key: a second send in the same room meanwhile must
not encrypt with the session before the new device has it, or that device
can never read the message. Lanes, room workers and services send in the
same room at once, so this is the order they rely on."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from bots.framework.trust.sharing import KeySharer

ROOM = "!group:example.org"


class NoSessionChange:
    """nio's Olm machine as far as deciding to share goes: the room's
    session is already shared and stays the same."""

    def __init__(self) -> None:
        self.outbound_group_sessions: dict[str, Any] = {}

    def should_share_group_session(self, room_id: str) -> bool:
        return False


def sharer() -> KeySharer:
    client = SimpleNamespace(
        olm=None, rooms={ROOM: SimpleNamespace(room_id=ROOM, encrypted=True, users={})}
    )
    sharing = KeySharer(client, identities=None)  # type: ignore[arg-type]
    client.olm = NoSessionChange()  # type: ignore[assignment]
    return sharing


async def test_a_send_waits_for_the_share_of_a_new_device_under_way() -> None:
    sharing = sharer()
    key_sent = asyncio.Event()
    sharing_started = asyncio.Event()
    shares: list[str] = []

    async def share(room_id: str) -> None:
        # As the real share: what asked for it is cleared first, then the
        # members' keys are read and the key sent (awaits).
        sharing._recheck.discard(room_id)
        shares.append(room_id)
        sharing_started.set()
        await key_sent.wait()

    sharing._share = share  # type: ignore[method-assign]
    sharing._recheck.add(ROOM)  # a member's device changed
    first = asyncio.create_task(sharing.ensure_shared(ROOM))
    await sharing_started.wait()
    second = asyncio.create_task(sharing.ensure_shared(ROOM))
    await asyncio.sleep(0.05)
    assert not second.done(), "a send went ahead while the new device's key was on its way"
    key_sent.set()
    await asyncio.wait_for(asyncio.gather(first, second), 1)
    assert shares == [ROOM]  # shared once, not twice


async def test_a_send_with_nothing_to_share_does_not_wait() -> None:
    sharing = sharer()
    await asyncio.wait_for(sharing.ensure_shared(ROOM), 1)
