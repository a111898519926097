"""Secret files: created 0600, read back strictly, never logged."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from bots.base.errors import SecretFileError

SECRET_MODE = 0o600


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write *data* to *path* atomically with *mode*, whatever the umask.

    The file is created with its mode from the start (never chmod-ed after
    others could open it), and a reader sees the old file or the new one,
    never half of one. The folder is created if missing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o600)
    try:
        # The umask may have taken bits from mode; a mode wider than the
        # owner's is given once the file holds nothing yet, still unnamed.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_secret(path: Path, value: str | bytes) -> None:
    """Write *value* to *path* atomically, readable by the owner only (0600)."""
    write_file(path, value.encode() if isinstance(value, str) else value, SECRET_MODE)


def read_secret(path: Path, *, what: str = "secret") -> str:
    """Read a secret file, refusing files that group or others can read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SecretFileError(f"{what} file {path} does not exist") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"{what} file {path} is readable by other users "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}"
        )
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise SecretFileError(f"{what} file {path} is empty")
    return value


def ensure_secret(path: Path, *, nbytes: int = 32, what: str = "secret") -> str:
    """Return the secret stored at *path*, generating it on first use."""
    if not path.exists():
        write_secret(path, secrets.token_urlsafe(nbytes))
    return read_secret(path, what=what)
