"""`lab api`, `lab scheduler`, `lab worker`: the three processes of a lab; `lab up`: all of them
under the supervisor, in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
from typing import Any

from lab import targets
from lab.cli.arguments import positive_int, worker_args, worker_flags
from lab.cli.terminal import bad_input, say
from lab.config import ConfigError, Settings
from lab.ops.supervisor import Supervisor


def register(sub: Any) -> None:
    api = sub.add_parser("api", help="serve the HTTP API (run control, status, events)")
    api.add_argument(
        "--processes", type=positive_int, help="API processes sharing the port (LAB_API_PROCESSES)"
    )
    api.set_defaults(handler=cmd_api)

    sub.add_parser("scheduler", help="release the active run's jobs at Y per minute").set_defaults(
        handler=cmd_scheduler
    )

    worker = sub.add_parser("worker", help="consume jobs, write documents, count, ack")
    worker_flags(worker)
    worker.set_defaults(handler=cmd_worker)

    up = sub.add_parser("up", help="supervise api + scheduler + N workers in the foreground")
    up.add_argument("--workers", type=positive_int, default=1, help="workers to start")
    up.add_argument("--api-processes", type=positive_int, metavar="N", help="LAB_API_PROCESSES")
    up.add_argument("--no-restart", action="store_true", help="do not restart children that exit")
    worker_flags(up)
    up.set_defaults(handler=cmd_up)

    sub.add_parser(
        "down", help="stop this lab's processes that a lab up (here or in another terminal) runs"
    ).set_defaults(handler=cmd_down)


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    """uvicorn on uvloop and httptools; with `--processes N`, N processes share the port (each
    with its own status snapshot and event hub), started from the same settings."""
    import uvicorn

    from lab.api.app import served

    host, port = settings.api_address  # LAB_API_BIND, else LAB_API_URL's host and port
    check_port_free(host, port)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        "timeout_graceful_shutdown": 5,
    }
    processes = args.processes or settings.api_processes
    if processes > 1:
        os.environ.update(settings.as_env())
        # Request latency is summed over the processes (prometheus_client's multiprocess mode).
        shared = settings.home_path / "metrics" / f"api-{os.getpid()}"
        shutil.rmtree(shared, ignore_errors=True)
        shared.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
        uvicorn.run("lab.api.app:served", factory=True, workers=processes, **options)
    else:
        uvicorn.run(served(settings), **options)
    return 0


def check_port_free(host: str, port: int) -> None:
    """Refuse, in one line naming the fix, to serve on a port something already holds (uvicorn
    would print its own multi-line error and exit)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise ConfigError(
            f"cannot serve the API on {host}:{port} ({exc.strerror}): another lab api or program "
            "holds it; stop it, or set LAB_API_URL (or LAB_API_BIND) to a free port"
        ) from None


def cmd_scheduler(_args: argparse.Namespace, settings: Settings) -> int:
    from lab.runtime.scheduler import Scheduler

    Scheduler(settings, submitters=lambda name: targets.target(name, settings)).run()
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from lab.runtime.worker import Worker

    if getattr(args, "target", None) not in (None, targets.DEFAULT):
        return exec_target_worker(args.target, settings)
    if settings.prefetch < settings.batch:
        say("lab: prefetch {} is below batch {}; batches will hold at most {} deliveries",
            settings.prefetch, settings.batch, settings.prefetch)  # fmt: skip
    lower_priority(settings)
    Worker(settings).run()
    exit_at_once()
    return 0  # not reached


def exit_at_once() -> None:
    """End a worker that has stopped without tearing its interpreter down. By then every job in
    hand is acked or handed back and every connection closed; what teardown would add is CPU
    (0.15 s measured), and a worker at nice 10 on a busy machine gets a tenth of what others
    get: seconds, where its parent is gone and nobody waits to SIGKILL it."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def exec_target_worker(name: str, settings: Settings) -> int:
    """Become one of another framework's workers (`lab worker --target NAME`): the process the
    supervisor started is the framework's, so its logs, freeze, kill and restart are as for a
    lab worker's."""
    try:
        target = targets.target(name, settings)
    except targets.TargetError as exc:
        return bad_input(str(exc))
    argv = target.worker_argv(sys.executable, settings.concurrency)
    lower_priority(settings)
    os.execvpe(argv[0], argv, {**os.environ, **settings.as_env()})
    return 0  # not reached: exec replaced this process


def lower_priority(settings: Settings) -> None:
    """Workers yield the CPU to the API when the machine is busy (a niceness increase needs no
    privilege, so this works under compose and Kubernetes too). The scheduler keeps its
    priority: it is the run's clock, and the catch-up rule never lets a stalled scheduler burst."""
    if settings.pipeline_nice:
        os.nice(settings.pipeline_nice)


def cmd_down(_args: argparse.Namespace, settings: Settings) -> int:
    """Adopt this lab's live processes on this host and stop them, the workers last; a process
    a fault left frozen is continued first (its SIGTERM would wait otherwise)."""
    supervisor = Supervisor(settings)
    supervisor.request_down()  # a lab up of this lab stops its own, and ends
    found = supervisor.adopt()
    codes = supervisor.down()
    if not found:
        say("lab: no process of this lab runs here (prefix {})", settings.prefix)
        return 0
    say("lab: stopped {}", ", ".join(f"{n} ({c})" for n, c in codes.items()))
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    supervisor = Supervisor(settings)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        supervisor.clear_down()
        api_args = ["--processes", str(args.api_processes)] if args.api_processes else []
        supervisor.up(workers=args.workers, worker_args=worker_args(args), api_args=api_args)
        say("lab: api at {}, scheduler, {} worker(s); logs in {}. Ctrl-C stops them all.",
            settings.api_url, args.workers, supervisor.log_dir)  # fmt: skip
        until = lambda: bool(stopping) or supervisor.down_requested()  # noqa: E731
        supervisor.watch(restart=not args.no_restart, until=until)
    except KeyboardInterrupt:
        pass
    finally:
        codes = supervisor.down()
        say("lab: stopped {}", ", ".join(f"{n} ({c})" for n, c in codes.items()))
    return 0
