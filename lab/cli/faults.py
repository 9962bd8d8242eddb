"""`lab fault`: partial failures between lab and its services, through the fault proxy (or a
real Toxiproxy at LAB_FAULTS_URL): list the proxies and their toxics, add, change and remove
toxics, disable, blackhole or heal a service by name, reset everything; freeze, thaw or throttle
one of the lab's own processes; `lab fault serve` is the proxy process itself."""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

from lab.cli.arguments import positive_float
from lab.cli.terminal import DataTable, bad_input, out, say
from lab.config import Settings, safe_url
from lab.ops.faults import toxics
from lab.ops.faults.toxics import TOXICS, describe
from lab.runtime.fields import Field


def register(sub: Any) -> None:
    fault = sub.add_parser(
        "fault", help="latency, bandwidth, resets and silence between lab and its services"
    )
    verbs = fault.add_subparsers(dest="fault", required=True, metavar="ACTION")

    serve = verbs.add_parser(
        "serve", help="run the fault proxy (Toxiproxy's API) in the foreground"
    )
    serve.add_argument("--port", type=int, default=8474, help="the API's port, on 127.0.0.1")
    serve.add_argument(
        "--proxy", action="append", default=[], metavar="NAME=LISTEN>UPSTREAM",
        help="a proxy to open at once (repeatable), e.g. redis=127.0.0.1:26379>127.0.0.1:6379",
    )  # fmt: skip
    serve.set_defaults(handler=cmd_serve)

    listing = verbs.add_parser("list", help="the proxies, where they listen, and their toxics")
    listing.add_argument("--json", action="store_true", help="the API's JSON")
    listing.set_defaults(handler=cmd_list)

    types = verbs.add_parser("types", help="the toxics lab fault add knows, and their attributes")
    types.add_argument("--json", action="store_true", help="each type and its attributes as JSON")
    types.set_defaults(handler=cmd_types)

    add = verbs.add_parser("add", help="add a toxic to a proxy")
    add.add_argument("proxy", help="the proxy's name (redis, rabbitmq, elasticsearch, api, …)")
    add.add_argument("type", choices=sorted(TOXICS.names), help="the toxic's type")
    add.add_argument(
        "-a", "--attribute", action="append", default=[], metavar="NAME=N",
        help="a toxic attribute, a whole number (repeatable; each 0 unless given): "
        + "; ".join(f"{cls.type}: {', '.join(_attribute(f) for f in cls.fields) or 'none'}"
                    for cls in TOXICS) + " (lab fault types says what each sets)",
    )  # fmt: skip
    add.add_argument(
        "--stream", choices=toxics.STREAMS, default="downstream",
        help="upstream: client → service; downstream: service → client",
    )  # fmt: skip
    add.add_argument("--toxicity", type=float, default=1.0, help="chance a connection gets it")
    add.add_argument("--name", help="the toxic's name (default TYPE_STREAM)")
    add.set_defaults(handler=cmd_add)

    remove = verbs.add_parser("remove", help="remove a toxic from a proxy")
    remove.add_argument("proxy", help="the proxy's name")
    remove.add_argument("toxic", help="the toxic's name (lab fault list shows them)")
    remove.set_defaults(handler=cmd_remove)

    for verb, about in (
        ("disable", "refuse and cut a service's connections (it fails fast)"),
        ("blackhole", "silence a service both ways: connections hang until a deadline"),
        ("heal", "undo disable, blackhole and every toxic of a service"),
    ):
        action = verbs.add_parser(verb, help=about)
        action.add_argument("proxy", help="the proxy's name")
        action.set_defaults(handler=cmd_service, verb=verb)

    verbs.add_parser("reset", help="every proxy enabled, every toxic removed").set_defaults(
        handler=cmd_reset
    )

    presets = verbs.add_parser("presets", help="the named faults lab fault apply knows")
    presets.add_argument("--json", action="store_true", help="name → what it does, as JSON")
    presets.set_defaults(handler=cmd_presets)
    apply = verbs.add_parser(
        "apply", help="put a named fault (lab fault presets) on every proxy of its services"
    )
    apply.add_argument("preset", help="the preset's name, e.g. es-slow or network-slow")
    apply.set_defaults(handler=cmd_apply)

    freeze = verbs.add_parser(
        "freeze", help="SIGSTOP a lab process (worker-1, scheduler, api): frozen, holding all"
    )
    freeze.add_argument(
        "process", help="the process, as lab up names it: api, scheduler, worker-1, …"
    )
    freeze.add_argument(
        "--seconds", type=positive_float,
        help="thaw it after this long (default: frozen until lab fault thaw)",
    )  # fmt: skip
    freeze.set_defaults(handler=cmd_freeze)
    thaw = verbs.add_parser("thaw", help="SIGCONT a frozen lab process, or every one (--all)")
    thaw.add_argument(
        "process", nargs="?", help="the process, as lab up names it: api, scheduler, worker-1, …"
    )
    thaw.add_argument(
        "--all", action="store_true",
        help="every process lab fault froze or throttled (recorded under LAB_HOME/frozen)",
    )  # fmt: skip
    thaw.set_defaults(handler=cmd_thaw)
    throttle = verbs.add_parser(
        "throttle", help="run a lab process a share of the time (a slow CPU), in the foreground"
    )
    throttle.add_argument(
        "process", help="the process, as lab up names it: api, scheduler, worker-1, …"
    )
    throttle.add_argument("--share", type=float, default=0.3, help="of each 100 ms it runs")
    throttle.add_argument("--seconds", type=positive_float, default=30.0, help="how long")
    throttle.set_defaults(handler=cmd_throttle)


