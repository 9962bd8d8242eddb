"""Who may talk to the API: the host it is reached by, the page a browser request comes from,
and an optional bearer token.

A lab API on loopback is still reachable from any web page the user opens: DNS rebinding points
a hostile name at 127.0.0.1 (so the `Host` header is checked), and a page elsewhere can POST or
open a WebSocket without a preflight (so `Origin`, which browsers always send on those, is
checked). A user who exposes the API beyond loopback sets `LAB_API_TOKEN`; every route but
`/healthz` then needs `Authorization: Bearer <token>`, or `?token=` where a browser cannot set
headers (EventSource, WebSocket). Clients without a browser send no `Origin` and are judged by
host and token alone.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lab.config import ConfigError, Settings

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = frozenset({"/healthz"})
OPEN_PREFIXES = ("/admin/static/",)  # the admin page's script and styles: no data in them


def _names(text: str) -> frozenset[str]:
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

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        """The policy of these settings; refuses `*` hosts without a token, since any host name
        then reaches the API and DNS rebinding is no longer stopped at the door."""
        if "*" in _names(settings.allowed_hosts) and not settings.api_token:
            raise ConfigError(
                "LAB_ALLOWED_HOSTS=* lets any web page reach this API through DNS rebinding: "
                "set LAB_API_TOKEN too, or list the host names instead of *"
            )
        own = urlsplit(settings.api_url).hostname
        hosts = LOOPBACK | _names(settings.allowed_hosts) | ({own.lower()} if own else set())
        return cls(frozenset(hosts), _names(settings.allowed_origins), settings.api_token)

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
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
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

    def __init__(self, app: ASGIApp, policy: Policy):
        self.app = app
        self.policy = policy

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
            await respond(send, refusal[0], refusal[1], refusal[2])


async def respond(
    send: Any,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    fields: list[str] | None = None,
) -> None:
    """A JSON error answer straight from middleware (no route ran), shaped like the routes'."""
    answer: dict[str, Any] = {"error": message}
    if fields:
        answer["fields"] = fields
    body = json.dumps(answer).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
