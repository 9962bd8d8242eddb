"""What one request or one API process may hold: body size and depth, and live streams.

A body is refused by its `Content-Length` (or, when it has none, as soon as what has arrived
passes the limit) before it is read in full or parsed, so a large or deeply nested body costs the
API nothing. Live streams (SSE and WebSocket) each hold a Redis reader; past `max_streams` per
process a new one is told to come back later (503), while `/status` and every other route go on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.api.access import ASGIApp, Scope, respond
from lab.runtime.messages import MAX_DEPTH

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TOKEN = re.compile(rb'[\[\]{}"]')
# The rest of a string after its opening quote. Possessive (`*+`): it never gives back what it
# took, so a string that never ends fails after one pass instead of backtracking.
_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*+"', re.DOTALL)


@dataclass
class ScanCost:
    """What one `json_depth` call did: tokens visited and bytes the regex engine examined, so a
    test can show the cost grows with the body's size and nothing more."""

    steps: int = 0
    examined: int = 0


def json_depth(body: bytes, limit: int = MAX_DEPTH, cost: ScanCost | None = None) -> int:
    """How deeply a JSON text nests, counted up to `limit + 1`, without parsing it (strings are
    skipped, so brackets inside them do not count).

    One pass from left to right: every byte is examined at most twice (once by the token
    search, once by the string it belongs to), whatever the body holds; a string that never
    ends stops the scan (the body is not JSON, and the parser says so)."""
    cost = cost if cost is not None else ScanCost()
    level = deepest = pos = 0
    while True:
        cost.steps += 1
        found = _TOKEN.search(body, pos)
        if found is None:
            cost.examined += len(body) - pos
            break
        cost.examined += found.end() - pos
        pos = found.end()
        char = found.group()
        if char == b'"':
            rest = _STRING_REST.match(body, pos)
            if rest is None:
                cost.examined += len(body) - pos
                break
            cost.examined += rest.end() - pos
            pos = rest.end()
        elif char in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
            if deepest > limit:
                break
        else:
            level -= 1
    return deepest


class BodyLimits:
    """ASGI middleware: 413 past `max_bytes`, 422 for JSON nested deeper than `max_depth`."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = MAX_DEPTH):
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is larger than {self.max_bytes} bytes"
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            await respond(send, 413, too_large)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await respond(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and json_depth(body, self.max_depth) > self.max_depth:
            await respond(
                send,
                422,
                f"body: JSON nested deeper than {self.max_depth} levels",
                fields=["body"],
            )
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


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
