"""`GET /metrics`: the whole pipeline in Prometheus' text format, from any API process.

Workers and the scheduler do not serve metrics of their own. Everything they would export is
already in Redis, written by the same scripts that count jobs (lifetime totals, run counters) or
carried by their heartbeats (jobs, CPU seconds, resident memory), so the API reads it at scrape
time and Prometheus needs one target per API, not a port per worker and a discovery mechanism
to find them. A worker that dies takes its series with it when its heartbeat expires; the lab's
totals live on in Redis, so `rate(lab_jobs_processed_total[1m])` survives any restart.

What belongs to one API process (its request latency, its event reader's lag, its own CPU) is
collected in-process; with several API processes (`lab api --processes N`) the request
histogram is summed over all of them through prometheus_client's multiprocess mode.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from lab.runtime import connections as redis_connections
from lab.runtime import headage, latency
from lab.runtime.broker import Publisher, PublishError
from lab.runtime.jobs import STATES
from lab.runtime.stores import Stores

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"
CACHE_S = 1.0  # a scrape storm costs Redis and RabbitMQ one read a second, not one per scrape

# Per API process; in multiprocess mode prometheus_client keeps the values in files it sums.
_http_registry = CollectorRegistry()
REQUEST_SECONDS = Histogram(
    "lab_http_request_duration_seconds",
    "Time from a request's arrival to its response's first byte, by route template",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=_http_registry,
)
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


class RequestTimer:
    """ASGI: observes each HTTP request's latency under its route template (`/jobs/{job_id}`),
    so labels stay bounded whatever paths clients invent (unmatched ones are `unmatched`).
    Streams are timed to their first byte, which is what a client waits for."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        observed = False

        async def timed_send(message: Any) -> None:
            nonlocal observed
            if message["type"] == "http.response.start" and not observed:
                observed = True
                observe_request(
                    _method(scope), _route(scope), message["status"], time.perf_counter() - began
                )
            await send(message)

        await self.app(scope, receive, timed_send)


_children: dict[tuple[str, str, str], Any] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """One request into the latency histogram (its labelled child kept, so the `/status`
    path pays for one `observe`, not a label lookup too)."""
    key = (method, route, f"{status // 100}xx")
    child = _children.get(key)
    if child is None:
        child = _children[key] = REQUEST_SECONDS.labels(*key)
    child.observe(seconds)


def _method(scope: Any) -> str:
    method = scope.get("method", "")
    return method if method in HTTP_METHODS else "other"


def _route(scope: Any) -> str:
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return route.path
    if scope.get("path") == "/status" and scope.get("method") == "GET":
        return "/status"  # refused before routing (lab.api.access), or the fast path's fallback
    return "unmatched"


PROMETHEUS_NAMES = {"queueWait": "queue_wait", "service": "service", "endToEnd": "end_to_end"}


