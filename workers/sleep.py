"""The `sleep` kind: an I/O-bound job that waits, one by one under the worker's concurrency limit.

Its document records when it started and ended, which shows how many ran at once.
"""

from __future__ import annotations

import time
from typing import Any

from lab import Field, Job

BATCHABLE = False
FIELDS = (Field("seconds", "number", "how long the job waits", default=1.0, low=0, high=60),)


def handle(job: Job) -> dict[str, Any]:
    seconds = float(job.payload.get("seconds", 1.0))
    started = time.time()
    time.sleep(seconds)
    return {"startedMs": int(started * 1000), "endedMs": int(time.time() * 1000)}
