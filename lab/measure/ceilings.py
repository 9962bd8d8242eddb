"""The ceilings of the path a job takes, each measured alone on this machine: confirmed
publishes, consumption, Elasticsearch bulk writes and Redis round trips. `lab bench` sets the
lab's drain beside the slowest of them, so its figure says how much of the path lab uses."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pika
import redis

from lab.config import Settings
from lab.runtime import broker
from lab.runtime.acks import ConfirmTracker
from lab.runtime.messages import run_job
from lab.runtime.store import Store
from lab.wait import wait_until


def ceiling_publish(settings: Settings, n: int) -> float:
    """Raw pika: persistent publishes with confirms outstanding in a window (jobs/s)."""
    queue = f"labbench.raw.{uuid.uuid4().hex[:8]}"
    result: dict[str, float] = {}
    tracker = ConfirmTracker()
    props = broker.properties()
    body = run_job("raw", 0).to_json()
    sent = [0]

    def pump(channel: Any) -> None:
        while sent[0] < n and tracker.outstanding < settings.publish_window:
            channel.basic_publish("", queue, body, props)
            tracker.published(sent[0])
            sent[0] += 1

    def start_pumping(channel: Any) -> None:
        result["t0"] = time.perf_counter()
        pump(channel)

    def on_confirm(frame: Any) -> None:
        tracker.acked(frame.method.delivery_tag, frame.method.multiple)
        if sent[0] >= n and tracker.outstanding == 0:
            result["s"] = time.perf_counter() - result["t0"]
            channel_ref[0].queue_delete(queue, callback=lambda _f: connection.close())
            return
        pump(channel_ref[0])

    channel_ref: list[Any] = [None]

    def on_channel(channel: Any) -> None:
        channel_ref[0] = channel
        channel.queue_declare(
            queue,
            durable=True,
            callback=lambda _f: channel.confirm_delivery(
                on_confirm,
                callback=lambda _f2: start_pumping(channel),
            ),
        )

    connection = pika.SelectConnection(
        pika.URLParameters(settings.amqp_url),
        on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
        on_close_callback=lambda c, _r: c.ioloop.stop(),
    )
    connection.ioloop.start()
    return n / result["s"]


def ceiling_consume(settings: Settings, n: int) -> float:
    """Raw pika: consume persistent messages with a large prefetch and multiple acks (jobs/s)."""
    queue = f"labbench.raw.{uuid.uuid4().hex[:8]}"
    connection = broker.connect(settings.amqp_url, "lab-bench-raw")
    channel = connection.channel()
    channel.queue_declare(queue, durable=True)
    body = run_job("raw", 0).to_json()
    for _ in range(n):
        channel.basic_publish("", queue, body, broker.properties())
    connection.process_data_events(time_limit=0)
    wait_until(
        lambda: channel.queue_declare(queue, passive=True).method.message_count >= n,
        60,
        "the raw preload",
    )
    channel.basic_qos(prefetch_count=1000)
    got = [0]
    started = time.perf_counter()
    for method, _props, _body in channel.consume(queue, inactivity_timeout=5):
        if method is None:
            break
        got[0] += 1
        if got[0] % 100 == 0 or got[0] == n:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if got[0] >= n:
            break
    elapsed = time.perf_counter() - started
    channel.cancel()
    channel.queue_delete(queue)
    connection.close()
    return got[0] / elapsed


def ceiling_bulk(settings: Settings, n: int, batch: int = 100) -> float:
    """Elasticsearch `_bulk` index by id, `batch` documents a request (docs/s)."""
    s = settings.with_overrides(es_index=f"labbench-raw-{uuid.uuid4().hex[:8]}")
    store = Store(s)
    store.ensure_index()
    try:
        started = time.perf_counter()
        for start in range(0, n, batch):
            docs = [
                {
                    "jobId": f"raw-{i}",
                    "runId": "raw",
                    "seq": i,
                    "kind": "index",
                    "attempt": 1,
                    "createdAt": 0,
                    "processedAt": 0,
                    "worker": "raw",
                    "result": {},
                }
                for i in range(start, min(n, start + batch))
            ]
            store.bulk_upsert(docs)
        return n / (time.perf_counter() - started)
    finally:
        store.delete_index()
        store.close()


def ceiling_redis(settings: Settings, seconds: float = 2.0) -> float:
    """Serial Redis round trips per second from one client (PING)."""
    client = redis.Redis.from_url(settings.redis_url)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        client.ping()
        count += 1
    return count / (time.perf_counter() - started)


def ceilings(settings: Settings, n: int, batch: int) -> dict[str, float]:
    return {
        "pika_publish_confirmed_jobs_s": ceiling_publish(settings, n),
        "pika_consume_jobs_s": ceiling_consume(settings, n),
        "es_bulk_docs_s": ceiling_bulk(settings, n, batch),
        # one Redis round trip per batch of `batch` jobs
        "redis_jobs_s_at_one_round_trip_per_batch": ceiling_redis(settings) * batch,
    }
