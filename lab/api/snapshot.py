"""One `/status` answer per API process, shared by every caller.

A dashboard polled by hundreds of clients must not cost one Redis script per request, nor slow
the pipeline it watches. The snapshot is read at most every `max_age_s` (50 ms by default); a
caller that finds it older starts one refresh, and every caller that arrives meanwhile waits for
that same refresh instead of starting its own. The answer carries `ageMs`, how old its figures
are, so freshness stays honest; the figures themselves come from one atomic read, so they are
always consistent with each other.

A read has a deadline (`DEADLINE_S`): with a Redis that accepts and never answers, `/status`
says 503 naming Redis within a second instead of waiting for the socket timeout, and a read
that ran out of time is remembered for as long, so the callers that follow (the route behind
the fast path among them) get the same answer at once; a quick failure is simply tried again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis

from lab.api.access import Policy
from lab.api.metrics import observe_request

BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})
DEADLINE_S = 0.8


@dataclass(frozen=True)
class Snapshot:
    data: dict[str, Any]
    body: bytes  # `data` as JSON, without `ageMs` (added per answer)
    taken: float  # time.monotonic() when it was read

    def age_ms(self, now: float | None = None) -> int:
        return int(((now if now is not None else time.monotonic()) - self.taken) * 1000)

    def answer(self, now: float | None = None) -> bytes:
        """The JSON body of one answer: the snapshot plus its age."""
        return self.body[:-1] + b',"ageMs":%d}' % self.age_ms(now)


class StatusFastPath:
    """ASGI, outermost: `GET /status` answered straight from the snapshot, before the framework.

    The dashboard endpoint is the one polled hundreds of times a second, often in bursts (every
    client of a dashboard polling on the same beat), and a burst waits for the answers before
    it one by one. Seven middleware layers, routing and request and response objects cost more
    than the answer itself, so this sits in front of all of them and answers the same bytes for
    a fraction of the CPU, with the same access policy (`lab.api.access.Policy`) and the same
    latency histogram. Whatever it does not answer, it hands to the whole app unchanged: other
    paths, a request the policy refuses or one with a body (the app's middleware answers those
    with its named 4xx), and a snapshot that cannot be read (the route answers a named 503)."""

    def __init__(self, app: Any, policy: Policy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self._answers(scope):
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        try:
            snapshot = await self.app.state.snapshot.get()
        except Exception:  # noqa: BLE001 - the route answers it with a named 503
            await self.app(scope, receive, send)
            return
        body = snapshot.answer()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        observe_request("GET", "/status", 200, time.perf_counter() - began)
        await send({"type": "http.response.body", "body": body})

    def _answers(self, scope: Any) -> bool:
        if scope["type"] != "http" or scope["path"] != "/status" or scope["method"] != "GET":
            return False
        for name, value in scope["headers"]:
            if name in BODY_HEADERS and value != b"0":
                return False
        return self.policy.refusal(scope) is None


class StatusSnapshot:
    def __init__(
        self,
        read: Callable[[], Awaitable[dict[str, Any]]],
        max_age_s: float,
        deadline_s: float = DEADLINE_S,
    ):
        self._read = read
        self.max_age_s = max_age_s
        self.deadline_s = deadline_s
        self._current: Snapshot | None = None
        self._failed: tuple[BaseException, float] | None = None
        self._refresh: asyncio.Future[Snapshot] | None = None
        self.reads = 0  # how many times Redis was asked (for tests and benchmarks)

    async def get(self) -> Snapshot:
        current = self._current
        now = time.monotonic()
        if current is not None and now - current.taken < self.max_age_s:
            return current
        if self._failed is not None and now - self._failed[1] < self.deadline_s:
            raise self._failed[0]
        if self._refresh is None:
            self._refresh = asyncio.ensure_future(self._take())
        # shield: a caller that goes away must not cancel the refresh the others wait for.
        return await asyncio.shield(self._refresh)

    async def _take(self) -> Snapshot:
        try:
            self.reads += 1
            try:
                data = await asyncio.wait_for(self._read(), self.deadline_s)
            except TimeoutError:
                failure = redis.TimeoutError(f"no answer within {self.deadline_s:g} s")
                self._failed = (failure, time.monotonic())
                raise failure from None
            self._failed = None
            body = json.dumps(data, separators=(",", ":")).encode()
            self._current = Snapshot(data, body, time.monotonic())
            return self._current
        finally:
            self._refresh = None

    def invalidate(self) -> None:
        """The next caller reads afresh (after this process started or stopped a run)."""
        self._current = None
