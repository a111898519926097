"""Capped exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    attempt: int = field(default=0, init=False)

    def next_delay(self) -> float:
        """Delay before the next try: base * 2^n, capped, with +-20% jitter."""
        # The exponent stops growing once past the cap, so a days-long outage
        # cannot overflow the float.
        delay = min(self.cap, self.base * (2 ** min(self.attempt, 32)))
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempt = 0
