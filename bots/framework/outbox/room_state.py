"""Performers of state changes: any state event, and one user's power or
the room's posting level, each read and written back under the room's lock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from nio import RoomGetStateEventResponse

from bots.framework.actions import SetPostingLevel, SetPower, SetState
from bots.framework.event_types import POWER_LEVELS
from bots.framework.outbox.means import DONE, Means
from bots.framework.outbox.registry import performs


@performs(SetState)
async def set_state(means: Means, action: SetState, txn: str) -> Any:
    return await means.client.room_put_state(
        action.room_id, action.event_type, dict(action.content), action.state_key
    )


async def change_power_levels(
    means: Means, room_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> Any:
    """Read the room's power levels, change them, write them back; one
    change at a time per room, so each reads what the last one wrote."""
    async with means.power_locks.setdefault(room_id, asyncio.Lock()):
        got = await means.client.room_get_state_event(room_id, POWER_LEVELS)
        if not isinstance(got, RoomGetStateEventResponse):
            return got
        content = change(dict(got.content))
        if content == got.content:
            return DONE
        return await means.client.room_put_state(room_id, POWER_LEVELS, content)


@performs(SetPower)
async def set_power(means: Means, action: SetPower, txn: str) -> Any:
    def change(content: dict[str, Any]) -> dict[str, Any]:
        users = dict(content.get("users") or {})
        if action.level is None:
            users.pop(action.user_id, None)
        else:
            users[action.user_id] = action.level
        return {**content, "users": users}

    return await change_power_levels(means, action.room_id, change)


@performs(SetPostingLevel)
async def set_posting_level(means: Means, action: SetPostingLevel, txn: str) -> Any:
    return await change_power_levels(
        means, action.room_id, lambda content: {**content, "events_default": action.level}
    )
