"""The one place `lab` reads its configuration.

Every process (api, scheduler, worker, supervisor, CLI, notebooks, tests) builds a `Settings` from
the `LAB_*` environment variables, so a child process started with a given environment sees
exactly what its parent configured. `.env.example` lists the same variables with their defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lab.addresses import host_port
from lab.redaction import redacted_env, safe_url


class ConfigError(ValueError):
    """A `LAB_*` variable holds a value `lab` cannot use."""


# --- the retry ladder (`LAB_RETRY_LADDER_MS`; lab/runtime/retry.py decides what it means) ------
DEFAULT_LADDER_MS = (1000, 5000, 30_000, 120_000, 600_000)
MAX_STEPS = 10
MAX_DELAY_MS = 24 * 3600 * 1000


class LadderError(ValueError):
    """`LAB_RETRY_LADDER_MS` is not a list of delays `lab` can use."""


def parse_ladder(text: str) -> tuple[int, ...]:
    """`"1000,5000,30000"` → (1000, 5000, 30000): ascending delays in ms, at most 10 steps."""
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise LadderError(f"{text!r} is not a comma-separated list of milliseconds") from None
    if not 1 <= len(steps) <= MAX_STEPS:
        raise LadderError(f"{text!r} must have 1 to {MAX_STEPS} steps")
    if any(not 0 < s <= MAX_DELAY_MS for s in steps) or list(steps) != sorted(set(steps)):
        raise LadderError(f"{text!r} must be ascending delays from 1 ms to 24 h")
    return steps


def bounded(default: int, low: int, high: int) -> Any:
    """A whole-number setting with the range every process accepts (`RANGES`): `load` refuses
    the rest at a process's start, and whatever sets it for a process (an experiment's factor)
    checks it through `load` too, so the two cannot disagree."""
    return dataclasses.field(default=default, metadata={"range": (low, high)})


def chosen(*choices: str) -> Any:
    """A text setting that takes only `choices` (`CHOICES`), the first its default; checked
    like `bounded`'s."""
    return dataclasses.field(default=choices[0], metadata={"choices": choices})


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    es_url: str = "http://127.0.0.1:9200"
    api_url: str = "http://127.0.0.1:8000"
    api_bind: str = ""  # where `lab api` listens (host:port); empty: LAB_API_URL's host and port
    prometheus_url: str = "http://127.0.0.1:9090"  # `lab stack up --with prometheus`
    faults_url: str = "http://127.0.0.1:8474"  # the fault proxy's API (Toxiproxy's port)
    # What the fault proxy (`lab fault serve`) holds at most; past these it refuses (a 400, or a
    # new connection closed at once and counted).
    fault_max_proxies: int = 100
    fault_max_toxics: int = 32  # toxics on one proxy
    fault_max_links: int = 512  # open connections through one proxy
    # Namespaces: every Redis key starts with `prefix:`, every queue with `queue`, the documents
    # go to `es_index`. Tests and drills give each run of theirs unique values.
    prefix: str = "lab"
    queue: str = "lab.jobs"
    es_index: str = "lab-jobs"
    es_replicas: int = 0  # replicas of each shard of a new index (1+ on an Elasticsearch cluster)
    # Worker
    prefetch: int = bounded(750, 1, 65535)  # AMQP's prefetch count is 16 bits
    batch: int = bounded(250, 1, 10_000)
    linger_ms: int = bounded(50, 1, 60_000)
    concurrency: int = bounded(5, 1, 1000)
    max_attempts: int = 3
    # The delays before the 2nd, 3rd, ... attempt; the last step repeats (see lab/runtime/retry.py).
    retry_ladder_ms: str = "1000,5000,30000,120000,600000"
    dead_letter_max: int = 100_000  # the dead-letter queue drops its oldest beyond this
    # `classic` (one node) or `quorum` (replicated over a cluster's nodes; docs/CLUSTER.md).
    queue_type: str = chosen("classic", "quorum")
    delivery_limit: int = 20  # quorum: the broker dead-letters a message redelivered this often
    # The celery target's workers ack a message as its task starts (`early`: Celery's default,
    # `task_acks_late` off) or once it ended (`late`); lab/targets/celery.py.
    celery_acks: str = chosen("early", "late")
    # How long lab's BullMQ worker holds a job's lock without renewing it (BullMQ's
    # `lockDuration`; its stalled check runs every half of this): a worker frozen or blocked
    # longer has its jobs run again by another (lab/targets/bullmq.py).
    bullmq_lock_ms: int = bounded(10_000, 1000, 600_000)
    heartbeat_s: float = 2.0
    heartbeat_ttl_s: float = 10.0
    # lab's arq app (`lab up --target arq`): arq's job_timeout. arq holds a job a worker took for
    # this plus 10 s (its in-progress key), so a killed worker's jobs run again only after it.
    arq_job_timeout_s: int = bounded(300, 1, 86_400)
    # Deadlines: a service that accepts connections and never answers costs a process a logged
    # timeout, never a hang (docs/BOUNDARIES.md, "Every client has a deadline").
    redis_timeout_s: float = 5.0  # connect and each command; blocking reads add their wait
    amqp_timeout_s: float = 5.0  # connect, each frame, and a publish held by a broker alarm
    amqp_heartbeat_s: int = 30  # RabbitMQ closes a connection silent for twice this
    es_timeout_s: float = 10.0  # each Elasticsearch request
    # Workers lower their own CPU priority by this much (0-19): on a busy machine the API answers
    # promptly and workers lose only the little CPU the API needs. The scheduler keeps its own.
    pipeline_nice: int = 10
    # Scheduler
    lease_ms: int = 5000
    burst_s: float = 0.1
    publish_window: int = 2000
    backlog_limit: int = 50000
    # API
    sse_heartbeat_s: float = 15.0
    api_processes: int = 1  # API processes sharing the port (`lab api`, `lab up`)
    status_max_age_ms: int = 50  # how old a shared /status answer may be before it is read again
    event_stream_len: int = 10000
    max_body_bytes: int = 256 * 1024  # refused with 413 before it is read in full
    max_streams: int = 200  # live SSE/WebSocket clients per API process; more get 503
    stream_share: float = 0.25  # the share of max_streams one client (address) may hold
    # Access: loopback names are always allowed; add the names the API is reached by
    # (comma-separated; `*` allows any) and the origins of pages that may call it.
    allowed_hosts: str = ""
    allowed_origins: str = ""
    api_token: str = ""  # when set, every route but /healthz needs `Authorization: Bearer ...`
    notebook_token: str = ""  # JupyterLab's token for `lab notebook` (empty: it makes one up)
    # Retention: single jobs that ended longer ago than this are pruned with their documents.
    job_retention_s: float = 7 * 24 * 3600.0
    # Runs that ended longer ago than this go with their keys and documents, so a lab used for
    # months does not slow down (the Elasticsearch-API server costs more the more it holds).
    run_retention_s: float = 7 * 24 * 3600.0
    # Bulk actions (`POST /jobs/bulk`) change at most this many jobs a second, so retrying a
    # hundred thousand failed jobs cannot flood the queue.
    bulk_rate: float = 500.0
    # How long the rolling job history (`GET /history`, the admin chart) keeps 10-second buckets.
    history_s: int = 3600
    log_max_bytes: int = 10 * 1024 * 1024  # each process log rotates past this size
    # Where `lab stack` and the supervisor keep data, logs and pid files.
    home: str = ".lab"

    @property
    def home_path(self) -> Path:
        return Path(self.home).resolve()

    @property
    def api_address(self) -> tuple[str, int]:
        """Where `lab api` listens: LAB_API_BIND, else LAB_API_URL's host and port (so a lab
        reached through the fault proxy still listens where the proxy forwards to)."""
        if self.api_bind:
            return host_port(self.api_bind)
        parts = urlsplit(self.api_url)
        return parts.hostname or "127.0.0.1", parts.port or 8000

    @property
    def retry_ladder(self) -> tuple[int, ...]:
        return parse_ladder(self.retry_ladder_ms)

    def as_env(self) -> dict[str, str]:
        """The environment a child process needs to see these same settings."""
        return {f"LAB_{name.upper()}": str(value) for name, value in asdict(self).items()}

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def redacted(settings: Settings) -> dict[str, str]:
    """`as_env()` fit to print in a report or a log (`lab.redaction`)."""
    return redacted_env(settings.as_env())