class PipelineCollector:
    """Reads Redis (one status script, one pipeline) and RabbitMQ (queue depths) per scrape."""

    def __init__(
        self,
        stores: Stores,
        publisher: Publisher,
        queues: Callable[[], list[str]],
        reader_cursor: Callable[[], str | None],
    ):
        self.stores = stores
        self.publisher = publisher
        self.queues = queues
        self.reader_cursor = reader_cursor

    def collect(self) -> Iterator[Metric]:
        redis_up = 1
        try:
            yield from self._from_redis()
        except Exception as exc:  # noqa: BLE001 - the scrape still answers, saying Redis is down
            if not redis_connections.unavailable(exc):
                raise
            redis_up = 0
        rabbit_up = 1
        try:
            yield from self._from_rabbitmq()
        except PublishError:
            rabbit_up = 0
        up = GaugeMetricFamily(
            "lab_service_up", "1 if the API reaches the service", labels=["service"]
        )
        up.add_metric(["redis"], redis_up)
        up.add_metric(["rabbitmq"], rabbit_up)
        yield up

    def _from_redis(self) -> Iterator[Metric]:
        status = self.stores.overview.status()
        counts = self.stores.overview.counters(status["runId"], STATES)
        totals, dead, by_state = counts.totals, counts.dead_lettered, counts.jobs_by_state
        stream_len, newest_id, run_dead = counts.events, counts.newest_event, counts.run_dead

        for field, doc in (
            ("released", "Jobs the scheduler released (confirmed by RabbitMQ), all runs"),
            ("processed", "Jobs counted processed, all runs"),
            ("failed", "Jobs counted failed, all runs"),
        ):
            yield CounterMetricFamily(f"lab_jobs_{field}", doc, value=int(totals.get(field, 0)))
        yield CounterMetricFamily(
            "lab_jobs_dead_lettered", "Messages sent to the dead-letter queue", value=dead
        )
        yield from self._run(status, run_dead)
        yield from self._processes(status)
        yield from self._latency(self.stores.redis.hgetall(self.stores.overview.keys.latency))

        head = GaugeMetricFamily(
            "lab_queue_head_age_seconds",
            "How long the oldest released job not yet started has waited, per consumed queue "
            "(measured each second by the scheduler leader; absent when none runs)",
            labels=["queue"],
        )
        for queue, ms in sorted(headage.per_queue(self.stores.head_ages.read()).items()):
            head.add_metric([queue], ms / 1000)
        yield head

        singles = GaugeMetricFamily("lab_single_jobs", "Single jobs by state", labels=["state"])
        for name, count in by_state.items():
            singles.add_metric([name], count)
        yield singles

        yield GaugeMetricFamily(
            "lab_event_stream_entries", "Entries in the lab's event stream", value=stream_len
        )
        cursor = self.reader_cursor()
        lag = _ms(newest_id) - _ms(cursor) if newest_id and cursor else 0
        yield GaugeMetricFamily(
            "lab_event_stream_lag_seconds",
            "How far this API process's event reader is behind the newest entry",
            value=max(0, lag) / 1000,
        )

    def _latency(self, raw: dict[str, str]) -> Iterator[Metric]:
        """Lifetime histograms of every run job (counted by `record.lua` with each job), by kind:
        a run is judged by their increase over it."""
        per: dict[tuple[str, str], list[int]] = {}
        sums: dict[tuple[str, str], int] = {}
        edges = len(latency.PROMETHEUS_LE)
        for name, value in raw.items():
            short, _, rest = name.partition("|")
            kind, _, slot = rest.rpartition("|")
            if short not in latency.LONG or not kind:
                continue
            key = (latency.LONG[short], kind)
            if slot == "sum":
                sums[key] = int(value)
            elif slot.isdigit() and int(slot) <= edges:
                per.setdefault(key, [0] * (edges + 1))[int(slot)] += int(value)
        for metric, doc in (
            ("queueWait", "released (or due again after a retry's delay) to started"),
            ("service", "started to written (or failed for good)"),
            ("endToEnd", "first released to written or dead-lettered, retries included"),
        ):
            family = HistogramMetricFamily(
                f"lab_job_{PROMETHEUS_NAMES[metric]}_seconds", f"Run jobs, {doc}", labels=["kind"]
            )
            for (found, kind), counts in sorted(per.items()):
                if found != metric:
                    continue
                cumulative, buckets = 0, []
                for le, n in zip([*latency.PROMETHEUS_LE, float("inf")], counts, strict=True):
                    cumulative += n
                    buckets.append(("+Inf" if le == float("inf") else f"{le:g}", cumulative))
                family.add_metric([kind], buckets, sum_value=sums.get((metric, kind), 0) / 1e6)
            yield family

    def _run(self, status: dict[str, Any], run_dead: int) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "lab_run_info",
            "The active (or latest) run; 1 per run shown",
            labels=["run_id", "state", "target"],
        )
        if status["runId"]:
            info.add_metric([status["runId"], status["state"], status.get("target") or "lab"], 1)
        yield info
        submits = GaugeMetricFamily(
            "lab_run_submits", "The run's submits to its target's broker, by outcome",
            labels=["outcome"],
        )  # fmt: skip
        for outcome, n in (status.get("submits") or {}).items():
            submits.add_metric([outcome], n)
        yield submits
        yield GaugeMetricFamily(
            "lab_run_executed_again_jobs", "Jobs of the run that ended more than once",
            value=int(status.get("executedAgain") or 0),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "lab_run_unexpected_jobs", "Jobs that ended that the run never released",
            value=int(status.get("unexpected") or 0),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "lab_run_active", "1 while a run is being released", value=int(status["running"])
        )
        for name, key, doc in (
            ("lab_run_target_jobs", "xTotal", "Jobs the active (or latest) run releases in all"),
            ("lab_run_released_jobs", "enqueued", "Jobs the run has released so far"),
            ("lab_run_processed_jobs", "processed", "Jobs of the run counted processed"),
            ("lab_run_failed_jobs", "failed", "Jobs of the run counted failed"),
        ):
            yield GaugeMetricFamily(name, doc, value=int(status.get(key) or 0))
        yield GaugeMetricFamily(
            "lab_run_dead_lettered_jobs", "Jobs of the run sent to dead letters", value=run_dead
        )
        backlog = int(status["enqueued"]) - int(status["processed"]) - int(status["failed"])
        yield GaugeMetricFamily(
            "lab_scheduler_backlog_jobs",
            "Jobs of the run released but not yet settled",
            value=max(0, backlog),
        )
        rates = status["rates"]
        yield GaugeMetricFamily(
            "lab_run_rate_limit_jobs_per_second",
            "The run's release rate Y, per second",
            value=float(status.get("yMinutes") or 0) / 60,
        )
        yield GaugeMetricFamily(
            "lab_scheduler_release_rate_jobs_per_second",
            f"Jobs released per second over the last {rates['windowSeconds']} s",
            value=rates["enqueuedPerMinute"] / 60,
        )
        yield GaugeMetricFamily(
            "lab_run_processing_rate_jobs_per_second",
            f"Jobs processed per second over the last {rates['windowSeconds']} s",
            value=rates["processedPerMinute"] / 60,
        )

    def _processes(self, status: dict[str, Any]) -> Iterator[Metric]:
        workers = status["workers"]
        yield GaugeMetricFamily("lab_workers", "Workers with a live heartbeat", value=len(workers))
        age = _per("lab_worker_heartbeat_age_seconds", "Seconds since the heartbeat")
        done = _per("lab_worker_processed_jobs", "Jobs this worker processed", True)
        failed = _per("lab_worker_failed_jobs", "Jobs this worker counted failed", True)
        flight = _per("lab_worker_in_flight_messages", "Messages taken, not yet acked")
        running = _per("lab_worker_running_single_jobs", "Single jobs running now")
        cpu = _per("lab_worker_cpu_seconds", "CPU time of the worker process", True)
        rss = _per("lab_worker_resident_memory_bytes", "Resident memory of the worker")
        for w in workers:
            label = [w["id"] or ""]
            age.add_metric(label, w["heartbeatAgeSeconds"])
            done.add_metric(label, w["processed"])
            failed.add_metric(label, w["failed"])
            flight.add_metric(label, w["inFlight"])
            running.add_metric(label, w["running"])
            cpu.add_metric(label, w["cpuSeconds"])
            rss.add_metric(label, w["rssBytes"])
        yield from (age, done, failed, flight, running, cpu, rss)

        schedulers = status["schedulers"]
        leader = GaugeMetricFamily(
            "lab_scheduler_leader", "1 for the scheduler holding the lease", labels=["scheduler"]
        )
        age = GaugeMetricFamily(
            "lab_scheduler_heartbeat_age_seconds",
            "Seconds since the heartbeat",
            labels=["scheduler"],
        )
        cpu = CounterMetricFamily(
            "lab_scheduler_cpu_seconds", "CPU time of the scheduler process", labels=["scheduler"]
        )
        rss = GaugeMetricFamily(
            "lab_scheduler_resident_memory_bytes", "Resident memory", labels=["scheduler"]
        )
        for s in schedulers:
            label = [s["id"] or ""]
            leader.add_metric(label, int(s["leader"]))
            age.add_metric(label, s["heartbeatAgeSeconds"])
            cpu.add_metric(label, s["cpuSeconds"])
            rss.add_metric(label, s["rssBytes"])
        yield from (leader, age, cpu, rss)

    def _from_rabbitmq(self) -> Iterator[Metric]:
        depths = self.publisher.depths(self.queues())
        ready = GaugeMetricFamily(
            "lab_queue_ready_messages", "Messages ready in each queue of the lab", labels=["queue"]
        )
        consumers = GaugeMetricFamily(
            "lab_queue_consumers", "Consumers of each queue of the lab", labels=["queue"]
        )
        for queue in depths:
            ready.add_metric([str(queue["name"])], float(queue["ready"]))  # type: ignore[arg-type]
            consumers.add_metric([str(queue["name"])], float(queue["consumers"]))  # type: ignore[arg-type]
        yield from (ready, consumers)


def _per(name: str, doc: str, counter: bool = False) -> GaugeMetricFamily | CounterMetricFamily:
    kind = CounterMetricFamily if counter else GaugeMetricFamily
    return kind(name, doc, labels=["worker"])


def _ms(stream_id: str) -> int:
    return int(stream_id.partition("-")[0])


class _Include:
    """Another registry's metrics, collected as part of this one."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class Exposition:
    """The `/metrics` body, made at most once a second however often it is asked for."""

    def __init__(self, pipeline: PipelineCollector):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(pipeline)
        if os.environ.get(MULTIPROCESS):
            MultiProcessCollector(self.registry)
        else:
            self.registry.register(_Include(_http_registry))
            ProcessCollector(registry=self.registry, namespace="lab_api")
            PlatformCollector(registry=self.registry)
        self._lock = threading.Lock()
        self._body = b""
        self._taken = 0.0

    def body(self) -> bytes:
        with self._lock:
            if time.monotonic() - self._taken >= CACHE_S:
                self._body = generate_latest(self.registry)
                self._taken = time.monotonic()
            return self._body


CONTENT_TYPE = CONTENT_TYPE_LATEST
