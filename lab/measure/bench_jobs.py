"""`lab bench agents --jobs N`: how live single jobs feel, measured.

N `agent` jobs run at once on one worker while one SSE client per job follows
`GET /jobs/{id}/stream`. For every progress step it records how long after the step was recorded
(the `at` of its event, Redis' clock, on this same machine) the client received it, and it samples
the worker's resident memory while the jobs run.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

from lab.client import LabClient
from lab.config import Settings
from lab.measure.bench import rss_mb
from lab.ops.reset import isolated, reset
from lab.ops.supervisor import Supervisor
from lab.stats import percentile
from lab.wait import wait_until


def agent_stream_check(
    base: Settings, agents: int, seconds: float, interval: float, home: Path
) -> dict[str, Any]:
    settings = isolated(base, "labbench", concurrency=max(agents, base.concurrency), home=str(home))
    supervisor = Supervisor(settings, log_dir=home / "logs")
    client = LabClient.of(settings)
    latencies: list[float] = []
    lock = threading.Lock()
    try:
        supervisor.start("api")
        supervisor.start("worker-1", role="worker")
        supervisor.wait_api()
        worker_pid = supervisor.pid("worker-1")
        wait_until(lambda: client.status()["workers"], 30, "the worker to announce itself")
        idle_mb = rss_mb(worker_pid)
        payload = {"durationSeconds": seconds, "stepIntervalSeconds": interval}
        ids = [client.create_job("agent", payload)["id"] for _ in range(agents)]

        def follow(job_id: str) -> None:
            own = LabClient.of(settings)
            try:
                for event in own.follow_job(job_id):
                    received = time.time() * 1000
                    data = event.get("data") or {}
                    if (data.get("message") or "").startswith("step "):
                        with lock:
                            latencies.append(received - data["at"])
            finally:
                own.close()

        followers = [threading.Thread(target=follow, args=(i,), daemon=True) for i in ids]
        for thread in followers:
            thread.start()
        samples: list[float] = []
        while any(t.is_alive() for t in followers):
            if client.status()["workers"][0]["running"] == agents:
                samples.append(rss_mb(worker_pid))
            time.sleep(0.25)
        states = [client.job(i)["state"] for i in ids]
        return {
            "agents": agents,
            "stepsReceived": len(latencies),
            "completed": states.count("completed"),
            "stepLatencyMs": {
                "median": round(median(latencies), 2) if latencies else None,
                "p99": round(percentile(latencies, 99), 2),
                "max": round(max(latencies, default=0), 2),
            },
            "workerRssMb": {
                "idle": round(idle_mb, 1),
                "whileRunningMedian": round(median(samples), 1) if samples else None,
                "whileRunningMax": round(max(samples, default=0), 1),
                "samples": len(samples),
            },
        }
    finally:
        client.close()
        supervisor.down(grace_s=30)
        reset(settings)
