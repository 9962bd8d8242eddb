"""Worker middleware: named hooks around each delivery, in the spirit of Dramatiq's.

The worker's loop (receive, run the handler, record, ack) stays on one screen; what cuts across
every delivery lives here, one module each, and a new such behaviour is one module plus one line
in `default_stack`. The hooks, in the order a delivery meets them:

    on_start(worker)                  the worker is about to consume
    before_process(worker, batch)     before anything of a batch (or a one-by-one job) starts:
                                      return "requeue" to put every delivery back unstarted
    counts(outcome)                   what it counts for a run's job, added to the batch's one
                                      Redis call and applied only when the job's bit was new
                                      (a redelivery adds nothing): [Count(key, field, n), ...]
    after_process(worker, outcomes,   on the connection's thread, once a batch (or a job) was
                  counted)            written and counted: `counted` is (newly processed, newly
                                      failed) as the exactly-once count found them
    on_success / on_retry /           then, as each outcome is acted on (before its ack)
    on_dead_letter(worker, outcome)
    on_heartbeat(worker) -> fields    each heartbeat: fields it adds (named in beats.WORKER),
                                      and its periodic work (renewing leases, watching pauses)
    on_stop(worker)                   the worker stops

Order matters where hooks decide: the first `before_process` that says "requeue" wins, and
`default_stack` puts the pause first so nothing else runs for a paused queue. Hooks that only
observe see every outcome whatever the order. A hook that raises is logged and skipped: a
middleware's bug never costs a delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from lab.runtime.patience import Stopping

if TYPE_CHECKING:
    from lab.runtime.batch import Delivery, Outcome
    from lab.runtime.worker import Worker

log = logging.getLogger("lab.runtime.middleware")

Decision = Literal["requeue"] | None


@dataclass(frozen=True)
class Count:
    """HINCRBY `key` `field` `n`, done by the script that counts the job, only when the job was
    counted for the first time. `key` is a full Redis key (from `lab.runtime.keys`)."""

    key: str
    field: str
    n: int = 1


class Middleware:
    """Every hook does nothing; a middleware overrides the ones it needs."""

    def on_start(self, worker: Worker) -> None:
        return None

    def before_process(self, worker: Worker, batch: list[Delivery]) -> Decision:
        return None

    def counts(self, worker: Worker, outcome: Outcome) -> list[Count]:
        return []

    def after_process(
        self, worker: Worker, outcomes: list[Outcome], counted: tuple[int, int]
    ) -> None:
        return None

    def on_success(self, worker: Worker, outcome: Outcome) -> None:
        return None

    def on_retry(self, worker: Worker, outcome: Outcome) -> None:
        return None

    def on_dead_letter(self, worker: Worker, outcome: Outcome) -> None:
        return None

    def on_heartbeat(self, worker: Worker) -> dict[str, Any]:
        return {}

    def on_stop(self, worker: Worker) -> None:
        return None


HOOKS = ("on_start", "before_process", "counts", "after_process", "on_success", "on_retry",
         "on_dead_letter", "on_heartbeat", "on_stop")  # fmt: skip


class Stack:
    """The worker's middleware, called in order; a hook that raises is logged, not fatal.

    Each hook calls only the middleware that override it (found once, here): the per-job hooks
    sit on the hot path, and a hook nobody implements must cost nothing there."""

    def __init__(self, middleware: list[Middleware]):
        self.middleware = list(middleware)
        self._with = {
            hook: [
                m
                for m in self.middleware
                if getattr(type(m), hook) is not getattr(Middleware, hook)
            ]  # fmt: skip
            for hook in HOOKS
        }

    def of(self, kind: type[Middleware]) -> Any:
        """The installed middleware of this class (tests and the worker's own views use it)."""
        return next(m for m in self.middleware if isinstance(m, kind))

    def _each(self, hook: str, *args: Any) -> list[Any]:
        results = []
        for m in self._with[hook]:
            try:
                results.append(getattr(m, hook)(*args))
            except Stopping:
                raise  # asked to stop while waiting for a service: not a bug
            except Exception:  # noqa: BLE001 - a middleware's bug never costs a delivery
                log.exception("middleware %s.%s failed", type(m).__name__, hook)
        return results

    def before_process(self, worker: Worker, batch: list[Delivery]) -> Decision:
        for m in self._with["before_process"]:
            try:
                decision = m.before_process(worker, batch)
            except Stopping:
                raise
            except Exception:  # noqa: BLE001
                log.exception("middleware %s.before_process failed", type(m).__name__)
                continue
            if decision is not None:
                return decision
        return None

    def counts_for(self, worker: Worker) -> Callable[[Outcome], list[Count]] | None:
        """What the recorder asks for each run job, or None when no middleware counts (then it
        asks nothing, job by job)."""
        return (lambda o: self.counts(worker, o)) if self._with["counts"] else None

    def counts(self, worker: Worker, outcome: Outcome) -> list[Count]:
        return [c for found in self._each("counts", worker, outcome) for c in found or []]

    def after_process(
        self, worker: Worker, outcomes: list[Outcome], counted: tuple[int, int]
    ) -> None:
        self._each("after_process", worker, outcomes, counted)

    def acted_on(self, worker: Worker, outcome: Outcome) -> None:
        """`on_success`, `on_retry` or `on_dead_letter`, by what became of the outcome."""
        hook = ACTED.get(outcome.verdict)
        if hook and self._with[hook]:
            self._each(hook, worker, outcome)

    def heartbeat(self, worker: Worker) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for found in self._each("on_heartbeat", worker):
            fields.update(found or {})
        return fields

    def start(self, worker: Worker) -> None:
        self._each("on_start", worker)

    def stop(self, worker: Worker) -> None:
        self._each("on_stop", worker)


ACTED = {"written": "on_success", "retry": "on_retry", "dead": "on_dead_letter"}


def default_stack() -> Stack:
    """The middleware every worker runs, in order (docs/ARCHITECTURE.md says why this order)."""
    from lab.runtime.middleware.counters import Counters
    from lab.runtime.middleware.leases import Leases
    from lab.runtime.middleware.pause import Pause

    return Stack([Pause(), Leases(), Counters()])
