"""`lab bench status`: how `GET /status` holds up while a fast run is active, and whether the
pipeline notices the load.

In a private namespace: the API (`--api-processes`), the scheduler and one worker, a run
releasing `rate` jobs a minute. First the drain (jobs processed a second) with no load; then, for
each offered load, Locust's `StatusRateUser` in distributed mode (`--locust-processes`) offers
exactly that many requests a second for `seconds`, and the answered rate, p50/p95/p99, failures
and the drain during that window are taken. The drain ratio is the pipeline's throughput under
that load against its throughput without it. Each window also says where the CPU went
(`cpu`, `idleCpu`: steal, idle and each process's share, lab.measure.cpu), because on a shared
machine the same bench moves by a factor of two with what the hypervisor and the services take.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lab.client import LabClient
from lab.config import Settings
from lab.measure.cpu import CpuShare
from lab.measure.loadtest import run_locust
from lab.ops import stack
from lab.ops.reset import isolated, reset
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores
from lab.wait import wait_until

USER_RPS = 10.0  # each Locust user offers this many requests a second


def drain_per_second(stores: Stores, run_id: str, seconds: float) -> float:
    """Jobs processed a second over the next `seconds` (read from Redis, not through the API)."""
    first = stores.runs.get(run_id)
    started = time.monotonic()
    time.sleep(seconds)
    last = stores.runs.get(run_id)
    assert first is not None and last is not None
    return (last.processed - first.processed) / (time.monotonic() - started)


def named_pids(supervisor: Supervisor) -> dict[int, str]:
    """pid → name of the supervisor's running processes (what CpuShare calls them)."""
    return {c["pid"]: c["name"] for c in supervisor.status() if c["running"] and c["pid"]}


def load_step(
    settings: Settings,
    run_id: str,
    offered: int,
    seconds: float,
    out_dir: Path,
    locust_processes: int = 2,
    named: dict[int, str] | None = None,
    in_step: bool = False,
) -> dict[str, Any]:
    """Offer `offered` GET /status a second for `seconds`; the answers' figures, the drain
    (jobs processed a second) of the run meanwhile, and where the CPU went (`named`: pid →
    name of `lab`'s processes, see lab.measure.cpu). The users' requests are spread over each
    period, as independent dashboards' are; `in_step` sends them as one burst a period."""
    stores = Stores.of(settings)
    users = max(1, round(offered / USER_RPS))
    before = stores.runs.get(run_id)
    cpu = CpuShare(named or {}, children="locust").start()
    started = time.monotonic()
    result = run_locust(
        settings.api_url,
        users,
        spawn_rate=users,
        duration_s=seconds,
        out_dir=out_dir,
        scenario="rate",
        p95_ms=1e9,  # figures, not a verdict: every threshold off
        max_fail_ratio=1.0,
        processes=locust_processes,
        user_rps=USER_RPS,
        token=settings.api_token,
        in_step=in_step,
    )
    after = stores.runs.get(run_id)
    shares = cpu.result()
    assert before is not None and after is not None
    drain = (after.processed - before.processed) / (time.monotonic() - started)
    return {
        "offeredPerSecond": offered,
        "answeredPerSecond": round(result.rps, 1),
        "requests": result.requests,
        "failures": result.failures,
        **{key: result.ms(key) for key in ("p50Ms", "p95Ms", "p99Ms", "maxMs")},
        "drainPerSecond": round(drain, 1),
        "cpu": shares,
    }


def status_check(
    base: Settings,
    loads: list[int],
    seconds: float,
    rate_per_minute: float,
    home: Path,
    api_processes: int = 1,
    locust_processes: int = 2,
    in_step: bool = False,
) -> dict[str, Any]:
    settings = isolated(base, "labbench", home=str(home))
    stack.up(settings)
    supervisor = Supervisor(settings, log_dir=home / "logs")
    client = LabClient.of(settings)
    stores = Stores.of(settings)
    per_second = rate_per_minute / 60
    # Enough jobs to keep releasing through every window, with room to spare.
    x = int(per_second * (seconds + 10) * (len(loads) + 2))
    api_args = ["--processes", str(api_processes)] if api_processes > 1 else []
    try:
        supervisor.up(workers=1, api_args=api_args)
        run_id = client.run(x, rate_per_minute)["runId"]
        wait_until(
            lambda: stores.runs.known(run_id).processed > per_second, 60, "the run to get going"
        )
        time.sleep(2)  # past the start-up burst
        named = named_pids(supervisor)
        idle_cpu = CpuShare(named).start()
        idle = drain_per_second(stores, run_id, seconds)
        idle_shares = idle_cpu.result()
        steps = []
        for offered in loads:
            step = load_step(
                settings, run_id, offered, seconds, home / "locust", locust_processes, named,
                in_step,
            )  # fmt: skip
            step["drainRatio"] = round(step["drainPerSecond"] / idle, 3) if idle else None
            steps.append(step)
        still = stores.runs.get(run_id)
        return {
            "releasePerSecond": per_second,
            "apiProcesses": api_processes,
            "locustProcesses": locust_processes,
            "inStep": in_step,
            "seconds": seconds,
            "idleDrainPerSecond": round(idle, 1),
            "idleCpu": idle_shares,
            "steps": steps,
            "runStillActive": bool(still and still.running),
        }
    finally:
        supervisor.down()
        client.close()
        reset(settings)
