"""The `sleep` kind: an I/O-bound job that waits, one by one under the worker's concurrency limit.

Payload: `seconds` (default 1.0, from 0 to 60). Its document records when it started and ended,
which shows how many ran at once.
"""

from __future__ import annotations

import time
from typing import Any

from lab.runtime.handlers import number, only
from lab.runtime.messages import Job

BATCHABLE = False


def validate(payload: dict[str, Any]) -> None:
    only(payload, {"seconds"}, "sleep")
    number(payload, "seconds", 0, 60)


def handle(job: Job) -> dict[str, Any]:
    validate(job.payload)
    seconds = job.payload.get("seconds", 1.0)
    started = time.time()
    time.sleep(seconds)
    return {"startedMs": int(started * 1000), "endedMs": int(time.time() * 1000)}
