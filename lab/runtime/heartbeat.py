"""Writing a process's heartbeat every `LAB_HEARTBEAT_S` until it stops.

What a heartbeat says is `lab.runtime.beats`; where it goes is `stores.heartbeats`. This is only
the loop, shared by the worker and the scheduler: a write that fails (Redis away) is logged and
tried again on the next beat, never fatal, because a missed heartbeat costs only a stale row,
and the key's TTL makes a process that stopped beating vanish from `/status`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from lab.config import Settings, safe_url
from lab.runtime.patience import brief

log = logging.getLogger("lab.runtime.heartbeat")


def identity(process_id: str) -> dict[str, Any]:
    """The fields every process's heartbeat starts with (`beats.COMMON`)."""
    return {"id": process_id, "pid": os.getpid(), "host": socket.gethostname()}


def keep_beating(
    write: Callable[[], None],
    settings: Settings,
    stopped: Callable[[], bool],
    wait: Callable[[float], Any] = time.sleep,
) -> None:
    """Call `write` every `settings.heartbeat_s` until `stopped()`; `wait` sleeps between beats
    (an `Event.wait` ends the wait as soon as the process is asked to stop)."""
    while not stopped():
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat is only a stale row
            log.warning(
                "heartbeat not written to Redis at %s (%s); it is retried every %gs",
                safe_url(settings.redis_url),
                brief(exc),
                settings.heartbeat_s,
            )
        wait(settings.heartbeat_s)
