"""What a heartbeat says: one schema per process kind, used by the writer and every reader.

A worker's heartbeat is a Redis hash written by the worker (its core and its middleware each add
fields) and read by `/status`, `/metrics` and the admin page. The schema below is the one list of
those fields: `encode` refuses a field it does not name (a writer cannot drift from the
readers), `decode` turns a hash into the shape `/status` shows. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Kind = Literal["text", "int", "float", "bool", "list", "time"]


@dataclass(frozen=True)
class Beat:
    """One field: its name in the hash (and in `/status`), and how it is read back."""

    name: str
    kind: Kind
    shown_as: str = ""  # its name in /status when that differs (`startedMs` → `startedAt`)
    help: str = ""  # what it says, for docs/reference/json.md

    @property
    def out(self) -> str:
        return self.shown_as or self.name


COMMON = (
    Beat("id", "text", help="the process's id: `<host>-<pid>-<4 hex digits>`"),
    Beat("pid", "int", help="its process id"),
    Beat("host", "text", help="the host it runs on"),
    Beat("waitingFor", "text", help="the service it waits out during an outage; null when none"),
    Beat("cpuSeconds", "float", help="CPU time it has used"),
    Beat("rssBytes", "int", help="its resident memory"),
    # when it was written; /status shows its age instead
    Beat("seenMs", "int", "heartbeatAgeSeconds", help="seconds since its last heartbeat"),
)
WORKER = (
    *COMMON,
    Beat("processed", "int", help="jobs it counted processed"),
    Beat("failed", "int", help="jobs it counted failed for good"),
    Beat("deadLettered", "int", help="messages it dead-lettered"),
    Beat("inFlight", "int", help="deliveries it holds unacked"),
    Beat("running", "int", help="jobs in its slots now (not those waiting for a slot)"),
    Beat(
        "waitingSinceMs",
        "int",
        help="release time (epoch ms) of the oldest delivery it holds, not started",
    ),
    Beat("jobs", "list", help="the single jobs it runs now"),
    Beat("paused", "list", help="the paused queues it takes nothing from"),
    Beat("startedMs", "time", "startedAt", help="when it started"),
)
SCHEDULER = (
    *COMMON,
    Beat("leader", "bool", help="true while it holds the lease: the one that releases"),
    Beat("runId", "text", help="the run it releases; null when none"),
    Beat("slowestTickMs", "int", help="its longest tick since its last heartbeat, in ms"),
)


class UnknownBeat(KeyError):
    """A heartbeat field no schema names: add it to the schema, where its readers find it."""


def encode(schema: tuple[Beat, ...], fields: Mapping[str, Any]) -> dict[str, str | int | float]:
    """Fields as the hash stores them (lists comma-joined, booleans 0/1)."""
    names = {b.name: b for b in schema}
    out: dict[str, str | int | float] = {}
    for name, value in fields.items():
        beat = names.get(name)
        if beat is None:
            raise UnknownBeat(f"heartbeat field {name!r} is not in lab/runtime/beats.py")
        if beat.kind == "list":
            out[name] = ",".join(sorted(str(v) for v in value))
        elif beat.kind == "bool":
            out[name] = int(bool(value))
        else:
            out[name] = "" if value is None else value
    return out


def decode(schema: tuple[Beat, ...], h: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """A stored heartbeat as `/status` shows it: numbers, lists, times, and its age."""
    out: dict[str, Any] = {}
    for beat in schema:
        raw = h.get(beat.name)
        if beat.name == "seenMs":
            seen = _number(raw, now_ms)
            out["heartbeatAgeSeconds"] = round((now_ms - seen) / 1000, 3)
        elif beat.kind == "int":
            out[beat.out] = int(_number(raw, 0))
        elif beat.kind == "float":
            out[beat.out] = float(_number(raw, 0))
        elif beat.kind == "bool":
            out[beat.out] = raw in ("1", 1, True)
        elif beat.kind == "list":
            out[beat.out] = [part for part in str(raw or "").split(",") if part]
        elif beat.kind == "time":
            value = _number(raw, 0)
            out[beat.out] = _iso(value) if value else None
        else:
            out[beat.out] = (raw or None) if beat.name in ("waitingFor", "runId") else raw
    return out


def _number(raw: Any, default: float) -> float:
    try:
        return float(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
