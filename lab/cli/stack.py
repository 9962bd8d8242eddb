"""`lab stack up|down|status|env`: make Redis, RabbitMQ and an Elasticsearch API reachable, and
say where they are."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lab import config
from lab.cli.arguments import positive_int, service_names
from lab.cli.terminal import DataTable, console, out
from lab.config import Settings
from lab.ops import stack
from lab.ops.faults import plan

SERVICE_URLS = ("redis_url", "amqp_url", "es_url", "api_url")


def register(sub: Any) -> None:
    st = sub.add_parser(
        "stack", help="the services a lab needs: start, stop, check, and where they are"
    )
    actions = st.add_subparsers(dest="action", required=True, metavar="ACTION")
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
        "env", help="the LAB_*_URL lines this lab uses (for eval, .env or a notebook)"
    ).set_defaults(handler=cmd_env)


def cmd_down(_args: argparse.Namespace, settings: Settings) -> int:
    for service, how in stack.down(settings).items():
        console.print(f"{service:14} {how}", highlight=False)
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


def cmd_env(_args: argparse.Namespace, settings: Settings) -> int:
    """Shell lines, one per service URL: `eval "$(lab stack env)"` points a shell at this lab,
    through the fault proxy when it runs (and where it is: LAB_FAULTS_URL)."""
    from lab.ops.faults import plan
    from lab.ops.local import faults_ok

    proxied = faults_ok(settings.faults_url)
    values = {}
    if proxied:  # where its proxies listen (a taken port moves one to a free port)
        from lab.ops.faults.client import FaultClient

        found = FaultClient(settings.faults_url).proxies()
        values = plan.through(settings, {name: p["listen"] for name, p in found.items()})
    for name in SERVICE_URLS:
        print(f"LAB_{name.upper()}={values.get(name) or getattr(settings, name)}")
    if proxied:
        print(f"LAB_FAULTS_URL={settings.faults_url}")
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    only = (*args.only, *args.extra)
    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    if args.rabbitmq_nodes > 1 and "rabbitmq" in only:
        cluster = stack.up_cluster(settings, args.rabbitmq_nodes, say)
        settings = settings.with_overrides(amqp_url=cluster.url)
        print(f"LAB_AMQP_URL={cluster.url}")
    stack.up(settings, only, say=say)
    if "faults" in args.extra:
        console.print(
            f"faults: {settings.faults_url} in front of "
            + ", ".join(p["name"] for p in plan.proxies_for(settings))
            + '; eval "$(lab stack env)" sends a lab through it',
            highlight=False,
        )
    if "prometheus" in args.extra:
        console.print(
            f"prometheus: {settings.prometheus_url} (scraping "
            f"{config.safe_url(settings.api_url)}/metrics)",
            highlight=False,
        )
    return 0
