"""Dramatiq 2 doing lab's reference job (RabbitMQ broker with publisher confirms)."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from lab import config
from lab.measure.peers.job import index_job

settings = config.load()
broker = RabbitmqBroker(url=settings.amqp_url, confirm_delivery=True)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=settings.queue, max_retries=3)
def index(run_id: str, seq: int) -> None:
    index_job(run_id, seq, "dramatiq")
