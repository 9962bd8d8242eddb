"""GET /status offered while a trial's run runs (`statusLoad`, lab.experiment.factors): Locust,
as `lab bench status` offers it, on a thread of its own beside the run."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from lab.config import Settings
from lab.experiment.alongside import Alongside


class StatusLoad:
    """GET /status offered at `per_second` while the trial's run runs (Locust, as `lab bench
    status` offers it), on a thread; `result()` waits for it and gives its figures."""

    def __init__(self, settings: Settings, run_id: str, per_second: int, seconds: float):
        from lab.measure.bench_status import load_step

        self.out = out = Path(tempfile.mkdtemp(prefix="lab-trial-load-"))
        processes = 1 if per_second <= 500 else 2
        self.offering = Alongside(
            "status-load",
            lambda: load_step(settings, run_id, per_second, max(5.0, seconds), out, processes),
        )

    def result(self) -> dict[str, Any]:
        f = self.offering.result()
        shutil.rmtree(self.out, ignore_errors=True)
        if "error" in f:
            raise RuntimeError(f"the GET /status load failed: {f['error']}")
        return {"status.offeredPerSecond": f["offeredPerSecond"],
                "status.answeredPerSecond": f["answeredPerSecond"],
                "status.failures": f["failures"], "status.p50Ms": f["p50Ms"],
                "status.p99Ms": f["p99Ms"]}  # fmt: skip
