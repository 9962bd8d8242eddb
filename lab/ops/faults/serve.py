"""`lab fault serve`: the fault proxy's process, its API on loopback (uvicorn) and its proxies
in the same event loop."""

from __future__ import annotations

import re
from typing import Any

import uvicorn

from lab.config import Settings
from lab.ops.faults import fields
from lab.ops.faults.api import app
from lab.ops.faults.fields import FaultError

PROXY = re.compile(r"([^=]*)=([^>]*)>(.*)", re.DOTALL)


def parse_proxy(text: str) -> dict[str, Any]:
    """`NAME=LISTEN>UPSTREAM` → the proxy's JSON (`POST /populate`), checked as the API checks
    it (`fields.proxy`)."""
    found = PROXY.fullmatch(text.strip())
    try:
        if not found:
            raise FaultError("e.g. redis=127.0.0.1:26379>127.0.0.1:6379")
        name, listen, upstream = found.groups()
        return fields.proxy({"name": name, "listen": listen, "upstream": upstream})
    except FaultError as exc:
        why = exc.message.removeprefix("bad request body: ")
        shape = "NAME=HOST:PORT>HOST:PORT"
        raise ValueError(f"--proxy {text[:100]!r} is not {shape} ({why})") from None


def serve(port: int, proxies: list[dict[str, Any]], settings: Settings) -> None:
    """Until SIGTERM or Ctrl-C: the API on 127.0.0.1:`port`, with `proxies` open."""
    application = app(settings, opened=proxies)
    uvicorn.run(application, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
