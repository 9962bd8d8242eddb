"""`lab stack up|down|status`: make Redis, RabbitMQ and an Elasticsearch API reachable."""

from __future__ import annotations

import argparse
from typing import Any

from lab import config
from lab.cli.arguments import positive_int, service_names
from lab.cli.terminal import console
from lab.config import Settings
from lab.ops import stack


def register(sub: Any) -> None:
    st = sub.add_parser("stack", help="make Redis, RabbitMQ and Elasticsearch reachable")
    st.add_argument("action", choices=["up", "down", "status"])
    st.add_argument(
        "--only",
        type=service_names(stack.SERVICES),
        default=stack.SERVICES,
        help="comma-separated subset of: " + ", ".join(stack.SERVICES),
    )
    st.add_argument(
        "--rabbitmq-nodes",
        type=positive_int,
        default=1,
        metavar="N",
        help="start RabbitMQ as a local cluster of N nodes (prints the LAB_AMQP_URL to use)",
    )
    st.add_argument(
        "--with",
        dest="extra",
        type=service_names(stack.OPTIONAL),
        default=(),
        help="also start: " + ", ".join(stack.OPTIONAL) + " (scrapes the lab API's /metrics)",
    )
    st.set_defaults(handler=cmd_stack)


def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "up":
        return up(args, settings)
    if args.action == "down":
        for service, how in stack.down(settings).items():
            console.print(f"{service:14} {how}")
        return 0
    healthy = True
    for service, info in stack.status(settings).items():
        healthy &= bool(info["healthy"])
        mark = "healthy" if info["healthy"] else "DOWN"
        owner = " (started by lab)" if info["managedByLab"] else ""
        console.print(f"{service:14} {mark:8} {config.safe_url(str(info['url']))}{owner}")
    return 0 if healthy else 1


def up(args: argparse.Namespace, settings: Settings) -> int:
    only = (*args.only, *args.extra)
    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    if args.rabbitmq_nodes > 1 and "rabbitmq" in only:
        cluster = stack.up_cluster(settings, args.rabbitmq_nodes, say)
        settings = settings.with_overrides(amqp_url=cluster.url)
        console.print(f"LAB_AMQP_URL={cluster.url}", highlight=False, soft_wrap=True)
    stack.up(settings, only, say=say)
    if "prometheus" in args.extra:
        console.print(
            f"prometheus: {settings.prometheus_url} (scraping "
            f"{config.safe_url(settings.api_url)}/metrics)",
            highlight=False,
        )
    return 0
