"""Where the fault proxy stands in a stack: one proxy per service, named as the drills and
`lab fault` name them (`redis`, `rabbitmq` or `rabbitmq-1`, `rabbitmq-2`, … for a cluster's
nodes, `elasticsearch`, `api`), each listening on loopback at its service's port + 11,000
(17379, 16672, 20200, 19000 by default: clear of RabbitMQ's own +10,000 and +20,000 ports and
of the ephemeral range), and the `LAB_*_URL` values that reach each service through it
(`lab stack env`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lab.config import Settings
from lab.ops.faults.fields import joined

OFFSET = 11_000
SERVICES = {"redis": "redis_url", "rabbitmq": "amqp_url", "elasticsearch": "es_url",
            "api": "api_url"}  # fmt: skip
DEFAULT_PORTS = {"redis": 6379, "amqp": 5672, "amqps": 5671, "http": 80, "https": 443}


def _listen_port(port: int) -> int:
    return port + OFFSET if port + OFFSET <= 65535 else port - OFFSET


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url.strip())
    return parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS.get(parts.scheme, 80)


def _nodes(service: str, url: str) -> list[tuple[str, str]]:
    """(proxy name, node URL) for each node of a service's URL list."""
    nodes = [u.strip() for u in url.split(",") if u.strip()]
    if len(nodes) == 1:
        return [(service, nodes[0])]
    return [(f"{service}-{i}", node) for i, node in enumerate(nodes, 1)]


def proxies_for(
    settings: Settings, services: tuple[str, ...] = tuple(SERVICES), free: bool = False
) -> list[dict[str, Any]]:
    """The proxies in front of this lab's `services` (`POST /populate`'s body), at their
    service's port + `OFFSET`, or on free ports (`free`: a drill's own proxies)."""
    out = []
    for service in services:
        for proxy, url in _nodes(service, getattr(settings, SERVICES[service])):
            host, port = _address(url)
            listen = 0 if free else _listen_port(port)
            out.append({"name": proxy, "listen": f"127.0.0.1:{listen}",
                        "upstream": joined(host, port), "enabled": True})  # fmt: skip
    return out


def through(
    settings: Settings,
    listening: dict[str, str] | None = None,
    services: tuple[str, ...] = tuple(SERVICES),
) -> dict[str, str]:
    """Setting name → its URL through the proxy (the same credentials, path and query), at the
    `OFFSET` ports, or where `listening` (proxy name → host:port) says they listen."""
    out = {}
    for service in services:
        name = SERVICES[service]
        urls = []
        for proxy, url in _nodes(service, getattr(settings, name)):
            parts = urlsplit(url)
            _host, port = _address(url)
            auth = parts.netloc.rpartition("@")[0]
            where = (listening or {}).get(proxy) or f"127.0.0.1:{_listen_port(port)}"
            urls.append(urlunsplit(parts._replace(netloc=f"{auth + '@' if auth else ''}{where}")))
        out[name] = ",".join(urls)
    return out
