"""`lab` on the command line: every process and every action, one subcommand each.

Each command is declared beside its handler, in one module of this package: `register(sub)` adds
its parser and sets `handler`. Adding a command means adding a module and naming it in
`COMMANDS`; `main` only parses, loads the settings and turns every error into one line.

    processes.py  api, scheduler, worker, up        runs.py      run, status, stop, runs
    stack.py      stack up|down|status              jobs.py      job add|list|show|watch|…
    dead.py       dead list|replay|purge          queues.py    queue …, pause, resume
    loadtest.py   loadtest (Locust)                 reports.py   report NAME|list|compare
    bench.py      bench throughput|rate|agents|panel|status
    notebook.py   notebook (JupyterLab)             demo.py      demo
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab import config
from lab.cli import (
    bench,
    dead,
    demo,
    jobs,
    loadtest,
    notebook,
    processes,
    queues,
    reports,
    runs,
    stack,
)
from lab.cli.arguments import WORKER_FLAGS
from lab.cli.terminal import say_error
from lab.client import ApiError
from lab.config import ConfigError, Settings
from lab.extras import MissingExtra
from lab.ops import logs
from lab.ops.servers import StackError
from lab.ops.supervisor import SupervisorError

COMMANDS = (processes, stack, runs, queues, jobs, dead, loadtest, reports, notebook, bench, demo)
EXPECTED = (ConfigError, ApiError, SupervisorError, StackError, TimeoutError, MissingExtra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lab", description="Experiment harness and load lab for a queue pipeline."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-file", type=Path, help="log to this file, rotated past LAB_LOG_MAX_BYTES"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """LAB_* settings, with the worker flags a command was given on top."""
    settings = config.load()
    overrides = {k: getattr(args, k) for k in WORKER_FLAGS if getattr(args, k, None) is not None}
    return settings.with_overrides(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        logs.configure(args.verbose, args.log_file, settings.log_max_bytes)
        return args.handler(args, settings) or 0
    except EXPECTED as exc:
        return say_error(str(exc), args.verbose)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug still gets one line; -v shows where
        return say_error(f"unexpected {type(exc).__name__}: {exc}", args.verbose, bug=True)


if __name__ == "__main__":
    sys.exit(main())
