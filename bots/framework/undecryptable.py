"""Messages the bot cannot decrypt: ask for the key, retry, then tell the sender once."""

from __future__ import annotations

from bots.framework.actions import Reply
from bots.framework.markdown import Md

RETRY_INTERVAL_S = 2.0


def notice_key(sender: str, session_id: str) -> str:
    """One notice per sender and Megolm session: every message in a session
    fails for the same reason, so one explanation covers them all."""
    return f"{sender}|{session_id}"


def undecryptable_reply(room_id: str, event_id: str) -> Reply:
    return Reply(
        room_id,
        event_id,
        Md(
            "I couldn't decrypt your message, so I haven't acted on it: the keys for it never "
            "reached me. Please check that your session is verified (in Element: **Settings → "
            "Sessions**), then send it again."
        ),
    )
