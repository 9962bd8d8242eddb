"""The hooks a middleware may implement (`Middleware`, each doing nothing until overridden), and
what a counting hook hands back (`Count`). The package's docstring says when each hook runs.

Hooks take the worker as `WorkerSeam` (`lab.runtime.seams`): what a middleware may read of the
worker and ask of it. Typing them against that Protocol, not the `Worker` class, keeps every
middleware below the worker, so the worker can import them and never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lab.runtime.batch import Delivery, Outcome
    from lab.runtime.seams import WorkerSeam

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

    def on_start(self, worker: WorkerSeam) -> None:
        return None

    def before_process(self, worker: WorkerSeam, batch: list[Delivery]) -> Decision:
        return None

    def counts(self, worker: WorkerSeam, outcome: Outcome) -> list[Count]:
        return []

    def after_process(
        self, worker: WorkerSeam, outcomes: list[Outcome], counted: tuple[int, int]
    ) -> None:
        return None

    def on_success(self, worker: WorkerSeam, outcome: Outcome) -> None:
        return None

    def on_retry(self, worker: WorkerSeam, outcome: Outcome) -> None:
        return None

    def on_dead_letter(self, worker: WorkerSeam, outcome: Outcome) -> None:
        return None

    def on_heartbeat(self, worker: WorkerSeam) -> dict[str, Any]:
        return {}

    def on_stop(self, worker: WorkerSeam) -> None:
        return None


HOOKS = ("on_start", "before_process", "counts", "after_process", "on_success", "on_retry",
         "on_dead_letter", "on_heartbeat", "on_stop")  # fmt: skip
