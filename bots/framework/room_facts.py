"""What the server says about rooms, as the bot decides by it: each
person's power (counting room v12 creators, which nio does not), who is in
a room, whether its history is shared, and the community's rooms verified
from their markers. Read from nio's rooms and :class:`ServerState`, both
fed only by the server: never from a decrypted payload."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nio import MatrixRoom, SyncResponse

from bots.framework.commands.spec import MODERATOR, CommandTable
from bots.framework.community import MARKER, NO_ROOMS, CommunityRoles, Verdict, verify
from bots.framework.community import STATE_TYPES as COMMUNITY_STATE
from bots.framework.config import BotConfig
from bots.framework.events import CREATOR_POWER, PowerSnapshot, creators_outrank_power_levels
from bots.framework.feature import Feature, FeatureConfig
from bots.framework.room_state import ServerState
from bots.framework.session import BotSession
from bots.framework.trust.policy import history_is_shared


class RoomFacts:
    def __init__(
        self,
        config: BotConfig,
        session: BotSession,
        features: Sequence[Feature],
        table: CommandTable,
        roles: Callable[[], CommunityRoles | None],
        section: Callable[[Feature], FeatureConfig],
    ) -> None:
        self.config = config
        self.session = session
        self.features = tuple(features)
        self.table = table
        self.roles = roles
        self.section = section
        # Room state as the server holds it: what the features asked for,
        # the community's markers, and every room's creators.
        self.state = ServerState(
            {*COMMUNITY_STATE, *(t for f in self.features for t in f.state_types)}
        )
        self._verdict: tuple[tuple[int, CommunityRoles | None], Verdict] | None = None
        # Resolved once at start (see moderators_room.resolve).
        self.moderators_room_id: str | None = None

    def level_in(self, room: MatrixRoom, user_id: str) -> int:
        """*user_id*'s power in *room*, counting v12 creators (nio does not)."""
        if creators_outrank_power_levels(room.room_version) and user_id in self.state.creators(
            room.room_id
        ):
            return CREATOR_POWER
        return int(room.power_levels.get_user_level(user_id))

    def power_of(self, room_id: str, user_id: str) -> PowerSnapshot:
        client = self.session.client
        room = client.rooms.get(room_id) if client is not None else None
        in_room = self.level_in(room, user_id) if room is not None else 0
        in_mods: int | None = None
        mods_id = self.moderators_room_id
        if client is not None and mods_id is not None:
            mods = client.rooms.get(mods_id)
            if mods is not None and user_id in mods.users:
                in_mods = self.level_in(mods, user_id)
        return PowerSnapshot(in_room, in_mods, typed_in_moderators_room=room_id == mods_id)

    def staff_level(self) -> int:
        """The least power any command needs: who holds it is staff."""
        return min((c.power_level for c in self.table if c.power_level > 0), default=MODERATOR)

    def is_staff(self, room_id: str, user_id: str) -> bool:
        """Whether *user_id* holds power enough for a staff command typed in
        *room_id*: in that room, or in the moderators' room (community-wide
        commands count that)."""
        power = self.power_of(room_id, user_id)
        best = max(power.in_room, power.in_moderators_room or 0)
        return best >= self.staff_level()

    def holds_power(self, user_id: str) -> bool:
        """Whether *user_id* could run a command that needs power somewhere."""
        client = self.session.client
        if client is None:
            return False
        needed = self.staff_level()
        return any(
            self.level_in(room, user_id) >= needed
            for room in client.rooms.values()
            if user_id in room.users
        )

    def note_state(self, resp: SyncResponse) -> None:
        """Each joined room's state as the server served it, in event order."""
        for room_id, info in resp.rooms.join.items():
            self.state.take(room_id, (*info.state, *info.timeline.events))
        for room_id in resp.rooms.leave:
            self.state.forget(room_id)

    def verdict(self) -> Verdict:
        """The community's rooms, verified, and the forgeries among the
        markers: worked out again only when the state or the file changed."""
        roles = self.roles()
        key = (self.state.version, roles)
        if self._verdict is None or self._verdict[0] != key:
            found = verify(self.state, roles, self.config.user_id) if roles else Verdict(NO_ROOMS)
            self._verdict = (key, found)
        return self._verdict[1]

    def named_rooms(self) -> frozenset[str]:
        named = {self.moderators_room_id} if self.moderators_room_id else set()
        for feature in self.features:
            if feature.named_rooms is not None:
                named.update(feature.named_rooms(self.section(feature)))
        return frozenset(named)

    def room_state_of(self, event_type: str) -> Mapping[str, Mapping[str, Any]]:
        if event_type == MARKER:
            # Features read markers only as verified (Context.community).
            return self.verdict().rooms.markers
        return self.state.content(event_type)

    def members(self, room_id: str) -> frozenset[str]:
        client = self.session.client
        room = client.rooms.get(room_id) if client is not None else None
        return frozenset(room.users) if room is not None else frozenset()

    def history_shared(self, room_id: str) -> bool:
        client = self.session.client
        room = client.rooms.get(room_id) if client is not None else None
        return room is not None and history_is_shared(room.history_visibility)
