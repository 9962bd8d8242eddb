"""The notebook control panel's widget models, driven as a person would, against real services."""

from __future__ import annotations

import time

import pytest

from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores
from lab.views.panel import ControlPanel

from .helpers import settle, wait_until


@pytest.fixture
def panel_for(request: pytest.FixtureRequest):
    made: list[ControlPanel] = []

    def make(*args, **kwargs) -> ControlPanel:
        panel = ControlPanel(*args, **kwargs)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.close()


@pytest.mark.slow
def test_start_runs_to_x_and_the_widgets_follow(
    lab: Supervisor, settings: Settings, stores: Stores, panel_for
) -> None:
    lab.up(workers=1)
    panel = panel_for(settings, lab, x=400, y=24_000)
    wait_until(lambda: not panel.start_button.disabled, 15, "the panel to see the API")
    assert panel.stop_button.disabled, "Stop makes no sense without a run"
    panel.start_button.click()
    wait_until(lambda: panel.status.get("running"), 15, "the run to show as running")
    assert panel.start_button.disabled and not panel.stop_button.disabled
    wait_until(
        lambda: panel.processed_bar.value == 400,
        60,
        "processed to reach X",
        lambda: str(panel.status),
    )
    assert panel.enqueued_bar.value == 400 and panel.processed_bar.max == 400
    assert panel.processed_label.value == "400 / 400"
    wait_until(lambda: panel.stop_button.disabled, 10, "Stop to be disabled once the run ends")
    assert settle(stores, panel.status["runId"], 30).processed == 400
    assert "completed" in panel.status_html.value
    # Its first drawing imports and warms matplotlib: 1.2 s of CPU, on a thread of this test's
    # process, which a machine at half speed running drills beside it stretched past 10 s.
    wait_until(lambda: panel.chart.value, 60, "the chart to be drawn")
    # The chart draws the whole run from 0 and ends where the counters end.
    data = panel.chart_data()
    assert (data.t[0], data.released[0], data.processed[0]) == (0.0, 0, 0)
    assert data.last["released"] == data.last["processed"] == 400
    assert all(b >= a for a, b in zip(data.processed, data.processed[1:], strict=False))
    wait_until(lambda: 'data-processed="400"' in panel.chart_caption.value, 10, "the caption")
    assert data.latency_t and all(p99 >= p50 > 0 for p50, p99 in zip(data.p50_ms, data.p99_ms,
                                                                        strict=True))  # fmt: skip
    assert panel.lag()["events"] > 0 and panel.connected
    assert "<code>" in panel.workers_html.value and panel.error is None


@pytest.mark.slow
def test_stop_stops_releasing(
    lab: Supervisor, settings: Settings, stores: Stores, panel_for
) -> None:
    lab.up(workers=1)
    panel = panel_for(settings, lab)
    wait_until(lambda: not panel.start_button.disabled, 15, "the panel to see the API")
    run_id = panel.start_run(100_000, 1200)
    wait_until(lambda: panel.enqueued_bar.value > 0, 15, "the first jobs to be released")
    panel.stop_button.click()
    wait_until(lambda: panel.status.get("state") == "stopped", 10, "the panel to show stopped")
    stopped_at = time.time()
    run = settle(stores, run_id, 30)
    assert run.state == "stopped" and run.enqueued < 1000
    wait_until(lambda: panel.processed_bar.value == run.enqueued, 10, "the panel to catch up")
    assert panel.stop_button.disabled and not panel.start_button.disabled

    # Jobs granted just before Stop may have their confirms recorded a moment later. The
    # scheduler lets go of a run only after recording them, so once a heartbeat written after
    # the Stop shows it idle, the released count is final.
    def let_go() -> bool:
        schedulers = stores.overview.status()["schedulers"]
        return bool(schedulers) and all(
            s["runId"] is None and time.time() - s["heartbeatAgeSeconds"] > stopped_at
            for s in schedulers
        )

    wait_until(let_go, 10, "the scheduler to let go of the stopped run")
    before = stores.runs.get(run_id).enqueued
    # A sample taken at least 1.5 s later: at 20 jobs/s a release meanwhile would show.
    since = panel.history[-1][0]
    wait_until(lambda: panel.history[-1][0] >= since + 1.5, 10, "a sample 1.5 s later")
    assert panel.history[-1][1] == before and stores.runs.get(run_id).enqueued == before, (
        "nothing more was released after Stop"
    )


def test_workers_can_be_added_and_removed(lab: Supervisor, settings: Settings, panel_for) -> None:
    lab.up(workers=1)
    panel = panel_for(settings, lab)
    panel.add_worker_button.click()
    wait_until(lambda: len(panel.status.get("workers") or []) == 2, 20, "two workers shown")
    panel.remove_worker_button.click()
    wait_until(lambda: len(panel.status.get("workers") or []) == 1, 30, "one worker shown")
    # A stopping worker leaves /status as its drain begins; its process ends when the drain does.
    wait_until(lambda: lab.workers() == ["worker-1"], 30, "the newest worker's process to end")


def test_errors_show_in_the_panel(lab: Supervisor, settings: Settings, panel_for) -> None:
    # No API is running at this address: the panel says so, and a click is answered in words.
    panel = panel_for(settings, lab)
    # Wait for the drawn message, not only the state: drawing follows within 0.1 s.
    wait_until(lambda: panel.message.value, 10, "the panel to show the API unreachable")
    assert "API unreachable" in panel.message.value and "Traceback" not in panel.message.value
    assert panel.start_button.disabled and panel.stop_button.disabled
    assert panel.start_run(10, 60) is None and "did not answer" in panel.error
    # Then the API comes up: the message clears and Start becomes possible.
    lab.start("api")
    lab.wait_api()
    wait_until(
        lambda: panel.error is None and not panel.start_button.disabled, 15, "the panel to recover"
    )
    panel.stop_button.click()  # no run: a 409, shown as a message
    assert "no run is active" in panel.error


def test_a_shaped_run_from_the_panel_and_y_applied_live(
    lab: Supervisor, settings: Settings, stores: Stores, panel_for
) -> None:
    """The shape box starts a shaped run (its planned release drawn beside what happened); the Y
    box, changed while a constant run runs, applies to it at once."""
    lab.up(workers=1)
    panel = panel_for(settings, lab, x=300, y=6000)
    wait_until(lambda: not panel.start_button.disabled, 15, "the panel to see the API")
    panel.shape.value = "ramp:600..12000:3s"
    wait_until(lambda: "planned: ramp" in panel.chart_caption.value, 10, "the planned Y(t)")
    run_id = panel.start_run()
    assert run_id and panel.error is None
    run = settle(stores, run_id, 60)
    assert run.processed == 300 and run.shape == {"type": "ramp", "from": 600, "to": 12000,
                                                 "seconds": 3}  # fmt: skip
    wait_until(lambda: panel.chart_data().planned, 10, "the planned release in the chart")
    panel.shape.value = ""
    run_id = panel.start_run(x=100_000, y=600)
    wait_until(lambda: panel.status.get("running"), 15, "the constant run to run")
    panel.y.value = 3000
    wait_until(lambda: (r := stores.runs.get(run_id)) and r.yMinutes == 3000, 10, "Y to apply live")
    panel.stop_run()
    assert [c["shape"]["y"] for c in stores.runs.get(run_id).changes] == [600, 3000]
    panel.shape.value = "ramp:600"
    assert panel.start_run() is None and "is not a shape" in (panel.error or "")
