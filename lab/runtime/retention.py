"""Runs that ended long ago go, with their keys and documents (`LAB_RUN_RETENTION_S`): the API
calls `prune_runs` once a minute beside the single jobs' pruning, a few runs at a time, so a lab
used for months neither fills Redis nor slows the Elasticsearch-API server, which costs more per
document the more it holds."""

from __future__ import annotations

import time
from typing import Any

from lab.runtime.store import Store, unavailable
from lab.runtime.stores import Retention


def prune_runs(
    retention: Retention, store: Store, older_than_s: float, limit: int = 5
) -> dict[str, Any]:
    """Delete up to `limit` runs that ended more than `older_than_s` ago."""
    cutoff = int((time.time() - older_than_s) * 1000)
    pruned, documents = [], 0
    for run_id in retention.ended_before(cutoff, limit):
        try:
            documents += store.delete_run(run_id)
        except Exception as exc:
            if not unavailable(exc):
                raise
            break  # Elasticsearch is away: the run stays, to be pruned next time
        retention.forget(run_id)
        pruned.append(run_id)
    return {"pruned": pruned, "documents": documents, "olderThanSeconds": older_than_s}
