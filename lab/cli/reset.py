"""`lab reset --yes`: delete everything this lab made (its Redis keys, queues and index) so it
starts empty: after a change of `LAB_QUEUE_TYPE` or of the retry ladder (RabbitMQ refuses to
declare a queue again with other arguments: `PRECONDITION_FAILED`), or to throw runs away."""

from __future__ import annotations

import argparse
from typing import Any

from lab import config
from lab.cli.terminal import bad_input, say
from lab.config import Settings


def register(sub: Any) -> None:
    reset = sub.add_parser(
        "reset", help="delete this lab's Redis keys, queues and index (its runs, jobs, letters)"
    )
    reset.add_argument("--yes", action="store_true", help="needed: nothing of it can be undone")
    reset.add_argument(
        "--force", action="store_true", help="even while workers or a scheduler of it are alive"
    )
    reset.set_defaults(handler=cmd_reset)


def cmd_reset(args: argparse.Namespace, settings: Settings) -> int:
    from lab.ops.reset import reset
    from lab.runtime.stores import Stores

    where = (
        f"prefix {settings.prefix}, queue {settings.queue}, index {settings.es_index} "
        f"at {config.safe_url(settings.redis_url)}"
    )
    if not args.yes:
        return bad_input(f"reset deletes every run, job and dead letter of {where}: add --yes")
    live = Stores.of(settings).heartbeats.live()
    if live and not args.force:
        return bad_input(
            f"{len(live)} process(es) of this lab are alive ({', '.join(live[:3])}); stop them "
            "first (Ctrl-C on lab up) or add --force"
        )
    reset(settings)
    say("lab: reset {}", where)
    return 0
