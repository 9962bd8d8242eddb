"""`lab fault`: partial failures between lab and its services, through the fault proxy (or a
real Toxiproxy at LAB_FAULTS_URL): list the proxies and their toxics, add, change and remove
toxics, disable, blackhole or heal a service by name, reset everything; freeze, thaw or throttle
one of the lab's own processes; `lab fault serve` is the proxy process itself."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from rich.table import Table

from lab.cli.arguments import positive_float
from lab.cli.terminal import bad_input, console, out
from lab.config import Settings
from lab.ops.faults import toxics
from lab.ops.faults.toxics import describe


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

    add = verbs.add_parser("add", help="add a toxic to a proxy")
    add.add_argument("proxy", help="the proxy's name (redis, rabbitmq, elasticsearch, api, …)")
    add.add_argument("type", choices=sorted(toxics.TYPES), help="the toxic's type")
    add.add_argument(
        "-a", "--attribute", action="append", default=[], metavar="NAME=N",
        help="a toxic attribute (repeatable), e.g. latency=200 jitter=50 (ms), rate=100 (KB/s)",
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
    thaw = verbs.add_parser("thaw", help="SIGCONT a frozen lab process")
    thaw.add_argument(
        "process", help="the process, as lab up names it: api, scheduler, worker-1, …"
    )
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


def _client(settings: Settings) -> Any:
    from lab.ops.faults.client import FaultClient

    return FaultClient(settings.faults_url)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from lab.ops.faults.serve import parse_proxy, serve

    try:
        proxies = [parse_proxy(text) for text in args.proxy]
    except ValueError as exc:
        return bad_input(str(exc))
    if not 0 < args.port < 65536:
        return bad_input(f"--port {args.port} is not a port (1 to 65535)")
    serve(args.port, proxies)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    proxies = _client(settings).proxies()
    if args.json:
        print(json.dumps(proxies, indent=2))
        return 0
    table = Table(title=f"fault proxies at {settings.faults_url}")
    for column in ("proxy", "listen", "upstream", "enabled", "toxics"):
        table.add_column(column)
    for name, proxy in sorted(proxies.items()):
        table.add_row(name, proxy["listen"], proxy["upstream"], "yes" if proxy["enabled"] else "NO",
                      ", ".join(describe(t) for t in proxy.get("toxics") or []) or "–")  # fmt: skip
    out.print(table)
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    attributes: dict[str, int] = {}
    for text in args.attribute:
        name, _, value = text.partition("=")
        if name not in toxics.TYPES[args.type] or not value.isdigit():
            allowed = ", ".join(f"{a}=N" for a in toxics.TYPES[args.type])
            return bad_input(f"--attribute {text!r}: {args.type} takes {allowed}")
        attributes[name] = int(value)
    if not 0 <= args.toxicity <= 1:
        return bad_input("--toxicity must be from 0 to 1")
    toxic = _client(settings).add_toxic(
        args.proxy, args.type, attributes, args.stream, args.toxicity, args.name
    )
    console.print(f"lab: {args.proxy}: {describe(toxic)}", highlight=False)
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    _client(settings).remove_toxic(args.proxy, args.toxic)
    console.print(f"lab: {args.proxy}: {args.toxic} removed", highlight=False)
    return 0


def cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    getattr(_client(settings), args.verb)(args.proxy)
    done = {"disable": "disabled", "blackhole": "blackholed", "heal": "healed"}[args.verb]
    console.print(f"lab: {args.proxy} {done}", highlight=False)
    return 0


def cmd_reset(_args: argparse.Namespace, settings: Settings) -> int:
    _client(settings).reset()
    console.print("lab: every proxy enabled, every toxic removed", highlight=False)
    return 0


def cmd_presets(args: argparse.Namespace, _settings: Settings) -> int:
    from lab.ops.faults.presets import PRESETS

    if args.json:
        print(json.dumps({name: about for name, (about, _) in PRESETS.items()}, indent=2))
        return 0
    table = Table(title="fault presets (lab fault apply NAME; an experiment's fault factor)")
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
    console.print(f"lab: {args.preset} ({describe(args.preset)}): {what}; lab fault heal SERVICE "
                  "or lab fault reset undoes it", highlight=False)  # fmt: skip
    return 0


def _pid(settings: Settings, name: str) -> int:
    from lab.ops.supervisor import Supervisor

    return Supervisor(settings).pid(name)


def cmd_freeze(args: argparse.Namespace, settings: Settings) -> int:
    from lab.ops.faults import processes

    pid = _pid(settings, args.process)
    if args.seconds is None:
        processes.freeze(pid)
        console.print(f"lab: {args.process} (pid {pid}) frozen; lab fault thaw {args.process} "
                      "continues it", highlight=False)  # fmt: skip
        return 0
    with processes.frozen(pid):
        console.print(f"lab: {args.process} (pid {pid}) frozen for {args.seconds:g} s",
                      highlight=False)  # fmt: skip
        time.sleep(args.seconds)
    console.print(f"lab: {args.process} thawed", highlight=False)
    return 0


def cmd_thaw(args: argparse.Namespace, settings: Settings) -> int:
    from lab.ops.faults import processes

    processes.thaw(_pid(settings, args.process))
    console.print(f"lab: {args.process} thawed", highlight=False)
    return 0


def cmd_throttle(args: argparse.Namespace, settings: Settings) -> int:
    from lab.ops.faults import processes

    if not 0 < args.share < 1:
        return bad_input(f"--share {args.share:g}: a share between 0 and 1, e.g. 0.3")
    pid = _pid(settings, args.process)
    with processes.throttled(pid, args.share):
        console.print(f"lab: {args.process} (pid {pid}) runs {args.share:.0%} of the time for "
                      f"{args.seconds:g} s", highlight=False)  # fmt: skip
        time.sleep(args.seconds)
    console.print(f"lab: {args.process} runs freely again", highlight=False)
    return 0
