"""Where a delivery goes when it did not simply succeed: its retry, its dead letter, or a later
look at a second copy of an attempt another worker owns. Publishing happens on the thread that
owns the connection, before the delivery is acked, so a message is never lost in between."""

from __future__ import annotations

import logging
import time
from typing import Any

from lab.runtime import broker, retry
from lab.runtime.batch import Outcome
from lab.runtime.handlers import UnknownKind, handler_for
from lab.runtime.retry import Budget
from lab.runtime.seams import CountingSeam

log = logging.getLogger("lab.runtime.worker")


class Forwarder:
    def __init__(
        self, topology: broker.Topology, worker_id: str, run_budget: Budget, counting: CountingSeam
    ):
        self.topology = topology
        self.worker_id = worker_id
        self.run_budget = run_budget
        self.counting = counting

    def retry_delay(self, outcome: Outcome) -> int:
        """The kind's own ladder step for this failure (its `RETRY_DELAYS_MS`, checked against
        the lab's ladder when it loaded), else the lab's."""
        assert outcome.job is not None
        budget = outcome.budget or self.run_budget
        try:
            ladder = handler_for(outcome.job.kind).ladder(self.topology.ladder)
        except UnknownKind:
            ladder = self.topology.ladder
        return budget.delay_ms(ladder, outcome.job.attempt)

    def send(self, channel: Any, outcome: Outcome) -> None:
        """Publish a `retry`, `dead` or `deferred` outcome where it goes next."""
        job = outcome.job
        delivery = outcome.delivery
        if outcome.verdict == "deferred" and job is not None:
            # The same attempt again, once its owner's lease could have lapsed: by then it has
            # finished (this copy is skipped) or its worker is gone (this copy takes over).
            delay = self.topology.step_at_least(outcome.defer_ms)
            queue = self.topology.retry(delay, self.topology.route(job.kind, True))
            props = broker.properties(delivery.headers, delivery.priority)
            channel.basic_publish("", queue, delivery.body, props)
            return
        if outcome.verdict == "retry" and job is not None:
            delay = self.retry_delay(outcome)
            queue = self.topology.retry(delay, self.topology.route(job.kind, job.runId is None))
            log.warning("job %s attempt %d failed, retry in %d ms: %s", job.jobId, job.attempt,
                        delay, outcome.error)  # fmt: skip
            headers = retry.retry_headers(outcome.error, delivery.headers)
            props = broker.properties(headers, delivery.priority)
            due = int(time.time() * 1000) + delay
            channel.basic_publish("", queue, job.next_attempt(due).to_json(), props)
            return
        log.error("dead-lettering %s: %s", job.jobId if job else "a message", outcome.error)
        headers = retry.dead_letter_headers(
            outcome.reason,
            outcome.error,
            delivery.queue,
            self.worker_id,
            job.attempt if job else None,
            delivery.headers,
        )
        props = broker.properties(headers, delivery.priority)
        channel.basic_publish("", self.topology.dead, delivery.body, props)
        try:
            self.counting.dead_letter(job.runId if job is not None else None)
        except Exception as exc:  # noqa: BLE001 - the letter is safe in its queue either way
            log.warning("could not count a dead letter: %r", exc)
