"""Waiting out an outage in place: run an action until the service answers, or until asked to
stop. A worker holds its batch meanwhile (nothing acked, no attempt spent) and says what it
waits for in its heartbeat (`waitingFor`, shown in `/status`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from lab.runtime import connections as redis_connections
from lab.runtime import store as store_module
from lab.runtime.backoff import Backoff

log = logging.getLogger("lab.runtime.worker")
T = TypeVar("T")


class Stopping(Exception):
    """The process was asked to stop while a service was unreachable."""


def brief(exc: BaseException) -> str:
    """An exception in one short line (a client's connection errors nest several deep)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 160 else text[:159] + "…"


class Patience:
    def __init__(self, stopping: threading.Event):
        self.stopping = stopping
        self.waiting_for = ""  # the service waited for now, "" when none

    def __call__(self, action: Callable[[], T], what: str) -> T:
        """`action()` once the service answers; raises `Stopping` if asked to stop meanwhile.
        Errors that are not a service being away are raised at once."""
        wait = Backoff(initial_s=0.5, cap_s=5.0)
        began = 0.0
        while True:
            try:
                result = action()
            except Exception as exc:
                if not (redis_connections.unavailable(exc) or store_module.unavailable(exc)):
                    raise
                if self.stopping.is_set():
                    log.warning("%s unreachable while stopping; leaving the batch unacked", what)
                    raise Stopping from exc
                self.waiting_for = what
                delay = wait.next()
                # Said once per outage; its retries only at debug level, its end with its length.
                if wait.failures == 1:
                    began = time.monotonic()
                    log.warning("%s unreachable (%s); retrying, holding this batch until it is "
                                "back", what, brief(exc))  # fmt: skip
                else:
                    log.debug("%s still unreachable (%s); retrying in %.1fs", what, brief(exc),
                              delay)  # fmt: skip
                self.stopping.wait(delay)
                continue
            if wait.failures:
                log.info("%s is back after %.1f s (%d tries)", what, time.monotonic() - began,
                         wait.failures + 1)  # fmt: skip
                self.waiting_for = ""
            return result


def describe_amqp(exc: BaseException) -> str:
    """A lost connection's reason, with what to do when it is a topology mismatch."""
    import pika.exceptions

    text = repr(exc)
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and exc.reply_code == 406:
        text += (
            " — a queue exists with other arguments (declared by an older lab or another "
            "LAB_RETRY_LADDER_MS / LAB_DEAD_LETTER_MAX); `lab reset` removes this lab's queues"
        )
    return text
