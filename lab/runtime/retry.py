"""Retries and dead letters: what happens to a job that failed, decided in one place.

A failed attempt is retried while its budget lasts, after a delay taken from a fixed ladder
(by default 1 s, 5 s, 30 s, 2 min, 10 min, then 10 min again): each step is one durable queue
whose messages expire back into the queue they came from, declared once with the topology, so
the number of queues never depends on how often a job failed. A manual retry starts a fresh
budget at the bottom of the ladder. What cannot succeed by retrying (a malformed body, an
unknown kind) and what used up its budget goes to the dead-letter queue with headers that say
why, where it came from and when it failed.

Everything here is pure: the worker does the publishing, `lab.runtime.broker` declares the queues.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal, get_args

# The ladder is a setting, parsed where every setting is (lab.config); named here too, where
# retries are decided.
from lab.config import DEFAULT_LADDER_MS, LadderError, parse_ladder  # noqa: F401
from lab.runtime.payload import PermanentError

# What a handler raises that no retry can mend, so its job is dead-lettered at once (reason
# `permanent`): what the kind says is permanent, and arithmetic that failed (an overflow, a
# division by zero), since the same input computes the same way on every attempt.
PERMANENT: tuple[type[Exception], ...] = (PermanentError, ArithmeticError)

HEADER_TEXT_LIMIT = 1000  # AMQP headers travel with every message: keep error texts short

Reason = Literal["malformed", "unknown-kind", "permanent", "exhausted"]
# The one list of what a worker writes as a dead letter's `x-lab-reason` (docs/concepts.md).
REASONS: tuple[str, ...] = get_args(Reason)


@dataclass(frozen=True)
class Budget:
    """The attempts a job may use: `first` to `last` (a manual retry moves both up)."""

    first: int
    last: int

    @classmethod
    def of_run_job(cls, max_attempts: int) -> Budget:
        return cls(1, max_attempts)

    @classmethod
    def of_record(cls, last: int, attempts: int) -> Budget:
        """A single job's budget as its record keeps it (`lastAttempt`, `attempts`)."""
        return cls(max(1, last - attempts + 1), last)

    def after_failure(self, attempt: int) -> Literal["retry", "dead"]:
        return "retry" if attempt < self.last else "dead"

    def delay_ms(self, ladder: tuple[int, ...], attempt: int) -> int:
        """The wait before the attempt after `attempt`: the ladder's step for this failure."""
        step = max(0, attempt - self.first)
        return ladder[min(step, len(ladder) - 1)]


def retry_queue(target: str, delay_ms: int) -> str:
    """The ladder step's queue for messages that return to `target`."""
    return f"{target}.retry.{delay_ms}"


def short(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= HEADER_TEXT_LIMIT else text[: HEADER_TEXT_LIMIT - 1] + "…"


def first_failed(old: dict[str, Any] | None, now: int) -> int:
    """When the message first failed: from its headers if this lab could have written them
    (anyone can publish headers), else now."""
    first = (old or {}).get("x-lab-first-failed-ms")
    if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= now:
        return now
    return first


def retry_headers(error: str | None, old: dict[str, Any] | None, now_ms: int | None = None):
    """Headers of a retried attempt: its error, and the first failure carried along."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    return {"x-lab-error": short(error), "x-lab-first-failed-ms": first_failed(old, now)}


def dead_letter_headers(
    reason: Reason,
    error: str | None,
    queue: str,
    worker: str,
    attempt: int | None,
    old: dict[str, Any] | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """Headers of a dead letter: why, from where, which attempt, first and last failure.

    `old` are the headers the message arrived with: a replayed dead letter that dies again keeps
    the time it first failed."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    return {
        "x-lab-reason": reason,
        "x-lab-error": short(error),
        "x-lab-queue": queue,
        "x-lab-worker": worker,
        "x-lab-attempt": attempt if attempt is not None else 0,
        "x-lab-first-failed-ms": first_failed(old, now),
        "x-lab-last-failed-ms": now,
    }
