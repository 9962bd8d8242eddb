"""`lab bench panel`: how far behind the pipeline the notebook panel is.

A run goes through one worker while a `ControlPanel` (the same object a notebook displays) follows
it. Every time the panel draws, it notes how many jobs it shows as processed. Afterwards each job's
`processedAt` is read from Elasticsearch (stamped by the worker just before the write that
precedes its ack): the N-th job processed became visible when the panel first drew a count ≥ N.
The difference, over every job, is the lag — it includes the batch write, the event throttle
(about ten run events a second), the SSE hop and the panel's own draw throttle.
"""

from __future__ import annotations

import bisect
import time
from pathlib import Path
from statistics import median
from typing import Any

from lab.config import Settings
from lab.ops.reset import isolated, reset
from lab.ops.supervisor import Supervisor
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.stats import percentile
from lab.wait import wait_until


def processed_times_ms(store: Store, run_id: str) -> list[int]:
    store.refresh()
    return [doc["processedAt"] for doc in store.run_fields(run_id, ["processedAt"])]


def panel_lag_check(base: Settings, x: int, y: float, home: Path) -> dict[str, Any]:
    from lab.views.panel import ControlPanel

    settings = isolated(base, "labbench", home=str(home))
    supervisor = Supervisor(settings, log_dir=home / "logs")
    store = Store(settings)
    panel = None
    try:
        supervisor.up(workers=1)
        panel = ControlPanel(settings, supervisor)
        wait_until(lambda: panel.connected, 30, "the panel to follow the event stream")
        run_id = panel.start_run(x, y)
        if run_id is None:
            raise RuntimeError(panel.error)
        panel.wait_until_done(timeout_s=600)
        time.sleep(0.5)  # let the last draw land
        settled = Stores.of(settings).runs.get(run_id)
        done = processed_times_ms(store, run_id)
        drawn = [(t * 1000, n) for t, n in panel.drawn]
        counts = [n for _t, n in drawn]
        lags = []
        for index, processed_ms in enumerate(done, start=1):
            first = bisect.bisect_left(counts, index)
            if first < len(drawn):
                lags.append(drawn[first][0] - processed_ms)
        return {
            "x": x,
            "yPerMinute": y,
            "processed": settled.processed if settled else None,
            "jobsMeasured": len(lags),
            "draws": len(drawn),
            "jobToPanelMs": {
                "median": round(median(lags), 1) if lags else None,
                "p95": round(percentile(lags, 95), 1),
                "p99": round(percentile(lags, 99), 1),
                "max": round(max(lags, default=0), 1),
            },
            "eventToPanelMs": panel.lag(),
        }
    finally:
        if panel is not None:
            panel.close()
        store.close()
        supervisor.down(grace_s=30)
        reset(settings)
