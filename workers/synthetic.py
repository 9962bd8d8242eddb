"""The `synthetic` kind: jobs drawn from declared distributions, to model your own workload.

Each attempt draws its service time (`serviceMs`, spent on the CPU for `cpuShare` of it and
waiting for the rest), whether it fails (`failRate`: retried on the ladder) and the size of the
document it writes (`docBytes`); a job may fail for good on its first attempt
(`permanentFailRate`: dead-lettered at once). Draws are seeded by `(seed, seq, attempt)` (the
run's seed; a single job uses its id for `seq`), so the same run twice does the same thing, and
a job that failed once can succeed on its retry. Its document's `result` records what was drawn
(`serviceMs`) and how long the attempt took (`tookMs`).

It runs one by one under the worker's concurrency (`LAB_CONCURRENCY` slots per worker): a
workload needs about rate × mean service time slots (12,000/min of 80 ms jobs: 16 slots).
"""

from __future__ import annotations

import json
import random
import time
from functools import lru_cache
from typing import Any

from lab.runtime.distributions import Distribution, DistributionError, parse
from lab.runtime.messages import Job
from lab.runtime.payload import Field, PayloadError, PermanentError

BATCHABLE = False
MAX_SERVICE_MS = 600_000  # ten minutes: a draw above is clipped to it
MAX_DOC_BYTES = 512 * 1024  # what a document may carry (the broker's messages stop at 1 MiB)
MAX_SEED = 2**63 - 1

FIELDS = (
    Field("serviceMs", "object", "service time, ms: a distribution (fixed, uniform, exponential, "
          "lognormal, pareto, empirical)", default={"dist": "fixed", "value": 50}),
    Field("cpuShare", "number", "share of the service time spent on the CPU (the rest waits)",
          default=0.0, low=0, high=1),
    Field("failRate", "number", "chance that an attempt fails (retried)", default=0.0, low=0,
          high=1),
    Field("permanentFailRate", "number", "chance that a job fails for good on its first attempt",
          default=0.0, low=0, high=1),
    Field("docBytes", "object", "size of the document written, bytes: a distribution",
          default={"dist": "fixed", "value": 0}),
    Field("seed", "integer", "seeds every draw (a run sets it from its own seed)", default=0,
          low=0, high=MAX_SEED),
)  # fmt: skip


class SyntheticFailure(RuntimeError):
    """An attempt that failed because `failRate` said so."""


@lru_cache(maxsize=256)
def _parsed(spec: str, high: float) -> Distribution:
    return parse(json.loads(spec), high)


def distributions(payload: dict[str, Any]) -> tuple[Distribution, Distribution]:
    """The payload's service-time and document-size distributions (parsed once per payload)."""
    found = []
    for name, high in (("serviceMs", MAX_SERVICE_MS), ("docBytes", MAX_DOC_BYTES)):
        spec = payload.get(name, next(f.default for f in FIELDS if f.name == name))
        try:
            found.append(_parsed(json.dumps(spec, sort_keys=True), high))
        except DistributionError as exc:
            where = f"{name}.{exc.field}" if exc.field else name
            raise PayloadError(where, str(exc).split(": ", 1)[-1]) from None
    return found[0], found[1]


def validate(payload: dict[str, Any]) -> None:
    distributions(payload)


def draw(payload: dict[str, Any], key: Any, attempt: int) -> dict[str, Any]:
    """What the attempt `attempt` of job `key` does: pure, so tests and reports can say what a
    seed gives without running it."""
    seed = int(payload.get("seed", 0))
    service, size = distributions(payload)
    permanent = float(payload.get("permanentFailRate", 0.0))
    gate = random.Random(f"{seed}:{key}:permanent")
    fails_for_good = attempt == 1 and permanent > 0 and gate.random() < permanent
    rng = random.Random(f"{seed}:{key}:{attempt}")
    return {
        "permanent": fails_for_good,
        "serviceMs": service.sample(rng),
        "fails": rng.random() < float(payload.get("failRate", 0.0)),
        "docBytes": int(size.sample(rng)),
    }


def work(service_ms: float, cpu_share: float) -> None:
    """`cpu_share` of the time on the CPU (a busy loop), the rest waiting."""
    cpu_s = service_ms * cpu_share / 1000
    if cpu_s > 0:
        end = time.perf_counter() + cpu_s
        while time.perf_counter() < end:
            pass
    wait_s = service_ms / 1000 - cpu_s
    if wait_s > 0:
        time.sleep(wait_s)


def handle(job: Job) -> dict[str, Any]:
    key = job.seq if job.seq is not None else job.jobId
    drawn = draw(job.payload, key, job.attempt)
    if drawn["permanent"]:
        raise PermanentError("synthetic: fails for good (permanentFailRate)")
    started = time.perf_counter()
    work(drawn["serviceMs"], float(job.payload.get("cpuShare", 0.0)))
    took_ms = (time.perf_counter() - started) * 1000
    if drawn["fails"]:
        raise SyntheticFailure(f"synthetic: attempt {job.attempt} fails (failRate)")
    return {
        "serviceMs": round(drawn["serviceMs"], 3),
        "tookMs": round(took_ms, 3),
        "pad": "x" * drawn["docBytes"],
    }
