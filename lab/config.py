"""The one place `lab` reads its configuration.

Every process (api, scheduler, worker, supervisor, CLI, notebooks, tests) builds a `Settings` from
the `LAB_*` environment variables, so a child process started with a given environment sees
exactly what its parent configured. `.env.example` lists the same variables with their defaults.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


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


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    es_url: str = "http://127.0.0.1:9200"
    api_url: str = "http://127.0.0.1:8000"
    prometheus_url: str = "http://127.0.0.1:9090"  # `lab stack up --with prometheus`
    faults_url: str = "http://127.0.0.1:8474"  # the fault proxy's API (Toxiproxy's port)
    # Namespaces: every Redis key starts with `prefix:`, every queue with `queue`, the documents
    # go to `es_index`. Tests and drills give each run of theirs unique values.
    prefix: str = "lab"
    queue: str = "lab.jobs"
    es_index: str = "lab-jobs"
    es_replicas: int = 0  # replicas of each shard of a new index (1+ on an Elasticsearch cluster)
    # Worker
    prefetch: int = 750
    batch: int = 250
    linger_ms: int = 50
    concurrency: int = 5
    max_attempts: int = 3
    # The delays before the 2nd, 3rd, ... attempt; the last step repeats (see lab/runtime/retry.py).
    retry_ladder_ms: str = "1000,5000,30000,120000,600000"
    dead_letter_max: int = 100_000  # the dead-letter queue drops its oldest beyond this
    # `classic` (one node) or `quorum` (replicated over a cluster's nodes; docs/CLUSTER.md).
    queue_type: str = "classic"
    delivery_limit: int = 20  # quorum: the broker dead-letters a message redelivered this often
    heartbeat_s: float = 2.0
    heartbeat_ttl_s: float = 10.0
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
    def retry_ladder(self) -> tuple[int, ...]:
        return parse_ladder(self.retry_ladder_ms)

    def as_env(self) -> dict[str, str]:
        """The environment a child process needs to see these same settings."""
        return {f"LAB_{name.upper()}": str(value) for name, value in asdict(self).items()}

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


# Query parameters that carry a secret in the URL forms the clients accept.
SECRET_PARAMS = frozenset({"password", "pass", "pwd", "token", "secret", "key", "auth",
                           "access_token", "api_key", "apikey"})  # fmt: skip
SECRET_SETTING = re.compile(r"TOKEN|PASSWORD|SECRET")
MASK = "***"


def safe_url(url: str) -> str:
    """A URL (or comma-separated URLs) fit to print: every password masked, in each form a
    client accepts (`user:pw@`, `:pw@`, `?password=`, `?token=`, ...). A URL that cannot be
    read is masked whole past its scheme: printing it could leak what it holds."""
    return ",".join(_safe_one(part) for part in url.split(","))


def _safe_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{userinfo}@{host}"
        query = "&".join(_safe_param(p) for p in parts.query.split("&") if p)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        return f"{scheme}://{MASK}" if scheme else MASK


def _safe_param(param: str) -> str:
    name = param.split("=", 1)[0]
    return f"{name}={MASK}" if name.lower() in SECRET_PARAMS else param


def redacted(settings: Settings) -> dict[str, str]:
    """`as_env()` fit to print in a report or a log: URLs through `safe_url`, and every token,
    password or secret setting masked."""
    out = {}
    for key, value in settings.as_env().items():
        value = safe_url(value) if "://" in value else value
        out[key] = MASK if SECRET_SETTING.search(key) and value else value
    return out


def _convert(name: str, raw: str, kind: type) -> Any:
    try:
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
    "LAB_PEER_PREFETCH_MULTIPLIER",  # the Celery peer of `lab bench --peers`
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
    if values.get("queue_type", "classic") not in ("classic", "quorum"):
        raise ConfigError(f"LAB_QUEUE_TYPE={values['queue_type']!r} must be classic or quorum")
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
