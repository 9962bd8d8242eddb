"""Locust against the lab API.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000  # web UI on :8089
    locust -f loadtests/locustfile.py --host ... --headless -u 50 -r 10 -t 30s StatusUser
    lab loadtest --users 50 --spawn-rate 10 --duration 30              # the same, wrapped

Two user classes, chosen by name on the command line (or by tag, `--tags status|mixed`):

    StatusUser   GET /status every 0.05–0.25 s: the "status stays under 200 ms" check
    MixedUser    what a busy admin page and its users do: GET /status, GET /jobs, POST /jobs

When Locust quits it checks the thresholds (`--p95-ms`, `--p99-ms`, `--max-fail-ratio`; by default
p95 < 200 ms and no failures) over all requests and sets a non-zero exit code when one is missed,
so a headless run is a pass/fail check as well as a measurement.
"""

from __future__ import annotations

import logging
import os
import random
import time
from urllib.parse import urlsplit

import gevent
from locust import FastHttpUser, between, events, tag, task

log = logging.getLogger("lab.measure.loadtest")


@events.init_command_line_parser.add_listener
def _thresholds(parser) -> None:  # noqa: ANN001 - Locust's own parser type
    parser.add_argument("--p95-ms", type=float, default=200.0, help="fail above this p95 (ms)")
    parser.add_argument("--p99-ms", type=float, default=0.0, help="fail above this p99 (0: off)")
    parser.add_argument("--max-fail-ratio", type=float, default=0.0, help="fail above this ratio")
    parser.add_argument(
        "--user-rps", type=float, default=10.0, help="StatusRateUser: requests a second per user"
    )
    parser.add_argument(
        "--in-step",
        action="store_true",
        help="StatusRateUser: every user on the same beat (one burst a period), not spread out",
    )


@events.quitting.add_listener
def _check_thresholds(environment, **_kwargs) -> None:  # noqa: ANN001
    total = environment.stats.total
    options = environment.parsed_options
    if total.num_requests == 0:
        log.error("no request was made: failing the run")
        environment.process_exit_code = 1
        return
    p95 = total.get_response_time_percentile(0.95)
    p99 = total.get_response_time_percentile(0.99)
    missed = []
    if p95 > options.p95_ms:
        missed.append(f"p95 {p95:.0f} ms > {options.p95_ms:.0f} ms")
    if options.p99_ms and p99 > options.p99_ms:
        missed.append(f"p99 {p99:.0f} ms > {options.p99_ms:.0f} ms")
    if total.fail_ratio > options.max_fail_ratio:
        missed.append(f"failure ratio {total.fail_ratio:.2%} > {options.max_fail_ratio:.2%}")
    verdict = "FAILED: " + "; ".join(missed) if missed else "passed"
    log.info(
        "thresholds %s (%d requests, p95 %.0f ms, p99 %.0f ms, failures %.2f%%)",
        verdict,
        total.num_requests,
        p95,
        p99,
        total.fail_ratio * 100,
    )
    if missed:
        environment.process_exit_code = 1


def get_status(user: FastHttpUser) -> None:
    """GET /status; a 200 without the counters counts as a failure too."""
    with user.client.get("/status", catch_response=True) as response:
        if response.status_code == 200 and "processed" not in (response.text or ""):
            response.failure("GET /status answered without 'processed'")


def token_goes_to(host: str | None) -> bool:
    """The token goes only to the lab it belongs to: `LAB_API_URL`'s host, or one listed in
    `LAB_LOADTEST_TOKEN_HOSTS` (comma-separated). Locust's web UI lets anyone who reaches it
    name any host to swarm, and the token must not follow."""
    target = (urlsplit(host or "").hostname or "").lower()
    own = (urlsplit(os.environ.get("LAB_API_URL", "http://127.0.0.1:8000")).hostname or "").lower()
    extra = os.environ.get("LAB_LOADTEST_TOKEN_HOSTS", "")
    allowed = {own, *(h.strip().lower() for h in extra.split(",") if h.strip())}
    return bool(target) and target in allowed


class LabUser(FastHttpUser):
    """Sends the lab's API token when `LAB_API_TOKEN` is set (as `lab loadtest` passes it), and
    only to the lab's own host (see `token_goes_to`)."""

    abstract = True

    def on_start(self) -> None:
        token = os.environ.get("LAB_API_TOKEN", "")
        if token and token_goes_to(self.host):
            self.client.auth_header = f"Bearer {token}"


class StatusUser(LabUser):
    """Polls GET /status like a busy dashboard: every 0.05–0.25 s, about 7 requests a second.

    A user with no wait at all makes the test closed-loop: N such users saturate the API and
    then measure its queue (N / throughput), not the cost of one answer. Locust's own
    `--users` then sets the load: 100 users ≈ 700 requests a second.
    """

    wait_time = between(0.05, 0.25)

    @tag("status")
    @task
    def status(self) -> None:
        get_status(self)


class StatusRateUser(LabUser):
    """Offers a fixed load: each user sends `--user-rps` GET /status a second whatever the
    answers' latency (constant throughput), so users × rate is the offered load and a slow API
    shows as fewer answers and longer times, not as a lighter test.

    Each user starts at a random point of its first period, as independent dashboards do.
    Locust spawns a whole step's users within milliseconds, and constant pacing then keeps
    them on the same beat for good: the offered load arrives as one burst per period, and the
    figures measure how long the last answer of a burst waits behind the others (in the API
    and in Locust's own process), not how the API holds a steady rate. `--in-step` keeps the
    beat, to measure exactly that."""

    def on_start(self) -> None:
        super().on_start()
        options = self.environment.parsed_options
        self.period = 1 / options.user_rps
        if not options.in_step:
            gevent.sleep(random.uniform(0, self.period))
        self.due = time.monotonic()  # when this user's latest request was due

    def wait_time(self) -> float:
        """Until this user's next beat; after an answer that came too late for it, at once,
        and the beat starts again from there (a slow API is not sent a catch-up burst)."""
        now = time.monotonic()
        self.due = max(self.due + self.period, now)
        return self.due - now

    @tag("rate")
    @task
    def status(self) -> None:
        get_status(self)


class MixedUser(LabUser):
    """A person with the admin page open, adding a short job now and then."""

    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        super().on_start()
        self.list_jobs()  # opening the admin page loads the job list first

    @tag("mixed")
    @task(6)
    def status(self) -> None:
        self.client.get("/status")

    @tag("mixed")
    @task(3)
    def list_jobs(self) -> None:
        self.client.get("/jobs?limit=20", name="/jobs?limit=20")

    @tag("mixed")
    @task(1)
    def add_job(self) -> None:
        self.client.post(
            "/jobs",
            json={"kind": "agent", "payload": {"durationSeconds": 1, "stepIntervalSeconds": 0.5}},
        )
