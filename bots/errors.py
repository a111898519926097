"""One error hierarchy for all of Hearth.

Each error carries an exit code so the CLI can map failures to the status a
user (or a script) expects: 2 for bad configuration, 1 for everything else.
"""

from __future__ import annotations


class HearthError(Exception):
    """Base of every error Hearth raises on purpose."""

    exit_code = 1


class ConfigError(HearthError):
    """A configuration file is missing, unreadable or does not match its schema."""

    exit_code = 2

    def __init__(self, file: str, key_path: str, expected: str, line: int | None = None) -> None:
        self.file = file
        self.key_path = key_path
        self.expected = expected
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        key = key_path or "(top level)"
        super().__init__(f"{where}: {key}: {expected}")


class SecretFileError(HearthError):
    """A secret file is missing, empty or readable by other users."""

    exit_code = 2


class HomeserverError(HearthError):
    """The homeserver could not be started, reached or refused a request."""


class LoginError(HearthError):
    """The bot's credentials were refused. Never carries the password."""
