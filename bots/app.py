"""Assemble the Hearth bot: the one place that names the features.

An operator chooses what a bot does with `bot.features` in its YAML; the
default is every feature that can run with that config, so a small
community runs one bot account (one device for members to trust).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bots.archives.feature import FEATURE as ARCHIVES
from bots.base.errors import ConfigError, raise_all
from bots.core.feature import FEATURE as CORE
from bots.framework.community import CommunitySource
from bots.framework.config import BotConfig, load_bot_config
from bots.framework.feature import Feature
from bots.framework.logging import get_logger
from bots.framework.runtime import BotRuntime
from bots.meetings.feature import FEATURE as MEETINGS
from bots.moderation.feature import FEATURE as MODERATION
from bots.onboarding.feature import FEATURE as ONBOARDING
from bots.roomkeeping.feature import FEATURE as ROOMKEEPING
from provisioning.markers import roles_of
from provisioning.schema import cached_community

log = get_logger(__name__)

# Each feature is bots/<name>/feature.py exposing FEATURE. (bots/example/
# is the one in docs/writing-a-feature.md: not started unless a bot is
# built with it.)
FEATURES: tuple[Feature[Any], ...] = (CORE, ROOMKEEPING, ONBOARDING, MODERATION, MEETINGS, ARCHIVES)


def load_config(path: Path, features: Sequence[Feature[Any]] = FEATURES) -> BotConfig:
    """A bots YAML file, with every known feature's section validated."""
    config = load_bot_config(path, {f.name: f.config_model for f in features})
    select_features(config, features, source=str(path))
    return config


def select_features(
    config: BotConfig, available: Sequence[Feature[Any]] = FEATURES, *, source: str = "bot config"
) -> tuple[list[Feature[Any]], list[str]]:
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
    chosen: list[Feature[Any]] = []
    wanted: list[tuple[str, Feature[Any] | None]]
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


def community_file(config: BotConfig, features: Sequence[Feature[Any]]) -> Path | None:
    """The one community file the enabled features' sections name, if any.

    Raises:
        ConfigError: two sections name different files (one bot serves one community).
    """
    named: dict[Path, str] = {}
    for feature in features:
        path = getattr(config.feature_sections.get(feature.name), "community", None)
        if isinstance(path, Path):
            named.setdefault(path.resolve(), feature.name)
    if len(named) > 1:
        listed = ", ".join(f"{name}.community: {path}" for path, name in named.items())
        raise ConfigError(
            "bot config",
            "community",
            f"the features name different community files ({listed}); "
            "expected one file: a bot serves one community",
        )
    return next(iter(named), None)


def community_source(path: Path | None) -> Callable[[], CommunitySource | None]:
    """The community file and who is who in it, read again when the file
    changes. A file that breaks while the bot runs keeps the last good
    reading (and says so), rather than stopping every handler; roles and
    file come from the same reading, so they never disagree."""
    if path is None:
        return lambda: None
    last: list[CommunitySource] = []

    def source() -> CommunitySource | None:
        try:
            cfg = cached_community(path)
        except (OSError, ConfigError) as exc:
            log.error("community file unreadable; keeping what it said before", problem=str(exc))
            return last[0] if last else None
        if not last or last[0].document is not cfg:
            last[:] = [CommunitySource(roles_of(cfg), cfg)]
        return last[0]

    return source


def build_bot(config: BotConfig, available: Sequence[Feature[Any]] = FEATURES) -> BotRuntime:
    features, notes = select_features(config, available)
    for note in notes:
        log.warning(note)
    return BotRuntime(config, features, community_source(community_file(config, features)))
