"""Delete everything one lab namespace made: Redis keys, the index, the queues.

Tests, benchmarks and drills give each namespace a unique prefix, queue and index, and call
`reset` when done, so the machine's shared Redis and RabbitMQ keep nothing of theirs.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from lab import targets
from lab.config import Settings
from lab.ops import servers
from lab.runtime import broker
from lab.runtime.search import RecordSearch
from lab.runtime.store import Store
from lab.runtime.stores import Stores

log = logging.getLogger("lab.ops.reset")


def isolated(base: Settings, label: str, **overrides: Any) -> Settings:
    """`base` in a namespace of its own: a unique key prefix, queue and index, and a free API
    port, so a benchmark or a drill never meets the user's lab; `reset` deletes it after."""
    tag = uuid.uuid4().hex[:8]
    namespace = {
        "prefix": f"{label}-{tag}",
        "queue": f"{label}.{tag}",
        "es_index": f"{label}-{tag}",
        "api_url": f"http://127.0.0.1:{servers.free_port()}",
    }
    return base.with_overrides(**{**namespace, **overrides})


def reset(settings: Settings, *, queues: bool = True) -> None:
    """`queues=False` leaves the queues to a private broker that is about to be deleted with its
    data: deleting a quorum queue whose member node is down waits several seconds per queue."""
    retention = Stores.of(settings).retention
    # Older labs declared a retry queue per delay value and listed them here; remove those too.
    legacy_retry_queues = retention.legacy_retry_queues()
    used = retention.targets_used()  # read before the keys that say it go
    retention.purge()
    # What BullMQ keeps of the namespace's queue (lab.targets.bullmq, `bull:<queue>.bullmq:*`:
    # BullMQ's own prefix, beside lab's), jobs a single job or a run left there included.
    redis = retention.redis
    for key in redis.scan_iter(match=f"bull:{settings.queue}.bullmq:*", count=1000):
        redis.unlink(key)
    store = Store(settings)
    try:
        store.delete_index()
        RecordSearch(settings, store).drop()
    finally:
        store.close()
    if not queues:
        return
    for name in sorted(used - {targets.DEFAULT}):  # what other frameworks made here
        if name in targets.names() and targets.describe(name)["missing"] is None:
            try:
                targets.target(name, settings).teardown()
            except Exception as exc:  # noqa: BLE001 - one target's broker away: the rest go on
                log.warning("lab reset: the %s target's broker: %s", name, exc)
    connection = broker.connect(settings.amqp_url, "lab-reset", broker.Deadlines.of(settings))
    try:
        channel = connection.channel()
        broker.Topology.of(settings).delete(channel, sorted(legacy_retry_queues))
    finally:
        connection.close()
