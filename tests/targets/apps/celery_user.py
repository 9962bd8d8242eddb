"""A user's own Celery app, written as a user writes one, plus lab's shim (the two lines
below `app`). Its task records what it was given in Redis, under the test's prefix, so the
test sees which arguments each job carried; seq 7 fails for good, every seq ending in 3 is
retried once."""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from celery import Celery

from lab.targets import celery_shim

app = Celery("userapp", broker=os.environ["LAB_AMQP_URL"])
# A shared test broker keeps no exchange of this app's beyond the test (a user's app has it).
app.conf.update(worker_enable_remote_control=False, broker_connection_retry_on_startup=True)
celery_shim.install(app)

seen = redis.Redis.from_url(os.environ["LAB_REDIS_URL"])
KEY = f"{os.environ['LAB_PREFIX']}:userapp"


@app.task(bind=True, name="userapp.tasks.record", max_retries=3)
def record(self: Any, seq: int, job: str = "", tag: str = "") -> None:
    if seq == 7:
        raise ValueError("seq 7 fails for good")
    if seq % 10 == 3 and self.request.retries == 0:
        raise self.retry(countdown=0.1)
    seen.hset(KEY, str(seq), json.dumps([job, tag, self.request.retries]))
