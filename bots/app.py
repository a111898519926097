"""Assemble the Hearth bot: the one place that names the features.

An operator chooses what a bot does with `bot.features` in its YAML; the
default is every feature that can run with that config, so a small
community runs one bot account (one device for members to trust).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bots import archives, core, meetings, moderation, onboarding, roomkeeping
from bots.base.errors import ConfigError, raise_all
from bots.framework.config import BotConfig, load_bot_config
from bots.framework.feature import Feature
from bots.framework.logging import get_logger
from bots.framework.runtime import BotRuntime

log = get_logger(__name__)

FEATURES: tuple[Feature, ...] = (
    core.feature,
    roomkeeping.feature,
    onboarding.feature,
    moderation.feature,
    meetings.feature,
    archives.feature,
)


def load_config(path: Path, features: Sequence[Feature] = FEATURES) -> BotConfig:
    """A bots YAML file, with every known feature's section validated."""
    config = load_bot_config(path, {f.name: f.config_model for f in features})
    select_features(config, features, source=str(path))
    return config


def select_features(
    config: BotConfig, available: Sequence[Feature] = FEATURES, *, source: str = "bot config"
) -> tuple[list[Feature], list[str]]:
    """The features to run, and notes on the ones left out and why.

    With no `features:` list, a feature that cannot run is left out with a
    note, unless the file has a section for it: a feature set up in the file
    but unable to run (its community file broken, say) is an error, as one
    listed by name is.

    Raises:
        ConfigError: every such problem, together (ConfigProblems for several).
    """
    by_name = {f.name: f for f in available}
    notes: list[str] = []
    problems: list[ConfigError] = []
    chosen: list[Feature] = []
    wanted: list[tuple[str, Feature | None]]
    if config.features is None:
        wanted = [(f.name, f) for f in available]
    else:
        wanted = [(f"bot.features[{i}]", by_name.get(n)) for i, n in enumerate(config.features)]
    for where, feature in wanted:
        if feature is None:  # load_bot_config names these first, with their lines
            expected = f"unknown feature; expected one of: {', '.join(by_name)}"
            problems.append(ConfigError(source, where, expected))
            continue
        why = feature.unavailable(config) if feature.unavailable else None
        if why is None:
            chosen.append(feature)
        elif config.features is None and feature.name not in config.feature_sections:
            notes.append(f"{feature.name} not started: {why}")
        else:
            key = where if config.features is not None else feature.name
            problems.append(ConfigError(source, key, f"{feature.name} cannot run: {why}"))
    raise_all(problems)
    names = {f.name for f in chosen}
    for section in config.feature_sections:
        if section not in names:
            notes.append(f"the section {section!r} is kept but not used: {section} is not enabled")
    return chosen, notes


def build_bot(config: BotConfig, available: Sequence[Feature] = FEATURES) -> BotRuntime:
    features, notes = select_features(config, available)
    for note in notes:
        log.warning(note)
    return BotRuntime(config, features)
