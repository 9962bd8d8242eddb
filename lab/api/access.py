"""Who may talk to the API: the host it is reached by, the page a browser request comes from,
and an optional bearer token.

A lab API on loopback is still reachable from any web page the user opens: DNS rebinding points
a hostile name at 127.0.0.1 (so the `Host` header is checked), and a page elsewhere can POST or
open a WebSocket without a preflight (so `Origin`, which browsers always send on those, is
checked). A user who exposes the API beyond loopback sets `LAB_API_TOKEN`; every route but
`/healthz` then needs `Authorization: Bearer <token>`, or `?token=` where a browser cannot set
headers (EventSource, WebSocket). Clients without a browser send no `Origin` and are judged by
host and token alone. The checks themselves are `lab.gate`'s, shared with the fault proxy's API.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab import gate
from lab.config import Settings
from lab.gate import (
    LOOPBACK,
    SAFE_METHODS,
    AccessGuard,
    ASGIApp,
    Scope,
    host_name,
    respond,
)

OPEN_PATHS = frozenset({"/healthz"})
OPEN_PREFIXES = ("/admin/static/",)  # the admin page's script and styles: no data in them


@dataclass(frozen=True)
class Policy(gate.Policy):
    """The lab API's policy: its own host (`LAB_API_URL`), and `/healthz` and the admin page's
    static files open without the token."""

    open_paths: frozenset[str] = OPEN_PATHS
    open_prefixes: tuple[str, ...] = OPEN_PREFIXES

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls.serving(settings, settings.api_url, OPEN_PATHS, OPEN_PREFIXES)


# What the rest of the API imports from here (the door itself is shared: lab/gate.py).
__all__ = ["LOOPBACK", "SAFE_METHODS", "AccessGuard", "ASGIApp", "Policy", "Scope", "host_name",
           "respond"]  # fmt: skip
