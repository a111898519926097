"""Intake: what the homeserver sends, taken in. ``parse.py`` turns raw event
JSON into typed events (pure); ``sync.py`` picks a sync's events worth
keeping, paging back after a downtime; ``keys.py`` waits for the room keys
of messages that arrived before them."""

from bots.framework.intake.parse import (
    classify_membership,
    sender_device,
    to_event,
    with_sender_keys,
)

__all__ = ["classify_membership", "sender_device", "to_event", "with_sender_keys"]
