"""Moderation: protections for the groups' encrypted rooms."""
