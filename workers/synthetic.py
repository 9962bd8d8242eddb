"""The `synthetic` kind: jobs drawn from declared distributions, to model your own workload.

Each attempt draws its service time (`serviceMs`, spent on the CPU for `cpuShare` of it and
waiting for the rest), whether it fails (`failRate`: retried on the ladder) and the size of the
document it writes (`docBytes`); a job may fail for good on its first attempt
(`permanentFailRate`: dead-lettered at once). Draws are seeded by `(seed, seq, attempt)` (the
run's seed; a single job uses its id for `seq`), so the same run twice does the same thing, and
a job that failed once can succeed on its retry. They come from the portable generator
(`lab.runtime.portable`, one index per draw), so a JavaScript worker
(`targets/bullmq/lib/kinds.js`) fails the same jobs. Its document's `result` records what was
drawn (`serviceMs`) and how long the attempt took (`tookMs`).

It runs one by one under the worker's concurrency (`LAB_CONCURRENCY` slots per worker): a
workload needs about rate × mean service time slots (12,000/min of 80 ms jobs: 16 slots).
"""

from __future__ import annotations

import time
from typing import Any

from lab import Field, Job, PayloadError, PermanentError
from lab.runtime import portable
from lab.runtime.distributions import Distribution, DistributionError, parse
from lab.runtime.payload import check

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


DEFAULTS = {f.name: f.default for f in FIELDS}
_parsed: dict[tuple[str, float], Distribution] = {}  # at most 256 specs, each parsed once


def _parse_once(spec: Any, name: str, high: float) -> Distribution:
    # Keyed by the spec's repr, which tells 1, 1.0 and True apart and costs a fraction of a
    # sorted JSON text (the same spec in another key order merely parses again).
    try:
        key = (repr(spec), high)
    except ValueError:  # an integer past 4,300 digits has no text: only a caller's mistake
        raise PayloadError(name, "must be a JSON object") from None
    found = _parsed.get(key)
    if found is None:
        found = parse(spec, high)
        if len(_parsed) >= 256:
            _parsed.clear()
        _parsed[key] = found
    return found


def distributions(payload: dict[str, Any]) -> tuple[Distribution, Distribution]:
    """The payload's service-time and document-size distributions (parsed once per spec)."""
    found = []
    for name, high in (("serviceMs", MAX_SERVICE_MS), ("docBytes", MAX_DOC_BYTES)):
        spec = payload.get(name, DEFAULTS[name])
        try:
            found.append(_parse_once(spec, name, high))
        except DistributionError as exc:
            where = f"{name}.{exc.field}" if exc.field else name
            # The message without its parameter's prefix (one without a parameter may hold
            # ": " itself, in its example).
            message = str(exc)[len(exc.field) + 2 :] if exc.field else str(exc)
            raise PayloadError(where, message) from None
    return found[0], found[1]


def validate(payload: dict[str, Any]) -> None:
    distributions(payload)


def checked(payload: dict[str, Any]) -> tuple[Distribution, Distribution]:
    """Every field of the payload as FIELDS declares it (numbers are JSON numbers, never text),
    then its distributions."""
    check(payload, FIELDS, "synthetic")
    return distributions(payload)


def draw(payload: dict[str, Any], key: int | str, attempt: int) -> dict[str, Any]:
    """What the attempt `attempt` of job `key` (its seq, or a single job's id) does: pure, so
    tests and reports can say what a seed gives without running it. Each draw has its own
    index (docs/reference/portable-random.md), so a draw skipped (a rate of 0) shifts none."""
    service, size = checked(payload)
    seed = payload.get("seed") or 0  # None: absent, as FIELDS reads it
    permanent = float(payload.get("permanentFailRate") or 0.0)
    fail_rate = float(payload.get("failRate") or 0.0)
    # The gate has a stream of its own (attempt 0), drawn on the first attempt only.
    gate = portable.Stream(seed, key, portable.GATE_ATTEMPT)
    fails_for_good = attempt == 1 and permanent > 0 and gate.at(0) < permanent
    stream = portable.Stream(seed, key, attempt)
    return {
        "permanent": fails_for_good,
        "serviceMs": service.sample(stream.at(portable.SERVICE)),
        "fails": fail_rate > 0 and stream.at(portable.FAIL) < fail_rate,
        "docBytes": int(size.sample(stream.at(portable.DOC))),
    }


def fails_for_good(payload: dict[str, Any], key: int | str, attempts: int) -> bool:
    """Whether job `key` fails for good when it may run `attempts` times: at once
    (`permanentFailRate`), or on every attempt (`failRate`). Pure: what a run's seed says its
    failed jobs are, on any worker or framework that retries `attempts` times."""
    drawn = [draw(payload, key, a) for a in range(1, attempts + 1)]
    return drawn[0]["permanent"] or all(d["fails"] for d in drawn)


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
    work(drawn["serviceMs"], float(job.payload.get("cpuShare") or 0.0))
    took_ms = (time.perf_counter() - started) * 1000
    if drawn["fails"]:
        raise SyntheticFailure(f"synthetic: attempt {job.attempt} fails (failRate)")
    return {
        "serviceMs": round(drawn["serviceMs"], 3),
        "tookMs": round(took_ms, 3),
        "pad": "x" * drawn["docBytes"],
    }
