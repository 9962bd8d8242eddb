"""`celery`: Celery 5 workers on RabbitMQ (kombu and py-amqp), as a run's system under test.

lab submits each job with Celery's own producer (`send_task`): the task id is the lab job id,
lab's metadata (`lab_created_ms`: when lab released the job; `lab_kind`) rides in the message
headers, where Celery hands it to the worker as `task.request.<name>` on every attempt, retries
included. lab's kinds go to the task `lab.targets.celery_app.run_job` with the job's JSON as its
one argument; a `task` run sends the user's own task by name (lab.targets.usertask).

Submits are confirmed (`confirm_publish`): a publish is `ok` once RabbitMQ acked it, `failed`
when it nacked it or nothing reached it, `indeterminate` when the publish went out and no
answer came within `LAB_AMQP_TIMEOUT_S` (or the connection broke while waiting). The workers
keep Celery's defaults where they are what users run: `task_acks_late` is off, so a worker
acks a message as it starts the task, and a worker killed mid-task loses the tasks it was
running (the verdict's `lost`); `LAB_CELERY_ACKS=late` acks after the task instead, so a kill
runs them again (its `executedMoreThanOnce` and `duplicated`).

One worker is one process (`--pool threads`, `LAB_CONCURRENCY` threads), so the pid lab's
supervisor holds is the one that holds the jobs: kill -9 and freeze hit them, not a parent
whose pool children would live on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from lab.config import Settings
from lab.runtime.messages import Job
from lab.runtime.patience import brief
from lab.targets import Backlog, Outcome, Target, usertask

log = logging.getLogger("lab.targets.celery")

TASK = "lab.targets.celery_app.run_job"  # runs one attempt of a job of lab's kinds
CREATED = "lab_created_ms"  # message headers: when lab released the job (epoch ms)
KIND = "lab_kind"  # the job's kind (`task` for a user's own)


def conf(settings: Settings, queue: str) -> dict[str, Any]:
    """Celery's settings for lab's app and producer: the broker, one queue on the default
    exchange (no exchange of its own to leave behind), confirmed publishes, and Celery's
    defaults for the rest."""
    from kombu import Exchange, Queue

    nodes = [url.strip() for url in settings.amqp_url.split(",") if url.strip()]
    return {
        "broker_url": ";".join(nodes),  # Celery's failover list
        "broker_transport_options": {"confirm_publish": True},
        "broker_connection_timeout": settings.amqp_timeout_s,
        "broker_connection_retry_on_startup": True,
        "broker_heartbeat": settings.amqp_heartbeat_s,
        "task_queues": [Queue(queue, Exchange(""), routing_key=queue, durable=True)],
        "task_default_queue": queue,
        "task_default_exchange": "",  # else Celery names one after the queue and declares it
        "task_acks_late": settings.celery_acks == "late",
        "worker_enable_remote_control": False,  # no pidbox exchange on a shared broker
    }


def headers(job: Job) -> dict[str, Any]:
    return {CREATED: job.createdAt, KIND: job.kind}


def call(job: Job) -> tuple[str, list[Any], dict[str, Any]]:
    """The task job `job` sends: lab's (`TASK`) with its JSON, or a user's own."""
    if job.kind == usertask.KIND:
        user = usertask.call(job)
        return user.name, user.args, user.kwargs
    return TASK, [job.to_json().decode()], {}


class Celery(Target, type="celery"):
    help = "Celery 5 on RabbitMQ: one worker process each, a thread per slot"
    packages = ("celery",)
    services = ("amqp_url", "es_url")

    def worker_argv(self, python: str, concurrency: int) -> list[str]:
        # Gossip, mingle and heartbeat events talk to every other worker on the broker; lab
        # needs none of them, and the supervisor already knows its workers.
        return [python, "-m", "celery", "-A", "lab.targets.celery_app", "worker",
                "--pool", "threads", "--concurrency", str(concurrency), "--queues", self.queue,
                "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                "--without-heartbeat"]  # fmt: skip

    @cached_property
    def app(self) -> Any:
        """lab's Celery app for this target's queue, made at its first use (Celery is
        imported only by those who drive it)."""
        from celery import Celery as App

        app = App("lab", set_as_current=False)
        app.conf.update(conf(self.settings, self.queue))
        return app

    # --- submitting ---------------------------------------------------------------------------
    _producer: Any = None  # connected by `_connect`, forgotten by `_drop`

    def open(self) -> None:
        try:
            self._connect()
        except Exception as exc:  # noqa: BLE001 - the first submit tries again
            log.warning("celery target: cannot reach RabbitMQ yet (%s)", brief(exc))
            self._drop()

    def close(self) -> None:
        self._drop()

    def _connect(self) -> Any:
        """The producer, connected, its queue declared (so a publish writes only itself)."""
        if self._producer is None:
            app = self.app
            connection = self._connection()
            try:
                # Each node of the failover list once, at once: the scheduler tries again
                # next tick, and a tick must not wait out a backoff.
                nodes = len(connection.alt) or 1
                connection.ensure_connection(max_retries=nodes - 1, interval_start=0,
                                             interval_step=0, interval_max=0)  # fmt: skip
                producer = app.amqp.Producer(connection)
                producer.maybe_declare(app.amqp.queues[self.queue])
            except BaseException:
                connection.collect()
                raise
            self._producer = producer
        else:
            self._check(self._producer.connection)
        return self._producer

    @staticmethod
    def _check(connection: Any) -> None:
        """Read what the broker sent since the last submit (a close when it shut down, a reset)
        before anything is written, so a connection that died meanwhile fails the submit
        instead of making its first publish indeterminate."""
        with contextlib.suppress(TimeoutError):  # nothing came: alive, as far as one can tell
            connection.drain_events(timeout=0)

    def _connection(self) -> Any:
        """A connection whose every wait has a deadline: a broker that stops answering costs
        `LAB_AMQP_TIMEOUT_S`, never a hung scheduler."""
        deadline = self.settings.amqp_timeout_s
        options = {"confirm_publish": True, "read_timeout": deadline, "write_timeout": deadline}
        return self.app.connection_for_write(transport_options=options)

    def _drop(self) -> None:
        """Forget the connection without a goodbye (a broker that stopped answering would
        make a polite close wait): the next submit connects again."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # a submit's outcomes must not turn on it
                producer.connection.collect()

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        try:
            producer = self._connect()
        except Exception as exc:  # noqa: BLE001 - unreachable: nothing is tried
            self._drop()
            return [Outcome("failed", error=brief(exc))] * len(jobs)
        out: list[Outcome] = []
        for job in jobs:
            outcome = self._send(producer, job)
            out.append(outcome)
            if outcome.status != "ok":
                self._drop()
                return out + [Outcome("failed", error="not tried")] * (len(jobs) - len(out))
        return out

    def _send(self, producer: Any, job: Job) -> Outcome:
        from amqp.exceptions import MessageNacked

        wire = producer.connection.connection  # py-amqp's: counts the frames it wrote
        written = wire.bytes_sent
        try:
            name, args, kwargs = call(job)
            self.app.send_task(name, args, kwargs, task_id=job.jobId, headers=headers(job),
                                 queue=self.queue, producer=producer, retry=False,
                                 confirm_timeout=self.settings.amqp_timeout_s)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - sorted by whether the publish went out
            cause = _root(exc)
            if isinstance(cause, MessageNacked):
                return Outcome("failed", error="RabbitMQ refused it (nack)")
            if wire.bytes_sent > written:  # sent: the broker may have it
                return Outcome("indeterminate", error=brief(cause))
            return Outcome("failed", error=brief(cause))
        return Outcome("ok", broker_id=job.jobId)

    # --- the queue ----------------------------------------------------------------------------
    def backlog(self) -> Backlog:
        """Messages ready in the queue. Those a worker prefetched, and retries it holds until
        their countdown ends, are not: RabbitMQ cannot tell their age without taking them."""
        ready = self._on_queue(lambda channel: channel.queue_declare(self.queue, passive=True))
        return Backlog(int(ready.message_count) if ready is not None else 0)

    def purge(self) -> None:
        self._on_queue(lambda channel: channel.queue_purge(self.queue))

    def amqp_queues(self) -> tuple[str, ...]:
        return (self.queue,)

    def _on_queue(self, action: Any) -> Any:
        """`action(channel)` on a connection of its own; None when the queue does not exist."""
        from amqp.exceptions import NotFound

        with self._connection() as connection:
            try:
                return action(connection.default_channel)
            except NotFound:
                return None


def _root(exc: BaseException) -> BaseException:
    """The error kombu wrapped (`OperationalError` from a socket timeout, a reset...)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc
