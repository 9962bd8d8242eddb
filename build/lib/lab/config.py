"""The one place `lab` reads its configuration.

Every process (api, scheduler, worker, supervisor, CLI, notebooks, tests) builds a `Settings` from
the `LAB_*` environment variables, so a child process started with a given environment sees
exactly what its parent configured. `.env.example` lists the same variables with their defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path


class ConfigError(ValueError):
    """A `LAB_*` variable holds a value `lab` cannot use."""


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    es_url: str = "http://127.0.0.1:9200"
    api_url: str = "http://127.0.0.1:8000"
    # Namespaces: every Redis key starts with `prefix:`, every queue with `queue`, the documents
    # go to `es_index`. Tests and drills give each run of theirs unique values.
    prefix: str = "lab"
    queue: str = "lab.jobs"
    es_index: str = "lab-jobs"
    # Worker
    prefetch: int = 500
    batch: int = 100
    linger_ms: int = 50
    concurrency: int = 5
    max_attempts: int = 3
    retry_delay_ms: int = 1000
    heartbeat_s: float = 2.0
    heartbeat_ttl_s: float = 10.0
    # Scheduler
    lease_ms: int = 5000
    burst_s: float = 0.1
    publish_window: int = 2000
    backlog_limit: int = 50000
    # API
    sse_heartbeat_s: float = 15.0
    event_stream_len: int = 10000
    # Where `lab stack` and the supervisor keep data, logs and pid files.
    home: str = ".lab"

    @property
    def home_path(self) -> Path:
        return Path(self.home).resolve()

    def as_env(self) -> dict[str, str]:
        """The environment a child process needs to see these same settings."""
        return {f"LAB_{name.upper()}": str(value) for name, value in asdict(self).items()}

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)


def _convert(name: str, raw: str, kind: type) -> object:
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"LAB_{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
    if kind in (int, float) and value <= 0:  # type: ignore[operator]
        raise ConfigError(f"LAB_{name.upper()}={raw!r} must be greater than 0")
    return value


NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines of a `.env` file (comments and blank lines skipped)."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load(environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Settings from `LAB_*` variables, then `.env` in the working directory, then defaults.

    With an explicit `environ` (tests, child processes), no `.env` file is read.
    """
    if environ is None:
        path = env_file or Path(".env")
        from_file = read_env_file(path) if path.is_file() else {}
        environ = {**from_file, **os.environ}
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = environ.get(f"LAB_{field.name.upper()}")
        if raw is None or raw == "":
            continue
        kind = type(field.default)
        values[field.name] = _convert(field.name, raw, kind)
    for name in ("prefix", "queue", "es_index"):
        if name in values and not NAME.match(str(values[name])):
            raise ConfigError(
                f"LAB_{name.upper()}={values[name]!r} may hold only letters, digits and _ . : -"
            )
    return Settings(**values)  # type: ignore[arg-type]
