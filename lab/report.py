"""`lab report NAME`: a drill notebook run as a reproducible report.

    reports/NAME-<timestamp>.ipynb    the executed notebook (papermill), parameters injected
    reports/NAME-<timestamp>.html     the same with its plots, for a reviewer (nbconvert)
    reports/NAME-<timestamp>.json     parameters, versions, machine, figures and verdicts

The notebook computes its figures and verdicts and writes them to `SUMMARY_PATH` (a parameter
this command injects, see `lab.drill.save_summary`); this command adds what is needed to rerun
and compare the report, and exits non-zero when the notebook failed or a verdict did.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from lab.config import Settings
from lab.notebook import kernel_env, project_root

REPORTS = ("resilience", "scaleout", "latency", "hostile", "cluster")


class ReportError(RuntimeError):
    """The report could not be made; the message says why."""


@dataclass
class Report:
    notebook: Path
    html: Path | None
    summary_path: Path
    summary: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.summary.get("passed"))


def notebook_path(name: str) -> Path:
    path = project_root(Path(__file__).parent) / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        raise ReportError(f"no notebook {path.name}; choose from {', '.join(REPORTS)}")
    return path


def run_report(
    name: str, parameters: dict[str, Any], settings: Settings, out_dir: Path = Path("reports")
) -> Report:
    source = notebook_path(name)
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = out_dir / f"{name}-{stamp}"
    executed, summary_path = base.with_suffix(".ipynb"), base.with_suffix(".json")
    values = {**parameters, "SUMMARY_PATH": str(summary_path)}
    argv = [sys.executable, "-m", "papermill", str(source), str(executed), "--cwd",
            str(source.parent), "--kernel", "python3", "--no-progress-bar"]  # fmt: skip
    for key, value in values.items():
        argv += ["-y", json.dumps({key: value})]
    started = datetime.now(UTC)
    done = subprocess.run(
        argv, env=kernel_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    html_path: Path | None = None
    if executed.is_file():
        converted = subprocess.run(
            [sys.executable, "-m", "nbconvert", "--to", "html", str(executed)],
            env=kernel_env(),
            capture_output=True,
            text=True,
        )
        if converted.returncode == 0:
            html_path = base.with_suffix(".html")
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
    if done.returncode != 0:
        summary["passed"] = False
        summary["error"] = _last_error(done.stderr)
    summary.update(
        {
            "report": name,
            "parameters": values,
            "startedAt": started.isoformat(timespec="seconds"),
            "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
            "notebook": str(executed),
            "html": str(html_path) if html_path else None,
            "versions": versions(settings),
            "machine": machine(),
            "rerun": f"lab report {name} "
            + " ".join(f"-p {k} {json.dumps(v)}" for k, v in parameters.items()),
        }
    )
    summary.setdefault("passed", False)
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    return Report(executed, html_path, summary_path, summary)


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "\n".join(lines[-15:])


def versions(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    for package in ("lab", "pika", "redis", "elasticsearch", "fastapi", "papermill", "locust"):
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

        found["redis"] = redis.Redis.from_url(settings.redis_url).info("server")["redis_version"]
    except Exception as exc:  # noqa: BLE001 - a version is nice to have, never a reason to fail
        found["redis"] = f"unknown ({exc})"
    try:
        from lab import broker

        connection = broker.connect(settings.amqp_url, "lab-report")
        # pika keeps the broker's announced properties only on the underlying connection.
        version = connection._impl.server_properties.get("version", b"")  # noqa: SLF001
        found["rabbitmq"] = version.decode() if isinstance(version, bytes) else str(version)
        connection.close()
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
