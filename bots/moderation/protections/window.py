"""What the protections remember of a room's recent past, bounded in memory.

Only timestamps and counts: never a message's text. Every structure has a
cap, so a flood of new accounts or messages cannot grow it without limit;
when a cap is reached the oldest entries go first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

MAX_SENDERS = 5000  # per room
MAX_PER_SENDER = 1000  # messages remembered per sender (the largest flood limit)
MAX_JOINERS = 5000  # recent joiners per room


@dataclass(frozen=True)
class Bucket:
    """A leaky bucket of joins: *level* joins, as of *ts*."""

    level: float = 0.0
    ts: float = 0.0


class RoomWindow:
    def __init__(self) -> None:
        # sender -> (ts, mentions) of their recent messages, oldest first
        self._senders: OrderedDict[str, deque[tuple[float, int]]] = OrderedDict()
        # user -> when they joined, until their first message or new_hours
        self._joiners: OrderedDict[str, float] = OrderedDict()
        self.joins = Bucket()
        # user -> when their offences happened, oldest first
        self._offences: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        # user -> when the moderators were last alerted about them
        self._alerted: OrderedDict[str, float] = OrderedDict()

    def recent(self, sender: str, since: float) -> tuple[tuple[float, int], ...]:
        """The sender's remembered messages at or after *since*."""
        history = self._senders.get(sender)
        if history is None:
            return ()
        while history and history[0][0] < since:
            history.popleft()
        return tuple(history)

    def add_message(self, sender: str, ts: float, mentions: int, keep_since: float) -> None:
        history = self._senders.get(sender)
        if history is None:
            history = self._senders[sender] = deque(maxlen=MAX_PER_SENDER)
            if len(self._senders) > MAX_SENDERS:
                self._senders.popitem(last=False)
        else:
            self._senders.move_to_end(sender)
        while history and history[0][0] < keep_since:
            history.popleft()
        history.append((ts, mentions))
        self._joiners.pop(sender, None)  # their first message has been seen

    def joined_at(self, user: str) -> float | None:
        return self._joiners.get(user)

    def add_join(self, user: str, ts: float) -> None:
        self._joiners[user] = ts
        self._joiners.move_to_end(user)
        if len(self._joiners) > MAX_JOINERS:
            self._joiners.popitem(last=False)

    def offences(self, user: str, since: float) -> tuple[float, ...]:
        return tuple(t for t in self._offences.get(user, ()) if t >= since)

    def add_offence(self, user: str, ts: float, since: float) -> None:
        self._offences[user] = (*self.offences(user, since), ts)
        self._offences.move_to_end(user)
        if len(self._offences) > MAX_SENDERS:
            self._offences.popitem(last=False)

    def alerted_since(self, user: str, since: float) -> bool:
        return self._alerted.get(user, float("-inf")) >= since

    def add_alert(self, user: str, ts: float) -> None:
        self._alerted[user] = ts
        self._alerted.move_to_end(user)
        if len(self._alerted) > MAX_SENDERS:
            self._alerted.popitem(last=False)
