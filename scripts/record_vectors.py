"""Writes `targets/bullmq/test/record-vectors.json`: what lab's Python hands its counting script
(`Counting._record`'s KEYS and ARGV) for sample batches of ended jobs, with the key names, the
settings' defaults and the heartbeat's fields, which the Node shim (`targets/bullmq/lib/
record.js`, `lib/settings.js`, `lib/shim.js`) must give too, key for key and byte for byte.

    .venv/bin/python scripts/record_vectors.py          # rewrite the file
    .venv/bin/python scripts/record_vectors.py --check  # exit 1 if it is stale

`tests/targets/test_bullmq.py` fails when the committed file differs from what this writes;
`node --test targets/bullmq/test/` checks JavaScript against it.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import config  # noqa: E402
from lab.runtime import beats, latency, scripts  # noqa: E402
from lab.runtime.keys import Keys  # noqa: E402
from lab.runtime.stores.counting import Counting  # noqa: E402
from lab.targets.shim import _Ended, batch_of, job_of  # noqa: E402

OUT = ROOT / "targets" / "bullmq" / "test" / "record-vectors.json"
# The settings lib/settings.js reads, by their `LAB_*` names.
SETTINGS = ("redis_url", "es_url", "prefix", "queue", "es_index", "es_replicas", "concurrency",
            "max_attempts", "retry_ladder_ms", "bullmq_lock_ms", "heartbeat_s", "heartbeat_ttl_s",
            "redis_timeout_s", "es_timeout_s", "event_stream_len", "history_s")  # fmt: skip
JOB_IDS = ["r1-0", "r1-9999999", "r1-10000000", "run.a_b-7", "r-1-2", "-3", "r1-", "r1-0x1",
           "r1-123456789", "job-20261123T101500123-3f9a2c", "a:b-1", "r1-٣",
           "r1-12345678"]  # fmt: skip
BASE_MS = 1_796_596_331_745.0


def ended_batch(rng: random.Random, runs: int, size: int) -> list[_Ended]:
    """A batch as a worker's shim would end it: a few runs and kinds, failures, durations
    shared by several jobs, some below zero (clocks apart) and some over an hour."""
    out = []
    ids = [f"20261206T2232{10 + r}-{rng.randrange(16**4):04x}" for r in range(runs)]
    for i in range(size):
        run = rng.choice(ids)
        created = BASE_MS + rng.choice([0.0, 1.0, rng.uniform(0, 5000)])
        released = created if rng.random() < 0.8 else created + rng.uniform(100, 2000)
        started = released + rng.choice([0.0, 0.125, 3.5, -2.0, rng.uniform(0, 800)])
        ended = started + rng.choice([50.0, 50.0, rng.uniform(0, 300), 5_000_000.5, -1.0])
        out.append(_Ended(run, rng.randrange(10_000 if i % 7 else 10_000_000), rng.choice(
            ["synthetic", "agent", "task"]), rng.choice(["done", "done", "done", "failed"]),
            created, released, started, ended))  # fmt: skip
    return out


def record_call(settings: config.Settings, ended: list[_Ended], call_id: str, mode: str) -> Any:
    """KEYS and ARGV of the `record.lua` call Python makes for `ended` (as strings: Redis')."""
    counting = Counting(settings)
    seen: dict[str, Any] = {}

    def call(script: scripts.Script, keys: Any, args: Any, more_keys: Any = (),
             more_args: Any = ()) -> list[int]:  # fmt: skip
        seen["keys"] = [*(keys[k] for k in script.keys), *more_keys]
        seen["args"] = [str(args[a]) for a in script.args] + [str(a) for a in more_args]
        return [0, 0]

    counting.call = call  # type: ignore[method-assign]
    outcomes, timings, counts = batch_of(ended, counting.keys.run)
    timed = {run: t.added_up() if mode == "agg" else t.detail() for run, t in timings.items()}
    counting._record(outcomes, counts, timed, call_id)
    return seen


def vectors() -> dict[str, Any]:
    rng = random.Random(20261206)
    defaults = config.Settings()
    keys = Keys("lab-test:x")
    batches = []
    for n, (prefix, runs, size, call_id) in enumerate(
        [("lab", 1, 1, "c0"), ("{lab}", 2, 12, ""), ("t-1:p", 3, 60, "ab12"), ("lab", 1, 120, "z")]
    ):
        settings = defaults.with_overrides(prefix=prefix, event_stream_len=1000 + n, history_s=60)
        ended = ended_batch(rng, runs, size)
        batches.append({
            "prefix": prefix, "eventStreamLen": settings.event_stream_len,
            "historyS": settings.history_s, "callId": call_id,
            "ended": [{"runId": e.run_id, "seq": e.seq, "kind": e.kind, "outcome": e.outcome,
                       "createdMs": e.created_ms, "releasedMs": e.released_ms,
                       "startedMs": e.started_ms, "endedMs": e.ended_ms} for e in ended],
            **{mode: record_call(settings, ended, call_id, mode) for mode in ("agg", "detail")},
        })  # fmt: skip
    return {
        "settings": {f"LAB_{name.upper()}": getattr(defaults, name) for name in SETTINGS},
        "prometheusLeUs": list(latency.PROMETHEUS_LE_US),
        "keys": {
            "prefix": keys.prefix,
            "runKeys": keys.run_keys("r-1"),
            "scripts": keys.scripts,
            "workers": keys.workers,
            "worker": keys.worker("w-1"),
            "job": keys.job("j-1"),
            "history": keys.history(),
            "applied": keys.applied("c"),
        },  # fmt: skip
        "jobOf": [[job_id, list(job_of(job_id) or []) or None] for job_id in JOB_IDS],
        "workerBeat": [beat.name for beat in beats.WORKER],
        "recordScript": {"keys": list(scripts.RECORD.keys), "args": list(scripts.RECORD.args)},
        "batches": batches,
    }


def text() -> str:
    return json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    if sys.argv[1:] == ["--check"]:
        return 0 if OUT.read_text() == text() else 1
    OUT.write_text(text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
