"""Hearth's way to the homeserver: every request goes through `transport.py`."""
