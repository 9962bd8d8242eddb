"""Jittered, capped exponential backoff: how every `lab` process waits out a service that went
away (and how the supervisor spaces restarts of a process that keeps exiting).

Full jitter (a random wait between 0 and the current cap) keeps a fleet of workers that lost the
same broker from reconnecting in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# One generator for every backoff: a worker makes one per service call (patience.py), and a new
# `random.Random()` seeds itself from the OS each time (tens of µs, twice a batch, for nothing).
SHARED = random.Random()


@dataclass
class Backoff:
    initial_s: float = 0.5
    cap_s: float = 30.0
    failures: int = 0
    rng: random.Random = field(default=SHARED, repr=False)

    def ceiling(self) -> float:
        """The longest the next wait may be."""
        return min(self.cap_s, self.initial_s * 2 ** min(self.failures, 30))

    def next(self) -> float:
        """The next wait: at least half the ceiling, so retries are neither instant nor late."""
        ceiling = self.ceiling()
        self.failures += 1
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def reset(self) -> None:
        self.failures = 0
