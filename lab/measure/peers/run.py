"""Drain the same preloaded reference jobs through each peer configuration and time it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from lab.config import Settings
from lab.ops import stack
from lab.runtime import broker
from lab.runtime.state import State
from lab.runtime.store import Store
from lab.wait import wait_until

# Configurations tried for each peer on this machine; the best of each is reported.
CONFIGS: dict[str, list[str]] = {
    "celery prefork -c 2": ["celery", "--pool", "prefork", "-c", "2"],
    "celery prefork -c 4": ["celery", "--pool", "prefork", "-c", "4"],
    "celery threads -c 16": ["celery", "--pool", "threads", "-c", "16"],
    "dramatiq -p 2 -t 8": ["dramatiq", "-p", "2", "-t", "8"],
    "dramatiq -p 4 -t 4": ["dramatiq", "-p", "4", "-t", "4"],
}


def worker_argv(peer: str, flags: list[str], queue: str) -> list[str]:
    if peer == "celery":
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "lab.measure.peers.celery_app",
            "worker",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
            *flags,
        ]
    return [sys.executable, "-m", "dramatiq", "lab.measure.peers.dramatiq_app", "-Q", queue, *flags]


def drain(base: Settings, name: str, jobs: int, home: Path) -> float:
    """Jobs/s from 5 % to 100 % processed, the queue preloaded before the workers start."""
    peer, *flags = CONFIGS[name]
    tag = uuid.uuid4().hex[:8]
    settings = base.with_overrides(
        prefix=f"labpeer-{tag}", queue=f"labpeer.{tag}", es_index=f"labpeer-{tag}"
    )
    env = {**os.environ, **settings.as_env()}
    state = State(settings)
    store = Store(settings)
    store.ensure_index()
    run_id = state.start_run(jobs, 1)
    state.stop_run()
    home.mkdir(parents=True, exist_ok=True)
    log = home / f"peer-{tag}.log"
    process = None
    try:
        subprocess.run(
            [sys.executable, "-m", "lab.measure.peers.preload", peer, run_id, str(jobs)],
            env=env,
            check=True,
            timeout=600,
        )
        with open(log, "ab") as out:
            process = subprocess.Popen(
                worker_argv(peer, flags, settings.queue),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def processed() -> int:
            return state.known_run(run_id).processed

        wait_until(lambda: processed() >= 0.05 * jobs, 300, f"{name}: 5 % processed", poll_s=0.01)
        started = time.perf_counter()
        wait_until(
            lambda: processed() >= jobs,
            900,
            f"{name}: the drain",
            poll_s=0.01,
            explain=lambda: log.read_text(errors="replace")[-2000:],
        )
        return 0.95 * jobs / (time.perf_counter() - started)
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        state.purge()
        store.delete_index()
        store.close()
        connection = broker.connect(settings.amqp_url, "lab-peer-cleanup")
        channel = connection.channel()
        for queue in (settings.queue, f"{settings.queue}.DQ", f"{settings.queue}.XQ"):
            channel.queue_delete(queue)
        connection.close()


def run_peers(base: Settings, jobs: int, home: Path) -> dict[str, float]:
    stack.up(base)
    home.mkdir(parents=True, exist_ok=True)
    return {name: drain(base, name, jobs, home) for name in CONFIGS}
