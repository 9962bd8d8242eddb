"""`lab stack up|down|status|env`: make Redis, RabbitMQ and an Elasticsearch API reachable, and
say where they are."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from typing import Any

from lab import config
from lab.cli import grammar
from lab.cli.arguments import positive_int, service_names
from lab.cli.terminal import DataTable, note, out, say
from lab.config import Settings
from lab.ops import stack
from lab.ops.faults import plan

SERVICE_URLS = ("redis_url", "amqp_url", "es_url", "api_url")
SHELL_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def register(sub: Any) -> None:
    actions = grammar.noun(
        sub, "stack", "the services a lab needs: start, stop, check, and where they are"
    )
    up = actions.add_parser(
        "up", help="reuse what answers at the LAB_*_URLs, start local instances for the rest"
    )
    up.add_argument(
        "--only",
        type=service_names(stack.SERVICES),
        default=stack.SERVICES,
        metavar="SERVICES",
        help="comma-separated subset of: " + ", ".join(stack.SERVICES),
    )
    up.add_argument(
        "--rabbitmq-nodes",
        type=positive_int,
        default=1,
        metavar="N",
        help="start RabbitMQ as a local cluster of N nodes (prints the LAB_AMQP_URL to use)",
    )
    up.add_argument(
        "--with",
        dest="extra",
        type=service_names(stack.OPTIONAL),
        default=(),
        metavar="EXTRAS",
        help="also start: prometheus (scrapes the lab API's /metrics), faults (the fault "
        "proxy in front of each service: lab fault, lab stack env)",
    )
    up.set_defaults(handler=cmd_up)
    actions.add_parser("down", help="stop what lab stack up started (reused services stay)")
    actions.choices["down"].set_defaults(handler=cmd_down)
    status = actions.add_parser("status", help="each service: healthy or down, and who runs it")
    status.add_argument("--json", action="store_true", help="as JSON")
    status.set_defaults(handler=cmd_status)
    actions.add_parser(
        "env", help='export lines for the LAB_*_URLs this lab uses: eval "$(lab stack env)"'
    ).set_defaults(handler=cmd_env)


def cmd_down(_args: argparse.Namespace, settings: Settings) -> int:
    for service, how in stack.down(settings).items():
        say("{:14} {}", service, how)
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    found = stack.status(settings)
    healthy = all(info["healthy"] for info in found.values())
    if args.json:
        shown = {
            name: {**info, "url": config.safe_url(str(info["url"]))} for name, info in found.items()
        }
        print(json.dumps(shown, indent=2))
        return 0 if healthy else 1
    table = DataTable(title="stack")
    for column in ("service", "state", "url", "started by lab"):
        table.add_column(column)
    for service, info in found.items():
        toxics = [str(t) for t in info.get("toxics") or []]  # type: ignore[attr-defined]
        table.add_row(
            service,
            ("healthy" if info["healthy"] else "DOWN")
            + (f" ({len(toxics)} in force: {', '.join(toxics)})" if toxics else ""),
            config.safe_url(str(info["url"])),
            "yes" if info["managedByLab"] else "no",
        )
    out.print(table)
    return 0 if healthy else 1


def export_lines(values: dict[str, str]) -> list[str]:
    """`export NAME=value` for a shell, each value quoted (`shlex.quote`): whatever a value holds
    (`$(…)`, backticks, `;`, quotes, a line break), `eval` sets it and runs nothing."""
    lines = []
    for name, value in values.items():
        if not SHELL_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a shell variable name")
        lines.append(f"export {name}={shlex.quote(value)}")
    return lines


def env_values(settings: Settings) -> dict[str, str]:
    """`LAB_*` name → value for this lab: its service URLs, through the fault proxy when one
    answers at LAB_FAULTS_URL (where its proxies listen, each address read back checked), and
    LAB_API_BIND: where the API must listen for the proxy's `api` to reach it, so
    `eval "$(lab stack env)"; lab up` sends a whole lab through the proxy."""
    from lab.ops.faults import fields
    from lab.ops.local import faults_ok

    host, port = settings.api_address
    values = {name: str(getattr(settings, name)) for name in SERVICE_URLS}
    bind = fields.joined(host, port)
    if faults_ok(settings.faults_url):  # where its proxies listen (a taken port moves one)
        from lab.ops.faults.client import FaultClient

        found = FaultClient.of(settings).proxies()  # FaultApiError if an address is not one
        values |= plan.through(settings, {name: p["listen"] for name, p in found.items()})
        bind = found["api"]["upstream"] if "api" in found else bind
        values["faults_url"] = settings.faults_url
    values["api_bind"] = bind
    return {f"LAB_{name.upper()}": value for name, value in values.items()}


def cmd_env(_args: argparse.Namespace, settings: Settings) -> int:
    """`export` lines, one per setting: `eval "$(lab stack env)"` points a shell at this lab,
    through the fault proxy when it runs (and says where it is: LAB_FAULTS_URL)."""
    for line in export_lines(env_values(settings)):
        print(line)
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    only = (*args.only, *args.extra)
    if args.rabbitmq_nodes > 1 and "rabbitmq" in only:
        cluster = stack.up_cluster(settings, args.rabbitmq_nodes, note)
        settings = settings.with_overrides(amqp_url=cluster.url)
        print(f"LAB_AMQP_URL={cluster.url}")
    stack.up(settings, only, say=note)
    if "faults" in args.extra:
        names = ", ".join(p["name"] for p in plan.proxies_for(settings))
        say('faults: {} in front of {}; eval "$(lab stack env)" sends a lab through it',
            settings.faults_url, names)  # fmt: skip
    if "prometheus" in args.extra:
        say("prometheus: {} (scraping {}/metrics)", settings.prometheus_url,
            config.safe_url(settings.api_url))  # fmt: skip
    return 0
