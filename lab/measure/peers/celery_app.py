"""Celery 5 doing lab's reference job (RabbitMQ broker, acks_late, publisher confirms)."""

from __future__ import annotations

import os

from celery import Celery

from lab import config
from lab.measure.peers.job import index_job

settings = config.load()
app = Celery("labpeer", broker=settings.amqp_url)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_default_queue=settings.queue,
    task_serializer="json",
    worker_prefetch_multiplier=int(os.environ.get("LAB_PEER_PREFETCH_MULTIPLIER", "4")),
    broker_transport_options={"confirm_publish": True},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="lab.index")
def index(run_id: str, seq: int) -> None:
    index_job(run_id, seq, "celery")
