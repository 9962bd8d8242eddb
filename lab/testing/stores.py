"""In-memory stand-ins for the stores a worker and a scheduler use (`lab.runtime.stores`):
counting, queue pauses and heartbeats, and the bundle a `Worker` takes. The scheduler's run,
release, objectives and head-age stand-in, and its bundle, are in `lab.testing.limiter`.
`tests/contracts/` runs the same tests on each stand-in and on the real store against Redis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab.runtime import latency
from lab.runtime.keys import Keys
from lab.runtime.stores.counting import Counted, Outcomes


class FakeCounting:
    """`record.lua` for the worker: each seq counted once (a set per run, as the bitmap), with
    what middleware counted for it (`hashes`) and its latency (`timings`) only when it is new;
    dead letters listed by run. `runs`: the runs that exist (a job of another is not counted, as
    the script counts only for a run it finds); None, the default, takes every run as existing."""

    def __init__(self, prefix: str = "unit", runs: set[str] | None = None) -> None:
        self.runs = runs
        self.done: dict[str, set[int]] = {}
        self.failed: dict[str, set[int]] = {}
        self.dead_letters: list[str | None] = []
        self.hashes: dict[str, dict[str, int]] = {}  # what middleware counted (HINCRBY)
        self.timings: dict[str, dict[int, list[Any]]] = {}  # runId → seq → latency, counted once
        self.keys = Keys(prefix)
        self.applied: dict[str, tuple[int, int]] = {}  # call id → what it counted
        self.again: dict[str, set[int]] = {}  # seqs that ended a second time
        self.unexpected: dict[str, int] = {}  # seqs past the run's x, per run
        self.x: dict[str, int] = {}  # a run's x, when a test says it (else any seq is its own)

    def record(
        self,
        outcomes: Outcomes,
        counts: Counted | None = None,
        timings: dict[str, latency.RunTimings] | None = None,
        call_id: str = "",
    ) -> tuple[int, int]:
        if call_id and call_id in self.applied:
            return self.applied[call_id]
        answer = self._record(outcomes, counts, timings)
        if call_id:
            self.applied[call_id] = answer
        return answer

    def _record(
        self,
        outcomes: Outcomes,
        counts: Counted | None,
        timings: dict[str, latency.RunTimings] | None,
    ) -> tuple[int, int]:
        new_done = new_failed = 0
        for run_id, (done, failed) in outcomes.items():
            if self.runs is not None and run_id not in self.runs:
                continue
            extra = (counts or {}).get(run_id, {})
            run_timings = (timings or {}).get(run_id)
            timed = {t[0]: t for t in run_timings.detail()["jobs"]} if run_timings else {}
            was_done = self.done.setdefault(run_id, set())
            was_failed = self.failed.setdefault(run_id, set())
            again = self.again.setdefault(run_id, set())
            x = self.x.get(run_id)
            past = [s for s in (*done, *failed) if x is not None and s >= x]
            if past:
                self.unexpected[run_id] = self.unexpected.get(run_id, 0) + len(past)
            for seq in done:
                if seq in past:
                    continue
                if seq in was_done:
                    again.add(seq)
                    continue
                was_done.add(seq)
                new_done += 1
                if seq in was_failed:  # failed earlier (retried by hand), done now
                    was_failed.discard(seq)
                    new_failed -= 1
                self._count(extra.get(seq, []))
                self._time(run_id, timed.get(seq))
            for seq in failed:
                if seq in past:
                    continue
                if seq in was_done or seq in was_failed:
                    again.add(seq)
                    continue
                was_failed.add(seq)
                new_failed += 1
                self._count(extra.get(seq, []))
                self._time(run_id, timed.get(seq))
        return new_done, new_failed

    def _time(self, run_id: str, timing: list[Any] | None) -> None:
        if timing is not None:
            self.timings.setdefault(run_id, {})[timing[0]] = timing

    def _count(self, found: list[Any]) -> None:
        for c in found:
            fields = self.hashes.setdefault(c.key, {})
            fields[c.field] = fields.get(c.field, 0) + c.n

    def dead_letter(self, run_id: str | None = None) -> None:
        self.dead_letters.append(run_id)

    def dead_lettered(self) -> int:
        return len(self.dead_letters)

    def histograms(self, run_id: str) -> dict[str, latency.Histogram]:
        """The run's latency as `Runs.histograms` reads it: each counted job's fine buckets."""
        out = {metric: latency.Histogram() for metric in latency.METRICS}
        for timing in self.timings.get(run_id, {}).values():
            for metric, bucket in zip(latency.METRICS, timing[2:5], strict=True):
                if bucket >= 0:
                    out[metric].add(bucket)
        return out


class FakePauses:
    """The paused queues, a set (`queues`)."""

    def __init__(self) -> None:
        self.queues: set[str] = set()

    def pause_queue(self, queue: str, paused: bool = True) -> bool:
        before = queue in self.queues
        (self.queues.add if paused else self.queues.discard)(queue)
        return before != paused

    def is_paused(self, queue: str) -> bool:
        return queue in self.queues

    def paused(self) -> set[str]:
        return set(self.queues)


class FakeHeartbeats:
    """Every heartbeat written, in order (`beats`: (id, fields)), and who is alive now."""

    def __init__(self) -> None:
        self.beats: list[tuple[str, dict[str, Any]]] = []
        self.workers: set[str] = set()
        self.schedulers: set[str] = set()

    def worker(self, worker_id: str, fields: dict[str, Any]) -> None:
        self.beats.append((worker_id, fields))
        self.workers.add(worker_id)

    def forget_worker(self, worker_id: str) -> None:
        self.workers.discard(worker_id)

    def scheduler(self, scheduler_id: str, fields: dict[str, Any]) -> None:
        self.beats.append((scheduler_id, fields))
        self.schedulers.add(scheduler_id)

    def forget_scheduler(self, scheduler_id: str) -> None:
        self.schedulers.discard(scheduler_id)

    def live(self) -> list[str]:
        """Workers, then schedulers, each sorted (as `Heartbeats.live`)."""
        return sorted(self.workers) + sorted(self.schedulers)


@dataclass
class FakeWorkerStores:
    """What a `Worker` takes as `stores=`."""

    counting: FakeCounting = field(default_factory=FakeCounting)
    pauses: FakePauses = field(default_factory=FakePauses)
    heartbeats: FakeHeartbeats = field(default_factory=FakeHeartbeats)
