"""Against real Redis: what the scheduler leader reads every second is bounded by the window it
judges, not by the run's age (the reads are counted); a run's shape history is bounded in bytes
(a change past it is refused and changes nothing); and a run whose only worker is frozen
breaches its latency objective and stops, instead of waiting for a job to finish."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime import latency
from lab.runtime.stores import Stores
from lab.runtime.stores.runs import MAX_SHAPE_HISTORY_BYTES, ShapeHistoryFull
from lab.wait import wait_until

DAY_S = 86_400


@contextmanager
def reads_counted() -> Iterator[dict[str, int]]:
    """Keys read whole (HGETALL) and fields read (HGET, HMGET), by every pipeline and client."""
    seen = {"hgetall": 0, "fields": 0}
    # Pipeline inherits its commands from Redis: one patch counts both.
    originals = {name: getattr(redis.Redis, name) for name in ("hgetall", "hmget", "hget")}

    def hgetall(self: Any, key: str) -> Any:
        seen["hgetall"] += 1
        return originals["hgetall"](self, key)

    def hmget(self: Any, key: str, keys: Any, *args: Any) -> Any:
        seen["fields"] += len(keys) if isinstance(keys, list | tuple) else 1 + len(args)
        return originals["hmget"](self, key, keys, *args)

    def hget(self: Any, key: str, field: str) -> Any:
        seen["fields"] += 1
        return originals["hget"](self, key, field)

    for name, method in (("hgetall", hgetall), ("hmget", hmget), ("hget", hget)):
        setattr(redis.Redis, name, method)
    try:
        yield seen
    finally:
        for name, method in originals.items():
            setattr(redis.Redis, name, method)


def a_day_old_run(stores: Stores) -> tuple[str, int]:
    """A running run started a day ago, with a latency window every 10 s and a timeline of
    releases every second of that day (as the scripts write them), and a backlog of 4 hours."""
    run_id = stores.runs.start(10_000_000, 600, slo=[
        {"metric": "endToEnd.p99", "maxMs": 2000, "windowSeconds": 30},
        {"metric": "throughput", "minRatioOfShape": 0.5, "windowSeconds": 60}])  # fmt: skip
    now_s = int(stores.redis.time()[0])
    start_s = now_s - DAY_S
    k = stores.keys
    pipe = stores.redis.pipeline(transaction=False)
    pipe.hset(k.run(run_id), mapping={"startedAt": start_s * 1000, "enqueued": DAY_S * 10,
                                      "processed": (DAY_S - 4 * 3600) * 10})  # fmt: skip
    field = f"e|index|{latency.bucket_of(120.0)}"
    for window in range(start_s // 10, now_s // 10 + 1):
        key = k.run_latency_window(run_id, window)
        pipe.hset(key, field, 10)
        pipe.sadd(k.run_owned(run_id), key)
    released: dict[str, int] = {}
    for second in range(start_s, now_s + 1):
        released[f"{second}:released"] = 10
        released[f"{second}:processed"] = 10
        for span, tag in ((60, "m"), (3600, "h")):
            name = f"{tag}{second // span}:released"
            released[name] = released.get(name, 0) + 10
    pipe.hset(k.run_timeline(run_id), mapping=released)
    pipe.execute()
    return run_id, now_s


def test_a_day_old_run_is_judged_and_measured_in_a_bounded_number_of_reads(
    stores: Stores, settings: Settings
) -> None:
    run_id, now_s = a_day_old_run(stores)
    with reads_counted() as read:
        head = stores.head_ages.measure(settings.queue, settings.queue + ".long", "single")
        stores.objectives.judge(run_id, head)
    # 4 hours of backlog: found by hours, then its minutes, then its seconds.
    assert head.age_ms == pytest.approx(4 * 3600 * 1000, rel=0.01)
    print(f"a day-old run: {read}")
    assert 0 < read["hgetall"] <= 60 // latency.WINDOW_S + 2, read  # the longest window's
    assert read["fields"] <= 2 * 61 + 120 + 120 + 31 * 24 + 60 + 60 + 20, read
    states = json.loads(stores.redis.hget(stores.keys.run(run_id), "sloState"))
    # Four hours of unfinished jobs make the p99 at least four hours: breached.
    assert states[0]["state"] == "breached" and states[0]["value"] >= 3 * 3600 * 1000


def test_a_run_s_shape_history_is_bounded_in_bytes(stores: Stores) -> None:
    run_id = stores.runs.start(1_000_000, 600)
    day = {"type": "trace", "perSecond": [123456] * DAY_S}  # about 0.6 MB of JSON
    changes = 0
    with pytest.raises(ShapeHistoryFull) as full:
        for _ in range(10):
            stores.runs.reshape(run_id, day)
            changes += 1
    assert 1 <= changes < 10 and "bound" in str(full.value)
    history = stores.redis.hget(stores.keys.run(run_id), "shapes")
    assert len(history) <= MAX_SHAPE_HISTORY_BYTES and len(json.loads(history)) == changes + 1


@pytest.mark.slow
def test_a_run_whose_only_worker_is_frozen_breaches_and_stops(
    lab: Supervisor, client: LabClient, stores: Stores
) -> None:
    lab.up(workers=1)
    run_id = client.run(100_000, 1200, slo=[{"metric": "endToEnd.p99", "maxMs": 2000,
                                             "windowSeconds": 5}],
                        abort_on_breach=True)["runId"]  # fmt: skip
    wait_until(lambda: stores.runs.known(run_id).processed > 20, 60, "the first jobs")
    worker = lab.children["worker-1"]
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        run = wait_until(lambda: (r := stores.runs.known(run_id)).state == "breached" and r, 60,
                         "the run to breach its objective")  # fmt: skip
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    breach = next(o for o in run.slo or [] if o.get("state") == "breached")
    assert breach["value"] >= 2000
