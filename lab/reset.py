"""Delete everything one lab namespace made: Redis keys, the index, the queues.

Tests, benchmarks and drills give each namespace a unique prefix, queue and index, and call
`reset` when done, so the machine's shared Redis and RabbitMQ keep nothing of theirs.
"""

from __future__ import annotations

from lab import broker
from lab.config import Settings
from lab.state import State
from lab.store import Store


def reset(settings: Settings) -> None:
    State(settings).purge()
    store = Store(settings)
    try:
        store.delete_index()
    finally:
        store.close()
    connection = broker.connect(settings.amqp_url, "lab-reset")
    try:
        channel = connection.channel()
        topology = broker.Topology(settings.queue)
        delays = [
            broker.retry_delay_ms(settings.retry_delay_ms, n)
            for n in range(1, settings.max_attempts + 1)
        ]
        topology.delete(channel, delays)
    finally:
        connection.close()
