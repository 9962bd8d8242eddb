"""The shim: what a framework's worker tells lab about each job, the one thing a user adds to
their app to be measured (`docs/guides/your-pipeline.md`).

Per attempt a framework's hook calls `started` then `ended` (`done`, `failed` for good, or
`retry`); the shim batches the ends and counts them with lab's one counting script
(`Counting.record`: exactly-once bitmaps, the latency histograms, "executed more than once"),
every `FLUSH_S` or `MAX_BATCH` jobs, on a thread of its own, so a job pays a list append, never a
round trip. It also heartbeats the worker into `/status`, like a lab worker.

Job identity is lab's: a run's job id is `<runId>-<seq>` (the framework's task id when it lets
lab choose one, else carried with the job). Times: service is a difference on one host
(monotonic); a job's release and end are epoch ms corrected by this host's offset from Redis'
clock (`TIME`), measured at start and every `OFFSET_EVERY_S`; a negative duration (clocks apart)
is counted in the run's `negativeDurations`, never dropped.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from lab import config
from lab.config import Settings
from lab.runtime import latency
from lab.runtime.messages import MAX_SEQ, is_id
from lab.runtime.middleware import Count
from lab.runtime.stores import Stores
from lab.runtime.stores.counting import Counted, Outcomes

log = logging.getLogger("lab.targets.shim")

FLUSH_S = 0.05
MAX_BATCH = 500
OFFSET_EVERY_S = 30.0
Outcome = str  # "done" | "failed" (for good) | "retry" (the framework runs it again)


def job_of(job_id: str) -> tuple[str, int] | None:
    """(runId, seq) of a run's job id `<runId>-<seq>`; None for anything else."""
    run_id, _, seq = job_id.rpartition("-")
    if not run_id or not seq.isascii() or not seq.isdigit() or len(seq) > 8:
        return None
    if not is_id(run_id) or int(seq) >= MAX_SEQ:
        return None
    return run_id, int(seq)


@dataclass
class Attempt:
    """One attempt of one job, from `started` to `ended`."""

    job_id: str
    attempt: int
    kind: str
    created_ms: float  # when lab first released the job (epoch ms, lab's clock)
    released_ms: float  # when this attempt was due: the first release, or its retry's
    started_ms: float  # epoch ms, on Redis' clock
    started_mono: float = field(default_factory=time.monotonic)


@dataclass
class _Ended:
    run_id: str
    seq: int
    kind: str
    outcome: Outcome
    created_ms: float
    released_ms: float
    started_ms: float
    ended_ms: float


