"""Counting: every job's outcome counted exactly once, with its latency and whatever the worker's
middleware counts, in one script call a batch (`record.lua`).

This is the one mechanism every worker uses to say what it did, whatever runs the job: lab's own
worker calls it through `Recorder`, and so would a shim in another framework's worker. Keys: per
run `run:<id>:done` and `:failed` (bitmaps by seq), the run's counters in `run:<id>`, its
`:timeline`, `:latency` and `:rate:p:<second>`, the lab's `totals`, `history:<bucket>`,
`latency` and `deadlettered`, and the keys middleware names (`Count`).
"""

from __future__ import annotations

import json
from typing import Any

from lab.runtime import scripts
from lab.runtime.latency import RunTimings
from lab.runtime.stores.base import RedisStore

Outcomes = dict[str, tuple[list[int], list[int]]]  # runId → (done seqs, failed seqs)
Counted = dict[str, dict[int, list[Any]]]  # runId → seq → what middleware counts of it (`Count`)
Timed = dict[str, RunTimings]  # runId → its jobs' latency (`recording.timings_of`)


class Counting(RedisStore):
    def record(
        self,
        outcomes: Outcomes,
        counts: Counted | None = None,
        timings: Timed | None = None,
        call_id: str = "",
    ) -> tuple[int, int]:
        """Count a batch: {runId: (done seqs, failed seqs)} → (newly processed, newly failed).

        `counts` ({runId: {seq: [Count, ...]}}, from the worker's middleware) and `timings`
        (`recording.timings_of`: each job's latency) are added in the same call, each only
        when its job is counted for the first time. `call_id` names the batch: sent again (a
        reply lost to a timeout), it adds nothing and answers what it added the first time."""
        if not outcomes:
            return 0, 0
        if not timings:
            return self._record(outcomes, counts, None, call_id)
        # The batch's latency in a few hundred numbers, counted whole when every job is new;
        # else job by job, so a job seen before adds nothing.
        added_up = {r: t.added_up() for r, t in timings.items()}
        answer = self._record(outcomes, counts, added_up, call_id)
        if answer[0] >= 0:
            return answer
        return self._record(outcomes, counts, {r: t.detail() for r, t in timings.items()}, call_id)

    def _record(
        self,
        outcomes: Outcomes,
        counts: Counted | None,
        timings: dict[str, dict[str, Any]] | None,
        call_id: str,
    ) -> tuple[int, int]:
        k = self.keys
        run_keys: list[str] = []
        extra_keys: dict[str, int] = {}  # a middleware key → its 1-based index after the runs'
        entries = []
        for run_id, (done, failed) in outcomes.items():
            run_keys += k.run_keys(run_id)
            ops = [
                [
                    seq,
                    [
                        [extra_keys.setdefault(c.key, len(extra_keys) + 1), c.field, c.n]
                        for c in found
                    ],
                ]  # fmt: skip
                for seq, found in (counts or {}).get(run_id, {}).items()
                if found
            ]
            entries.append([run_id, done, failed, ops, (timings or {}).get(run_id, {})])
        new_done, new_failed = self.call(
            scripts.RECORD,
            keys={
                "active": k.active_run,
                "events": k.events,
                "totals": k.totals,
                "history": k.history(),
                "latency": k.latency,
                "applied": k.applied(call_id or "-"),
            },
            args={
                "maxlen": self.settings.event_stream_len,
                "entries": json.dumps(entries, separators=(",", ":")),
                "history_s": self.settings.history_s,
                "call": call_id,
            },
            more_keys=[*run_keys, *extra_keys],
        )
        return int(new_done), int(new_failed)

    def dead_letter(self, run_id: str | None = None) -> None:
        """One more dead letter, for the lab and, when it was a run's job, for that run."""
        self.redis.incr(self.keys.dead_lettered)
        if run_id and self.redis.exists(self.keys.run(run_id)):
            self.redis.hincrby(self.keys.run(run_id), "deadLettered", 1)

    def dead_lettered(self) -> int:
        """Messages this lab sent to its dead-letter queue, ever."""
        return int(self.redis.get(self.keys.dead_lettered) or 0)

    def bitmap_bytes(self, run_id: str) -> int:
        """What a run's exactly-once bitmap costs Redis (the benchmark reports it)."""
        return int(self.redis.memory_usage(self.keys.run_done(run_id)) or 0)
