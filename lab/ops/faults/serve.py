"""`lab fault serve`: the fault proxy's process, its API on loopback (uvicorn) and its proxies
in the same event loop."""

from __future__ import annotations

import re
from typing import Any

import uvicorn

from lab.ops.faults.api import Proxies, app

PROXY = re.compile(r"([A-Za-z0-9_.-]{1,100})=([^>\s]+:\d{1,5})>([^>\s]+:\d{1,5})")


def parse_proxy(text: str) -> dict[str, Any]:
    """`NAME=LISTEN>UPSTREAM` → the proxy's JSON (`POST /populate`)."""
    found = PROXY.fullmatch(text.strip())
    if not found:
        raise ValueError(f"--proxy {text[:100]!r} is not NAME=HOST:PORT>HOST:PORT, "
                         "e.g. redis=127.0.0.1:26379>127.0.0.1:6379")  # fmt: skip
    name, listen, upstream = found.groups()
    return {"name": name, "listen": listen, "upstream": upstream, "enabled": True}


def serve(port: int, proxies: list[dict[str, Any]]) -> None:
    """Until SIGTERM or Ctrl-C: the API on 127.0.0.1:`port`, with `proxies` open."""
    collection = Proxies()
    application = app(collection, opened=proxies)
    uvicorn.run(application, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
