"""Delete everything one lab namespace made: Redis keys, the index, the queues.

Tests, benchmarks and drills give each namespace a unique prefix, queue and index, and call
`reset` when done, so the machine's shared Redis and RabbitMQ keep nothing of theirs.
"""

from __future__ import annotations

import uuid
from typing import Any

from lab.config import Settings
from lab.ops import servers
from lab.runtime import broker
from lab.runtime.search import RecordSearch
from lab.runtime.state import State
from lab.runtime.store import Store


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
    state = State(settings)
    # Older labs declared a retry queue per delay value and listed them here; remove those too.
    legacy_retry_queues = state.legacy_retry_queues()
    state.purge()
    store = Store(settings)
    try:
        store.delete_index()
        RecordSearch(settings, store).drop()
    finally:
        store.close()
    if not queues:
        return
    connection = broker.connect(settings.amqp_url, "lab-reset", broker.Deadlines.of(settings))
    try:
        channel = connection.channel()
        broker.Topology.of(settings).delete(channel, sorted(legacy_retry_queues))
    finally:
        connection.close()
