"""The one event stream: a Redis Stream that the scheduler and workers append to (from their Lua
scripts) and that the API serves as SSE and WebSocket messages.

Because the stream is the log, a client that reconnects names the last id it saw (SSE
`Last-Event-ID`, or `?lastEventId=` on the WebSocket) and gets exactly what it missed, for as long
as the stream still holds it (`LAB_EVENT_STREAM_LEN` entries).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from lab.config import Settings
from lab.runtime import connections as redis_connections
from lab.runtime.backoff import Backoff
from lab.runtime.keys import Keys
from lab.runtime.status import AsyncStatus, RunView

log = logging.getLogger("lab.runtime.events")
STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})", re.ASCII)
UINT64_MAX = 2**64 - 1
SHORT_CONNECTIONS = 8  # per API process, for everything but blocking reads


class BadEventId(ValueError):
    """A resume id that is not a Redis stream id."""


def check_event_id(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    found = STREAM_ID.fullmatch(value)
    # The very largest id is refused too: nothing can follow it, and the exclusive range that
    # resumes after it is an error in Redis.
    if (
        not found
        or int(found[1]) > UINT64_MAX
        or int(found[2]) > UINT64_MAX
        or (int(found[1]), int(found[2])) == (UINT64_MAX, UINT64_MAX)
    ):
        raise BadEventId(
            f"event id {value[:60]!r} is not of the form <ms>-<n> with both parts below 2^64, "
            "e.g. 1732320000000-0"
        )
    return value


JOB_NUMBERS = ("progress", "attempt", "at", "version")
EVENT_TYPES = ("run", "job")

EVENTS = {
    "status": "first message of a stream that does not resume: the whole `GET /status` answer "
    "in `data`",
    "run": "a run changed (started, released more, counted, paused, stopped, finished): the "
    "run's record in `data` (runId, state, xTotal, yMinutes, enqueued, processed, failed, "
    "running, paused, startedAt, releasedAt, stoppedAt, finishedAt, durationSeconds)",
    "job": "a single job changed (queued, step, progress, retried, completed, failed, "
    "cancelled, deleted): jobId, kind, state, progress, step, attempt, error, worker, message, "
    "at (epoch ms), version (higher is newer)",
    "invalid": "an entry of the stream lab could not read (a hand-typed XADD): `error` says why; "
    "the stream goes on",
    "heartbeat": "nothing happened for LAB_SSE_HEARTBEAT_S: the connection is alive (SSE sends "
    "it as a comment line)",
    "error": "WebSocket only: the request could not be served (a bad `lastEventId`); the socket "
    "then closes",
}
"""Every message type `GET /events` (SSE `event:` name) and `/ws` (`type` field) can carry;
docs/reference/events.md is generated from it."""


def decode(fields: dict[str, str]) -> dict[str, Any]:
    """A stream entry as the JSON an SSE or WebSocket client receives.

    Never raises: an entry `lab` cannot read (a buggy producer, a hand-typed XADD) becomes an
    `invalid` event naming the problem, so one bad entry cannot end every client's stream."""
    try:
        return _decode(fields)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        problem = f"{type(exc).__name__}: {exc}"[:200]
        log.warning("event stream: unreadable entry (%s)", problem)
        return {"type": "invalid", "error": f"unreadable entry: {problem}"}


def _decode(fields: dict[str, str]) -> dict[str, Any]:
    kind = fields.get("type", "run")
    if kind not in EVENT_TYPES:  # it names the SSE event: nothing else may pass
        raise ValueError(f"type {kind[:40]!r} is not one of {', '.join(EVENT_TYPES)}")
    if kind == "run":
        view = RunView.from_hash(fields, int(time.time() * 1000))
        return {"type": kind, **view.__dict__}
    out: dict[str, Any] = dict(fields)
    if kind == "job":
        for name in JOB_NUMBERS:
            if out.get(name):
                out[name] = int(out[name])
        for name in ("step", "error", "worker", "message"):
            if out.get(name) == "":
                out[name] = None
    return out


