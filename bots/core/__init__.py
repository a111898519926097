"""The core feature (bots/core/feature.py): `!ping`, and joining rooms."""
