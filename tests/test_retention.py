"""Runs that ended longer ago than the retention go with their keys and documents; the active
run and runs still inside the retention stay (real Redis, Elasticsearch, processes)."""

from __future__ import annotations

from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.retention import prune_runs
from lab.runtime.store import Store
from lab.runtime.stores import Stores

from .helpers import settle


def test_a_run_past_the_retention_goes_with_its_keys_and_documents(
    lab: Supervisor, settings: Settings, stores: Stores
) -> None:
    lab.up(workers=1)
    from lab.client import LabClient

    client = LabClient.of(settings)
    old = client.run(300, 600_000)["runId"]
    settle(stores, old, 60)
    store = Store(settings)
    store.refresh()
    assert store.count(old) == 300
    kept = prune_runs(
        stores.retention, store, older_than_s=3600
    )  # inside the retention: nothing goes
    assert kept["pruned"] == [] and stores.runs.get(old) is not None

    done = prune_runs(stores.retention, store, older_than_s=0)
    assert done["pruned"] == [old] and done["documents"] == 300
    store.refresh()
    assert store.count(old) == 0 and stores.runs.get(old) is None
    left = list(stores.redis.scan_iter(f"{settings.prefix}:run:{old}*"))
    assert all(stores.redis.ttl(key) > 0 for key in left), left  # per-second rates expire alone
    assert old not in [r.runId for r in stores.runs.newest()]
    store.close()
