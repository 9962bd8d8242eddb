"""What a notebook needs to drive the lab, in three calls:

    settings = lab_settings()              # the project's configuration, wherever the notebook is
    supervisor = start_lab(settings, workers=2)
    ControlPanel(settings, supervisor)     # lab.views.panel

Notebooks live in `notebooks/`, but the lab's `.env` and `.lab/` (data, logs) belong to the
project root, so `lab_settings` finds the root and reads them there; `LAB_*` variables still win.
"""

from __future__ import annotations

from typing import Any

from lab import config
from lab.config import Settings
from lab.ops import stack
from lab.ops.supervisor import Supervisor, api_healthy


def lab_settings(**overrides: Any) -> Settings:
    """The project's settings, as the CLI reads them (`config.load`: `.env` and `.lab/` at the
    project root), with `overrides` on top."""
    settings = config.load()
    return settings.with_overrides(**overrides) if overrides else settings


def start_lab(
    settings: Settings, workers: int = 1, worker_args: list[str] | None = None
) -> Supervisor:
    """Services reachable (reused or started), then the API, the scheduler and `workers`
    workers — or the ones already running for this lab, adopted rather than doubled.

    When the API already answers but no supervisor here started it (docker compose runs the
    processes, or another host does), nothing is started: the notebook drives that lab.
    """
    stack.up(settings)
    supervisor = Supervisor(settings)
    if "api" not in supervisor.children and api_healthy(settings.api_url, timeout_s=2):
        return supervisor
    supervisor.up(workers=workers, worker_args=worker_args)
    return supervisor
