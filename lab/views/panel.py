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

import html
import io
import json
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
from lab.runtime.state import is_settled
from lab.stats import percentile
from lab.views.charts import Progress, planned_rate, progress
from lab.views.faults import FaultControls
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
            self.chart_caption.value = f'<span style="color:#b42318">{html.escape(str(exc))}</span>'
            return
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 2.0), dpi=100)
        ax = fig.add_subplot()
        ax.plot(ts, ys, color="#667085", linestyle="--", label="planned Y")
        ax.set_xlabel("seconds")
        ax.set_ylabel("jobs / min")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        self.chart.value = buffer.getvalue()
        self.chart_caption.value = "planned: " + html.escape(shapes.describe(spec))

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
        with self._lock:
            now = time.time()  # inside the lock: the samples' times run in the order they merge
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
        objectives = [o for o in s.get("slo") or [] if o.get("state") == "breached"]
        parts = [
            f"<b>{html.escape(str(s.get('state', 'idle')))}</b>",
            *(
                f'<span style="color:#b42318">breached: {html.escape(str(o.get("text")))}</span>'
                for o in objectives
            ),  # fmt: skip
            f"run <code>{html.escape(str(s.get('runId') or '–'))}</code>",
            f"enqueued {int(s.get('enqueued') or 0):,}",
            f"processed {int(s.get('processed') or 0):,}",
            f"failed {int(s.get('failed') or 0):,}",
            f"{rate:,.0f}/min",
            f"ETA {eta}",
            f'<span style="color:#667085">{live}</span>',
        ]
        return " · ".join(parts)

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
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.8), dpi=100)
        total, rate, spent = fig.subplots(3, 1, sharex=True, height_ratios=(3, 2, 2))
        if data.planned:
            # Known at each second's end; the shape between them is drawn as a straight line.
            total.plot(data.planned_t, data.planned, color="#98a2b3", linestyle="--",
                       label="planned")  # fmt: skip
        total.plot(data.t, data.released, label="released")
        total.plot(data.t, data.processed, label="processed")
        total.set_ylabel("jobs")
        total.set_ylim(bottom=0)
        total.set_xlim(left=0)
        total.legend(loc="upper left", fontsize=8)
        total.grid(alpha=0.3)
        if data.rate_t:
            rate.step(data.rate_t, data.planned_rate, where="pre", color="#98a2b3",
                      linestyle="--", label="planned")  # fmt: skip
            rate.step(data.rate_t, data.released_rate, where="pre", label="released")
            rate.step(data.rate_t, data.processed_rate, where="pre", label="processed")
        rate.set_ylabel("jobs / s")
        rate.set_ylim(bottom=0)
        rate.grid(alpha=0.3)
        if data.latency_t:
            spent.plot(data.latency_t, data.p50_ms, marker=".", label="end to end p50")
            spent.plot(data.latency_t, data.p99_ms, marker=".", label="p99")
            spent.legend(loc="upper left", fontsize=8)
        spent.set_ylabel("ms")
        spent.set_ylim(bottom=0)
        spent.set_xlabel("seconds since the run started")
        spent.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        self.chart.value = buffer.getvalue()
        last = data.last
        self.chart_caption.value = (
            f'<span class="lab-chart-last" data-released="{last["released"]}" '
            f'data-processed="{last["processed"]}" data-seconds="{last["t"]:.3f}">'
            f"chart ends at {last['t']:,.1f} s: released {last['released']:,}, "
            f"processed {last['processed']:,}</span>"
        )

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


def _kinds() -> list[str]:
    from lab.runtime.handlers import known_kinds

    return known_kinds()
