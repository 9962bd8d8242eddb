"""A user's own arq app, measured by lab: the lines `docs/guides/your-pipeline.md` shows.

`greet` records each run of it in a list of the test's own (under `LAB_PREFIX`); seq 3 asks
arq for one retry, seq 7 fails for good.
"""

from __future__ import annotations

import os
from typing import Any

from arq import Retry
from arq.connections import RedisSettings

from lab.targets import arq_shim

RAN = f"{os.environ.get('LAB_PREFIX', 'lab')}:user-greet"


async def greet(ctx: dict[str, Any], seq: int, who: str = "") -> str:
    await ctx["redis"].rpush(RAN, f"{seq}|{who}|{ctx['job_try']}")
    if seq == 3 and ctx["job_try"] == 1:
        raise Retry(defer=0.1)
    if seq == 7:
        raise ValueError("greet: seq 7 fails for good")
    return f"hello {who}"


class WorkerSettings:
    functions = [greet]
    queue_name = arq_shim.queue()
    redis_settings = RedisSettings.from_dsn(os.environ.get("LAB_REDIS_URL", "redis://127.0.0.1"))
    poll_delay = 0.05


arq_shim.install(WorkerSettings)