def _attribute(field: Field) -> str:
    return f"{field.name} ({field.unit})" if field.unit and field.unit != field.name else field.name


def _client(settings: Settings) -> Any:
    from lab.ops.faults.client import FaultClient

    return FaultClient.of(settings)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from lab.ops.faults.serve import parse_proxy, serve

    try:
        proxies = [parse_proxy(text) for text in args.proxy]
    except ValueError as exc:
        return bad_input(str(exc))
    if not 0 < args.port < 65536:
        return bad_input(f"--port {args.port} is not a port (1 to 65535)")
    serve(args.port, proxies, settings)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    proxies = _client(settings).proxies()
    if args.json:
        print(json.dumps(proxies, indent=2))
        return 0
    table = DataTable(title=f"fault proxies at {safe_url(settings.faults_url)}")
    for column in ("proxy", "listen", "upstream", "enabled", "toxics"):
        table.add_column(column)
    for name, proxy in sorted(proxies.items()):
        table.add_row(name, proxy["listen"], proxy["upstream"],
                      "NO" if proxy.get("enabled") is False else "yes",
                      ", ".join(describe(t) for t in proxy.get("toxics") or []) or "–")  # fmt: skip
    out.print(table)
    return 0


def cmd_types(args: argparse.Namespace, _settings: Settings) -> int:
    if args.json:
        print(json.dumps(TOXICS.schema(), indent=2, ensure_ascii=False))
        return 0
    table = DataTable(title="toxics (lab fault add PROXY TYPE -a NAME=N)")
    for column in ("type", "attribute", "unit", "what it sets", "what a client sees"):
        table.add_column(column)
    for cls in TOXICS:
        rows = [(f.name, f.unit, f.help) for f in cls.fields] or [("–", "", "")]
        for i, (name, unit, sets) in enumerate(rows):
            table.add_row(cls.type if i == 0 else "", name, unit, sets, cls.help if i == 0 else "")
    out.print(table)
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    attributes: dict[str, int] = {}
    names = [f.name for f in TOXICS.kinds[args.type].fields]
    for text in args.attribute:
        name, _, value = text.partition("=")
        if name not in names or not re.fullmatch("[0-9]{1,9}", value):
            allowed = ", ".join(f"{a}=N" for a in names)
            return bad_input(f"--attribute {text!r}: {args.type} takes {allowed}")
        attributes[name] = int(value)
    if not 0 <= args.toxicity <= 1:
        return bad_input("--toxicity must be from 0 to 1")
    toxic = _client(settings).add_toxic(
        args.proxy, args.type, attributes, args.stream, args.toxicity, args.name
    )
    say("lab: {}: {}", args.proxy, describe(toxic))
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    _client(settings).remove_toxic(args.proxy, args.toxic)
    say("lab: {}: {} removed", args.proxy, args.toxic)
    return 0


def cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    getattr(_client(settings), args.verb)(args.proxy)
    done = {"disable": "disabled", "blackhole": "blackholed", "heal": "healed"}[args.verb]
    say("lab: {} {}", args.proxy, done)
    return 0


def cmd_reset(_args: argparse.Namespace, settings: Settings) -> int:
    _client(settings).reset()
    say("lab: every proxy enabled, every toxic removed")
    return 0


def cmd_presets(args: argparse.Namespace, _settings: Settings) -> int:
    from lab.ops.faults.presets import PRESETS

    if args.json:
        print(json.dumps({name: about for name, (about, _) in PRESETS.items()}, indent=2))
        return 0
    table = DataTable(title="fault presets (lab fault apply NAME; an experiment's fault factor)")
    for column in ("preset", "what it does", "toxics"):
        table.add_column(column)
    for name, (about, toxics_) in PRESETS.items():
        table.add_row(name, about, ", ".join(f"{t.service}: {t.type} {t.stream}" for t in toxics_)
                      or "–")  # fmt: skip
    out.print(table)
    return 0


def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    from lab.ops.faults.presets import PresetError, apply, check, describe

    try:
        check(args.preset)
        added = apply(_client(settings), args.preset)
    except PresetError as exc:
        return bad_input(str(exc))
    what = ", ".join(added) or "nothing"
    say("lab: {} ({}): {}; lab fault heal SERVICE or lab fault reset undoes it", args.preset,
        describe(args.preset), what)  # fmt: skip
    return 0


def _pid(settings: Settings, name: str) -> int:
    from lab.ops.supervisor import Supervisor

    return Supervisor(settings).pid(name)


def _held(name: str, how: str, seconds: float, fault: Any) -> int:
    """Hold `fault` (a context manager) for `seconds`; SIGINT, SIGTERM or SIGHUP end it early,
    and the process runs freely again either way."""
    from lab.ops.faults import processes

    try:
        with processes.ending_on_signals(), fault:
            say("lab: {} {} for {:g} s", name, how, seconds)
            time.sleep(seconds)
    except processes.Interrupted as signal_name:
        say("lab: {} runs freely again ({} ended the fault)", name, signal_name)
        return 130
    say("lab: {} runs freely again", name)
    return 0


def cmd_freeze(args: argparse.Namespace, settings: Settings) -> int:
    from lab.ops.faults import processes

    pid = _pid(settings, args.process)
    home = settings.home_path
    if args.seconds is None:
        processes.record(home, pid, args.process, "freeze")
        processes.freeze(pid)
        say("lab: {0} (pid {1}) frozen; lab fault thaw {0} (or --all) continues it",
            args.process, pid)  # fmt: skip
        return 0
    frozen = processes.frozen(pid, home, args.process)
    return _held(f"{args.process} (pid {pid})", "frozen", args.seconds, frozen)


def cmd_thaw(args: argparse.Namespace, settings: Settings) -> int:
    from lab.ops.faults import processes

    if args.all == bool(args.process):
        return bad_input("lab fault thaw NAME, or lab fault thaw --all (every recorded one)")
    if args.all:
        done, problems = processes.thaw_recorded(settings.home_path)
        for problem in problems:
            say("lab: {}", problem)
        names = ", ".join(f"{r.name} (pid {r.pid})" for r in done) or "nothing was frozen"
        say("lab: thawed {}", names)
        return 0
    pid = _pid(settings, args.process)
    processes.thaw(pid)
    processes.forget(settings.home_path, pid)
    say("lab: {} thawed", args.process)
    return 0


def cmd_throttle(args: argparse.Namespace, settings: Settings) -> int:
    from lab.ops.faults import processes

    if not 0 < args.share < 1:
        return bad_input(f"--share {args.share:g}: a share between 0 and 1, e.g. 0.3")
    pid = _pid(settings, args.process)
    throttled = processes.throttled(pid, args.share, home=settings.home_path, name=args.process)
    how = f"runs {args.share:.0%} of the time"
    return _held(f"{args.process} (pid {pid})", how, args.seconds, throttled)
