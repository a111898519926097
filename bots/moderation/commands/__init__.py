"""Moderators' commands: `sanctions.py` plans them (pure), `handlers.py`
declares and answers them."""
