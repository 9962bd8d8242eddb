"""The fields of a proxy as the fault API takes them, and as a client reads them back: a name,
where it listens and its upstream. Pure; the one place these are checked, so what the API
accepts is what `lab fault`, `lab stack env` and the drills can use (in a URL path, a URL, a
shell line) without a second look.

* a proxy's or a toxic's name: 1 to 64 of `A-Z a-z 0-9 _ . -` (a `/` would make a toxic that
  no `DELETE` can name, so `lab fault heal` could never remove it);
* `listen`: a loopback address and a port of ASCII digits (0: a free one): the proxy never
  opens a port to the network;
* `upstream`: a host name or address and a port of ASCII digits, 1 to 65535.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from lab.addresses import host_port

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class FaultError(ValueError):
    """A request the proxy refuses, with Toxiproxy's message and status (and, for a field that
    is wrong, its name in `fields`: Toxiproxy's clients read only `error` and `status`)."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field

    def as_json(self) -> dict[str, Any]:
        shape: dict[str, Any] = {"error": self.message, "status": self.status}
        return {**shape, "fields": [self.field]} if self.field else shape


def name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise FaultError(
            f"bad request body: {field} must be 1 to 64 of A-Z a-z 0-9 _ . - "
            f"(got {_shown(value)})", field=field,
        )  # fmt: skip
    return value


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address(value: Any, field: str) -> tuple[str, int]:
    """`host:port` → (host, port), or a 400 naming `field`."""
    try:
        return host_port(value)
    except ValueError as exc:
        raise FaultError(f"bad request body: {field}: {exc}", field=field) from None


def listen(value: Any) -> str:
    """Where a proxy listens: loopback only, any port (0: a free one)."""
    host, port = address(value, "listen")
    if not is_loopback(host):
        raise FaultError(
            f"bad request body: listen: {_shown(value)} is not a loopback address (the fault "
            "proxy listens on 127.0.0.1, ::1 or localhost only)", field="listen",
        )  # fmt: skip
    return joined(host, port)


def upstream(value: Any) -> str:
    host, port = address(value, "upstream")
    if port == 0:
        raise FaultError("bad request body: upstream: port 0 is not a port", field="upstream")
    return joined(host, port)


def joined(host: str, port: int) -> str:
    """(host, port) → `host:port`, an IPv6 address in brackets so the port stays readable."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise FaultError("bad request body: enabled must be true or false", field="enabled")
    return value


def proxy(body: Any) -> dict[str, Any]:
    """A new proxy's JSON (`POST /proxies`, each of `POST /populate`), checked whole before
    anything is changed: name, listen (default `127.0.0.1:0`), upstream, enabled."""
    if not isinstance(body, dict):
        raise FaultError("bad request body: expected a JSON object")
    for field in ("name", "upstream"):
        if body.get(field) in (None, ""):
            raise FaultError(f"missing required field: {field}", field=field)
    return {
        "name": name(body["name"]),
        "listen": listen(body.get("listen") or "127.0.0.1:0"),
        "upstream": upstream(body["upstream"]),
        "enabled": enabled(body.get("enabled", True)),
    }


def change(body: Any) -> dict[str, Any]:
    """`POST /proxies/{proxy}`: the fields given (listen, upstream, enabled), checked."""
    if not isinstance(body, dict):
        raise FaultError("bad request body: expected a JSON object")
    checks = {"listen": listen, "upstream": upstream, "enabled": enabled}
    given = {field: body.get(field) for field in checks}
    return {field: checks[field](value) for field, value in given.items() if value is not None}


def read_back(found: Any) -> dict[str, dict[str, Any]]:
    """`GET /proxies` as a client reads it (ours or a real Toxiproxy's): name → proxy, each
    address host:port, or ValueError naming the first that is not. A real Toxiproxy may name
    a proxy as it likes (a client quotes names in paths and escapes them where it shows them)
    and listen on 0.0.0.0 (in a container), so neither is asked here."""
    if not isinstance(found, dict):
        raise ValueError("the proxies are not a JSON object")
    for key, entry in found.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("toxics", []), list):
            raise ValueError(f"proxy {_shown(key)} is not a proxy object")
        for field in ("listen", "upstream"):
            try:
                host_port(entry.get(field))
            except ValueError as exc:
                raise ValueError(f"proxy {_shown(key)}: {field}: {exc}") from None
    return found


def _shown(value: Any) -> str:
    return repr(value)[:80] if isinstance(value, str) else type(value).__name__
