"""A user's Dramatiq app, as small as one gets, with lab's shim added: the two lines a user
adds are the import of `install` and `install(broker)`. Run as a user runs it:
`dramatiq tests.targets.apps.dramatiq_tasks --processes 1 --threads 2`."""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from lab.targets.dramatiq_shim import install

broker = RabbitmqBroker(url=os.environ["LAB_AMQP_URL"], confirm_delivery=True)
install(broker)
dramatiq.set_broker(broker)

# What the task does, where the test can see it: under this lab's own key prefix.
store = redis.Redis.from_url(os.environ["LAB_REDIS_URL"], decode_responses=True)
KEY = f"{os.environ['LAB_PREFIX']}:usertask"


@dramatiq.actor(max_retries=2, min_backoff=100, max_backoff=200)
def remember(seq: int, job_id: str, *, tag: str) -> None:
    """Store `job_id/tag` for `seq`; every fifth job fails its first try (Dramatiq retries it)."""
    if seq % 5 == 0 and store.hincrby(f"{KEY}:tries", str(seq), 1) == 1:
        raise RuntimeError(f"job {seq}: the first try fails")
    store.hset(KEY, str(seq), f"{job_id}/{tag}")
