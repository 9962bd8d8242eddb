"""A new user's first run: a fresh clone where nothing answers at the configured ports.

`lab demo` must start its own Redis, RabbitMQ and Elasticsearch-API server, say one line per
service while it waits, reach its verdict with no traceback in a short output, and say what it
leaves running; `lab stack down` must then leave no process and no data folder behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from lab.ops import servers

from .helpers import run_lab

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_fresh_clone_runs_the_demo_quietly_and_leaves_nothing_behind(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    home = Path(tempfile.mkdtemp(prefix="lab-first-run-"))
    home.chmod(0o755)  # a private RabbitMQ node runs as the rabbitmq user
    ports = {name: servers.free_port() for name in ("redis", "amqp", "es", "api")}
    urls = {
        "LAB_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "LAB_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{ports['amqp']}/%2F",
        "LAB_ES_URL": f"http://127.0.0.1:{ports['es']}",
        "LAB_API_URL": f"http://127.0.0.1:{ports['api']}",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    env.update(urls, LAB_HOME=str(home / ".lab"))

    def lab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        # `python -m lab` from the clone runs the clone's code with this environment's packages.
        return run_lab(*args, env=env, timeout=timeout, cwd=clone)

    try:
        done = lab("demo", timeout=600)
        out = done.stdout + done.stderr
        assert done.returncode == 0 and "demo passed" in out, out[-3000:]
        assert "Traceback" not in out and "ERROR" not in out, out
        assert len(out.splitlines()) <= 45, f"{len(out.splitlines())} lines:\n{out}"
        for service in ("redis", "rabbitmq", "elasticsearch"):
            assert f"{service}: starting a local" in out and f"{service}: ready in" in out, out
        assert "lab stack down" in out and "guest:guest" not in out
        down = lab("stack", "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert not servers.redis_ok(urls["LAB_REDIS_URL"])
        assert not servers.amqp_ok(urls["LAB_AMQP_URL"])
        assert not servers.es_ok(urls["LAB_ES_URL"])
        left = sorted(p.name for p in (home / ".lab").iterdir() if p.name not in ("logs", "stack"))
        assert left == [], left
        assert not list(Path(tempfile.gettempdir()).glob(f"lab-rabbitmq-{ports['amqp']}-*"))
    finally:
        lab("stack", "down")  # again, in case the demo failed half-way
        shutil.rmtree(home, ignore_errors=True)
