"""The `agent` kind: a demo "web agent" task that takes its time and says what it is doing.

By default it runs 10 s and reports one step a second ("Navigating to page", "Clicking button",
...) with a percentage and a log line, then writes its result document like every job. Its payload
(`FIELDS` below) makes the failing and retried paths easy to show on purpose. At most 1,000 steps
(duration / interval): each step is a log line and two events.

It runs one by one under the worker's concurrency limit (`BATCHABLE = False`). Its steps are
drawn from the portable generator (`lab.runtime.portable`: key the job's id, seed 0), so the
same job and attempt tell the same story, and fail at the same step, in a JavaScript worker
(`targets/bullmq/lib/kinds.js`).
"""

from __future__ import annotations

import time
from typing import Any

from lab import Field, Job, JobContext, PayloadError
from lab.runtime import portable
from lab.runtime.messages import MAX_ATTEMPT

BATCHABLE = False

ACTIONS = (
    ("Navigating to page", "opened {url}"),
    ("Waiting for page load", "DOMContentLoaded after {ms} ms"),
    ("Clicking button", "clicked button#{word}"),
    ("Typing text", "typed {n} characters into input[name={word}]"),
    ("Scrolling", "scrolled {n}0 px down"),
    ("Taking screenshot", "saved screenshot-{n}.png"),
    ("Extracting text", "extracted {n}0 characters from main"),
    ("Filling form", "filled {n} fields of form#{word}"),
    ("Submitting form", "submitted form#{word}, HTTP 200"),
    ("Reading table", "read {n} rows of table.{word}"),
    ("Hovering menu", "opened menu '{word}'"),
    ("Closing dialog", "dismissed dialog '{word}'"),
)
WORDS = ("search", "login", "results", "checkout", "settings", "profile", "cart", "pricing")

MAX_STEPS = 1000
FIELDS = (
    Field("durationSeconds", "number", "total time", default=10.0, low=0, high=3600),
    Field("stepIntervalSeconds", "number", "time between steps", default=1.0, low=0.01, high=60),
    Field(
        "url",
        "string",
        "the page it pretends to visit",
        default="https://example.com/",
        max_length=2000,
    ),  # fmt: skip
    Field("failAtStep", "integer", "fail at this step (1-based) ...", low=1, high=MAX_STEPS),
    Field(
        "failAttempts",
        "integer",
        "... on attempts up to this one only (default: every attempt)",
        low=0,
        high=MAX_ATTEMPT,
    ),  # fmt: skip
    Field("failRate", "number", "chance of failing at each step", default=0.0, low=0, high=1),
)
DEFAULTS = {f.name: f.default for f in FIELDS if f.default is not None}


class AgentFailure(RuntimeError):
    """The injected failure: a step that could not be done."""


def validate(payload: dict[str, Any]) -> None:
    """What single fields cannot say: the steps the duration and interval make (the fields
    themselves are checked first, from FIELDS)."""
    duration = payload.get("durationSeconds") or DEFAULTS["durationSeconds"]
    interval = payload.get("stepIntervalSeconds") or DEFAULTS["stepIntervalSeconds"]
    if duration < interval:
        raise PayloadError("durationSeconds", "must be at least one step interval")
    if duration / interval > MAX_STEPS:
        raise PayloadError(
            "stepIntervalSeconds", f"makes {duration / interval:.0f} steps; at most {MAX_STEPS}"
        )


def pick(u: float, n: int) -> int:
    """One of 0..n-1 from a uniform: exact in every language (u·n is one rounding)."""
    return min(n - 1, int(u * n))


def step(job_id: str, attempt: int, number: int, url: str) -> tuple[str, str, float]:
    """Step `number` (1-based) of an attempt: its label, its log line, and the uniform its
    `failRate` is compared with; the draws of step s are indices 5·(s−1) + 0..4."""
    stream = portable.Stream(0, job_id, attempt)
    at = portable.AGENT_DRAWS * (number - 1)
    label, detail = ACTIONS[0] if number == 1 else ACTIONS[1 + pick(stream.at(at), 11)]
    line = detail.format(
        url=url,
        ms=80 + pick(stream.at(at + 1), 821),
        n=2 + pick(stream.at(at + 2), 39),
        word=WORDS[pick(stream.at(at + 3), len(WORDS))],
    )
    return label, line, stream.at(at + 4)


def handle(job: Job, ctx: JobContext) -> dict[str, Any]:
    settings = {**DEFAULTS, **job.payload}
    interval = float(settings["stepIntervalSeconds"])
    steps = max(1, round(float(settings["durationSeconds"]) / interval))
    fail_at = settings.get("failAtStep")
    fail_attempts = settings.get("failAttempts")
    fails_now = fail_attempts is None or job.attempt <= fail_attempts
    fail_rate = float(settings.get("failRate") or 0)
    started = time.time()
    done: list[str] = []
    for number in range(1, steps + 1):
        time.sleep(max(0.0, started + number * interval - time.time()))
        # Same job and attempt, same story: a rerun shows the same steps.
        label, line, chance = step(job.jobId, job.attempt, number, settings["url"])
        if fails_now and (number == fail_at or chance < fail_rate):
            raise AgentFailure(f"step {number} ({label}) failed: element not found")
        ctx.progress(number * 100 / steps, label, f"step {number}/{steps}: {label}: {line}")
        done.append(label)
    return {
        "url": settings["url"],
        "steps": steps,
        "actions": done,
        "seconds": round(time.time() - started, 3),
    }