RANGES: dict[str, tuple[int, int]] = {
    f.name: f.metadata["range"] for f in fields(Settings) if "range" in f.metadata
}
CHOICES: dict[str, tuple[str, ...]] = {
    f.name: f.metadata["choices"] for f in fields(Settings) if "choices" in f.metadata
}


def _convert(name: str, raw: str, kind: type) -> Any:
    try:
        if kind in (int, float) and not raw.isascii():  # int('٣') is 3: only ASCII digits count
            raise ValueError(raw)
        value: Any = kind(raw)
    except ValueError:
        raise ConfigError(f"LAB_{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
    if name == "pipeline_nice":
        if not 0 <= value <= 19:
            raise ConfigError(f"LAB_PIPELINE_NICE={raw!r} must be from 0 to 19")
        return value
    if name == "es_replicas":
        if value < 0:
            raise ConfigError(f"LAB_ES_REPLICAS={raw!r} must be 0 or more")
        return value
    if kind in (int, float) and not 0 < value < float("inf"):
        raise ConfigError(f"LAB_{name.upper()}={raw!r} must be a finite number greater than 0")
    if name in RANGES and not RANGES[name][0] <= value <= RANGES[name][1]:
        low, high = RANGES[name]
        raise ConfigError(f"LAB_{name.upper()}={raw!r} must be from {low} to {high}")
    return value


NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
# A prefix in braces is a Redis Cluster hash tag: every key of the lab maps to one slot, so each
# Lua script's keys stay together (docs/CLUSTER.md).
PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,100}|\{[A-Za-z0-9_.:-]{1,98}\}")


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


