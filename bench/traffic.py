"""Background chatter for the load bench: one member sending encrypted
messages round-robin into some rooms at a fixed rate, in its own process so
its encryption work does not share the measuring process's event loop.

    python -m bench.traffic URL USER_ID PASSWORD_FILE STORE RATE SECONDS ROOM...

Prints one JSON line on exit: how many messages it sent and how late it fell.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from bots.framework.logging import configure_logging
from bots.framework.secrets import read_secret
from tests.support.member_client import MemberClient


async def chatter(
    url: str,
    user_id: str,
    password_file: str,
    store: str,
    rate: float,
    seconds: float,
    rooms: list[str],
) -> dict[str, float]:
    m = MemberClient(url, user_id, Path(store))
    await m.login(read_secret(Path(password_file)))
    try:
        for room in rooms:
            await m.join(room)
        counts = [0] * len(rooms)
        behind = [0.0] * len(rooms)
        t0 = time.monotonic()
        per_room = rate / len(rooms)

        async def one_room(i: int) -> None:
            # One sender per room: a single serial sender is capped by the
            # homeserver's round trip, well below the rate asked for.
            while (now := time.monotonic() - t0) < seconds:
                due = counts[i] / per_room
                if due > now:
                    await asyncio.sleep(due - now)
                else:
                    behind[i] = max(behind[i], now - due)
                await m.send(rooms[i], f"background message {counts[i]}")
                counts[i] += 1

        await asyncio.gather(*(one_room(i) for i in range(len(rooms))))
        elapsed = time.monotonic() - t0
        sent = sum(counts)
    finally:
        await m.close()
    return {"sent": sent, "rate": sent / elapsed, "max_behind_s": max(behind)}


def main(argv: list[str]) -> int:
    # Logs to stderr: stdout carries the one result line.
    configure_logging("warning", library_level="error")
    url, user_id, password_file, store, rate, seconds, *rooms = argv
    result = asyncio.run(
        chatter(url, user_id, password_file, store, float(rate), float(seconds), rooms)
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
