"""One error hierarchy for all of Hearth.

Each error carries an exit code so the CLI can map failures to the status a
user (or a script) expects: 2 for bad configuration, 3 for refused
credentials, 4 for an unusable state folder, 1 for everything else.
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


class ConfigProblems(ConfigError):
    """Several problems found in one file, reported together so an operator
    can fix them in one pass. The first is also exposed as the fields."""

    def __init__(self, problems: list[ConfigError]) -> None:
        if not problems:
            raise ValueError("ConfigProblems needs at least one problem")
        first = problems[0]
        super().__init__(first.file, first.key_path, first.expected, first.line)
        self.problems = problems
        if len(problems) > 1:
            # One line each, every line complete, so the first still reads
            # "file:line: key: expected" like a single error.
            self.args = ("\n".join(str(p) for p in problems),)


def raise_all(problems: list[ConfigError]) -> None:
    """Raise the problems found, if any: one as itself, several together."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigProblems(problems)


class SecretFileError(HearthError):
    """A secret file is missing, empty or readable by other users."""

    exit_code = 2


class InputError(HearthError):
    """A file handed to Hearth to read (a member's Facebook export, a
    roster) cannot be used as it is. The message says which file and why."""

    exit_code = 2


class HomeserverError(HearthError):
    """The homeserver could not be started, reached or refused a request."""


class LoginError(HearthError):
    """The bot's credentials were refused. Never carries the password.

    Its own exit status lets a service manager tell it apart from a crash:
    restarting cannot fix a wrong password (the playbook's unit does not
    restart on it).
    """

    exit_code = 3


class StateError(HearthError):
    """The bot's state folder cannot be used: read-only, full, or in use by
    another process."""

    exit_code = 4
