"""The `sleep` kind: an I/O-bound job that waits, one by one under the worker's concurrency limit.

Payload: `seconds` (default 1.0, at most 60). Its document records when it started and ended,
which shows how many ran at once.
"""

from __future__ import annotations

import time
from typing import Any

from lab.messages import Job

BATCHABLE = False


def handle(job: Job) -> dict[str, Any]:
    seconds = job.payload.get("seconds", 1.0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 60:
        raise ValueError(f"payload 'seconds' must be a number from 0 to 60, got {seconds!r}")
    started = time.time()
    time.sleep(seconds)
    return {"startedMs": int(started * 1000), "endedMs": int(time.time() * 1000)}
