"""hearth_synapse's own logic, without Synapse (the integration test loads it in one)."""

from __future__ import annotations

from typing import Any

import pytest

from hearth_synapse import registrations
from provisioning.tokens import token_ref


def test_the_module_and_hearth_refer_to_a_token_alike() -> None:
    # The module cannot import Hearth: the same small function lives in both.
    for token in ("abc", "x" * 64, "tökén"):
        assert registrations.token_ref(token) == token_ref(token)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "spool_dir must be an absolute path"),
        ({"spool_dir": "relative/dir"}, "spool_dir must be an absolute path"),
        ({"spool_dir": "/var/spool", "file_mode": 0o664}, "give others nothing"),
        ({"spool_dir": "/var/spool", "file_mode": "660"}, "must be an int"),
    ],
)
def test_bad_module_config_is_refused_at_start(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        registrations.RegistrationSpool.parse_config(config)


def test_good_module_config() -> None:
    parsed = registrations.RegistrationSpool.parse_config({"spool_dir": "/var/lib/hearth/reg"})
    assert str(parsed.spool_dir) == "/var/lib/hearth/reg"
    assert parsed.file_mode == 0o660
