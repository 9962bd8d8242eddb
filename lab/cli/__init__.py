"""`lab` on the command line: `lab NOUN VERB [options]`, every process and every action.

Each command is declared beside its handler, in one module of this package: `register(sub)` adds
its parser and sets `handler`. Adding a command means adding a module and naming it in
`COMMANDS`; `main` only parses (`grammar.py`: short forms, descriptions, global flags), loads the
settings and turns every error into one line. docs/reference/cli.md is generated from this parser.

    processes.py  api, scheduler, worker, up        runs.py      run start|stop|status|list|…
    stack.py      stack up|down|status|env          jobs.py      job add|list|show|watch|…
    dead.py       dead list|replay|purge            queues.py    queue list|pause|resume|purge
    kinds.py      kind list|show                    reports.py   report run|list|compare
    targets.py    target list|show
    bench.py      bench throughput|rate|agents|panel|status
    loadtest.py   loadtest (Locust)                 notebook.py  notebook (JupyterLab)
    reset.py      reset                             completion.py completion bash|zsh
    faults.py     fault list|add|remove|disable|blackhole|heal|reset|serve|freeze|thaw|throttle
    experiments.py experiment run|report
    capacity.py   capacity run|report (lab capacity --out DIR … for short)
    demo.py       demo
"""

from __future__ import annotations

import argparse
import sys

from lab import config
from lab.cli import (
    bench,
    capacity,
    completion,
    dead,
    demo,
    experiments,
    faults,
    grammar,
    jobs,
    kinds,
    loadtest,
    notebook,
    processes,
    queues,
    reports,
    reset,
    runs,
    stack,
    targets,
)
from lab.cli.arguments import WORKER_FLAGS
from lab.cli.terminal import say_error
from lab.client import ApiError
from lab.config import ConfigError, Settings
from lab.extras import MissingExtra
from lab.ops import logs
from lab.ops.faults.client import FaultApiError
from lab.ops.servers import StackError
from lab.ops.supervisor import SupervisorError
from lab.targets import TargetError
from lab.version import __version__


def unreachable_errors() -> tuple[type[Exception], ...]:
    """What a service that does not answer raises, from the clients lab uses. Elasticsearch's
    only when its client was imported: most commands never make one (`lab.runtime.store`)."""
    import pika.exceptions
    import redis.exceptions

    errors: tuple[type[Exception], ...] = (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        pika.exceptions.AMQPConnectionError,
    )
    transport = sys.modules.get("elastic_transport")
    if transport is not None:
        errors += (transport.ConnectionError, transport.ConnectionTimeout)
    return errors


COMMANDS = (
    processes, stack, runs, jobs, kinds, targets, queues, dead, faults, reset, loadtest, reports,
    bench, experiments, capacity, notebook, demo, completion,
)  # fmt: skip
EXPECTED = (
    ConfigError, ApiError, SupervisorError, StackError, TimeoutError, MissingExtra, FaultApiError,
    TargetError,
)  # fmt: skip

EXIT_CODES = {
    0: "done: what was asked worked (a run completed, a drill passed, every service healthy)",
    1: "failed: a run failed or breached, a drill's verdict failed, a service or the API "
    "refused or did not answer, a service is down",
    2: "bad input: a usage error or a value checked locally (the message names it); nothing "
    "was changed. Also too little to judge: lab report compare with one baseline",
    130: "interrupted (Ctrl-C)",
}
"""What `lab` exits with; docs/reference/cli.md lists them."""

EPILOG = (
    "Short forms: lab status | stop | runs | pause | resume = lab run status | stop | list | "
    "pause | resume; lab run --x N --y M = lab run start …; lab report NAME = lab report run NAME;"
    " lab capacity --out DIR … = lab capacity run --out DIR …."
    " Exit codes: " + "; ".join(f"{code} {text.split(':')[0]}" for code, text in EXIT_CODES.items())
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lab",
        description="Experiment harness and load lab for a queue pipeline.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"lab {__version__}")
    grammar.global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    parser.set_defaults(parser=parser)  # for a command that describes the CLI (completion)
    return grammar.finish(parser)


def unreachable(exc: Exception, args: argparse.Namespace) -> str:
    """A service that did not answer, named with its URL and the fix."""
    settings = config.load()
    module = type(exc).__module__
    name, url = (
        ("Redis", settings.redis_url) if module.startswith("redis") else
        ("RabbitMQ", settings.amqp_url) if module.startswith("pika") else
        ("Elasticsearch", settings.es_url)
    )  # fmt: skip
    return (
        f"{name} at {config.safe_url(url)} did not answer ({type(exc).__name__}); "
        "is it running? lab stack up starts it, lab stack status checks"
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """LAB_* settings, with the worker flags a command was given on top."""
    settings = config.load()
    overrides = {k: getattr(args, k) for k in WORKER_FLAGS if getattr(args, k, None) is not None}
    return settings.with_overrides(**overrides)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(grammar.normalise(argv, reports.REPORTS))
    try:
        settings = settings_from(args)
        logs.configure(args.verbose, args.log_file, settings.log_max_bytes)
        return args.handler(args, settings) or 0
    except EXPECTED as exc:
        return say_error(str(exc), args.verbose)
    except unreachable_errors() as exc:
        return say_error(unreachable(exc, args), args.verbose)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug still gets one line; -v shows where
        return say_error(f"unexpected {type(exc).__name__}: {exc}", args.verbose, bug=True)


if __name__ == "__main__":
    sys.exit(main())
