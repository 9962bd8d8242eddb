"""Waiting on a condition with a deadline: the one poll loop of lab (tests, drills, the bench,
the supervisor and the stack all wait this way; nobody sleeps a fixed time and hopes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def poll(condition: Callable[[], Any], timeout_s: float, poll_s: float = 0.1) -> Any:
    """`condition()` until it returns something truthy (returned) or `timeout_s` passes (then
    its last, falsy answer is returned). The condition is always asked once more at the end."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


def wait_until(
    condition: Callable[[], Any],
    timeout_s: float,
    what: str,
    explain: Callable[[], str] = lambda: "",
    poll_s: float = 0.1,
) -> Any:
    """`poll`, failing with a `TimeoutError` that names what was awaited (and, from `explain`,
    what was seen instead)."""
    value = poll(condition, timeout_s, poll_s)
    if value:
        return value
    detail = explain()
    raise TimeoutError(
        f"timed out after {timeout_s:.0f}s waiting for {what}" + (f"\n{detail}" if detail else "")
    )
