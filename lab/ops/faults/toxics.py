"""Toxics as Toxiproxy defines them: a type, a direction (`upstream`: client → service,
`downstream`: service → client), a toxicity (the chance a link gets it) and the type's
attributes. Pure: checked and shaped here, applied in `proxy.py`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Each type's attributes and their defaults (Toxiproxy's names and units).
TYPES: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},  # ms, ± ms
    "bandwidth": {"rate": 0},  # KB/s
    "slow_close": {"delay": 0},  # ms the close waits
    "timeout": {"timeout": 0},  # ms before it closes; 0: silence until removed (a blackhole)
    "reset_peer": {"timeout": 0},  # ms before the connection is reset (RST)
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},  # bytes, bytes, µs
    "limit_data": {"bytes": 0},  # bytes through, then closed
}
STREAMS = ("upstream", "downstream")
MAX_ATTRIBUTE = 10**12


class FaultError(ValueError):
    """A request the proxy refuses, with Toxiproxy's message and status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status

    def as_json(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


@dataclass
class Toxic:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"attributes": dict(self.attributes), "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": self.toxicity}  # fmt: skip

    def update(self, body: Any) -> None:
        """`POST /proxies/{proxy}/toxics/{toxic}`: new attributes and toxicity, the rest kept."""
        if not isinstance(body, dict):
            raise FaultError("bad request body: expected a JSON object")
        if "attributes" in body:
            self.attributes = {**self.attributes, **_attributes(self.type, body["attributes"])}
        if "toxicity" in body:
            self.toxicity = _toxicity(body["toxicity"])


def parse(body: Any) -> Toxic:
    """A new toxic from `POST /proxies/{proxy}/toxics` (defaults as Toxiproxy's: downstream,
    toxicity 1, named `<type>_<stream>`)."""
    if not isinstance(body, dict):
        raise FaultError("bad request body: expected a JSON object")
    kind = body.get("type")
    stream = body.get("stream", "downstream") or "downstream"
    if stream not in STREAMS:
        raise FaultError("stream was invalid, can be either upstream or downstream")
    if kind not in TYPES:
        raise FaultError(f"invalid toxic type (one of {', '.join(TYPES)})")
    name = body.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise FaultError("bad request body: name must be a string of 1 to 200 characters")
    toxic = Toxic(name, kind, stream, _toxicity(body.get("toxicity", 1.0)), dict(TYPES[kind]))
    given = body.get("attributes")
    toxic.attributes |= _attributes(kind, {} if given is None else given)
    return toxic


def _toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FaultError("bad request body: toxicity must be a number from 0 to 1")
    if not 0 <= value <= 1:
        raise FaultError("bad request body: toxicity must be a number from 0 to 1")
    return float(value)


def _attributes(kind: str, given: Any) -> dict[str, int]:
    if not isinstance(given, dict):
        raise FaultError("bad request body: attributes must be an object")
    out = {}
    for name, value in given.items():
        if name not in TYPES[kind]:
            raise FaultError(f"bad request body: {kind} has no attribute {str(name)[:40]!r} "
                             f"(it has {', '.join(TYPES[kind])})")  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FaultError(f"bad request body: {name} must be a whole number")
        if not (math.isfinite(value) and 0 <= value <= MAX_ATTRIBUTE and value == int(value)):
            raise FaultError(f"bad request body: {name} must be a whole number from 0")
        out[name] = int(value)
    return out


def describe(toxic: dict[str, Any]) -> str:
    """A toxic (its JSON) in a few words: `latency_downstream (latency 200, jitter 50)`."""
    attrs = ", ".join(f"{k} {v}" for k, v in (toxic.get("attributes") or {}).items())
    share = f", {toxic['toxicity']:g} of connections" if toxic.get("toxicity", 1) < 1 else ""
    return f"{toxic['name']} ({attrs}{share})"
