"""The dead-letter queue `<queue>.dead`, read and emptied without losing a letter.

A dead letter stays in RabbitMQ, where the worker (or the broker's delivery limit) put it; `lab`
keeps no second copy. Reading one takes it with `basic_get` and hands it back unacked, so a
listing leaves the queue as it was: the letters return in their order when the channel lets go
of them. Acting on letters (replay, purge of some) takes them the same way and acks only those
the action succeeded for, after it succeeded: a replay is confirmed by RabbitMQ before its dead
letter is acked, so a crash in between leaves a duplicate, never a loss (and duplicates are
harmless: documents are upserts by jobId and counts are bitmaps).

A letter's `id` is a digest of its body and its last failure time, so the same letter keeps its
id across listings and API processes, and a letter that dies again after a replay gets a new
one. Everything but `DeadLetters` is pure and unit-tested.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from lab.runtime import broker
from lab.runtime.messages import Job, MalformedMessage, parse
from lab.runtime.retry import REASONS

PREVIEW_CHARS = 300
SCAN_LIMIT = 10_000  # letters one request may take in hand (each is held until it is done)
ID_LENGTH = 16
# Every reason a listed letter can show: what a worker wrote (`retry.REASONS`), RabbitMQ's
# delivery limit on a quorum queue, a letter that cannot be read, and one that says nothing.
LISTED_REASONS: tuple[str, ...] = (*REASONS, "delivery-limit", "unreadable", "unknown")


class DeadLetterError(RuntimeError):
    """RabbitMQ could not be read or written; the message says why."""


@dataclass(frozen=True)
class DeadLetter:
    id: str
    reason: str  # one of LISTED_REASONS
    error: str
    queue: str  # where it came from (and goes back to on replay)
    attempts: int
    firstFailedAt: str | None
    lastFailedAt: str | None
    jobId: str | None
    runId: str | None
    kind: str | None
    bytes: int
    preview: str

    def view(self) -> dict[str, Any]:
        return asdict(self)


def letter_id(body: bytes, headers: dict[str, Any] | None) -> str:
    last = str((headers or {}).get("x-lab-last-failed-ms", ""))
    return hashlib.sha256(last.encode() + b"\0" + body).hexdigest()[:ID_LENGTH]


def _iso(ms: Any) -> str | None:
    if isinstance(ms, bool):
        return None
    try:
        value = int(ms)
    except (TypeError, ValueError, OverflowError):  # also a header holding a float infinity
        return None
    if not 0 < value < 2**53:
        return None
    return datetime.fromtimestamp(value / 1000, UTC).isoformat(timespec="milliseconds")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _death(headers: dict[str, Any]) -> dict[str, Any]:
    """The broker's own record of a dead-lettering (`x-death`), for letters no worker wrote."""
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return deaths[0]
    return {}


def describe(body: bytes, headers: dict[str, Any] | None) -> DeadLetter:
    """What a dead letter says about itself: its headers, and its body when that is a job.

    Anyone who can publish can put anything here, so this never raises: a letter that cannot be
    read is still listed (and can be purged), its reason `unreadable`."""
    try:
        return _describe(body, headers)
    except Exception as exc:  # noqa: BLE001 - a listing must show every letter it holds
        return DeadLetter(
            id=letter_id(bytes(body), None),
            reason="unreadable",
            error=f"the letter cannot be read: {type(exc).__name__}",
            queue="",
            attempts=0,
            firstFailedAt=None,
            lastFailedAt=None,
            jobId=None,
            runId=None,
            kind=None,
            bytes=len(body),
            preview=bytes(body[:PREVIEW_CHARS]).decode("utf-8", "replace"),
        )


def _describe(body: bytes, headers: dict[str, Any] | None) -> DeadLetter:
    headers = headers if isinstance(headers, dict) else {}
    death = _death(headers)
    job: Job | None
    try:
        job = parse(body)
    except MalformedMessage:
        job = None
    reason = _text(headers.get("x-lab-reason")) or (
        "delivery-limit" if _text(death.get("reason")) == "delivery_limit" else "unknown"
    )
    attempts = headers.get("x-lab-attempt")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 0 <= attempts < 2**31:
        attempts = job.attempt if job is not None else 0
    last = headers.get("x-lab-last-failed-ms")
    return DeadLetter(
        id=letter_id(body, headers),
        reason=reason,
        error=_text(headers.get("x-lab-error"))[:1000],
        queue=_text(headers.get("x-lab-queue")) or _text(death.get("queue")),
        attempts=attempts,
        firstFailedAt=_iso(headers.get("x-lab-first-failed-ms") or last),
        lastFailedAt=_iso(last),
        jobId=job.jobId if job else None,
        runId=job.runId if job else None,
        kind=job.kind if job else None,
        bytes=len(body),
        preview=body[:PREVIEW_CHARS].decode("utf-8", "replace"),
    )


