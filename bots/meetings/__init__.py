"""Meetings: a group's calendar in its encrypted rooms."""

from bots.meetings.feature import feature

__all__ = ["feature"]