EXTRA_VARIABLES = (
    "LAB_ENV_FILE",  # where `.env` is, when not at the project root
    "LAB_NOTEBOOK_TOKEN",  # JupyterLab's token under compose
    "LAB_LOADTEST_TOKEN_HOSTS",  # hosts the load test may send the API token to
    "LAB_SCREENSHOTS",  # `make screenshots`
    "LAB_SERVICES",  # the Docker image's entry point
    "LAB_LUA_DIR",  # lab/runtime/lua, for a shim in another language (targets/bullmq)
)
"""`LAB_*` names that are read, but are not settings of a lab process."""

_warned: set[str] = set()


def known_names() -> list[str]:
    return [f"LAB_{f.name.upper()}" for f in fields(Settings)] + list(EXTRA_VARIABLES)


def unknown_names(names: Iterable[str]) -> dict[str, str | None]:
    """`LAB_*` names that no setting has, each with the nearest known name (None if none is
    near): a misspelt setting would otherwise be ignored without a word."""
    known = known_names()
    return {
        name: next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.7)), None)
        for name in names
        if name.startswith("LAB_") and name not in known
    }


def _warn_unknown(path: Path, names: Iterable[str]) -> None:
    for name, near in unknown_names(names).items():
        if name in _warned:
            continue
        _warned.add(name)
        hint = f"; did you mean {near}?" if near else " (docs/reference/settings.md lists them)"
        print(f"lab: warning: {path}: {name} is not a lab setting{hint}", file=sys.stderr)


def env_file_path() -> Path:
    """`.env` at the project root, or where `LAB_ENV_FILE` says."""
    named = os.environ.get("LAB_ENV_FILE")
    return Path(named) if named else project_root() / ".env"


