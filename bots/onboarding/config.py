"""The onboarding section of the bot's config."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bots.framework.feature import FeatureConfig


class OnboardingConfig(FeatureConfig):
    # The community file: texts, questions, groups and who moderates them.
    community: Path
    # Where the Synapse module (hearth_synapse) leaves word of new accounts.
    registrations: Path | None = None
    poll_s: float = Field(default=1.0, ge=0.1, le=60)
    # The welcome waits until the newcomer's client has a verified
    # (cross-signed) device, which Element sets up right after sign-up: the
    # bot's keys go only to such devices, so an earlier welcome would stay
    # unreadable. After this long it is sent all the same.
    wait_for_verification_s: float = Field(default=600, ge=0, le=86400)
