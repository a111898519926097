"""The bot's trust parts, made together once it has connected: who is who
(identities and their pinned keys), who gets room keys, the Olm sessions
made ahead, and the history bundles for newcomers. Each reads the others,
so they are made in one place, in the one order that works."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from nio import AsyncClient

from bots.framework.trust.channel import CryptoChannel
from bots.framework.trust.history import HistorySharer, SessionFlags
from bots.framework.trust.identities import Identities, Pins
from bots.framework.trust.policy import KeySharing, SessionFlag
from bots.framework.trust.sharing import KeySharer
from bots.framework.trust.warming import SessionWarmer


class TrustStore(Pins, Protocol):
    """What the trust parts keep in the bot's database."""

    async def record_sessions(self, sessions: Sequence[SessionFlag]) -> None: ...
    async def shareable_sessions(self, room_id: str) -> set[tuple[str, str]]: ...


@dataclass(frozen=True)
class TrustParts:
    identities: Identities
    keys: KeySharer
    warmer: SessionWarmer
    history: HistorySharer

    @classmethod
    def connect(
        cls,
        client: AsyncClient,
        store: TrustStore,
        sharing: KeySharing,
        *,
        holds_power: Callable[[str], bool],
        report_change: Callable[[str], Awaitable[None]],
        history_shared: Callable[[str], bool],
    ) -> TrustParts:
        """*holds_power*: whether a user holds power somewhere (their changed
        identity is then reported); *history_shared*: whether a room shares
        its history with newcomers (its room keys are then marked so)."""
        identities = Identities(
            CryptoChannel(client), store, holds_power=holds_power, report_change=report_change
        )
        keys = KeySharer(
            client,
            identities,
            sharing,
            shared_history=history_shared,
            on_session=lambda flag: store.record_sessions([flag]),
        )
        history = HistorySharer(
            client,
            identities,
            keys,
            SessionFlags(store.record_sessions, store.shareable_sessions),
        )
        return cls(identities, keys, SessionWarmer(keys, identities, sharing), history)
