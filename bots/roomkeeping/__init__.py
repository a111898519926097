"""Roomkeeping (bots/roomkeeping/feature.py): moderators open peer groups at runtime."""
