"""What every drill does at its end, shared from `lab.measure`: its job times added to the
summary and the headline, its lab kept up while faults hit it and then stopped, and its own
services kept (for a closer look) or removed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from lab.config import Settings
from lab.measure import drill, jobtime
from lab.wait import wait_until


def test_job_time_goes_into_the_figures_and_each_run_with_jobs_into_the_headline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    times = {
        "run": {"endToEnd": {"count": 10, "p50Ms": 1234.4, "p99Ms": 5000.0}},
        "idle": {"endToEnd": {"count": 0, "p50Ms": None, "p99Ms": None}},
    }
    monkeypatch.setattr(jobtime, "job_time", lambda *_: times)
    figures: dict[str, Any] = {"x": 1}
    headline: dict[str, Any] = {"lost": "0"}
    jobtime.add_job_time(Settings(), {"run": "r1"}, figures, headline, label_prefix="fast, ")
    assert figures == {"x": 1, "jobTime": times}
    assert headline == {"lost": "0", "fast, run: end to end": "p50 1,234 ms, p99 5,000 ms"}


class FakeSupervisor:
    def __init__(self) -> None:
        self.watching = threading.Event()
        self.watched = threading.Event()
        self.downed_after_watch = False

    def watch(self, until: Any, poll_s: float) -> None:
        self.watching.set()
        while not until():
            threading.Event().wait(poll_s)
        self.watched.set()

    def down(self) -> None:
        self.downed_after_watch = self.watched.wait(5)


def test_the_keeper_watches_until_down_then_stops_the_lab() -> None:
    supervisor = FakeSupervisor()
    keeper = drill.Keeper(supervisor, poll_s=0.01)  # type: ignore[arg-type]
    wait_until(supervisor.watching.is_set, 5, "the keeper to watch")
    keeper.down()
    assert supervisor.downed_after_watch  # no restart can race the stop


class Service:
    stopped = 0

    def stop(self) -> None:
        self.stopped += 1


def test_a_kept_drill_keeps_everything_and_says_where_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drill, "teardown", lambda *_, **__: pytest.fail("nothing is deleted"))
    service = Service()
    settings = Settings(amqp_url="amqp://guest:secret@127.0.0.1:1/%2F")
    drill.end_drill(settings, True, service, home=tmp_path)
    assert service.stopped == 0 and tmp_path.is_dir()
    printed = capsys.readouterr().out
    assert printed.startswith("kept:") and "127.0.0.1:1" in printed and "secret" not in printed


def test_a_drill_that_ends_deletes_its_data_then_stops_its_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    monkeypatch.setattr(drill, "teardown", lambda _s, queues: order.append(f"data {queues}"))
    first, second = Service(), Service()
    (tmp_path / "data").mkdir()
    drill.end_drill(Settings(), False, first, second, home=tmp_path, queues=False)
    assert order == ["data False"] and first.stopped == second.stopped == 1
    assert not tmp_path.exists()
