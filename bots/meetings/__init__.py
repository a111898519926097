"""Meetings: a group's calendar in its encrypted rooms."""
