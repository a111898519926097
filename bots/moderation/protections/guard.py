"""The protections of every room the bot watches: each message or join is
judged against what its room remembers, then remembered. No I/O; the
moderation feature turns the decisions into actions."""

from __future__ import annotations

from dataclasses import replace

from bots.moderation.protections.checks import check_join, check_message
from bots.moderation.protections.decide import NOTHING, Decision, decide
from bots.moderation.protections.seen import Joined, Seen
from bots.moderation.protections.window import RoomWindow
from provisioning.protections import Protections, Step

MAX_ROOMS = 1000


class Guard:
    def __init__(self) -> None:
        self._rooms: dict[str, RoomWindow] = {}

    def window(self, room_id: str) -> RoomWindow:
        window = self._rooms.get(room_id)
        if window is None:
            if len(self._rooms) >= MAX_ROOMS:
                self._rooms.pop(next(iter(self._rooms)))
            window = self._rooms[room_id] = RoomWindow()
        return window

    def message(
        self, msg: Seen, cfg: Protections, exempt: bool = False, slow_s: float = 0
    ) -> Decision:
        """Judge *msg* (unless its sender is *exempt*: moderators and bots)
        and remember it either way. *slow_s*: the room's slow mode, if on."""
        window = self.window(msg.room_id)
        longest = max(cfg.flood.seconds, cfg.mentions.seconds, slow_s)
        since = msg.ts - longest
        decision = NOTHING
        if not exempt:
            recent = window.recent(msg.sender, since)
            found = check_message(msg, recent, window.joined_at(msg.sender), cfg, slow_s)
            if found:
                forget = msg.ts - cfg.forget_hours * 3600
                decision = decide(found, len(window.offences(msg.sender, forget)), cfg)
                if decision.offence:
                    window.add_offence(msg.sender, msg.ts, forget)
                if decision.step is Step.ALERT:
                    # Once is enough: the rest of a flood sent before the
                    # mute took hold is removed without a notice each.
                    if window.alerted_since(msg.sender, forget):
                        decision = replace(decision, step=None)
                    else:
                        window.add_alert(msg.sender, msg.ts)
        window.add_message(msg.sender, msg.ts, msg.mentions, since)
        return decision

    def join(self, joined: Joined, cfg: Protections, exempt: bool = False) -> Decision:
        window = self.window(joined.room_id)
        if exempt:
            return NOTHING
        window.add_join(joined.user_id, joined.ts)
        window.joins, found = check_join(window.joins, joined.ts, cfg)
        return NOTHING if found is None else decide((found,), 0, cfg)
