"""The `agent` kind: a demo "web agent" task that takes its time and says what it is doing.

By default it runs 10 s and reports one step a second ("Navigating to page", "Clicking button",
...) with a percentage and a log line, then writes its result document like every job. Its payload
makes the failing and retried paths easy to show on purpose:

    durationSeconds      total time (default 10, up to 3600)
    stepIntervalSeconds  time between steps (default 1, from 0.01)
    url                  the page it pretends to visit
    failAtStep           fail at this step (1-based) ...
    failAttempts         ... on attempts up to this one only (default: every attempt)
    failRate             chance of failing at each step, from 0 to 1 (default 0)

It runs one by one under the worker's concurrency limit (`BATCHABLE = False`).
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

from lab.handlers import PayloadError
from lab.jobs import JobContext
from lab.messages import Job

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

DEFAULTS = {"durationSeconds": 10.0, "stepIntervalSeconds": 1.0, "url": "https://example.com/"}


class AgentFailure(RuntimeError):
    """The injected failure: a step that could not be done."""


def _number(payload: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise PayloadError(name, f"must be a number, got {value!r}")
    if not low <= value <= high:
        raise PayloadError(name, f"must be from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _whole(payload: dict[str, Any], name: str, low: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PayloadError(name, f"must be a whole number of at least {low}, got {value!r}")
    return value


def validate(payload: dict[str, Any]) -> None:
    unknown = set(payload) - {*DEFAULTS, "failAtStep", "failAttempts", "failRate"}
    if unknown:
        raise PayloadError(sorted(unknown)[0], "is not an agent setting")
    duration = _number(payload, "durationSeconds", 0, 3600)
    interval = _number(payload, "stepIntervalSeconds", 0.01, 60)
    if (duration or DEFAULTS["durationSeconds"]) < (interval or DEFAULTS["stepIntervalSeconds"]):
        raise PayloadError("durationSeconds", "must be at least one step interval")
    _whole(payload, "failAtStep", 1)
    _whole(payload, "failAttempts", 0)
    _number(payload, "failRate", 0, 1)
    if not isinstance(payload.get("url", ""), str):
        raise PayloadError("url", "must be a string")


def handle(job: Job, ctx: JobContext) -> dict[str, Any]:
    validate(job.payload)
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
