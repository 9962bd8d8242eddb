"""The door of every HTTP API `lab` serves (`lab api` and the fault proxy's, `lab fault serve`):
who may talk to it, and what a request may carry, checked before any route runs or any body is
read whole. One implementation, so both doors keep the same rules (docs/BOUNDARIES.md).

Who: an API on loopback is still reachable from any web page the user opens. DNS rebinding
points a hostile name at 127.0.0.1 (so the `Host` header is checked), and a page elsewhere can
POST or open a WebSocket without a preflight (so `Origin`, which browsers always send on those,
is checked). With a token set, every path but the policy's open ones needs
`Authorization: Bearer <token>`, or `?token=` where a browser cannot set headers (EventSource,
WebSocket). Clients without a browser send no `Origin` and are judged by host and token alone.

What: a body is refused by its `Content-Length` (ASCII digits only) or, when it has none, as
soon as what has arrived passes the limit, before it is parsed; JSON nested too deep is refused
by a one-pass scan; where an API takes only JSON, a body of another media type is refused before
a byte of it is read.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from lab.config import ConfigError, Settings

# The deepest JSON body the door lets through: as deep as a job's payload may nest (its own
# check, `lab.runtime.messages.MAX_DEPTH`, runs again on the payload). Kept here, so the door
# both APIs share depends on nothing above the top level of lab.
MAX_DEPTH = 32

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]
# An API's error body from (status, message, fields): each API keeps its own shape.
ErrorShape = Callable[[int, str, list[str] | None], dict[str, Any]]

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def lab_error(_status: int, message: str, fields: list[str] | None) -> dict[str, Any]:
    """The lab API's error shape: `{"error": ..., "fields": [...]}`."""
    return {"error": message, **({"fields": fields} if fields else {})}


def names(text: str) -> frozenset[str]:
    """A comma-separated setting (`LAB_ALLOWED_HOSTS`) as lower-case names."""
    return frozenset(part.strip().lower() for part in text.split(",") if part.strip())


def host_name(host: str) -> str:
    """`127.0.0.1:8000` → `127.0.0.1`, `[::1]:8000` → `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass(frozen=True)
class Policy:
    hosts: frozenset[str]
    origins: frozenset[str]
    token: str
    open_paths: frozenset[str] = frozenset()  # answered without the token
    open_prefixes: tuple[str, ...] = ()

    @classmethod
    def serving(
        cls, settings: Settings, own_url: str, open_paths: Iterable[str] = (),
        open_prefixes: tuple[str, ...] = (),
    ) -> Self:  # fmt: skip
        """The policy of an API reached at `own_url` under these settings; refuses `*` hosts
        without a token, since any host name then reaches the API and DNS rebinding is no
        longer stopped at the door."""
        if "*" in names(settings.allowed_hosts) and not settings.api_token:
            raise ConfigError(
                "LAB_ALLOWED_HOSTS=* lets any web page reach this API through DNS rebinding: "
                "set LAB_API_TOKEN too, or list the host names instead of *"
            )
        own = urlsplit(own_url).hostname
        hosts = LOOPBACK | names(settings.allowed_hosts) | ({own.lower()} if own else set())
        return cls(frozenset(hosts), names(settings.allowed_origins), settings.api_token,
                   frozenset(open_paths), open_prefixes)  # fmt: skip

    def host_allowed(self, host: str | None) -> bool:
        if "*" in self.hosts:
            return True
        return bool(host) and host_name(host) in self.hosts  # type: ignore[arg-type]

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """No Origin (not a browser), the page's own origin, or a configured one."""
        if origin is None:
            return True
        origin = origin.strip().lower()
        if "*" in self.origins or origin in self.origins:
            return True
        parts = urlsplit(origin)
        same = host is not None and parts.netloc == host.lower()
        return parts.scheme in ("http", "https") and same

    def token_ok(self, authorization: str | None, query_token: str | None) -> bool:
        if not self.token:
            return True
        offered = None
        if authorization and authorization[:7].lower() == "bearer ":
            offered = authorization[7:].strip()
        offered = offered or query_token
        return offered is not None and secrets.compare_digest(offered.encode(), self.token.encode())

    def refusal(self, scope: Scope) -> tuple[int, str, dict[str, str]] | None:
        """(status, message, headers) when the request may not pass, else None."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host")
        if not self.host_allowed(host):
            return (
                421,
                f"host {host!r} is not one this lab answers to; "
                "add it to LAB_ALLOWED_HOSTS if it is yours",
                {},
            )
        changes = scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS
        if changes and not self.origin_allowed(headers.get("origin"), host):
            return (
                403,
                f"requests from the page at {headers.get('origin')!r} are not allowed; "
                "add its origin to LAB_ALLOWED_ORIGINS if it is yours",
                {},
            )
        path = scope.get("path") or ""
        if path in self.open_paths or (self.open_prefixes and path.startswith(self.open_prefixes)):
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if not self.token_ok(headers.get("authorization"), (query.get("token") or [None])[0]):
            return (
                401,
                "this lab needs its API token: send `Authorization: Bearer <LAB_API_TOKEN>`",
                {"www-authenticate": "Bearer"},
            )
        return None


class AccessGuard:
    """ASGI middleware applying a `Policy` to every HTTP request and WebSocket handshake."""

    def __init__(self, app: ASGIApp, policy: Policy, shape: ErrorShape = lab_error):
        self.app = app
        self.policy = policy
        self.shape = shape

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self.policy.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": refusal[1][:120]})
        else:
            await respond(send, refusal[0], refusal[1], refusal[2], shape=self.shape)


async def respond(
    send: Any,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    fields: list[str] | None = None,
    shape: ErrorShape = lab_error,
) -> None:
    """A JSON error answer straight from middleware (no route ran), shaped like the routes'."""
    body = json.dumps(shape(status, message, fields)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# --- what a request may carry -------------------------------------------------------------------
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


def media_refusal(headers: dict[bytes, bytes]) -> str | None:
    """Why a request may not carry its body to a JSON-only API, or None: a body needs
    `Content-Type: application/json`, and any declared type must be that one."""
    declared = headers.get(b"content-type", b"").decode("latin-1")
    media = declared.split(";", 1)[0].strip().lower()
    length = headers.get(b"content-length", b"0").decode("latin-1").strip()
    has_body = b"transfer-encoding" in headers or length not in ("", "0")
    if media == "application/json" or (not declared and not has_body):
        return None
    shown = repr(declared[:60]) if declared else "none"
    return f"body: send it as Content-Type: application/json (this request's type: {shown})"


class BodyLimits:
    """ASGI middleware: 413 past `max_bytes`, `depth_status` (422) for JSON nested deeper than
    `max_depth`, and with `json_only` 415 for a body that is not declared JSON."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, max_depth: int = MAX_DEPTH, *,
        json_only: bool = False, depth_status: int = 422, shape: ErrorShape = lab_error,
    ):  # fmt: skip
        self.app, self.shape = app, shape
        self.max_bytes, self.max_depth, self.depth_status = max_bytes, max_depth, depth_status
        self.json_only = json_only

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.json_only and (why := media_refusal(headers)) is not None:
            await respond(send, 415, why, fields=["body"], shape=self.shape)
            return
        too_large = f"the request body is larger than {self.max_bytes} bytes"
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            await respond(send, 413, too_large, fields=["body"], shape=self.shape)
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
                await respond(send, 413, too_large, fields=["body"], shape=self.shape)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and json_depth(body, self.max_depth) > self.max_depth:
            deep = f"body: JSON nested deeper than {self.max_depth} levels"
            await respond(send, self.depth_status, deep, fields=["body"], shape=self.shape)
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
