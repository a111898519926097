"""Synapse logs the same few things in production as under `hearth dev` and the tests."""

from __future__ import annotations

import importlib.util
import logging.config
from pathlib import Path
from typing import Any

import jinja2
import yaml

from bots.devserver.synapse_config import SYNAPSE_INFO_LOGGERS, synapse_log_config

TEMPLATE = (
    Path(__file__).resolve().parents[2]
    / "deploy/ansible/roles/hearth_synapse/templates/log.yaml.j2"
)


def production() -> dict[str, Any]:
    text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(TEMPLATE.read_text())
    loaded = yaml.safe_load(text.render(ansible_managed="managed"))
    assert isinstance(loaded, dict)
    return loaded


def levels(config: dict[str, Any]) -> dict[str, str]:
    return {"": config["root"]["level"]} | {
        name: logger["level"] for name, logger in config["loggers"].items()
    }


def test_production_and_dev_log_at_the_same_levels() -> None:
    assert levels(production()) == levels(synapse_log_config())


def test_only_named_modules_log_below_warning() -> None:
    for config in (production(), synapse_log_config()):
        chatty = {name for name, level in levels(config).items() if level != "WARNING"}
        assert chatty == set(SYNAPSE_INFO_LOGGERS)
        assert all(levels(config)[name] == "INFO" for name in chatty)
    # Each is one module of Synapse's, not a package whose level would pass
    # to every module under it (the handlers, the storage layer).
    synapse = Path(str(importlib.util.find_spec("synapse").origin)).parent  # type: ignore[union-attr]
    for name in SYNAPSE_INFO_LOGGERS:
        path = synapse.joinpath(*name.split(".")[1:])
        assert path.with_suffix(".py").is_file(), f"{name} is not a module of this Synapse"
        assert not path.is_dir(), f"{name} is a package"


def test_synapse_accepts_the_dev_config_and_names_nobody_at_info() -> None:
    """Applied as Synapse applies it (dictConfig), a sign-up's INFO lines are dropped."""
    saved = logging.root.level, list(logging.root.handlers)
    try:
        logging.config.dictConfig(synapse_log_config())
        assert not logging.getLogger("synapse.handlers.auth").isEnabledFor(logging.INFO)
        assert not logging.getLogger("synapse.access.http.8008").isEnabledFor(logging.INFO)
        assert not logging.getLogger("synapse.storage.SQL").isEnabledFor(logging.INFO)
        assert logging.getLogger("synapse.handlers.auth").isEnabledFor(logging.WARNING)
        assert logging.getLogger("synapse.app._base").isEnabledFor(logging.INFO)
    finally:
        logging.root.setLevel(saved[0])
        logging.root.handlers[:] = saved[1]
