"""The admin agent's audit log: one JSON line per request, in a 0600 file.

It records what was asked, by which local process user, about whom (a keyed
hash, as in every Hearth log) and how it ended. Never a token, a reason or
anything a member wrote.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bots.framework.redaction import REDACTOR


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created private, appended to, never rewritten.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)

    def record(
        self, request: str, caller_uid: int | None, subject: str | None, outcome: str, detail: str
    ) -> None:
        line = {
            "time": round(time.time(), 3),
            "request": request,
            "caller_uid": caller_uid,
            "subject": REDACTOR.hash_user(subject) if subject else None,
            "outcome": outcome,
            "detail": detail,
        }
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")

    def count_ok(self, request: str, within_s: float) -> int:
        """How many *request*s succeeded in the last *within_s* seconds."""
        since = time.time() - within_s
        count = 0
        with self.path.open(encoding="utf-8") as fh:
            for raw in fh:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if (
                    line.get("request") == request
                    and line.get("outcome") == "ok"
                    and line.get("time", 0) >= since
                ):
                    count += 1
        return count