class EventLog:
    """The lab's event stream (and single jobs' own streams) for the API's event loop: it owns
    the asyncio Redis clients, so routes ask it rather than reaching for a connection."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.key = self.keys.events
        # Short commands (the status read, range reads) share a bounded pool: a burst of callers
        # waits for a free connection instead of opening one each. Blocking reads (the hub's one,
        # and one per follower of a single job, at most LAB_MAX_STREAMS) have their own client.
        # Both are named, so `CLIENT LIST` shows what one API process holds.
        name = f"lab-api-{os.getpid()}"
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=SHORT_CONNECTIONS,
            timeout=settings.redis_timeout_s,  # waiting for a free connection
            decode_responses=True,
            client_name=name,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
        )
        self.redis: Any = aioredis.Redis(connection_pool=pool)  # replies are str (see TextRedis)
        # A blocking read waits up to one SSE heartbeat by design, then the usual deadline.
        self.blocking: Any = aioredis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            client_name=name,
            socket_timeout=settings.redis_timeout_s + settings.sse_heartbeat_s,
            socket_connect_timeout=settings.redis_timeout_s,
        )

    def status_reader(self) -> AsyncStatus:
        """`Overview.status()` on this log's pool: the same script, one round trip, on the loop."""
        return AsyncStatus(self.settings, self.redis)

    async def job_state(self, job_id: str) -> str | None:
        """A single job's state, None when it has no record."""
        return await self.redis.hget(self.keys.job(job_id), "state")

    def job_stream(self, job_id: str) -> str:
        """The key of a single job's own event stream (for `follow` and `tail`)."""
        return self.keys.job_events(job_id)

    async def any_after(self, after: str, key: str | None = None) -> bool:
        """Whether the stream holds an entry newer than `after`."""
        return bool(await self.redis.xrange(key or self.key, min=f"({after}", count=1))

    async def last_id(self) -> str:
        newest = await self.redis.xrevrange(self.key, count=1)
        return newest[0][0] if newest else "0-0"

    async def follow(
        self, after: str, wait_s: float, key: str | None = None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Entries after `after`, waiting up to `wait_s` for new ones; yields nothing on timeout.

        `key` names another stream of the same shape (a single job's own events).
        """
        stream = key or self.key
        answer = await self.blocking.xread({stream: after}, count=500, block=int(wait_s * 1000))
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                yield entry_id, decode(fields)

    async def range_after(
        self, after: str, count: int, key: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Up to `count` entries strictly after `after`."""
        entries = await self.redis.xrange(key or self.key, min=f"({after}", count=count)
        return [(entry_id, decode(fields)) for entry_id, fields in entries]

    async def tail(
        self, after: str, wait_s: float, key: str | None = None
    ) -> AsyncIterator[tuple[str, dict[str, Any]] | None]:
        """Every entry after `after`, for as long as the caller reads; None when `wait_s` passed
        without one (a heartbeat is due). While Redis is unreachable it yields None and tries
        again with backoff, so a client's stream stays open through the outage."""
        retry = Backoff(initial_s=0.5, cap_s=5.0)
        cursor = after
        while True:
            try:
                sent = False
                async for entry_id, event in self.follow(cursor, wait_s, key):
                    cursor, sent = entry_id, True
                    yield entry_id, event
                retry.reset()
            except Exception as exc:
                if not redis_connections.unavailable(exc):
                    raise
                log.warning("event stream: Redis unreachable (%r)", exc)
                yield None
                await asyncio.sleep(retry.next())
                continue
            if not sent:
                yield None

    async def close(self) -> None:
        await self.redis.aclose()
        await self.blocking.aclose()


def stream_id(value: str) -> tuple[int, int]:
    ms, _, n = value.partition("-")
    return int(ms), int(n or 0)


class EventHub:
    """One reader of the lab's event stream per API process, fanning entries out to every live
    client (SSE or WebSocket), instead of one blocked Redis connection per client.

    A client that resumes from an older id first gets what it missed by range reads, then the
    live entries the hub hands it, minus those it already had (the hub starts reading before the
    client's range read, so nothing falls between the two). A client that cannot keep up is let
    go (its stream ends) and, reconnecting with its last id, catches up the same way."""

    QUEUE = 10_000  # entries a client may lag behind before it is let go
    PAGE = 500

    def __init__(self, log: EventLog, wait_s: float):
        self.log = log
        self.wait_s = wait_s
        self._clients: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.cursor: str | None = None  # the last entry handed out (its lag is in /metrics)

    async def _start(self) -> None:
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._read())
        await self._ready.wait()

    async def _read(self) -> None:
        """Reads for as long as the process lives: whatever goes wrong, it logs, waits and goes
        on from the last entry it handed out, because every live client depends on it."""
        retry = Backoff(initial_s=0.5, cap_s=5.0)
        cursor: str | None = None
        while True:
            try:
                if cursor is None:
                    cursor = self.cursor = await self.log.last_id()
                    self._ready.set()
                async for item in self.log.tail(cursor, self.wait_s):
                    if item is None:
                        continue
                    cursor = self.cursor = item[0]
                    self._fan_out(item)
                    retry.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged; the reader must outlive it
                if not redis_connections.unavailable(exc):
                    log.exception("event stream reader failed after %s; reading on", cursor)
                await asyncio.sleep(retry.next())

    def _fan_out(self, item: tuple[str, dict[str, Any]]) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                self._clients.discard(queue)  # too far behind: `follow` ends its stream

    async def follow(self, after: str) -> AsyncIterator[tuple[str, dict[str, Any]] | None]:
        """Entries after `after`, then live ones; None when `wait_s` passed without one (a
        heartbeat is due). Ends when the client fell too far behind."""
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(self.QUEUE)
        self._clients.add(queue)
        try:
            await self._start()
            last = stream_id(after)
            async for item in self._missed(after):
                if item is not None:
                    last = stream_id(item[0])
                yield item
            while queue in self._clients:
                try:
                    item = await asyncio.wait_for(queue.get(), self.wait_s)
                except TimeoutError:
                    yield None
                    continue
                if stream_id(item[0]) > last:
                    last = stream_id(item[0])
                    yield item
        finally:
            self._clients.discard(queue)

    async def _missed(self, after: str) -> AsyncIterator[tuple[str, dict[str, Any]] | None]:
        """What came after `after` until now, by range reads (waiting out a Redis outage)."""
        retry = Backoff(initial_s=0.5, cap_s=5.0)
        while True:
            try:
                page = await self.log.range_after(after, self.PAGE)
            except Exception as exc:
                if not redis_connections.unavailable(exc):
                    raise
                yield None
                await asyncio.sleep(retry.next())
                continue
            for item in page:
                after = item[0]
                yield item
            if len(page) < self.PAGE:
                return

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
