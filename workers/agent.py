"""The `agent` kind: a demo "web agent" task that takes its time and says what it is doing.

By default it runs 10 s and reports one step a second ("Navigating to page", "Clicking button",
...) with a percentage and a log line, then writes its result document like every job. Its payload
(`FIELDS` below) makes the failing and retried paths easy to show on purpose. At most 1,000 steps
(duration / interval): each step is a log line and two events.

It runs one by one under the worker's concurrency limit (`BATCHABLE = False`).
"""

from __future__ import annotations

import random
import time
from typing import Any

from lab.runtime.messages import MAX_ATTEMPT, Job
from lab.runtime.payload import Field, PayloadError
from lab.runtime.progress import JobContext

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


def handle(job: Job, ctx: JobContext) -> dict[str, Any]:
    settings = {**DEFAULTS, **job.payload}
    interval = float(settings["stepIntervalSeconds"])
    steps = max(1, round(float(settings["durationSeconds"]) / interval))
    fail_at = settings.get("failAtStep")
    fail_attempts = settings.get("failAttempts")
    fails_now = fail_attempts is None or job.attempt <= fail_attempts
    fail_rate = float(settings.get("failRate") or 0)
    # Same job and attempt, same story: a rerun shows the same steps.
    rng = random.Random(f"{job.jobId}:{job.attempt}")
    started = time.time()
    done: list[str] = []
    for step in range(1, steps + 1):
        time.sleep(max(0.0, started + step * interval - time.time()))
        label, detail = ACTIONS[0] if step == 1 else rng.choice(ACTIONS[1:])
        line = detail.format(
            url=settings["url"],
            ms=rng.randint(80, 900),
            n=rng.randint(2, 40),
            word=rng.choice(WORDS),
        )
        if fails_now and (step == fail_at or (fail_rate and rng.random() < fail_rate)):
            raise AgentFailure(f"step {step} ({label}) failed: element not found")
        ctx.progress(step * 100 / steps, label, f"step {step}/{steps}: {label}: {line}")
        done.append(label)
    return {
        "url": settings["url"],
        "steps": steps,
        "actions": done,
        "seconds": round(time.time() - started, 3),
    }
