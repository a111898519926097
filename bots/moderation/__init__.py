"""Moderation: protections for the groups' encrypted rooms."""

from bots.moderation.feature import feature

__all__ = ["feature"]
