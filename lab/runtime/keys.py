"""The one place that knows Redis key names. `docs/REDIS_KEYS.md` describes each of them.

Every key starts with the configured prefix, so one Redis can hold many isolated labs (each test
uses its own prefix) and `lab` can clean up exactly what it made.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str

    # --- runs ---------------------------------------------------------------------------------
    @property
    def active_run(self) -> str:
        """String: the runId being released now, absent when no run is active. Not under
        `run:` so that no run id can name it (ids never hold `:`)."""
        return f"{self.prefix}:active-run"

    @property
    def runs(self) -> str:
        """Sorted set: every runId, scored by its start time in ms (the run history)."""
        return f"{self.prefix}:runs"

    def run(self, run_id: str) -> str:
        """Hash: one run's plan and counters (xTotal, yMinutes, enqueued, processed, ...)."""
        return f"{self.prefix}:run:{run_id}"

    def run_done(self, run_id: str) -> str:
        """Bitmap: bit `seq` is 1 once job `<runId>-<seq>` has been counted as processed."""
        return f"{self.prefix}:run:{run_id}:done"

    def run_failed(self, run_id: str) -> str:
        """Bitmap: bit `seq` is 1 while job `<runId>-<seq>` is counted as failed."""
        return f"{self.prefix}:run:{run_id}:failed"

    def run_processed_in(self, run_id: str, second: int | str = "%d") -> str:
        """String with a 2-minute TTL: the run's jobs counted processed in that unix second.
        Without `second` (and with `run_id="%s"`), a `string.format` template: the scripts fill
        in the second they count in, so the key's name is still made here."""
        return f"{self.prefix}:run:{run_id}:rate:p:{second}"

    def run_released_in(self, run_id: str, second: int | str = "%d") -> str:
        """String with a 2-minute TTL: the run's jobs released in that unix second (a template
        without `second`, as above)."""
        return f"{self.prefix}:run:{run_id}:rate:e:{second}"

    def run_timeline(self, run_id: str) -> str:
        """Hash: the run's jobs per second, fields `<unix second>:<released|processed|failed>`
        (`GET /runs/{id}/timeline`); it lives as long as the run's other keys."""
        return f"{self.prefix}:run:{run_id}:timeline"

    def run_latency(self, run_id: str) -> str:
        """Hash: the run's latency histograms over its whole life, fields
        `<q|s|e>|<kind>|<bucket>` → jobs (`lab.runtime.latency`; `GET /runs/{id}/latency`)."""
        return f"{self.prefix}:run:{run_id}:latency"

    def run_latency_window(self, run_id: str, window: int) -> str:
        """Hash: the same for the jobs that ended in one 10-second window (its number: unix
        seconds // 10), so objectives read their window only; listed in `run_owned`."""
        return f"{self.run_latency(run_id)}:w:{window}"

    @property
    def latency(self) -> str:
        """Hash: lifetime latency histograms for /metrics, fields `<q|s|e>|<kind>|<le index>`
        → jobs and `<q|s|e>|<kind>|sum` → µs (coarse buckets: `latency.PROMETHEUS_LE`)."""
        return f"{self.prefix}:latency"

    def run_kinds(self, run_id: str) -> str:
        """Hash: the run's jobs processed per kind (`lab.runtime.middleware.kinds`, when a worker
        installs it); it lives as long as the run's other keys."""
        return f"{self.prefix}:run:{run_id}:kinds"

    def run_owned(self, run_id: str) -> str:
        """Set: the run's keys made as it goes (its latency windows, the keys middleware counted
        into), added by the counting script as it writes each, so forgetting the run deletes
        them too."""
        return f"{self.prefix}:run:{run_id}:owned"

    def run_again(self, run_id: str) -> str:
        """Bitmap: bit `seq` is 1 once job `<runId>-<seq>` ended a second time (a redelivery
        that ran it again): the delivery verdict's "executed more than once"."""
        return f"{self.prefix}:run:{run_id}:again"

    def run_submitted(self, run_id: str) -> str:
        """Bitmap: bit `seq` is 1 once a target's broker took job `<runId>-<seq>` (a submit
        `ok`); lab's own target needs none (what it released is below `enqueued`)."""
        return f"{self.prefix}:run:{run_id}:submitted"

    def run_indeterminate(self, run_id: str) -> str:
        """Bitmap: bit `seq` is 1 when the job's submit was indeterminate (timed out: the broker
        may or may not have it)."""
        return f"{self.prefix}:run:{run_id}:indeterminate"

    def applied(self, call_id: str) -> str:
        """String with a 10-minute TTL: what one counted batch added (`record.lua`), so the
        same batch sent again after a lost reply adds nothing."""
        return f"{self.prefix}:applied:{call_id}"

    def run_keys(self, run_id: str) -> list[str]:
        """The keys of a run the counting script takes, in its order (`run_keys_all`: every
        key a run owns)."""
        return [
            self.run(run_id),
            self.run_done(run_id),
            self.run_failed(run_id),
            self.run_processed_in(run_id),
            self.run_timeline(run_id),
            self.run_latency(run_id),
            self.run_owned(run_id),
            self.run_again(run_id),
        ]

    def run_keys_all(self, run_id: str) -> list[str]:
        """Every key a run owns that is named here (its latency windows and middleware keys are
        listed in `run_owned` as they are made)."""
        return [*self.run_keys(run_id), self.run_submitted(run_id),
                self.run_indeterminate(run_id)]  # fmt: skip

    @property
    def run_template(self) -> str:
        """`run(...)` as a Lua `string.format` template, for scripts that look the run up."""
        return self.run("%s")

    @property
    def scheduler_lease(self) -> str:
        """String with a TTL: the id of the scheduler allowed to release."""
        return f"{self.prefix}:scheduler:lease"

    @property
    def schedulers(self) -> str:
        """Set: ids of schedulers that have announced themselves (stale ids pruned on read)."""
        return f"{self.prefix}:schedulers"

    def scheduler(self, scheduler_id: str) -> str:
        """Hash with a TTL: one scheduler's heartbeat (id, pid, host, leader, runId, waitingFor)."""
        return f"{self.prefix}:scheduler:{scheduler_id}"

    @property
    def scheduler_template(self) -> str:
        return self.scheduler("%s")

    @property
    def down_requested(self) -> str:
        """String with a short TTL: `lab down` asks every `lab up` of this lab to stop its
        processes and end (a `lab up` would restart what `lab down` stopped otherwise)."""
        return f"{self.prefix}:down-requested"

    @property
    def processes(self) -> str:
        """Hash: name → JSON {pid, host, role, argv, log, startedAt} of each supervised process,
        so a second supervisor (another notebook) adopts them instead of starting them twice."""
        return f"{self.prefix}:processes"

    # --- workers ------------------------------------------------------------------------------
    @property
    def workers(self) -> str:
        """Set: ids of workers that have announced themselves (stale ids are pruned on read)."""
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        """Hash with a TTL: one worker's heartbeat (id, pid, host, processed, started, seen)."""
        return f"{self.prefix}:worker:{worker_id}"

    @property
    def worker_template(self) -> str:
        return self.worker("%s")

    # --- single jobs (POST /jobs) --------------------------------------------------------------
    def job(self, job_id: str) -> str:
        """Hash: one single job's record (state, progress, step, attempt, payload, result, ...)."""
        return f"{self.prefix}:job:{job_id}"

    def job_log(self, job_id: str) -> str:
        """List: the job's log lines as JSON `{at, attempt, step, progress, message}`."""
        return f"{self.prefix}:job:{job_id}:log"

    def job_events(self, job_id: str) -> str:
        """Stream: the job's own events, served by `GET /jobs/{id}/stream` (resumable)."""
        return f"{self.prefix}:job:{job_id}:events"

    def job_deleted(self, job_id: str) -> str:
        """String with a TTL: a deleted job's tombstone, so its queued message is skipped."""
        return f"{self.prefix}:job:{job_id}:deleted"

    def job_keys(self, job_id: str) -> list[str]:
        """The keys the job scripts take, in their order (see `lab/runtime/lua/job_*.lua`)."""
        return [self.job(job_id), self.job_log(job_id), self.job_events(job_id), self.events]

    @property
    def jobs(self) -> str:
        """Sorted set (all scores 0, ordered by member): every single job's id; ids sort by time."""
        return f"{self.prefix}:jobs"

    def jobs_in(self, state: str) -> str:
        """Sorted set like `jobs`, holding the ids of the jobs in one state."""
        return f"{self.prefix}:jobs:{state}"

    @property
    def delayed_jobs(self) -> str:
        """Sorted set: queued single jobs whose message waits until its `runAt` (the score, ms)."""
        return f"{self.prefix}:delayed-jobs"

    @property
    def promoting_jobs(self) -> str:
        """Sorted set: delayed jobs an API process took to publish (score: when, ms); one left
        there longer than a few seconds (its process died) is taken again."""
        return f"{self.prefix}:promoting-jobs"

    @property
    def jobs_in_template(self) -> str:
        return self.jobs_in("%s")

    @property
    def retry_queues(self) -> str:
        """Set (legacy): the per-delay retry queues older labs declared; `lab reset` reads it to
        remove them. Today's retry queues are the fixed ladder (lab/runtime/retry.py)."""
        return f"{self.prefix}:queues:retry"

    # --- events and counters without a run ---------------------------------------------------
    @property
    def events(self) -> str:
        """Stream: the event log the API turns into SSE and WebSocket messages."""
        return f"{self.prefix}:events"

    @property
    def head_ages(self) -> str:
        """Hash with a short TTL: the head-of-line age of each consumed queue in ms, measured
        by the scheduler leader each second (`lab.runtime.headage`), with `atMs`, `run` and
        `runAgeMs`."""
        return f"{self.prefix}:head_ages"

    @property
    def paused_queues(self) -> str:
        """Set: the consumed queues workers take nothing new from (`POST /queues/{name}/pause`);
        kept here so a pause outlives every process."""
        return f"{self.prefix}:paused-queues"

    @property
    def dead_lettered(self) -> str:
        """String counter: messages sent to the dead-letter queue (malformed or out of attempts)."""
        return f"{self.prefix}:deadlettered"

    @property
    def totals(self) -> str:
        """Hash: jobs released, processed and failed since this lab's keys were made, over all
        runs (what `/metrics` exports as `_total` counters)."""
        return f"{self.prefix}:totals"

    def history(self, bucket: int | str = "%d") -> str:
        """Hash expiring after `LAB_HISTORY_S`: released, processed and failed jobs in the
        10-second bucket starting at that unix second (`GET /history`, the admin chart); a
        template for the scripts without `bucket`."""
        return f"{self.prefix}:history:{bucket}"

    @property
    def bullmq_relay(self) -> str:
        """String: the id of the last event of BullMQ's queue (`bull:<LAB_QUEUE>.bullmq:events`)
        recorded into single jobs' records (`lab.targets.bullmq_relay`); made when the first
        single job goes to BullMQ, so the relay resumes where it stopped after any restart."""
        return f"{self.prefix}:bullmq-relay"

    @property
    def bullmq_relay_lease(self) -> str:
        """String with a TTL: the API process that relays BullMQ's events now (one at a time)."""
        return f"{self.prefix}:bullmq-relay:lease"

    @property
    def scripts(self) -> str:
        """Hash: each Lua script's name (`record`, `job_begin`, ...) → the SHA1 of its source as
        lab loads it (`common.lua` + the script), written with `SCRIPT LOAD` when a store
        registers the script, so a shim in another language (`targets/bullmq/lib/shim.js`)
        calls lab's own script by `EVALSHA`."""
        return f"{self.prefix}:scripts"

    @property
    def pattern(self) -> str:
        """Glob matching every key of this prefix, for cleanup."""
        return f"{self.prefix}:*"
