"""Onboarding: from a registration token to a welcomed, screened member of
the right group. `applicant.py` is each applicant's state machine (pure),
`texts.py` what the bot says, `plan.py` turns transitions into actions, and
`feature.py` is the feature: the Synapse module's spool, the applicant's DM
and the moderators' commands."""
