"""`GET /healthz`: each service as this API process reaches it, answered within a second.

The checks run on threads of their own, at most one per service at a time: a caller that
arrives while a check is under way waits for that same check, up to the deadline, so a silent
service costs every caller the deadline and no more, however many call at once (no lock is held
across a connect). A check still running at the deadline goes on; the service is reported by
its last answer if that came within `RECENT_S` (a busy Elasticsearch that answers in 1.2 s is
slow, not down), else as "no answer".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

DEADLINE_S = 0.8
RECENT_S = 10.0


class Health:
    def __init__(
        self,
        checks: dict[str, Callable[[], object]],
        deadline_s: float = DEADLINE_S,
        recent_s: float = RECENT_S,
    ):
        self.checks = checks
        self.deadline_s = deadline_s
        self.recent_s = recent_s
        self._pool = ThreadPoolExecutor(len(checks), thread_name_prefix="health")
        self._running: dict[str, Future[object]] = {}
        self._last_ok: dict[str, float] = {}  # service → when its last check passed
        self._lock = threading.Lock()  # held to find or start a check, never across one

    def _check(self, name: str) -> Future[object]:
        with self._lock:
            future = self._running.get(name)
            if future is None or future.done():
                future = self._running[name] = self._pool.submit(self._timed, name)
            return future

    def _timed(self, name: str) -> object:
        result = self.checks[name]()
        self._last_ok[name] = time.monotonic()
        return result

    async def report(self) -> dict[str, str]:
        """{service: "ok" | what went wrong}, within the deadline."""
        futures = {name: asyncio.wrap_future(self._check(name)) for name in self.checks}
        await asyncio.wait(futures.values(), timeout=self.deadline_s)
        now = time.monotonic()
        report = {}
        for name, future in futures.items():
            if future.done() and future.exception() is not None:
                report[name] = f"unreachable: {future.exception()}"[:300]
            elif future.done() or now - self._last_ok.get(name, -1e9) < self.recent_s:
                report[name] = "ok"
            else:
                report[name] = f"no answer within {self.deadline_s:g} s"
        return report

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
