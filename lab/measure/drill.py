"""What the drill notebooks share: a private lab namespace, a sampler of `GET /status`, a verdict
table and the summary `lab report` reads.

A drill never touches the user's lab: `drill_settings` gives it its own key prefix, queues, index
and API port (and `teardown` deletes them), while it uses the same supervisor, API and client as
everything else.
"""

from __future__ import annotations

import atexit
import contextlib
import html
import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, Protocol

import httpx

from lab.client import ApiError, LabClient
from lab.config import Settings, redacted
from lab.ops.reset import isolated, reset
from lab.ops.supervisor import Supervisor
from lab.stats import percentile
from lab.views.notebook import lab_settings


class Stoppable(Protocol):
    """A service a drill started (`lab.ops.servers`: a `Local`, a `Cluster`)."""

    def stop(self) -> None: ...


def drill_settings(name: str, keep: bool = False, **overrides: Any) -> Settings:
    """The drill's own namespace. Unless `keep`, it is deleted when the kernel exits too, so a
    drill that fails half-way (papermill stops at the failing cell) leaves nothing behind."""
    settings = isolated(lab_settings(), f"drill-{name}", **overrides)
    if not keep:
        atexit.register(_teardown_quietly, settings)
    return settings


def teardown(settings: Settings, *, queues: bool = True) -> None:
    """Delete the drill's keys, queues and index (its processes are stopped by the caller);
    `queues=False` when the drill's private broker goes with its data right after."""
    reset(settings, queues=queues)


def _teardown_quietly(settings: Settings) -> None:
    with contextlib.suppress(Exception):  # at exit the services may be gone already
        reset(settings)


class Keeper:
    """The drill's lab kept up while faults hit it: whatever process exits is started again
    (`Supervisor.watch`, as `lab up` does), on a thread of its own, until `down`."""

    def __init__(self, supervisor: Supervisor, poll_s: float = 0.5):
        self.supervisor = supervisor
        self.done = threading.Event()
        watch = {"until": self.done.is_set, "poll_s": poll_s}
        threading.Thread(target=supervisor.watch, kwargs=watch, daemon=True).start()

    def down(self) -> None:
        """Stop watching, then stop every process of the lab."""
        self.done.set()
        self.supervisor.down()


def end_drill(
    settings: Settings, keep: bool, *services: Stoppable, home: Path | None = None,
    queues: bool = True,
) -> None:  # fmt: skip
    """The end of a drill that started services of its own: the drill's keys, queues and index
    deleted (`teardown`), the `services` stopped and their `home` removed; with `keep`, all of
    it left as it is for a closer look, and the settings that reach it printed."""
    if keep:
        print("kept:", redacted(settings))
        return
    teardown(settings, queues=queues)
    for service in services:
        service.stop()
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


