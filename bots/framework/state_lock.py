"""One bot per state folder: two processes on one crypto store would corrupt it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bots.base.errors import StateError


class StateLock:
    """An exclusive lock on a state folder: two bots on one crypto store
    would corrupt it, so the second is refused."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "bot.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.parent.chmod(0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(
                f"cannot use the state folder {self.path.parent}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateError(
                f"another Hearth bot is already running on {self.path.parent}; "
                "stop it first (two processes would corrupt the crypto store)"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
