"""Room key (Megolm) sessions and whether their sender marked them shareable
with later members (MSC4268)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bots.framework.storage.base import StoreBase
from bots.framework.trust.policy import SessionFlag


class SessionStore(StoreBase):
    async def record_sessions(self, sessions: Sequence[SessionFlag]) -> None:
        """Whether each received (or own) Megolm session may go to later members.
        The first record of a session stands: a re-sent key cannot widen it."""
        if not sessions:
            return
        now = time.time()
        async with self.transaction() as db:
            await db.executemany(
                "INSERT OR IGNORE INTO shareable_sessions VALUES (?, ?, ?, ?, ?)",
                [(s.room_id, s.sender_key, s.session_id, int(s.shareable), now) for s in sessions],
            )

    async def shareable_sessions(self, room_id: str) -> set[tuple[str, str]]:
        """(sender key, session id) of the room's sessions marked shareable."""
        rows = await self._fetch(
            "SELECT sender_key, session_id FROM shareable_sessions"
            " WHERE room_id = ? AND shareable = 1",
            (room_id,),
        )
        return {(str(r[0]), str(r[1])) for r in rows}
