"""Hearth's Synapse module. It runs inside Synapse, so it imports nothing of
Hearth's and nothing Synapse does not already have."""

from hearth_synapse.registrations import RegistrationSpool

__all__ = ["RegistrationSpool"]