class Shim:
    """One framework worker's reporter (one per process: `shim()`)."""

    def __init__(self, settings: Settings | None = None, worker_id: str | None = None):
        self.settings = settings or config.load()
        self.stores = Stores.of(self.settings)
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.offset_ms = 0.0
        self._offset_at = -OFFSET_EVERY_S
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time (see `flush`)
        self._ended: list[_Ended] = []
        self._running: dict[int, Attempt] = {}
        self._totals = {"processed": 0, "failed": 0}
        # Ends are numbered as they are appended; `_counted` is the last number counted for
        # sure. Flushes run one at a time, so a flush that returns has counted every end
        # appended before it began, or given them back (`counted` says which).
        self._appended = 0
        self._counted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what a framework's hooks call --------------------------------------------------------
    def started(self, job_id: str, attempt: int, kind: str, created_ms: float = 0.0,
                released_ms: float = 0.0) -> Attempt:  # fmt: skip
        self._start_thread()
        now = self.now_ms()
        begun = Attempt(job_id, max(1, attempt), kind, created_ms or now,
                        released_ms or created_ms or now, now)  # fmt: skip
        with self._lock:
            self._running[id(begun)] = begun
        return begun

    def ended(self, begun: Attempt, outcome: Outcome) -> int:
        """Report the attempt's end; returns its number for `counted` (0: nothing to count)."""
        ended_ms = begun.started_ms + (time.monotonic() - begun.started_mono) * 1000
        with self._lock:
            self._running.pop(id(begun), None)
            if outcome == "retry":
                return 0  # not the job's end: its next attempt will end it
            found = job_of(begun.job_id)
            if found is None:
                return 0  # not a run's job: nothing of a run to count
            self._ended.append(_Ended(found[0], found[1], begun.kind, outcome, begun.created_ms,
                                      begun.released_ms, begun.started_ms, ended_ms))  # fmt: skip
            self._totals["processed" if outcome == "done" else "failed"] += 1
            self._appended += 1
            number = self._appended
            full = len(self._ended) >= MAX_BATCH
        if full:
            self.flush()
        return number

    def counted(self, number: int) -> bool:
        """Whether end `number` (what `ended` returned) is counted in Redis. A framework that
        finishes a job only after its hook returns (arq) flushes until it is, so a kill -9
        between the two runs the job again rather than losing its count."""
        return number <= self._counted

    # --- the thread --------------------------------------------------------------------------
    def now_ms(self) -> float:
        """Epoch ms on Redis' clock, as far as this host's offset was last measured."""
        return time.time() * 1000 + self.offset_ms

    def measure_offset(self) -> None:
        before = time.time()
        seconds, micros = self.stores.redis.time()
        after = time.time()
        self.offset_ms = seconds * 1000 + micros / 1000 - (before + after) / 2 * 1000
        self._offset_at = time.monotonic()

    def flush(self) -> int:
        """Count what ended since the last flush, in one call; returns how many jobs. One
        flush runs at a time, so when a call returns, every job that ended before it began is
        counted (or was given back, Redis refusing it five times): a hook that flushes before
        its framework acks a job makes sure a kill -9 never drops the count of a job acked."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> int:
        with self._lock:
            ended, self._ended = self._ended, []
            upto = self._appended
        if not ended:
            self._counted = upto
            return 0
        outcomes, timings, counts = batch_of(ended, self.stores.keys.run)
        call_id = uuid.uuid4().hex
        for attempt in range(1, 6):
            try:
                self.stores.counting.record(outcomes, counts, timings, call_id)
                self._counted = upto
                return len(ended)
            except Exception as exc:  # noqa: BLE001 - Redis away: kept and tried again
                log.warning("lab shim: counting %d jobs failed (%s); try %d", len(ended), exc,
                            attempt)  # fmt: skip
                time.sleep(min(2.0, 0.1 * 2**attempt))
        with self._lock:
            self._ended = ended + self._ended  # given back: counted at the next flush
        return 0

    def start(self) -> Shim:
        """Heartbeat and flush from now on: a worker calls it as it boots, so it shows in
        `/status` before its first job (every other call starts it too)."""
        self._start_thread()
        return self

    def _start_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="lab-shim", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    def _loop(self) -> None:
        beat_at = 0.0
        while not self._stop.wait(FLUSH_S):
            try:
                if time.monotonic() - self._offset_at >= OFFSET_EVERY_S:
                    self.measure_offset()
                self.flush()
                if time.monotonic() - beat_at >= self.settings.heartbeat_s:
                    self.heartbeat()
                    beat_at = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - the framework's worker must go on
                log.warning("lab shim: %s", exc)

    def heartbeat(self) -> None:
        with self._lock:
            running = list(self._running.values())
            totals = dict(self._totals)
        self.stores.heartbeats.worker(self.worker_id, {
            "id": self.worker_id, "pid": os.getpid(), "host": socket.gethostname(),
            "waitingFor": "", "processed": totals["processed"], "failed": totals["failed"],
            "deadLettered": totals["failed"], "inFlight": len(running), "running": len(running),
            "waitingSinceMs": 0, "jobs": [],
        })  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        try:
            self.flush()
            self.stores.heartbeats.forget_worker(self.worker_id)
        except Exception as exc:  # noqa: BLE001 - at exit: said, not raised
            log.warning("lab shim: at exit: %s", exc)


def batch_of(ended: list[_Ended], run_key: Any) -> tuple[Any, Any, Any]:
    """What one `Counting.record` call takes for `ended`: outcomes, latency and the count of
    negative durations, per run. Pure."""
    outcomes: Outcomes = {}
    timings: dict[str, latency.RunTimings] = {}
    counts: Counted = {}
    last = max(e.ended_ms for e in ended)
    window = int(last // 1000) // latency.WINDOW_S
    for e in ended:
        done, failed = outcomes.setdefault(e.run_id, ([], []))
        (done if e.outcome == "done" else failed).append(e.seq)
        run = timings.setdefault(e.run_id, latency.RunTimings(window, [], last))
        if e.kind not in run.kinds:
            run.kinds.append(e.kind)
        kind = run.kinds.index(e.kind) + 1
        run.jobs.append((e.seq, kind, e.created_ms, e.released_ms, e.started_ms, e.ended_ms,
                         e.ended_ms))  # fmt: skip
        negative = sum(d < 0 for d in (e.started_ms - e.released_ms, e.ended_ms - e.created_ms))
        if negative:
            counts.setdefault(e.run_id, {})[e.seq] = [
                Count(run_key(e.run_id), "negativeDurations", negative)
            ]
    return outcomes, timings, counts


_shim: Shim | None = None
_made = threading.Lock()


def shim() -> Shim:
    """This process's shim, made on first use from the `LAB_*` settings."""
    global _shim
    with _made:
        if _shim is None:
            _shim = Shim()
        return _shim
