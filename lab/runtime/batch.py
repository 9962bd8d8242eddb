"""What happens to each delivery of a batch: the decisions of the worker, without its I/O.

A delivery ends in exactly one verdict, and the worker acks it only after acting on it:
  written    the document is in Elasticsearch → count processed, ack
  retry      the job failed and has attempts left → publish to its ladder step's queue, ack
  dead       malformed, unknown kind, a permanent failure (the kind said so, its payload
             cannot run, or its arithmetic failed: `retry.PERMANENT`), or out of attempts
             → publish to the dead-letter queue, ack
  cancelled  a single job stopped at a progress step because it was cancelled → ack
  skipped    a single job that was cancelled, deleted or superseded before it ran → ack
  requeued   its queue is paused: it goes back to the queue unstarted → nack with requeue
  deferred   a second copy of an attempt another worker owns: looked at again once that
             worker's lease could have lapsed → publish the same attempt to a ladder step, ack
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from lab.runtime.handlers import Handler, UnknownKind, handler_for
from lab.runtime.messages import Job, MalformedMessage, parse
from lab.runtime.progress import NO_PROGRESS, JobCancelled, JobContext
from lab.runtime.retry import PERMANENT, Budget, Reason

Verdict = Literal[
    "pending", "written", "retry", "dead", "cancelled", "skipped", "requeued", "deferred"
]


@dataclass
class Delivery:
    tag: int
    body: bytes
    redelivered: bool = False
    headers: dict[str, Any] | None = None
    queue: str = ""  # the queue it was consumed from, for its dead letter's headers
    priority: int | None = None  # its AMQP priority, kept when it is retried or dead-lettered

    @classmethod
    def of(cls, queue: str, method: Any, props: Any, body: bytes) -> Delivery:
        """A delivery as pika hands it to a consumer callback (headers and priority checked:
        anyone can publish anything)."""
        headers = props.headers if props is not None and isinstance(props.headers, dict) else None
        priority = getattr(props, "priority", None)
        priority = priority if isinstance(priority, int) and 0 <= priority <= 255 else None
        return cls(method.delivery_tag, body, method.redelivered, headers, queue, priority)


@dataclass
class Outcome:
    delivery: Delivery
    job: Job | None
    verdict: Verdict = "pending"
    doc: dict[str, Any] | None = None
    error: str | None = None
    reason: Reason = "exhausted"  # why a `dead` outcome is dead
    tracked: bool = False  # a single job with a record in Redis (lab.runtime.jobs)
    budget: Budget | None = None  # the attempts it may use (set when it failed)
    lease: str = ""  # the token this worker owns a single job's attempt by
    defer_ms: int = 0  # `deferred`: how long the owner's lease runs on
    started_ms: float = 0.0  # epoch ms the attempt's handler started (lab.runtime.latency)
    # Epoch ms the handler of a kind run one by one returned: its service time ends there (its
    # own work); a batch's kinds are served by their shared bulk write, so theirs ends with it.
    ended_ms: float = 0.0

    def permanent(self, error: str) -> None:
        """A failure no retry can mend: dead at once, whatever attempts are left."""
        self.error = error
        self.doc = None
        self.verdict = "dead"
        self.reason = "permanent"

    def fail(self, error: str, budget: Budget) -> None:
        """A job that failed: retried while its budget lasts, then dead."""
        assert self.job is not None
        self.error = error
        self.doc = None
        self.budget = budget
        self.verdict = budget.after_failure(self.job.attempt)


# What processing hands back to the connection's thread: the outcomes, and (newly processed,
# newly failed) as the exactly-once count found them.
Result = tuple[list[Outcome], tuple[int, int]]


def document(
    job: Job, result: dict[str, Any], worker_id: str, started_ms: float = 0.0
) -> dict[str, Any]:
    """The job's document: what its handler returned, and where its time went (first released,
    this attempt released and started, written: epoch ms)."""
    return {
        "jobId": job.jobId,
        "runId": job.runId,
        "seq": job.seq,
        "kind": job.kind,
        "attempt": job.attempt,
        "createdAt": job.createdAt,
        "releasedAt": job.released_at,
        "startedAt": int(started_ms),
        "processedAt": int(time.time() * 1000),
        "worker": worker_id,
        "result": result,
    }


def prepare(delivery: Delivery) -> tuple[Outcome, Handler | None]:
    """Parse a delivery and find its handler; an outcome that is already `dead` has none."""
    try:
        job = parse(delivery.body)
    except MalformedMessage as exc:
        return Outcome(delivery, None, "dead", error=f"malformed: {exc}", reason="malformed"), None
    try:
        return Outcome(delivery, job), handler_for(job.kind)
    except UnknownKind as exc:
        # Retrying cannot help; it still counts as failed for its run.
        return Outcome(delivery, job, "dead", error=str(exc), reason="unknown-kind"), None


def execute(
    outcome: Outcome,
    handler: Handler,
    worker_id: str,
    budget: Budget,
    ctx: JobContext = NO_PROGRESS,
) -> None:
    """Check the payload and run the handler: the outcome gets its document, or fails (for good
    when the kind says so), or is cancelled."""
    assert outcome.job is not None
    outcome.budget = budget
    outcome.started_ms = time.time() * 1000
    try:
        handler.check(outcome.job.payload)
        result = handler(outcome.job, ctx)
        outcome.doc = document(outcome.job, result, worker_id, outcome.started_ms)
    except JobCancelled as exc:
        outcome.verdict = "cancelled"
        outcome.error = str(exc)
    except PERMANENT as exc:
        outcome.permanent(f"{type(exc).__name__}: {exc}")
    except (Exception, SystemExit) as exc:  # a handler's failure is the job's, never the worker's
        outcome.fail(f"{type(exc).__name__}: {exc}", budget)
    finally:
        if not handler.batchable:
            outcome.ended_ms = time.time() * 1000


def budget_of(handler: Handler, lab_budget: Budget) -> Budget:
    """A run job's attempts: the kind's own `ATTEMPTS`, else the lab's."""
    return Budget.of_run_job(handler.attempts) if handler.attempts else lab_budget


