"""Where a report came from: the code (git commit, dirty or not), the exact command that reruns
it, the libraries and servers it ran against, the machine.

A figure without its provenance cannot be compared honestly: two reports that differ in commit,
service version or core count are different experiments, and `lab report compare` shows it.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from lab.config import Settings

LIBRARIES = ("lab", "pika", "redis", "elasticsearch", "fastapi", "papermill", "locust", "pandas")


def git(root: Path) -> dict[str, Any]:
    """The commit the report ran, and whether the tree held changes not in it (`dirty`).

    A source tree that is not a git checkout (an sdist, a container image) says so instead of
    failing: the report is still worth having."""

    def ask(*argv: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *argv],
                capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = ask("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "branch": None}
    # Reports and local state are written inside the tree; they do not make the code dirty.
    changes = ask("status", "--porcelain", "--untracked-files=no") or ""
    return {
        "commit": commit,
        "dirty": bool(changes),
        "branch": ask("rev-parse", "--abbrev-ref", "HEAD"),
    }


def rerun_command(
    name: str, parameters: dict[str, Any], show_code: bool = False, out: str = "reports"
) -> str:
    """The command line that runs the same report again, quoted for a POSIX shell."""
    words = ["lab", "report", "run", name]
    for key, value in parameters.items():
        words += ["-p", key, json.dumps(value)]
    if out != "reports":
        words += ["--out", out]
    if show_code:
        words.append("--show-code")
    return shlex.join(words)


def versions(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    for package in LIBRARIES:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    out["services"] = service_versions(settings)
    return out


def service_versions(settings: Settings) -> dict[str, Any]:
    """What answers at the configured URLs (a report names the servers it ran against)."""
    found: dict[str, Any] = {}
    try:
        import redis

        info: Any = redis.Redis.from_url(settings.redis_url).info("server")
        found["redis"] = info["redis_version"]
    except Exception as exc:  # noqa: BLE001 - a version is nice to have, never a reason to fail
        found["redis"] = f"unknown ({exc})"
    try:
        from lab.runtime import broker

        found["rabbitmq"] = broker.server_version(settings.amqp_url)
    except Exception as exc:  # noqa: BLE001
        found["rabbitmq"] = f"unknown ({exc})"
    try:
        from elasticsearch import Elasticsearch

        info = Elasticsearch(settings.es_url.split(",")[0], request_timeout=5).info()
        found["elasticsearch"] = info["version"]["number"]
    except Exception as exc:  # noqa: BLE001
        found["elasticsearch"] = f"unknown ({exc})"
    return found


def machine() -> dict[str, Any]:
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memoryGiB": round(memory_kb / 1024 / 1024, 1),
        "hostname": platform.node(),
    }
