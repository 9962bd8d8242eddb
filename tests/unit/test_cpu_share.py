"""Where the CPU went: attribution of processes to names (pure), and one real measurement."""

from __future__ import annotations

import subprocess
import sys

from lab.measure.cpu import CpuShare, Seen, label_of


def test_a_named_process_and_its_children_carry_its_name() -> None:
    seen = {
        10: Seen("python python -m lab api", 1, 0),
        11: Seen("python python -m lab api", 10, 0),  # one of the API's worker processes
        12: Seen("noida-db /x/noida-db start --only elasticsearch", 1, 0),
        13: Seen("beam.smp /usr/lib/erlang/erts/bin/beam.smp -- -s rabbit boot", 1, 0),
        14: Seen("python python -m locust --worker", 1, 0),
        15: Seen("bash bash", 1, 0),
    }
    named = {10: "api"}
    labels = {pid: label_of(pid, seen, named) for pid in seen}
    assert labels == {
        10: "api", 11: "api", 12: "elasticsearch", 13: "rabbitmq", 14: "locust", 15: "other"
    }  # fmt: skip


def test_a_child_that_ended_inside_the_window_is_counted() -> None:
    share = CpuShare({}, children="load").start()
    burn = "import time\nwhile time.process_time() < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    result = share.result()
    assert result["byProcess"]["load"] > 0
    assert 0 <= result["stealPercent"] <= 100 and 0 <= result["idlePercent"] <= 100
    assert result["cores"] >= 1
