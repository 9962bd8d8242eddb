"""`lab loadtest`: Locust against the API, headless, with thresholds that set the exit code."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from lab.cli.arguments import positive_float, positive_int
from lab.cli.runs import slo_arg
from lab.cli.terminal import DataTable, bad_input, out, say
from lab.client import LabClient
from lab.config import Settings
from lab.runtime import slo


def register(sub: Any) -> None:
    lt = sub.add_parser("loadtest", help="Locust headless against the API, with thresholds")
    lt.add_argument("--users", type=positive_int, default=20, help="simulated clients")
    lt.add_argument(
        "--spawn-rate", type=positive_float, default=10.0, help="clients started per second"
    )
    lt.add_argument("--duration", type=positive_float, default=30.0, help="seconds")
    lt.add_argument(
        "--scenario",
        choices=["status", "mixed", "rate"],
        default="status",
        help="status: a busy dashboard; mixed: an admin page user; rate: --user-rps per user",
    )
    lt.add_argument("--user-rps", type=positive_float, default=10.0, help="rate scenario")
    lt.add_argument(
        "--in-step",
        action="store_true",
        help="rate scenario: every user on one beat (a burst a period), not spread out",
    )
    lt.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="Locust worker processes here (distributed mode: a master and N workers)",
    )
    lt.add_argument(
        "--master",
        action="store_true",
        help="be the master for --processes workers started on other hosts (port 5557)",
    )
    lt.add_argument("--worker", metavar="MASTER_HOST", help="be a worker of the master there")
    lt.add_argument("--p95-ms", type=positive_float, default=200.0, help="fail above this p95")
    lt.add_argument("--p99-ms", type=positive_float, default=None, help="fail above this p99")
    lt.add_argument(
        "--max-fail-ratio", type=float, default=0.0, help="fail above this share of failed requests"
    )
    lt.add_argument(
        "--slo", type=functools.partial(slo_arg, scope="loadtest"), action="append",
        metavar="OBJECTIVE",
        help="an objective the whole test is judged by, as runs are (repeatable): "
        "http.p99<300ms, http.p50<50ms, failedRatio<0.001; any breach exits 1",
    )  # fmt: skip
    lt.add_argument("--out", default="loadtests/results", help="where Locust's CSV stats go")
    lt.set_defaults(handler=cmd_loadtest)


def cmd_loadtest(args: argparse.Namespace, settings: Settings) -> int:
    from lab.measure.loadtest import run_locust

    if not 0 <= args.max_fail_ratio <= 1:
        return bad_input("--max-fail-ratio must be from 0 to 1")
    if args.worker:
        from lab.measure.loadtest import run_worker

        return run_worker(args.worker, args.scenario, settings.api_token)
    LabClient.of(settings).status()  # a clear error now beats 100 % failures later
    result = run_locust(
        settings.api_url,
        args.users,
        args.spawn_rate,
        args.duration,
        Path(args.out),
        scenario=args.scenario,
        p95_ms=args.p95_ms,
        p99_ms=args.p99_ms or 0.0,
        max_fail_ratio=args.max_fail_ratio,
        processes=args.processes,
        user_rps=args.user_rps,
        in_step=args.in_step,
        token=settings.api_token,
        expect_remote_workers=args.processes if args.master else 0,
    )
    where = f", {args.processes} processes" if args.processes > 1 else ""
    table = DataTable(
        title=f"locust {args.scenario}, {args.users} users{where}, {args.duration:g} s"
    )
    for column in ("endpoint", "requests", "failures", "rps", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column)
    rows = [*result.per_endpoint]
    shown = {key: result.ms(key) for key in ("p50Ms", "p95Ms", "p99Ms")}
    rows.append({"name": "all", "requests": result.requests, "failures": result.failures,
                 "rps": result.rps, **shown})  # fmt: skip
    for r in rows:
        table.add_row(
            r["name"], f"{r['requests']:,}", str(r["failures"]), f"{r['rps']:,.0f}",
            f"{r['p50Ms']:.0f}", f"{r['p95Ms']:.0f}", f"{r['p99Ms']:.0f}",
        )  # fmt: skip
    out.print(table)
    verdict = "passed" if result.passed else "FAILED"
    say("lab: thresholds {} (p95 < {:g} ms)", verdict, args.p95_ms)
    if not result.passed and result.requests == 0:
        for line in result.output[-2000:].splitlines():  # Locust's own words, as text
            say("{}", line)
    states = slo.judge_values(slo.parse(args.slo or [], "loadtest"), result.measures())
    for state in states:
        value = "not measured" if state["value"] is None else f"{state['value']:g}"
        say("lab: objective {}: {} ({})", state["state"], state["text"], value)
    breached = any(s["state"] != "ok" for s in states)
    return 0 if result.passed and not breached else 1
