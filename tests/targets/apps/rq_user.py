"""A user's own RQ task, as a user's app has it: lab submits it by name (the `task` kind) and the
shim's worker (`rq worker -w lab.targets.rq_shim.Worker`) measures it. It records what it was
given, and the metadata lab put beside its args, in a Redis hash named by its caller."""

from __future__ import annotations

import json
import os

import redis
from rq import get_current_job


def record(seq: int, job_id: str, key: str, fail: int = -1) -> int:
    job = get_current_job()
    meta = job.meta.get("lab", {}) if job is not None else {}
    seen = {"jobId": job_id, "seqType": type(seq).__name__, "createdAt": meta.get("createdAt"),
            "rqId": job.id if job is not None else None}  # fmt: skip
    client = redis.Redis.from_url(os.environ["LAB_REDIS_URL"])
    try:
        client.hset(key, str(seq), json.dumps(seen))
    finally:
        client.close()
    if seq == fail:
        raise ValueError(f"seq {seq} fails, as asked")
    return seq
