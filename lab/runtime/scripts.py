"""The Lua scripts of `lab/runtime/lua/`: each is `common.lua`'s helpers plus its own body,
registered once per Redis client (`RedisStore.script`, `AsyncStatus`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@cache
def script_source(name: str) -> str:
    lua = resources.files("lab.runtime") / "lua"
    return (lua / "common.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


@dataclass(frozen=True)
class Script:
    """A Lua script and the names of its KEYS and ARGV, in the order the script reads them (its
    header comment says the same). A call names every one (`keys={...}`, `args={...}`), so no
    caller depends on positions, and a missing or unknown name is refused before anything
    reaches Redis. `more_keys` and
    `more_args` carry what a script takes in a variable number (a batch's runs, a worker's
    leases)."""

    name: str
    keys: tuple[str, ...]
    args: tuple[str, ...]

    def call(
        self,
        scripts: Callable[[str], Any],
        keys: Mapping[str, str],
        args: Mapping[str, Any],
        more_keys: Sequence[str] = (),
        more_args: Sequence[Any] = (),
    ) -> Any:
        for kind, declared, given in (("KEYS", self.keys, keys), ("ARGV", self.args, args)):
            if set(given) != set(declared):
                missing = sorted(set(declared) - set(given))
                unknown = sorted(set(given) - set(declared))
                raise TypeError(f"{self.name}.lua {kind}: missing {missing}, unknown {unknown}")
        return scripts(self.name)(
            keys=[*(keys[k] for k in self.keys), *more_keys],
            args=[*(args[a] for a in self.args), *more_args],
        )


# Single jobs: every job script takes these first (lab/runtime/lua/common.lua's job helpers).
JOB_KEYS = ("job", "log", "stream", "events")
JOB_ARGS = ("id", "maxlen", "states")

JOB_CREATE = Script(
    "job_create",
    (*JOB_KEYS, "jobs", "delayed"),
    (*JOB_ARGS, "kind", "payload", "attempts", "run_at", "priority", "target"),
)
JOB_BEGIN = Script(
    "job_begin",
    (*JOB_KEYS, "tombstone", "paused"),
    (*JOB_ARGS, "attempt", "worker", "redelivered", "lease", "lease_ms", "queue"),
)
JOB_PROGRESS = Script(
    "job_progress",
    JOB_KEYS,
    (*JOB_ARGS, "attempt", "percent", "step", "message", "lease", "lease_ms"),
)
JOB_FINISH = Script(
    "job_finish",
    JOB_KEYS,
    (*JOB_ARGS, "attempt", "outcome", "error", "result", "message", "expected", "lease"),
)
JOB_CANCEL = Script("job_cancel", (*JOB_KEYS, "delayed", "promoting"), JOB_ARGS)
JOB_RETRY = Script("job_retry", (*JOB_KEYS, "delayed", "promoting"), (*JOB_ARGS, "max_attempt"))
JOB_DELETE = Script(
    "job_delete",
    (*JOB_KEYS, "tombstone", "jobs", "delayed", "promoting"),
    (*JOB_ARGS, "tombstone_ttl", "ended_before"),
)
JOB_DUE = Script("job_due", ("delayed", "promoting"), ("now", "limit", "stale"))
JOB_RENEW = Script("job_renew", (), ("lease_ms",))  # then a job key and a lease token each
# Runs.
START_RUN = Script(
    "start_run",
    ("active", "runs", "run", "events"),
    (
        "run_id",
        "x",
        "y",
        "maxlen",
        "kind",
        "payload",
        "shape",
        "seed",
        "shape_text",
        "slo",
        "abort",
        "grace",
        "target",
    ),
)
PAUSE_RUN = Script("pause_run", ("active", "events"), ("runs", "maxlen", "paused"))
STOP_RUN = Script("stop_run", ("active", "events"), ("runs", "maxlen"))
STATUS = Script(
    "status",
    ("active", "runs", "workers", "schedulers", "paused", "head_ages"),
    ("runs", "processed_in", "workers", "window", "schedulers", "released_in"),
)
RECORD = Script(
    "record",
    ("active", "events", "totals", "history", "latency", "applied"),
    ("maxlen", "entries", "history_s", "call"),
)  # then each run's keys, then middleware's
RELEASE = Script(
    "release",
    ("lease", "active", "run", "timeline"),
    (
        "scheduler",
        "lease_ms",
        "run_id",
        "next_seq",
        "want",
        "target",
        "budget",
        "backlog",
        "version",
        "y",
        "eta",
    ),
)
ADVANCE = Script(
    "advance",
    ("lease", "active", "run", "released_in", "events", "totals", "history"),
    ("scheduler", "run_id", "up_to", "maxlen", "history_s"),
)
SUBMITTED = Script("submitted", ("run", "submitted", "indeterminate"), ("outcomes",))
BREACH_RUN = Script(
    "breach_run", ("active", "run", "events"), ("run_id", "maxlen", "states", "abort")
)
RESHAPE_RUN = Script(
    "reshape_run",
    ("active", "run", "events"),
    ("run_id", "shape", "base", "version", "maxlen", "y", "shape_text", "max_bytes"),
)
