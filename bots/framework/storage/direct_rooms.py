"""The one direct-message room the bot keeps with each member."""

from __future__ import annotations

import time

from bots.framework.storage.base import StoreBase


class DirectRoomStore(StoreBase):
    async def direct_room(self, user_id: str) -> str | None:
        rows = await self._fetch("SELECT room_id FROM direct_rooms WHERE user_id = ?", (user_id,))
        return str(rows[0][0]) if rows else None

    async def direct_rooms(self) -> dict[str, str]:
        """Every DM room the bot keeps, with the member it is with."""
        rows = await self._fetch("SELECT room_id, user_id FROM direct_rooms")
        return {str(r[0]): str(r[1]) for r in rows}

    async def remember_direct_room(self, user_id: str, room_id: str) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO direct_rooms VALUES (?, ?, ?) ON CONFLICT (user_id)"
                " DO UPDATE SET room_id = excluded.room_id, created_at = excluded.created_at",
                (user_id, room_id, time.time()),
            )
