"""What middleware counts rides on the exactly-once count, against real Redis: added in the same
script call, only for a job counted for the first time, for processed and failed jobs alike."""

from __future__ import annotations

from lab.runtime.middleware import Count
from lab.runtime.stores import Stores


def test_counts_are_added_once_per_job_in_the_counting_call(stores: Stores) -> None:
    run_id = stores.runs.start(10, 600)
    key = stores.keys.run_kinds(run_id)
    counts = {run_id: {seq: [Count(key, "index"), Count(key, "all", 2)] for seq in range(4)}}
    assert stores.counting.record({run_id: ([0, 1], [2])}, counts) == (2, 1)
    assert stores.counting.record({run_id: ([0, 1, 3], [2])}, counts) == (1, 0)  # 0, 1 and 2 again
    assert stores.redis.hgetall(key) == {"index": "4", "all": "8"}
    assert stores.counting.record({run_id: ([5], [])}) == (1, 0)  # no counts: as before
    assert stores.redis.hgetall(key) == {"index": "4", "all": "8"}
