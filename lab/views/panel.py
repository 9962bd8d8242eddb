"""The notebook control panel: X/Y or a shape, the job kind, Start/Stop, live status, progress,
a chart of the run (planned, released, processed) and the workers.

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

import json
import re
import threading
import time
from collections import deque
from statistics import median
from typing import Any

import ipywidgets as w

from lab.client import ApiError, LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime import shapes
from lab.stats import percentile
from lab.views.charts import Progress, count, merge_status, planned_rate, progress, settled
from lab.views.faults import FaultControls
from lab.views.markup import WARN, chart_end, html_of, status_line, warning, workers_table
from lab.views.plots import planned_png, progress_png
from lab.wait import wait_until

DRAW_EVERY_S = 0.1
CHART_EVERY_S = 1.0
POLL_EVERY_S = 1.0
CHART_POINTS = 600
EVENT_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")  # a Redis stream id: ms-sequence


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
        self.y = w.BoundedFloatText(value=y, min=0.1, max=60_000_000, description="Y per min")
        self.shape = w.Text(
            placeholder="constant Y; or ramp:600..12000:120s, steps:30s@600,30s@1200, poisson:600",
            description="shape",
            layout=w.Layout(width="420px"),
        )
        self.kind = w.Dropdown(options=_kinds(), value="index", description="kind")
        self.payload = w.Text(
            value="{}", description="payload", layout=w.Layout(width="420px"),
            placeholder='{"serviceMs": {"dist": "lognormal", "median": 80, "p99": 1200}}',
        )  # fmt: skip
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
        self.chart_caption = w.HTML()
        self.faults = FaultControls(settings)  # the same actions as `lab fault`
        self.start_button.on_click(lambda _b: self.start_run())
        self.y.observe(lambda _c: self._in_background(self._y_changed), names="value")
        self.shape.observe(lambda _c: self._in_background(self._preview), names="value")
        self.stop_button.on_click(lambda _b: self.stop_run())
        self.add_worker_button.on_click(lambda _b: self._in_background(self.add_worker))
        self.remove_worker_button.on_click(lambda _b: self._in_background(self.remove_worker))
        if supervisor is None:
            self.add_worker_button.layout.display = "none"
            self.remove_worker_button.layout.display = "none"
        super().__init__(
            [
                w.HBox([self.x, self.y, self.start_button, self.stop_button]),
                w.HBox([self.kind, self.shape]),
                self.payload,
                self.status_html,
                w.HBox([self.enqueued_bar, self.enqueued_label]),
                w.HBox([self.processed_bar, self.processed_label]),
                self.chart,
                self.chart_caption,
                w.HBox(
                    [w.HTML("<b>Workers</b>"), self.add_worker_button, self.remove_worker_button]
                ),
                self.workers_html,
                self.faults,
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
    def start_run(
        self,
        x: int | None = None,
        y: float | None = None,
        shape: str | dict[str, Any] | None = None,
        kind: str | None = None,
        payload: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> str | None:
        """Start a run of X jobs at Y per minute (or following the shape box: a short form or
        JSON), of the kind and payload shown; returns its runId, or None (see `error`)."""
        if x is not None:
            self.x.value = x
        if y is not None:
            self.y.value = y
        if shape is not None:
            self.shape.value = shape if isinstance(shape, str) else json.dumps(shape)
        if kind is not None:
            self.kind.value = kind
        if payload is not None:
            self.payload.value = json.dumps(payload)
        try:
            spec = self._shape()
            body = json.loads(self.payload.value or "{}")
        except (shapes.ShapeError, ValueError) as exc:
            self._set_error(str(exc))
            return None
        answer = self._call(
            lambda: self.client.run(
                int(self.x.value), shape=spec, kind=self.kind.value, payload=body, seed=seed
            )
        )
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

    def _shape(self) -> dict[str, Any]:
        """The shape box (a short form or JSON), or a constant Y when it is empty."""
        text = self.shape.value.strip()
        if not text:
            return {"type": "constant", "y": float(self.y.value)}
        spec = shapes.from_text(text)
        shapes.parse(spec)
        return spec

    def _y_changed(self) -> None:
        """The Y box applies to the live run at once (`PATCH /run`)."""
        with self._lock:
            running = bool(self.status.get("running"))
        if running and not self.shape.value.strip():
            answer = self._call(lambda: self.client.change_run(y=float(self.y.value)))
            if answer is not None:
                self._apply_status(answer)

    def _preview(self) -> None:
        """Before a run: the shape box's planned Y(t), drawn as soon as it parses."""
        with self._lock:
            if self.status.get("running"):
                return
        try:
            spec = self._shape()  # once: the box may change again while this draws
            ts, ys = planned_rate(spec, int(self.x.value))
        except (shapes.ShapeError, ValueError) as exc:
            self.chart_caption.value = html_of('<span style="{}">{}</span>', WARN, exc)
            return
        self.chart.value = planned_png(ts, ys)
        self.chart_caption.value = html_of("planned: {}", shapes.describe(spec))

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
            return s if s.get("runId") and not s.get("running") and settled(s) else None

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
        with self._lock:
            now = time.time()  # inside the lock: the samples' times run in the order they merge
            self.status = merged = merge_status(self.status, data)
            if event_id is not None and EVENT_ID.fullmatch(event_id):
                self._undrawn_events_ms.append(int(event_id.split("-")[0]))
            if merged.get("runId"):
                self.history.append(
                    (now, count(merged.get("enqueued")), count(merged.get("processed")))
                )
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
        x = count(s.get("xTotal"))
        running = bool(s.get("running"))
        for bar, label, key in (
            (self.enqueued_bar, self.enqueued_label, "enqueued"),
            (self.processed_bar, self.processed_label, "processed"),
        ):
            value = count(s.get(key))
            bar.max = max(x, 1)
            bar.value = min(value, bar.max)
            label.value = f"{value:,} / {x:,}" if x else ""
        self.processed_bar.bar_style = "success" if x and settled(s) else ""
        self.start_button.disabled = running or not s  # not s: the API never answered yet
        self.stop_button.disabled = not running
        self.status_html.value = status_line(s, self.connected)
        workers = s.get("workers")
        self.remove_worker_button.disabled = not (self.supervisor and self.supervisor.workers())
        self.workers_html.value = workers_table(workers if isinstance(workers, list) else [])
        self.message.value = warning(self.error)
        now = time.time()
        self.lags_ms.extend(now * 1000 - ms for ms in events_ms)
        if s.get("runId"):
            self.drawn.append((now, count(s.get("processed"))))

    def chart_data(self) -> Progress:
        """What the chart draws: the shown run from its start to its counters now (planned,
        released, processed), and its jobs per second."""
        with self._lock:
            status = dict(self.status)
            seen = list(self.history)
        points: list[dict[str, Any]] = []
        measured: dict[str, Any] | None = None
        if status.get("runId"):
            try:
                points = self.client.timeline(status["runId"])["points"]
                measured = self.client.latency(status["runId"])
            except ApiError:
                points = []
        return progress(status, points, seen, time.time(), measured)

    def _draw_chart(self) -> None:
        data = self.chart_data()
        if len(data.t) < 2:
            return
        self.chart.value = progress_png(data)
        self.chart_caption.value = chart_end(data.last)

    # --- helpers --------------------------------------------------------------------------------
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


def _kinds() -> list[str]:
    from lab.runtime.handlers import known_kinds

    return known_kinds()
