"""The worker's middleware in order (`Stack`), and the stack every worker runs by default.

A hook that raises is logged and skipped, so a middleware's bug never costs a delivery; only
`Stopping` (asked to stop while waiting for a service) goes through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lab.runtime.middleware.counters import Counters
from lab.runtime.middleware.hooks import HOOKS, Count, Decision, Middleware
from lab.runtime.middleware.leases import Leases
from lab.runtime.middleware.pause import Pause
from lab.runtime.patience import Stopping

if TYPE_CHECKING:
    from lab.runtime.batch import Delivery, Outcome
    from lab.runtime.seams import WorkerSeam

log = logging.getLogger("lab.runtime.middleware")


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

    def before_process(self, worker: WorkerSeam, batch: list[Delivery]) -> Decision:
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

    def counts_for(self, worker: WorkerSeam) -> Callable[[Outcome], list[Count]] | None:
        """What the recorder asks for each run job, or None when no middleware counts (then it
        asks nothing, job by job)."""
        return (lambda o: self.counts(worker, o)) if self._with["counts"] else None

    def counts(self, worker: WorkerSeam, outcome: Outcome) -> list[Count]:
        return [c for found in self._each("counts", worker, outcome) for c in found or []]

    def after_process(
        self, worker: WorkerSeam, outcomes: list[Outcome], counted: tuple[int, int]
    ) -> None:
        self._each("after_process", worker, outcomes, counted)

    def acted_on(self, worker: WorkerSeam, outcome: Outcome) -> None:
        """`on_success`, `on_retry` or `on_dead_letter`, by what became of the outcome."""
        hook = ACTED.get(outcome.verdict)
        if hook and self._with[hook]:
            self._each(hook, worker, outcome)

    def heartbeat(self, worker: WorkerSeam) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for found in self._each("on_heartbeat", worker):
            fields.update(found or {})
        return fields

    def start(self, worker: WorkerSeam) -> None:
        self._each("on_start", worker)

    def stop(self, worker: WorkerSeam) -> None:
        self._each("on_stop", worker)


ACTED = {"written": "on_success", "retry": "on_retry", "dead": "on_dead_letter"}


def default_stack() -> Stack:
    """The middleware every worker runs, in order (docs/ARCHITECTURE.md says why this order)."""
    return Stack([Pause(), Leases(), Counters()])
