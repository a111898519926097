"""The event types Hearth names, each spelt once."""

from __future__ import annotations

# The spec's.
CREATE = "m.room.create"
MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
MESSAGE = "m.room.message"
REDACTION = "m.room.redaction"
ENCRYPTION = "m.room.encryption"
SPACE_CHILD = "m.space.child"
# Provisioning's marker in every room it makes: community, kind, group, room
# (believed only as bots/framework/community.py says).
MARKER = "org.hearth.room"