def load(environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Settings from `LAB_*` variables, then the project's `.env` (see `env_file_path`), then
    defaults; a relative `LAB_HOME` is taken from the project root, so the CLI, the notebooks
    and the tests find the same `.lab/` wherever they run.

    With an explicit `environ` (tests, child processes), no `.env` file is read.
    """
    relative_to: Path | None = None
    if environ is None:
        path = env_file or env_file_path()
        from_file = read_env_file(path) if path.is_file() else {}
        _warn_unknown(path, from_file)
        environ = {**from_file, **os.environ}
        relative_to = project_root()
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = environ.get(f"LAB_{field.name.upper()}")
        if raw is None or raw == "":
            continue
        kind = type(field.default)
        values[field.name] = _convert(field.name, raw, kind)
    for name, choices in CHOICES.items():
        if name in values and values[name] not in choices:
            raise ConfigError(f"LAB_{name.upper()}={values[name]!r} must be {' or '.join(choices)}")
    for name in ("queue", "es_index"):
        if name in values and not NAME.fullmatch(str(values[name])):
            raise ConfigError(
                f"LAB_{name.upper()}={values[name]!r} may hold only letters, digits and _ . : -"
            )
    if "prefix" in values and not PREFIX.fullmatch(str(values["prefix"])):
        raise ConfigError(
            f"LAB_PREFIX={values['prefix']!r} may hold only letters, digits and _ . : -, "
            "optionally in one pair of braces ({lab}: every key in one Redis Cluster slot)"
        )
    for name in ("redis_timeout_s", "amqp_timeout_s", "es_timeout_s"):
        if name in values and not 0 < float(values[name]) <= 600:  # type: ignore[arg-type]
            raise ConfigError(f"LAB_{name.upper()}={values[name]} must be above 0 and at most 600")
    if "stream_share" in values and not 0 < float(values["stream_share"]) <= 1:  # type: ignore[arg-type]
        raise ConfigError(
            f"LAB_STREAM_SHARE={values['stream_share']} must be above 0 and at most 1"
        )
    if values.get("api_bind"):
        try:
            host_port(values["api_bind"])
        except ValueError as exc:
            raise ConfigError(f"LAB_API_BIND: {exc}") from None
    for name, schemes in URL_SCHEMES.items():
        if name in values:
            check_url(name, str(values[name]), schemes)
    if relative_to is not None and not Path(str(values.get("home", ".lab"))).is_absolute():
        values["home"] = str(relative_to / str(values.get("home", ".lab")))
    settings = Settings(**values)  # type: ignore[arg-type]
    try:
        settings.retry_ladder  # noqa: B018 - validated once here, so no process starts with it bad
    except LadderError as exc:
        raise ConfigError(f"LAB_RETRY_LADDER_MS: {exc}") from None
    return settings


URL_SCHEMES = {
    "redis_url": ("redis", "rediss", "unix"),
    "amqp_url": ("amqp", "amqps"),
    "es_url": ("http", "https"),
    "api_url": ("http", "https"),
    "faults_url": ("http", "https"),
}
EXAMPLE_URLS = {
    "redis_url": "redis://127.0.0.1:6379/0",
    "amqp_url": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "es_url": "http://127.0.0.1:9200",
    "api_url": "http://127.0.0.1:8000",
    "faults_url": "http://127.0.0.1:8474",
}


def check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    """A service URL lab can use (each of a comma-separated list): its scheme and a host, else
    a `ConfigError` with an example, so a typo is not mistaken for a service that is down."""
    for part in value.split(","):
        part = part.strip()
        try:
            parsed = urlsplit(part)
            parsed.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise ConfigError(f"LAB_{name.upper()}={safe_url(value)!r}: {exc}") from None
        if parsed.scheme not in schemes or (parsed.scheme != "unix" and not parsed.hostname):
            kinds = "/".join(schemes)
            raise ConfigError(
                f"LAB_{name.upper()}={safe_url(value)!r} is not a URL lab can use ({kinds} with "
                f"a host), e.g. {EXAMPLE_URLS[name]}"
            )


def project_root(start: Path | None = None) -> Path:
    """The clone of lab this is run in: the nearest folder upwards from `start` (the working
    directory) holding `pyproject.toml` and `lab/`; else the clone `lab` is installed from
    (an editable install); else the working directory (lab installed outside a clone)."""
    here = (start or Path.cwd()).resolve()
    installed = Path(__file__).resolve().parent.parent
    for folder in (*(here, *here.parents), installed):
        if (folder / "pyproject.toml").is_file() and (folder / "lab" / "__init__.py").is_file():
            return folder
    return here


def kernel_env(settings: Settings | None = None) -> dict[str, str]:
    """The environment for Jupyter and its kernels: this Python's `bin` first on PATH (the
    `python3` kernelspec runs plain `python`), and the lab's settings when given."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if settings is not None:
        env.update(settings.as_env())
    return env