def fresh_attempt(body: bytes) -> bytes | None:
    """The body a replay publishes: the same job at attempt 1 (a fresh budget), or None when
    the body is not a job (it would only be dead-lettered again)."""
    try:
        job = parse(body)
    except MalformedMessage:
        return None
    return Job(**{**asdict(job), "attempt": 1}).to_json()


def replay_headers(headers: dict[str, Any] | None) -> dict[str, Any]:
    """A replayed letter keeps when it first failed (so dying again says so) and counts its
    replays."""
    headers = headers if isinstance(headers, dict) else {}
    replays = headers.get("x-lab-replays")
    replays = replays if isinstance(replays, int) and 0 <= replays < 2**31 else 0
    out: dict[str, Any] = {"x-lab-replays": replays + 1}
    if "x-lab-first-failed-ms" in headers:
        out["x-lab-first-failed-ms"] = headers["x-lab-first-failed-ms"]
    return out


@dataclass
class Taken:
    """One letter in hand: what it says, its body and headers, and its delivery tag."""

    letter: DeadLetter
    body: bytes
    headers: dict[str, Any]
    tag: int


class DeadLetters:
    """The one place that reads, replays and purges `<queue>.dead` (the API's request threads
    share it; one lock, as pika connections are not thread-safe)."""

    def __init__(
        self,
        amqp_url: str,
        topology: broker.Topology,
        deadlines: broker.Deadlines = broker.DEFAULT_DEADLINES,
    ):
        self.amqp_url = amqp_url
        self.topology = topology
        self.deadlines = deadlines
        self._lock = threading.Lock()

    @contextmanager
    def _channel(self) -> Iterator[BlockingChannel]:
        """A connection of its own per request: closing it hands back every letter not acked."""
        try:
            connection = broker.connect(self.amqp_url, "lab-dead-letters", self.deadlines)
        except pika.exceptions.AMQPError as exc:
            raise DeadLetterError(f"RabbitMQ unreachable: {exc!r}") from None
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            self.topology.declare(channel)
            yield channel
        except pika.exceptions.AMQPError as exc:
            raise DeadLetterError(f"RabbitMQ: {exc!r}") from None
        finally:
            with suppress(pika.exceptions.AMQPError):
                connection.close()

    def count(self) -> int:
        with self._lock, self._channel() as channel:
            return self._count(channel)

    def _count(self, channel: BlockingChannel) -> int:
        frame = channel.queue_declare(self.topology.dead, passive=True)
        return int(frame.method.message_count)

    def _take(self, channel: BlockingChannel, limit: int) -> Iterator[Taken]:
        for _ in range(limit):
            method, props, body = channel.basic_get(self.topology.dead, auto_ack=False)
            if method is None:
                return
            headers = props.headers if props is not None and isinstance(props.headers, dict) else {}
            yield Taken(describe(body, headers), body, headers, method.delivery_tag)

    def list(self, limit: int, offset: int = 0) -> tuple[int, list[DeadLetter]]:
        """The total, and up to `limit` letters after the first `offset`, oldest first; every
        one of them goes back to the queue, in its place."""
        with self._lock, self._channel() as channel:
            total = self._count(channel)
            seen = [t.letter for t in self._take(channel, min(offset + limit, SCAN_LIMIT))]
            # Closing the connection (on leaving `_channel`) returns them all unacked, in order.
        return total, seen[offset:]

    def act(
        self, pick: Callable[[DeadLetter], bool], do: Callable[[Taken, BlockingChannel], str]
    ) -> dict[str, Any]:
        """Take the letters `pick` chooses and call `do` on each (with the channel, confirmed,
        to publish on); a letter is acked (gone from the dead letters) only when `do` answers
        "done", else it stays. The answer counts each outcome `do` gave."""
        outcomes: dict[str, int] = {}
        matched = scanned = 0
        with self._lock, self._channel() as channel:
            total = self._count(channel)
            for taken in self._take(channel, min(total, SCAN_LIMIT)):
                scanned += 1
                if not pick(taken.letter):
                    continue
                matched += 1
                outcome = do(taken, channel)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if outcome == "done":
                    channel.basic_ack(taken.tag)
        return {"total": total, "scanned": scanned, "matched": matched, "outcomes": outcomes}

    def target(self, letter: DeadLetter) -> str:
        """Where a replay goes: the lab queue it came from. A header naming any other queue is
        not followed (anyone who can publish can write headers); the kind's queue is used."""
        if letter.queue in self.topology.consumed:
            return letter.queue
        # Only a run's letter comes this way: a single job's is replayed through its record.
        return self.topology.route(letter.kind or "", single=False)

    def purge(self) -> int:
        """Delete every dead letter; returns how many there were."""
        with self._lock, self._channel() as channel:
            return int(channel.queue_purge(self.topology.dead).method.message_count)