def run_handlers(
    deliveries: list[Delivery],
    worker_id: str,
    budget: Budget,
    per_message: list[Delivery] | None = None,
) -> list[Outcome]:
    """Parse every delivery and run its handler; documents are not written yet.

    With `per_message`, deliveries that must run on their own (kinds that declare
    `BATCHABLE = False`, and single jobs, which have a record to keep) are not run here but
    appended to that list, for the worker to run one by one under its concurrency limit.
    """
    outcomes = []
    for delivery in deliveries:
        outcome, handler = prepare(delivery)
        if handler is None:
            outcomes.append(outcome)
            continue
        assert outcome.job is not None
        if per_message is not None and (not handler.batchable or outcome.job.runId is None):
            per_message.append(delivery)
            continue
        execute(outcome, handler, worker_id, budget_of(handler, budget))
        outcomes.append(outcome)
    return outcomes


def apply_bulk(outcomes: list[Outcome], failed: dict[str, str], budget: Budget) -> None:
    """Mark documents Elasticsearch took as written and those it refused as failed."""
    for outcome in outcomes:
        if outcome.verdict != "pending" or outcome.job is None:
            continue
        reason = failed.get(outcome.job.jobId)
        if reason is None:
            outcome.verdict = "written"
        else:
            outcome.fail(f"elasticsearch refused the document: {reason}", outcome.budget or budget)


def counts_by_run(outcomes: list[Outcome]) -> dict[str, tuple[list[int], list[int]]]:
    """{runId: (seqs written, seqs dead)} for the exactly-once counting script."""
    per_run: dict[str, tuple[list[int], list[int]]] = {}
    for outcome in outcomes:
        job = outcome.job
        if job is None or job.runId is None or job.seq is None:
            continue
        done, dead = per_run.setdefault(job.runId, ([], []))
        if outcome.verdict == "written":
            done.append(job.seq)
        elif outcome.verdict == "dead":
            dead.append(job.seq)
    return per_run
