"""RabbitMQ topology and publishing: the main queue, delayed-retry queues and the dead-letter queue.

    <queue>                   durable; jobs of kinds that run in batches
    <queue>.single            durable, a priority queue (`x-max-priority`); single jobs
                              (`POST /jobs`), by their `priority`, so a single job never waits
                              behind a run's backlog and an urgent one goes first
    <queue>.long              durable; a run's jobs of kinds that run one by one
                              (`BATCHABLE = False`, e.g. `agent`); with <queue>.single consumed
                              `concurrency` at a time per worker, so one worker never hoards
                              them while another has free slots
    <target>.retry.<ms>       durable, one per step of the retry ladder (lab/runtime/retry.py):
                              messages expire after <ms> and dead-letter back to <target>
                              (<queue>, <queue>.single or <queue>.long), keeping their priority
    <queue>.dead              durable and bounded (`dead_letter_max`, oldest dropped first); what
                              is malformed or out of attempts, with headers saying why

A retry never blocks a consumer: the failed job is published to its ladder step's queue and comes
back by itself. The delay is in the queue's name because RabbitMQ refuses to redeclare a queue
with other arguments, so a changed ladder simply uses new queues (`lab reset` removes old ones).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from lab.config import Settings
from lab.runtime.handlers import UnknownKind, handler_for
from lab.runtime.patience import brief
from lab.runtime.retry import DEFAULT_LADDER_MS, retry_queue

PERSISTENT = 2


QUEUE_TYPES = ("classic", "quorum")

# A single job's `priority` and its AMQP message priority. A classic queue declared with
# `x-max-priority` 5 orders all three; a quorum queue (RabbitMQ 3.12 and later) knows two
# levels, 5 and above before the rest, so there `low` and `normal` share a level. RabbitMQ
# 3.10 and 3.11 quorum queues have no priorities: jobs there keep their arrival order.
PRIORITIES = {"low": 0, "normal": 1, "high": 5}
MAX_PRIORITY = 5


@dataclass(frozen=True)
class Topology:
    queue: str
    ladder: tuple[int, ...] = DEFAULT_LADDER_MS
    dead_max: int = 100_000
    # `quorum`: replicated across a cluster's nodes (Raft), for a lab that must survive losing a
    # node; `classic`: one node's queue, cheaper. See docs/CLUSTER.md for why classic is the
    # default and what quorum changes.
    queue_type: str = "classic"
    delivery_limit: int = 20

    @classmethod
    def of(cls, settings: Settings) -> Topology:
        return cls(
            settings.queue,
            settings.retry_ladder,
            settings.dead_letter_max,
            settings.queue_type,
            settings.delivery_limit,
        )

    @property
    def quorum(self) -> bool:
        return self.queue_type == "quorum"

    def _typed(self, arguments: dict[str, object], dead_letters: bool = True) -> dict[str, object]:
        """Arguments for the configured queue type. A quorum queue dead-letters at least once
        (a letter in flight survives a node's loss), which RabbitMQ allows only with
        `reject-publish` overflow."""
        if not self.quorum:
            return arguments
        typed = {**arguments, "x-queue-type": "quorum"}
        if dead_letters:
            typed |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
        return typed

    @property
    def long(self) -> str:
        return f"{self.queue}.long"

    @property
    def single(self) -> str:
        return f"{self.queue}.single"

    @property
    def dead(self) -> str:
        return f"{self.queue}.dead"

    @property
    def consumed(self) -> tuple[str, str, str]:
        """The queues workers consume."""
        return (self.queue, self.single, self.long)

    def route(self, kind: str, single: bool) -> str:
        """The queue a job of this kind is published to: a single job's own queue, or for a
        run's job the main queue (or <queue>.long when its kind runs one by one)."""
        if single:
            return self.single
        try:
            return self.queue if handler_for(kind).batchable else self.long
        except UnknownKind:
            return self.queue  # a worker dead-letters it with the reason

    def retry(self, delay_ms: int, target: str | None = None) -> str:
        return retry_queue(target or self.queue, delay_ms)

    def step_at_least(self, delay_ms: int) -> int:
        """The shortest step of the ladder that waits `delay_ms` or more (else the longest)."""
        return min((step for step in self.ladder if step >= delay_ms), default=max(self.ladder))

    @property
    def retries(self) -> list[str]:
        """Every ladder step's queue, for both consumed queues."""
        return [self.retry(d, t) for t in self.consumed for d in self.ladder]

    def main_arguments(self) -> dict[str, object]:
        arguments: dict[str, object] = {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.dead,
        }
        if self.quorum:
            # A second guard against poison: a message redelivered this often (a worker that
            # dies on it each time, before lab/runtime/messages.py can name the problem) is
            # dead-lettered by the broker itself.
            arguments["x-delivery-limit"] = self.delivery_limit
        return self._typed(arguments)

    def single_arguments(self) -> dict[str, object]:
        """A quorum queue takes no `x-max-priority` (from 3.12 it has two levels without it)."""
        arguments = self.main_arguments()
        return arguments if self.quorum else {**arguments, "x-max-priority": MAX_PRIORITY}

    def retry_arguments(self, delay_ms: int, target: str | None = None) -> dict[str, object]:
        return self._typed(
            {
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": target or self.queue,
            }
        )

    def dead_arguments(self) -> dict[str, object]:
        return self._typed({"x-max-length": self.dead_max, "x-overflow": "drop-head"}, False)

    def queues(self) -> list[tuple[str, dict[str, object]]]:
        """Every queue of the lab with its arguments: dead letters first (the others name it)."""
        out = [(self.dead, self.dead_arguments())]
        for name in self.consumed:
            main = self.single_arguments() if name == self.single else self.main_arguments()
            out.append((name, main))
            out += [(self.retry(d, name), self.retry_arguments(d, name)) for d in self.ladder]
        return out

    def declare(self, channel: BlockingChannel) -> None:
        for name, arguments in self.queues():
            channel.queue_declare(name, durable=True, arguments=arguments)

    def delete(self, channel: BlockingChannel, extra: Iterable[str] = ()) -> None:
        for name in dict.fromkeys([*self.consumed, self.dead, *self.retries, *extra]):
            channel.queue_delete(name)


class PublishError(RuntimeError):
    """RabbitMQ did not take the message; the message says why."""


@dataclass(frozen=True)
class Deadlines:
    """How long an AMQP client waits: to connect (per node), for each frame, and for a publish
    a broker alarm holds (`blocked_connection_timeout`: the publish then fails, naming it,
    instead of waiting for the alarm to clear); and the heartbeat it asks for."""

    timeout_s: float = 5.0
    heartbeat_s: int = 30

    @classmethod
    def of(cls, settings: Settings) -> Deadlines:
        return cls(settings.amqp_timeout_s, settings.amqp_heartbeat_s)


DEFAULT_DEADLINES = Deadlines()


class Publisher:
    """A confirmed publisher that threads may share (the API's request threads).

    pika connections are not thread-safe, so one lock guards the connection; a dropped
    connection is reopened once per call. Publishing is rare here (one message per POST), so
    waiting for each confirm is the simple, safe choice.
    """

    def __init__(
        self, amqp_url: str, name: str, topology: Topology, deadlines: Deadlines = DEFAULT_DEADLINES
    ):
        self.amqp_url = amqp_url
        self.name = name
        self.topology = topology
        self.deadlines = deadlines
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._blocked = False  # RabbitMQ said a resource alarm blocks this connection

    def _open(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            if self._connection is None or not self._connection.is_open:
                self._connection = connect(self.amqp_url, self.name, self.deadlines)
                self._blocked = False
                self._connection.add_on_connection_blocked_callback(self._on_blocked)
                self._connection.add_on_connection_unblocked_callback(self._on_unblocked)
                self._channel = None
            channel = self._connection.channel()
            channel.confirm_delivery()
            self.topology.declare(channel)
            self._channel = channel
        return self._channel

    def _on_blocked(self, *_: object) -> None:
        self._blocked = True

    def _on_unblocked(self, *_: object) -> None:
        self._blocked = False

    def _refuse_if_blocked(self) -> None:
        """Fail at once, naming the alarm, while RabbitMQ blocks publishing (a publish would
        wait `blocked_connection_timeout` and then fail anyway)."""
        if self._connection is not None and self._connection.is_open:
            self._connection.process_data_events(time_limit=0)  # take any Blocked notice
        if self._blocked:
            raise PublishError(
                "RabbitMQ refuses to take messages: a resource alarm (memory or disk) blocks "
                "publishing until it clears"
            )

    def _reset(self) -> None:
        try:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
        except pika.exceptions.AMQPError:
            pass
        self._connection = self._channel = None

    def publish(self, queue: str, body: bytes, priority: int | None = None) -> None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    self._refuse_if_blocked()
                    self._open().basic_publish(
                        "", queue, body, properties(priority=priority), mandatory=True
                    )
                    return
                except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
                    raise PublishError(f"RabbitMQ refused the message for {queue}: {exc}") from None
                except (pika.exceptions.AMQPError, OSError) as exc:
                    self._reset()
                    if attempt == 2:
                        raise PublishError(f"RabbitMQ unreachable: {brief_error(exc)}") from None

    def depths(self, names: Iterable[str]) -> list[dict[str, object]]:
        """Ready messages and consumers of each queue that exists."""
        out: list[dict[str, object]] = []
        with self._lock:
            for name in names:
                try:
                    frame = self._open().queue_declare(name, passive=True)
                except pika.exceptions.ChannelClosedByBroker as exc:
                    self._channel = None
                    if exc.reply_code == 404:
                        continue
                    raise PublishError(f"RabbitMQ: {exc}") from None
                except (pika.exceptions.AMQPError, OSError) as exc:
                    self._reset()
                    raise PublishError(f"RabbitMQ unreachable: {brief_error(exc)}") from None
                out.append(
                    {
                        "name": name,
                        "ready": frame.method.message_count,
                        "consumers": frame.method.consumer_count,
                    }
                )
        return out

    def purge(self, name: str) -> int:
        """Delete every ready message of `name`; returns how many there were."""
        with self._lock:
            try:
                return int(self._open().queue_purge(name).method.message_count)
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._reset()
                raise PublishError(f"RabbitMQ: {brief_error(exc)}") from None

    def close(self) -> None:
        with self._lock:
            self._reset()


def endpoints(
    amqp_url: str, name: str, deadlines: Deadlines = DEFAULT_DEADLINES
) -> list[pika.URLParameters]:
    """The nodes of `LAB_AMQP_URL` (comma-separated for a cluster), starting at a random one so
    the processes of a lab spread over the nodes; a caller that reconnects tries them all."""
    urls = [u.strip() for u in amqp_url.split(",") if u.strip()]
    start = random.randrange(len(urls))
    out = []
    for url in urls[start:] + urls[:start]:
        params = pika.URLParameters(url)
        params.client_properties = {"connection_name": name}
        params.socket_timeout = deadlines.timeout_s
        params.stack_timeout = deadlines.timeout_s * 2  # TCP, then the AMQP handshake
        params.blocked_connection_timeout = deadlines.timeout_s
        params.heartbeat = deadlines.heartbeat_s
        params.connection_attempts = 1
        out.append(params)
    return out


def connect(
    amqp_url: str, name: str, deadlines: Deadlines = DEFAULT_DEADLINES
) -> pika.BlockingConnection:
    """A connection to the first node of `amqp_url` that answers, within its deadlines (a node
    that accepts and never answers is an `AMQPError` after them, never a hang)."""
    try:
        return pika.BlockingConnection(endpoints(amqp_url, name, deadlines))
    except pika.exceptions.AMQPError:
        raise
    except Exception as exc:  # the connector's own timeouts are not AMQPErrors
        raise pika.exceptions.AMQPConnectionError(f"{type(exc).__name__}: {exc}") from exc


def brief_error(exc: BaseException) -> str:
    """A pika error in one line that says what happened (a blocked publish names the alarm)."""
    if isinstance(exc, pika.exceptions.ConnectionBlockedTimeout):
        return "a resource alarm (memory or disk) blocks publishing"
    return brief(exc)


def server_version(amqp_url: str) -> str:
    """The RabbitMQ version the first answering node announces (reports name their servers)."""
    connection = connect(amqp_url, "lab-version")
    try:
        # pika keeps the broker's announced properties only on the underlying connection.
        version = connection._impl.server_properties.get("version", b"")  # noqa: SLF001
    finally:
        connection.close()
    return version.decode() if isinstance(version, bytes) else str(version)


def properties(
    headers: dict[str, object] | None = None, priority: int | None = None
) -> pika.BasicProperties:
    return pika.BasicProperties(
        delivery_mode=PERSISTENT,
        content_type="application/json",
        headers=headers,
        priority=priority,
    )