class EventFollower:
    """Follows the lab's `/events` on its own thread, as a dashboard would: reconnecting with
    `Last-Event-ID` whenever the stream breaks, counting events and reconnects, keeping the
    figures of the last run event."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.events = 0
        self.reconnects = 0
        self.last: dict[str, Any] | None = None
        self.last_id: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="event-follower", daemon=True)

    def start(self) -> EventFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        client = LabClient.of(self.settings)
        while not self._stop.is_set():
            try:
                for event in client.events(self.last_id):
                    if self._stop.is_set():
                        return
                    if "data" in event:
                        self.events += 1
                        self.last_id = event["id"]
                        if event["event"] in ("run", "status"):
                            self.last = event["data"]
            except ApiError:
                pass
            if not self._stop.is_set():
                self.reconnects += 1
                self._stop.wait(0.5)


class StatusSampler:
    """Polls `GET /status` every `interval_s` on its own thread: a timeline of the run's counters
    and the latency of every answer (failures count as missing samples, not as latencies)."""

    def __init__(
        self, api_url: str, interval_s: float = 0.2, token: str = "", timeout_s: float = 2.0
    ):
        self.api_url = api_url
        self.timeout_s = timeout_s  # an answer later than this counts as none
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.interval_s = interval_s
        self.samples: list[dict[str, Any]] = []  # {t, enqueued, processed, failed, latencyMs}
        self.errors = 0
        # Every request: (t, HTTP status or 0 when unanswered, ms), 503s included.
        self.answers: list[tuple[float, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="status-sampler", daemon=True)
        self.started = time.time()

    def __enter__(self) -> StatusSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        with httpx.Client(timeout=self.timeout_s, headers=self.headers) as http:
            while not self._stop.is_set():
                began = time.perf_counter()
                code = 0
                try:
                    response = http.get(f"{self.api_url}/status")
                    code = response.status_code
                    s = response.json()
                    self.samples.append(
                        {
                            "t": time.time() - self.started,
                            "enqueued": s["enqueued"],
                            "processed": s["processed"],
                            "failed": s["failed"],
                            "latencyMs": (time.perf_counter() - began) * 1000,
                        }
                    )
                except (httpx.HTTPError, ValueError, KeyError):
                    self.errors += 1
                took = (time.perf_counter() - began) * 1000
                self.answers.append((time.time() - self.started, code, took))
                self._stop.wait(self.interval_s)

    def slowest_answer(self) -> dict[str, Any]:
        """Every request answered (any status but 5xx other than a named 503) and the slowest:
        what "`/status` answered throughout" means while a service is degraded."""
        worst = max(self.answers, key=lambda a: a[2], default=(0.0, 0, 0.0))
        unanswered = [a for a in self.answers if a[1] == 0 or (a[1] >= 500 and a[1] != 503)]
        return {"requests": len(self.answers), "unanswered": len(unanswered),
                "named503": sum(a[1] == 503 for a in self.answers),
                "slowestMs": round(worst[2], 1), "slowestAt": round(worst[0], 2),
                # when each was asked, its status (0: no answer) and how long it took
                "unansweredAt": [[round(t, 2), code, round(ms, 1)]
                                 for t, code, ms in unanswered[:20]]}  # fmt: skip

    def rate(self, start: float, end: float) -> float:
        """Jobs processed a second between two drill times (0 when not sampled)."""
        inside = [s for s in self.samples if start <= s["t"] <= end]
        if len(inside) < 2 or inside[-1]["t"] <= inside[0]["t"]:
            return 0.0
        return (inside[-1]["processed"] - inside[0]["processed"]) / (
            inside[-1]["t"] - inside[0]["t"]
        )

    def latency(self) -> dict[str, float]:
        values = [s["latencyMs"] for s in self.samples]
        return {
            "samples": len(values),
            "unanswered": self.errors,
            "p50Ms": round(median(values), 2) if values else 0.0,
            "p95Ms": round(percentile(values, 95), 2),
            "p99Ms": round(percentile(values, 99), 2),
        }

    def dip_after(
        self,
        t: float,
        baseline: float,
        until: float,
        end: float | None = None,
        window_s: float = 1.0,
    ) -> dict:
        """How far the processing rate fell after a fault at `t` (drill time) and how many
        seconds until it was back at 80 % of `baseline` (jobs/s). A dip counts if it begins
        before `until` (the next fault); its recovery is looked for until `end`. Work already in
        a worker's hands keeps `processed` growing through a fault; the rate shows the dip."""
        end = until if end is None else end
        points = [(s["t"], s["processed"]) for s in self.samples if t - window_s <= s["t"] <= end]
        rates, first = [], 0
        for now, done in points:
            while points[first][0] < now - window_s:
                first += 1
            span = now - points[first][0]
            if now > t and span >= window_s / 2:
                rates.append((now, (done - points[first][1]) / span))
        if not rates:
            return {"lowestJobsPerSecond": None, "recoverySeconds": None}
        bar = 0.8 * baseline
        below = next((i for i, (now, r) in enumerate(rates) if now <= until and r < bar), None)
        if below is None:
            lowest = min(r for now, r in rates if now <= until) if rates[0][0] <= until else None
            return {
                "lowestJobsPerSecond": round(lowest, 1) if lowest is not None else None,
                "recoverySeconds": 0.0,
            }
        back = next((i for i in range(below, len(rates)) if rates[i][1] >= bar), None)
        dip = rates[below : back if back is not None else len(rates)]
        return {
            "lowestJobsPerSecond": round(min(r for _, r in dip), 1),
            "recoverySeconds": round(rates[back][0] - t, 2) if back is not None else None,
        }

    def first_progress_after(self, t: float) -> float | None:
        """Seconds (drill time) of the first sample after `t` whose `processed` grew."""
        before = [s["processed"] for s in self.samples if s["t"] <= t]
        base = before[-1] if before else 0
        for s in self.samples:
            if s["t"] > t and s["processed"] > base:
                return s["t"]
        return None


@dataclass
class Verdicts:
    """Named checks with what was expected and what was seen; renders as an HTML table."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, passed: bool, expected: Any, observed: Any) -> bool:
        self.rows.append(
            {"check": name, "passed": bool(passed), "expected": expected, "observed": observed}
        )
        return bool(passed)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r["passed"] for r in self.rows)

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td>{html.escape(r['check'])}</td><td>{html.escape(str(r['expected']))}</td>"
            f"<td>{html.escape(str(r['observed']))}</td>"
            f"<td style='color:{'#067647' if r['passed'] else '#b42318'}'>"
            f"<b>{'PASS' if r['passed'] else 'FAIL'}</b></td></tr>"
            for r in self.rows
        )
        overall = "PASS" if self.passed else "FAIL"
        return (
            f"<h3>Verdict: {overall}</h3><table><tr><th>check</th><th>expected</th>"
            f"<th>observed</th><th></th></tr>{body}</table>"
        )


def save_summary(
    path: str | None,
    figures: dict[str, Any],
    verdicts: Verdicts,
    headline: dict[str, Any] | None = None,
    chart: Any = None,
) -> dict[str, Any]:
    """The summary `lab report` completes and keeps beside the report (when a path is given).

    `headline` is the handful of figures a reader wants first (label: value as it should read);
    `chart` is the drill's main matplotlib figure, saved beside the summary as a PNG so the
    report's first screen and `lab report compare` can show it."""
    summary = {
        "figures": figures,
        "headline": headline or {},
        "verdicts": verdicts.rows,
        "passed": verdicts.passed,
    }
    if path:
        if chart is not None:
            chart.savefig(Path(path).with_suffix(".png"), dpi=90, bbox_inches="tight")
        Path(path).write_text(json.dumps(summary, indent=2, default=str))
    return summary
