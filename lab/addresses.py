"""`host:port` as lab reads it wherever one comes from (a setting, a request, a server's
answer): one strict parser, so what a shell, a URL or a socket is handed is only ever a name or
an address and a port of ASCII digits."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

HOST_PORT = re.compile(
    r"\[(?P<v6>[0-9A-Fa-f:.]{2,45})\]:(?P<v6port>[0-9]{1,5})"
    r"|(?P<host>[A-Za-z0-9][A-Za-z0-9_.-]{0,252}):(?P<port>[0-9]{1,5})"
)


def host_port(text: Any) -> tuple[str, int]:
    """`host:port` → (host, port): a DNS name, an IPv4 address or a bracketed IPv6 one, and a
    port of ASCII digits from 0 to 65535 (`'²'.isdigit()` is true in Python, `int('٣')` is 3);
    a `ValueError` naming the text otherwise. Nothing a shell reads specially gets through."""
    found = HOST_PORT.fullmatch(text) if isinstance(text, str) else None
    port = int(found["port"] or found["v6port"]) if found else -1
    if found is None or port > 65535:
        raise ValueError(f"{str(text)[:80]!r} is not host:port (e.g. 127.0.0.1:6379)")
    if found["v6"]:
        try:
            return str(ipaddress.IPv6Address(found["v6"])), port
        except ValueError:
            raise ValueError(f"{text[:80]!r} is not host:port (e.g. [::1]:6379)") from None
    return found["host"], port
