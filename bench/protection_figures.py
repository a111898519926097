"""Protection checks: time per message with every protection on, fed
directly at 1,000 messages a second of (simulated) room time.

    cd /work/main && .venv/bin/python -m bench.protection_figures [--messages 20000]

Each message goes through the whole judgement the bot makes for it: its
room's memory, flood and mention windows, first-message, a list of 60 word
patterns with an allow list, the crisis patterns, the decision, and being
remembered. The floor is what the bot does with every event before any
feature sees it: the framework's typing of the decrypted event
(`to_event`). Both are timed
per message in the same run; the median and the 99th percentile are
printed. Target: a median under 0.5 ms. Never asserts a timing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from typing import Any

from bench.harness import run_bench, versions
from bench.report import Row, print_report
from bots.framework.events import Message
from bots.framework.intake.parse import to_event
from bots.moderation.protections.guard import Guard
from bots.moderation.protections.seen import Joined, seen_of
from provisioning.protections import Protections

ROOMS = 5
SENDERS = 200
WORDS = [f"\\bbadword{i}\\b" for i in range(50)] + [
    r"\bscam(mer|mers|s)?\b",
    r"\bcrypto ?(giveaway|airdrop)\b",
    r"\bbuy (cheap )?(meds|pills)\b",
    r"\bfree money\b",
    r"\bclick here\b",
    r"t\.me/\w+",
    r"\bwhats ?app\b.*\+\d",
    r"\bcasino\b",
    r"\bviagra\b",
    r"\bonlyfans\b",
]
BODIES = [
    "Had a rough night, but the new meds seem to help a little.",
    "Does anyone else get this tired after the infusion? I slept all afternoon.",
    "Thank you all, reading this group makes me feel less alone.",
    "My appointment got moved again, third time this month.",
    "Some days I want to die, honestly.",
    "Click here for free money: https://spam.example/win",
    "Here is the leaflet the nurse gave me https://hospital.example/leaflet.pdf",
    "Big hugs to everyone having a hard week ❤️",
    "Anyone tried the diet the consultant mentioned? Scunthorpe clinic recommends it.",
    "x" * 2000,
]


Event = tuple[str, str, str, int, dict[str, Any]]  # id, room, sender, ts (ms), content


def messages(n: int, rng: random.Random) -> list[Event]:
    out: list[Event] = []
    for i in range(n):
        sender = f"@member{rng.randrange(SENDERS)}:example.org"
        content: dict[str, Any] = {"msgtype": "m.text", "body": rng.choice(BODIES)}
        if rng.random() < 0.05:
            users = [f"@member{rng.randrange(SENDERS)}:example.org" for _ in range(3)]
            content["m.mentions"] = {"user_ids": users}
        room = f"!room{rng.randrange(ROOMS)}:example.org"
        out.append((f"$e{i}", room, sender, 1_800_000_000_000 + i, content))  # 1 ms apart
    return out


def per_message_ms(samples: list[int]) -> tuple[float, float]:
    ms = sorted(s / 1e6 for s in samples)
    return statistics.median(ms), ms[int(len(ms) * 0.99)]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    cfg = Protections.model_validate(
        {"words": {"patterns": WORDS, "allow": ["scunthorpe"]}, "flood": {"messages": 10}}
    )
    feed = messages(args.messages, rng)
    guard = Guard()
    for i in range(SENDERS // 4):  # some first messages to watch
        guard.join(Joined(f"!room{i % ROOMS}:example.org", f"@member{i}:example.org", 1.8e9), cfg)
    floor: list[int] = []
    ours: list[int] = []
    acted = 0
    clock = time.perf_counter_ns
    for event_id, room, sender, ts, content in feed:
        source = {
            "type": "m.room.message",
            "event_id": event_id,
            "sender": sender,
            "origin_server_ts": ts,
            "content": content,
        }
        t0 = clock()
        event = to_event(room, source, encrypted=True)
        t1 = clock()
        assert isinstance(event, Message)
        acted += guard.message(seen_of(event), cfg).acts
        t2 = clock()
        floor.append(t1 - t0)
        ours.append(t2 - t1)
    median, p99 = per_message_ms(ours)
    floor_median, floor_p99 = per_message_ms(floor)
    return versions() | {
        "messages": args.messages,
        "median_ms": median,
        "p99_ms": p99,
        "floor_median_ms": floor_median,
        "floor_p99_ms": floor_p99,
        "acted_on": acted,
    }


def report(r: dict[str, Any]) -> None:
    rows = (
        Row("Median", f"{r['median_ms']:.3f} ms", f"{r['floor_median_ms']:.3f} ms",
            target="< 0.5 ms", met=r["median_ms"] < 0.5),
        Row("99th percentile", f"{r['p99_ms']:.3f} ms", f"{r['floor_p99_ms']:.3f} ms"),
    )  # fmt: skip
    title = (
        f"Protection checks per message, {r['messages']} messages ({r['date']}, {r['cpus']} CPUs)"
    )
    print_report(
        title,
        rows,
        [f"Messages the protections acted on: {r['acted_on']}."],
        value="All protections",
        floor="Floor (typing the event)",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    return run_bench(lambda: measure(args), report, "Interrupted.")


if __name__ == "__main__":
    sys.exit(main())
