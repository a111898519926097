"""What the bot tells its moderators' room: reports (a changed identity, a
job missed), and alarms about forged state and markers, each at most once
per sender and room. Reports wait until the first sync, when nio can send
to the room."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from bots.framework.actions import PutRecord, SendNotice
from bots.framework.config import BotConfig
from bots.framework.forgery import Alarm, AlarmBook
from bots.framework.logging import get_logger
from bots.framework.outbox.effector import Effector
from bots.framework.outbox.queue import Outbox
from bots.framework.room_facts import RoomFacts
from bots.framework.storage import Storage

log = get_logger(__name__)

# The framework's own records: forgery attempts already reported.
SECURITY = "security"


class ModeratorReports:
    def __init__(
        self,
        config: BotConfig,
        facts: RoomFacts,
        outbox: Outbox,
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.facts = facts
        self.outbox = outbox
        self.spawn = spawn
        self.clock = clock
        # Forged state and markers seen, and the alarms raised.
        self.alarms = AlarmBook()
        # Set once the bot has opened its state and connected.
        self.storage: Storage | None = None
        self.effector: Effector | None = None
        self.synced = False
        self._held: list[str] = []

    async def tell(self, text: str) -> None:
        mods = self.facts.moderators_room_id
        if mods is None or self.effector is None:
            # Not silently: the operator should know the moderators miss it.
            log.warning("a report for the moderators has nowhere to go: no bot.moderators_room")
            return
        if not self.synced:
            # nio can send to the room only once it has synced it.
            self._held.append(text)
            return
        await self.effector.perform([SendNotice(mods, text)])

    async def synced_now(self) -> None:
        """Rooms are known: send the reports held back until now."""
        self.synced = True
        held, self._held = self._held, []
        for text in held:
            await self.tell(text)
        self.note_alarms()

    async def identity_changed(self, user_id: str) -> None:
        """A moderator's identity changed: their commands wait for a `!trust`."""
        mods = self.facts.moderators_room_id
        if mods is None or self.effector is None:
            log.warning("an identity change has nowhere to be reported: no bot.moderators_room")
            return
        prefix = self.config.command_prefix
        text = (
            f"{user_id}'s security identity changed (a reset of their recovery key, or "
            "someone else in their account). Until another moderator confirms it with "
            f"{prefix}trust {user_id}, I won't accept their moderator commands."
        )
        # In a task: this is found while sharing keys or authorising, mid-send.
        self.spawn(self.effector.perform([SendNotice(mods, text)]))

    def note_alarms(self) -> None:
        """Report new forgery attempts to the moderators, once per sender
        and room: decided here, at once (so no attempt is reported twice),
        sent in the background. Held until the moderators' room is known."""
        mods = self.facts.moderators_room_id
        if mods is None or not self.synced or self.storage is None:
            return
        if new := self.alarms.due(self.facts.verdict()):
            self.spawn(self._raise_alarms(mods, new))

    async def _raise_alarms(self, mods: str, alarms: Sequence[Alarm]) -> None:
        storage = self.storage
        assert storage is not None
        for alarm in alarms:
            if await storage.record(SECURITY, "alarm", alarm.key) is not None:
                continue  # reported before a restart
            # The log says what happened, never who (nor what they sent).
            log.warning(alarm.what)
            await self.outbox.submit(
                f"alarm:{alarm.key}",
                [
                    SendNotice(mods, alarm.text, mentions=()),
                    PutRecord(SECURITY, "alarm", alarm.key, {"at": self.clock()}),
                ],
            )
