"""Onboarding: from a registration token, a knock or `!join` to a welcomed,
screened member of the right groups. `applicant.py` is each applicant's
state machine (pure)."""
