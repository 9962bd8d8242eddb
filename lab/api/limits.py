"""What one request or one API process may hold: body size and depth, and live streams.

A body is refused by its `Content-Length` (or, when it has none, as soon as what has arrived
passes the limit) before it is read in full or parsed, so a large or deeply nested body costs the
API nothing (`lab.gate.BodyLimits`, shared with the fault proxy's API). Live streams (SSE and
WebSocket) each hold a Redis reader; past `max_streams` per process a new one is told to come
back later (503), while `/status` and every other route go on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.gate import BODY_METHODS, BodyLimits, ScanCost, json_depth

# What the rest of the API and its tests import from here (the body checks are lab/gate.py's).
__all__ = ["BODY_METHODS", "BodyLimits", "ScanCost", "StreamSlots", "StreamsFull", "client_of",
           "json_depth"]  # fmt: skip


class StreamsFull(RuntimeError):
    """This API process already serves as many live streams as it may."""


class StreamSlots:
    """A count of the live streams one API process serves (the event loop is one thread), in
    all and per client, so one client cannot take every slot.

    A client is its address: the one `LAB_API_TOKEN` is shared by every client of a lab, so it
    would name none of them apart."""

    def __init__(self, limit: int, share: float = 1.0):
        self.limit = limit
        self.per_client = max(1, int(limit * share))
        self.used = 0
        self.by_client: dict[str, int] = {}

    def take(self, client: str = "") -> Callable[[], None]:
        """One slot for `client`; returns what gives it back (once, however often called)."""
        if self.used >= self.limit:
            raise StreamsFull(
                f"this API process already serves {self.limit} live streams "
                "(LAB_MAX_STREAMS); try again shortly or poll /status"
            )
        if self.by_client.get(client, 0) >= self.per_client:
            raise StreamsFull(
                f"this client already holds {self.per_client} live streams, its share of "
                "LAB_MAX_STREAMS (LAB_STREAM_SHARE); close one or poll /status"
            )
        self.used += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        given = False

        def give_back() -> None:
            nonlocal given
            if given:
                return
            given = True
            self.used = max(0, self.used - 1)
            left = self.by_client.get(client, 1) - 1
            if left > 0:
                self.by_client[client] = left
            else:
                self.by_client.pop(client, None)

        return give_back


def client_of(connection: Any) -> str:
    """The address a request or WebSocket came from ("" when the server does not say)."""
    client = getattr(connection, "client", None)
    return client.host if client is not None else ""
