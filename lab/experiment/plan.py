"""The trials of an experiment: each configuration (a combination of levels) times each
repetition, with a stable id, in the file's order or shuffled by its seed (so machine drift
spreads over the configurations instead of landing on one)."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from lab.experiment.spec import Spec

SECONDS_PER_TRIAL_SETUP = 8.0  # processes up, run started, settled, torn down: measured here


@dataclass(frozen=True)
class Trial:
    id: str  # c<configuration>-r<repetition>-<levels hash>: the same in every plan of the file
    configuration: int
    repetition: int
    levels: dict[str, Any]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.levels.items()) or "(no factors)"


def trials(spec: Spec) -> list[Trial]:
    out = []
    for c, levels in enumerate(spec.configurations, start=1):
        digest = hashlib.sha256(json.dumps(levels, sort_keys=True).encode()).hexdigest()[:6]
        for r in range(1, spec.repetitions + 1):
            out.append(Trial(f"c{c:03d}-r{r:02d}-{digest}", c, r, levels))
    if spec.order == "random":
        random.Random(spec.seed).shuffle(out)
    return out


def estimate_s(spec: Spec) -> float:
    """Seconds the plan takes, roughly: each trial's setup and its run at its rate (an unbounded
    rate counted at 5,000 jobs/s, what one worker drains here)."""
    total = 0.0
    for trial in trials(spec):
        body = spec.body(trial.levels)
        x = int(body.get("x", 0))
        y = body.get("y")
        rate = min(float(y) / 60, 5000.0) if isinstance(y, (int, float)) else 5000.0
        total += SECONDS_PER_TRIAL_SETUP + x / max(rate, 0.001)
    return total
