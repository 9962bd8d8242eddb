"""The notebook control panel: X/Y, Start/Stop, live status, progress, a chart and the workers.

    from lab.views.panel import ControlPanel
    panel = ControlPanel(settings, supervisor)   # an ipywidgets VBox: end a cell with it

It talks to the API like any other client (`lab.client`), never to Redis directly. Two daemon
threads keep it live without blocking the kernel: one follows the API's event stream (`/events`,
SSE; each run event lands within milliseconds) and one polls `GET /status` once a second for
what events don't carry (rates, workers) and as the fallback while the stream is down. Drawing is
throttled: numbers at most ten times a second, the chart once a second, so the browser stays
smooth at any job rate. Errors are shown in the panel as one readable line, never a traceback.
"""

from __future__ import annotations

import html
import io
import threading
import time
from collections import deque
from statistics import median
from typing import Any

import ipywidgets as w

from lab.client import ApiError, LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.history import cumulative
from lab.runtime.state import is_settled
from lab.stats import percentile
from lab.wait import wait_until

DRAW_EVERY_S = 0.1
CHART_EVERY_S = 1.0
POLL_EVERY_S = 1.0
CHART_POINTS = 600


class ControlPanel(w.VBox):
    def __init__(
        self,
        settings: Settings,
        supervisor: Supervisor | None = None,
        x: int = 1000,
        y: float = 60_000,
        worker_args: list[str] | None = None,
    ):
        self.settings = settings
        self.supervisor = supervisor
        self.worker_args = worker_args
        self.client = LabClient.of(settings, timeout_s=5.0)
        self.status: dict[str, Any] = {}
        self.error: str | None = None
        self._error_is_unreachable = False  # the message is about the API not answering
        self.connected = False  # the event stream is up
        self.lags_ms: deque[float] = deque(maxlen=10_000)  # event written → drawn here
        self.drawn: deque[tuple[float, int]] = deque(maxlen=100_000)  # (when, processed shown)
        self._undrawn_events_ms: list[int] = []
        self.history: deque[tuple[float, int, int]] = deque(maxlen=CHART_POINTS)
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._closed = threading.Event()

        self.x = w.BoundedIntText(value=x, min=1, max=10_000_000, description="X jobs")
        self.y = w.BoundedFloatText(value=y, min=0.001, max=60_000_000, description="Y per min")
        self.start_button = w.Button(description="Start", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop")
        self.add_worker_button = w.Button(description="+ worker", tooltip="start one more worker")
        self.remove_worker_button = w.Button(description="– worker", tooltip="stop the newest")
        self.enqueued_bar = w.IntProgress(value=0, min=0, max=1, description="enqueued")
        self.processed_bar = w.IntProgress(value=0, min=0, max=1, description="processed")
        self.enqueued_label = w.Label()
        self.processed_label = w.Label()
        self.status_html = w.HTML()
        self.workers_html = w.HTML()
        self.message = w.HTML()
        self.chart = w.Image(format="png", layout=w.Layout(width="640px"))
        self.start_button.on_click(lambda _b: self.start_run())
        self.stop_button.on_click(lambda _b: self.stop_run())
        self.add_worker_button.on_click(lambda _b: self._in_background(self.add_worker))
        self.remove_worker_button.on_click(lambda _b: self._in_background(self.remove_worker))
        if supervisor is None:
            self.add_worker_button.layout.display = "none"
            self.remove_worker_button.layout.display = "none"
        super().__init__(
            [
                w.HBox([self.x, self.y, self.start_button, self.stop_button]),
                self.status_html,
                w.HBox([self.enqueued_bar, self.enqueued_label]),
                w.HBox([self.processed_bar, self.processed_label]),
                self.chart,
                w.HBox(
                    [w.HTML("<b>Workers</b>"), self.add_worker_button, self.remove_worker_button]
                ),
                self.workers_html,
                self.message,
            ]
        )
        self._draw()
        for target in (self._follow_events, self._poll_status, self._draw_loop, self._chart_loop):
            threading.Thread(
                target=self._keep_alive, args=(target,), name=f"panel{target.__name__}", daemon=True
            ).start()

    def _keep_alive(self, loop: Any) -> None:
        """Runs one of the panel's loops until the panel closes: a loop that fails is shown as
        the panel's message and started again, so the panel never silently freezes."""
        while not self._closed.is_set():
            try:
                loop()
            except Exception as exc:  # noqa: BLE001 - shown in the panel, then the loop resumes
                self._set_error(f"{loop.__name__.strip('_')}: {type(exc).__name__}: {exc}")
                self._closed.wait(1.0)
            else:
                return

    # --- actions (the buttons call these; notebooks and tests may too) -------------------------
    def start_run(self, x: int | None = None, y: float | None = None) -> str | None:
        """Start a run of X jobs at Y per minute; returns its runId, or None (see `error`)."""
        if x is not None:
            self.x.value = x
        if y is not None:
            self.y.value = y
        answer = self._call(lambda: self.client.run(int(self.x.value), float(self.y.value)))
        if answer is None:
            return None
        with self._lock:
            self.history.clear()
        self._apply_status(answer)
        self._draw()  # the buttons answer the click at once
        return answer["runId"]

    def stop_run(self) -> str | None:
        answer = self._call(self.client.stop)
        if answer is None:
            return None
        self._apply_status(answer)
        self._draw()
        return answer["stopped"]

    def add_worker(self) -> None:
        if self.supervisor is not None:
            self._call(lambda: self.supervisor.add_worker(self.worker_args))

    def remove_worker(self) -> None:
        if self.supervisor is not None:
            self._call(self.supervisor.remove_worker)

    def wait_until_done(self, timeout_s: float = 600) -> dict[str, Any]:
        """Block until the shown run is settled (for scripted notebooks); returns its status."""

        def done() -> dict[str, Any] | None:
            s = self.status
            return s if s.get("runId") and not s.get("running") and self._settled(s) else None

        return wait_until(done, timeout_s, "the run to finish", lambda: str(self.status), 0.05)

    def lag(self) -> dict[str, float]:
        """How far behind the pipeline the panel is: run event written → drawn here, in ms."""
        values = sorted(self.lags_ms)
        if not values:
            return {"events": 0}
        return {
            "events": len(values),
            "medianMs": round(median(values), 1),
            "p95Ms": round(percentile(values, 95), 1),
            "maxMs": round(values[-1], 1),
        }

    def close(self) -> None:
        self._closed.set()
        self.client.close()
        super().close()

    # --- keeping up -----------------------------------------------------------------------------
    def _follow_events(self) -> None:
        last_id: str | None = None
        stream = LabClient.of(self.settings)
        while not self._closed.is_set():
            try:
                for event in stream.events(last_id):
                    if self._closed.is_set():
                        return
                    if "data" not in event:
                        continue
                    last_id = event["id"]
                    self.connected = True
                    if event["event"] == "status":  # the snapshot on (re)connecting
                        self._apply_status(event["data"])
                    elif event["event"] == "run":
                        self._apply_status(event["data"], event_id=event["id"])
            except ApiError:
                pass
            self.connected = False
            self._closed.wait(1.0)  # then reconnect, resuming after the last event seen

    def _poll_status(self) -> None:
        while not self._closed.is_set():
            try:
                self._apply_status(self.client.status())
                if self._error_is_unreachable:
                    self._set_error(None)  # it answers again: that message is stale
            except ApiError as exc:
                self._set_error(f"API unreachable: {exc}", unreachable=True)
            self._closed.wait(POLL_EVERY_S)

    def _apply_status(self, data: dict[str, Any], event_id: str | None = None) -> None:
        now = time.time()
        with self._lock:
            current = self.status
            # A run event carries the counters, not the rates or the workers: keep those.
            merged = {**current, **{k: v for k, v in data.items() if k != "type"}}
            # Events and polls race; never show a counter going backwards within a run.
            if current.get("runId") == merged.get("runId"):
                for key in ("enqueued", "processed", "failed"):
                    merged[key] = max(int(current.get(key) or 0), int(merged.get(key) or 0))
            self.status = merged
            if event_id is not None:
                self._undrawn_events_ms.append(int(event_id.split("-")[0]))
            if merged.get("runId"):
                self.history.append((now, merged["enqueued"], merged["processed"]))
        self._dirty.set()

    def _draw_loop(self) -> None:
        while not self._closed.is_set():
            if self._dirty.wait(0.5):
                self._dirty.clear()
                self._draw()
                self._closed.wait(DRAW_EVERY_S)

    def _chart_loop(self) -> None:
        """Its own thread: rendering the chart takes tens of ms and must not delay the numbers."""
        while not self._closed.wait(CHART_EVERY_S):
            self._draw_chart()

    # --- drawing --------------------------------------------------------------------------------
    def _draw(self) -> None:
        with self._lock:
            s = self.status
            events_ms, self._undrawn_events_ms = self._undrawn_events_ms, []
        x = int(s.get("xTotal") or 0)
        running = bool(s.get("running"))
        for bar, label, key in (
            (self.enqueued_bar, self.enqueued_label, "enqueued"),
            (self.processed_bar, self.processed_label, "processed"),
        ):
            value = int(s.get(key) or 0)
            bar.max = max(x, 1)
            bar.value = min(value, bar.max)
            label.value = f"{value:,} / {x:,}" if x else ""
        self.processed_bar.bar_style = "success" if x and self._settled(s) else ""
        self.start_button.disabled = running or not s  # not s: the API never answered yet
        self.stop_button.disabled = not running
        self.status_html.value = self._status_line(s)
        workers = s.get("workers") or []
        self.remove_worker_button.disabled = not (self.supervisor and self.supervisor.workers())
        self.workers_html.value = _workers_table(workers)
        self.message.value = (
            f'<span style="color:#b42318">⚠ {html.escape(self.error)}</span>' if self.error else ""
        )
        now = time.time()
        self.lags_ms.extend(now * 1000 - ms for ms in events_ms)
        if s.get("runId"):
            self.drawn.append((now, int(s.get("processed") or 0)))

    def _status_line(self, s: dict[str, Any]) -> str:
        if not s:
            return "<i>waiting for the API…</i>"
        rates = s.get("rates") or {}
        # While running: the last seconds' rate; after: the run's average.
        key = "processedPerMinute" if s.get("running") else "averageProcessedPerMinute"
        rate = float(rates.get(key) or 0)
        left = max(0, int(s.get("xTotal") or 0) - int(s.get("processed") or 0))
        eta = f"{left / rate * 60:,.0f} s" if s.get("running") and rate > 0 else "–"
        live = "live" if self.connected else "polling"
        parts = [
            f"<b>{html.escape(str(s.get('state', 'idle')))}</b>",
            f"run <code>{html.escape(str(s.get('runId') or '–'))}</code>",
            f"enqueued {int(s.get('enqueued') or 0):,}",
            f"processed {int(s.get('processed') or 0):,}",
            f"failed {int(s.get('failed') or 0):,}",
            f"{rate:,.0f}/min",
            f"ETA {eta}",
            f'<span style="color:#667085">{live}</span>',
        ]
        return " · ".join(parts)

    def _chart_points(self) -> list[tuple[float, int, int]]:
        """(time, released, processed) to draw: the run's timeline from the API (kept in Redis,
        so a reopened notebook draws the whole run), else what this panel saw itself."""
        with self._lock:
            run_id = self.status.get("runId")
            seen = list(self.history)
        if run_id:
            try:
                timeline = self.client.timeline(run_id)
            except ApiError:
                return seen
            return [(p["t"], p["released"], p["processed"]) for p in cumulative(timeline["points"])]
        return seen

    def _draw_chart(self) -> None:
        points = self._chart_points()
        if len(points) < 2:
            return
        from matplotlib.figure import Figure

        t0 = points[0][0]
        fig = Figure(figsize=(6.4, 2.2), dpi=100)
        ax = fig.add_subplot()
        ax.plot([p[0] - t0 for p in points], [p[1] for p in points], label="enqueued")
        ax.plot([p[0] - t0 for p in points], [p[2] for p in points], label="processed")
        ax.set_xlabel("seconds")
        ax.set_ylabel("jobs")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        self.chart.value = buffer.getvalue()

    # --- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _settled(s: dict[str, Any]) -> bool:
        return is_settled(
            str(s.get("state")),
            int(s.get("processed") or 0),
            int(s.get("failed") or 0),
            int(s.get("enqueued") or 0),
        )

    def _call(self, action: Any) -> Any:
        """Run an action; a failure becomes the panel's message instead of a traceback."""
        try:
            result = action()
        except Exception as exc:  # noqa: BLE001 - anything an action raises is shown, not thrown
            if isinstance(exc, ApiError):
                self._set_error(str(exc), unreachable=exc.status is None)
            else:
                self._set_error(f"{type(exc).__name__}: {exc}")
            return None
        self._set_error(None)
        return result

    def _set_error(self, message: str | None, unreachable: bool = False) -> None:
        self._error_is_unreachable = unreachable
        if message != self.error:
            self.error = message
            self._dirty.set()

    def _in_background(self, action: Any) -> None:
        threading.Thread(target=action, daemon=True).start()


def _workers_table(workers: list[dict[str, Any]]) -> str:
    if not workers:
        return "<i>no live workers</i>"
    rows = "".join(
        f"<tr><td><code>{html.escape(str(wk['id']))}</code></td>"
        f"<td {NUM}>{wk['heartbeatAgeSeconds']:.1f} s</td>"
        f"<td {NUM}>{wk['processed']:,}</td>"
        f"<td {NUM}>{wk['failed']:,}</td>"
        f"<td {NUM}>{wk.get('running', 0)}</td></tr>"
        for wk in workers
    )
    return (
        f"<table><tr><th>worker</th><th {NUM}>heartbeat</th><th {NUM}>processed</th>"
        f"<th {NUM}>failed</th><th {NUM}>running</th></tr>{rows}</table>"
    )


NUM = "style='text-align:right; padding-left:18px'"
