"""Matrix identifier grammar, in one place.

Always use fullmatch: ``$`` also matches before a trailing newline.
"""

from __future__ import annotations

import re

USER_ID = re.compile(r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(:\d+)?$")
# Room IDs: "!opaque:server" before room version 12, "!opaque" from it on.
ROOM_ID = re.compile(r"^![A-Za-z0-9._~+/=\-]+(:[A-Za-z0-9.\-]+(:\d+)?)?$")
ROOM_ALIAS = re.compile(r"^#[^:\s]+:[A-Za-z0-9.\-]+(:\d+)?$")


def is_user_id(value: str) -> bool:
    return bool(USER_ID.fullmatch(value))


def is_room_ref(value: str) -> bool:
    """A room ID or alias."""
    return bool(ROOM_ID.fullmatch(value) or ROOM_ALIAS.fullmatch(value))
