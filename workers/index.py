"""The `index` kind: the reference job of a run. Its whole effect is its Elasticsearch document.

Its payload is `FIELDS` below; `data` is at most 16 KB, nested at most 8 deep and has at most
100 keys in all, so every document stays one Elasticsearch can map (it maps 20 levels and 1,000
fields per index by default).
"""

from __future__ import annotations

import json
from typing import Any

from lab import Field, Job, PayloadError
from lab.runtime.messages import MAX_ATTEMPT, depth

BATCHABLE = True
MAX_DATA_BYTES = 16 * 1024
MAX_DATA_DEPTH = 8
MAX_DATA_KEYS = 100
FIELDS = (
    Field(
        "failAttempts",
        "integer",
        "fail attempts 1..n on purpose, to show retries and dead-lettering",
        low=0,
        high=MAX_ATTEMPT,
    ),  # fmt: skip
    Field("data", "any", "stored as is in the document (at most 16 KB, 8 deep, 100 keys)"),
)


def _keys(value: Any) -> int:
    stack, count = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def validate(payload: dict[str, Any]) -> None:
    """The size of `data`, which its field alone cannot bound."""
    if "data" not in payload:
        return
    data = payload["data"]
    if len(json.dumps(data)) > MAX_DATA_BYTES:
        raise PayloadError("data", f"is larger than {MAX_DATA_BYTES} bytes")
    if depth(data, MAX_DATA_DEPTH) > MAX_DATA_DEPTH:
        raise PayloadError("data", f"nests deeper than {MAX_DATA_DEPTH} levels")
    if _keys(data) > MAX_DATA_KEYS:
        raise PayloadError("data", f"has more than {MAX_DATA_KEYS} keys")


class InjectedFailure(RuntimeError):
    """A failure the job's payload asked for."""


def handle(job: Job) -> dict[str, Any]:
    fail_attempts = job.payload.get("failAttempts", 0)
    if isinstance(fail_attempts, int) and job.attempt <= fail_attempts:
        raise InjectedFailure(f"injected failure on attempt {job.attempt} of {fail_attempts}")
    doc: dict[str, Any] = {}
    if "data" in job.payload:
        doc["data"] = job.payload["data"]
    return doc
