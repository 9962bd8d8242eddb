"""`lab job …`: single jobs from the command line, through the same API the admin page uses."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lab.cli import grammar
from lab.cli.arguments import json_object, kind_name, moment, positive_float, positive_int
from lab.cli.terminal import bad_input, listing, out, plain, say, shown
from lab.client import LabClient
from lab.config import Settings
from lab.runtime.jobs import STATES


def register(sub: Any) -> None:
    actions = grammar.noun(
        sub, "job", "single jobs: add, list, show, watch, cancel, retry, delete", handler=cmd_job
    )
    add = actions.add_parser("add", help="queue one job")
    add.add_argument("kind", type=kind_name, help="a kind of workers/, e.g. agent (lab kind list)")
    add.add_argument(
        "--payload",
        type=json_object,
        default={},
        help="JSON object (lab kind show KIND: its fields)",
    )
    add.add_argument(
        "--attempts", type=positive_int, help="tries before it fails for good (default: the kind's)"
    )
    add.add_argument(
        "--priority", choices=["low", "normal", "high"], default="normal",
        help="waiting single jobs start highest first",
    )  # fmt: skip
    add.add_argument(
        "--target", choices=["lab", "bullmq"],
        help="who runs it: lab's workers (the default) or BullMQ's (lab up --target bullmq)",
    )  # fmt: skip
    when = add.add_mutually_exclusive_group()
    when.add_argument("--delay", type=positive_float, metavar="SECONDS", help="run it then")
    when.add_argument("--at", type=moment, metavar="TIME", help="run it at (epoch ms or ISO 8601)")
    add.add_argument("--watch", action="store_true", help="follow it until it ends")
    ls = actions.add_parser("list", help="jobs, newest first")
    ls.add_argument("--state", choices=STATES, help="only jobs in this state")
    ls.add_argument("--kind", type=kind_name, help="only jobs of this kind")
    ls.add_argument("--run-id", help="the jobs of one run (from Elasticsearch)")
    ls.add_argument("--q", help="find by id, kind, payload, error or log text")
    ls.add_argument(
        "--from", dest="since", type=moment, metavar="TIME",
        help="created at or after (epoch ms or ISO 8601)",
    )  # fmt: skip
    ls.add_argument("--to", dest="until", type=moment, metavar="TIME", help="created at or before")
    ls.add_argument("--limit", type=positive_int, default=20, help="at most this many jobs")
    ls.add_argument("--json", action="store_true", help="the API's answer as JSON")
    for name, text in [
        ("show", "one job with its log"),
        ("watch", "follow a job's steps until it ends"),
        ("cancel", "cancel a queued or running job"),
        ("retry", "queue a failed or cancelled job again"),
        ("delete", "remove a job's record"),
    ]:
        actions.add_parser(name, help=text).add_argument("id", help="a job id (from lab job list)")
    bulk = actions.add_parser(
        "bulk", help="retry, cancel or delete every job a filter matches (paced, in calls)"
    )
    bulk.add_argument(
        "bulk_action", choices=["retry", "cancel", "delete"], metavar="{retry,cancel,delete}",
        help="what to do to every job the filter matches",
    )  # fmt: skip
    bulk.add_argument("--state", choices=STATES, help="jobs in this state")
    bulk.add_argument("--kind", type=kind_name, help="jobs of this kind")
    bulk.add_argument("--id", dest="ids", action="append", metavar="ID", help="repeatable")
    bulk.add_argument("--q", help="every job this search finds")
    bulk.add_argument("--dry-run", action="store_true", help="count, change nothing")
    bulk.add_argument("--yes", action="store_true", help="act on every job when no filter is given")
    prune = actions.add_parser(
        "prune", help="delete jobs that ended long ago, with their documents"
    )
    prune.add_argument(
        "--older-than", type=float, metavar="SECONDS", help="default: LAB_JOB_RETENTION_S"
    )
    prune.add_argument("--yes", action="store_true", help="needed below the retention")


def cmd_job(args: argparse.Namespace, settings: Settings) -> int:
    client = LabClient.of(settings)
    if args.action == "add":
        job = client.create_job(
            args.kind, args.payload, args.attempts, args.delay, args.at, args.priority, args.target
        )
        waits = f", waits until {job['runAt']}" if job.get("runAt") else ""
        out.print(shown(f"{job['id']} {job['state']} ({job['priority']} priority{waits})"))
        return watch(client, job["id"]) if args.watch else 0
    if args.action == "list":
        page = client.jobs(
            state=args.state, kind=args.kind, runId=args.run_id, limit=args.limit, q=args.q,
            since=args.since, until=args.until,
        )  # fmt: skip
        rows = (
            (j["id"], j["kind"], j["state"], f"{j['progress']}%", j.get("step") or "",
             str(j["attempt"]), j.get("error") or "")
            for j in page["jobs"]
        )  # fmt: skip
        columns = ("id", "kind", "state", "progress", "step", "attempt", "error")
        return listing(args.json, page, "jobs", columns, rows)
    if args.action == "show":
        print(json.dumps(client.job(args.id), indent=2))  # JSON escapes every control character
        return 0
    if args.action == "watch":
        return watch(client, args.id)
    if args.action == "bulk":
        return bulk(client, args)
    if args.action == "prune":
        below = args.older_than is not None and args.older_than < settings.job_retention_s
        if below and not args.yes:
            return bad_input(
                f"--older-than {args.older_than:g} is below the retention "
                f"(LAB_JOB_RETENTION_S={settings.job_retention_s:g}): add --yes to prune that much"
            )
        answer = client.prune_jobs(args.older_than)
        out.print(shown(f"pruned {answer['pruned']} jobs (documents: {answer['documents']})"))
        return 0
    action = {"cancel": client.cancel_job, "retry": client.retry_job, "delete": client.delete_job}
    answer = action[args.action](args.id)
    out.print(shown(f"{args.id} {answer.get('state', 'deleted')}"))
    return 0


def watch(client: LabClient, job_id: str) -> int:
    """Print each event of the job until it ends; exit 0 only when it completed."""
    last: dict[str, Any] = {}
    for event in client.follow_job(job_id):
        if "data" not in event:
            continue
        last = event["data"]
        message = last.get("message") or ""
        line = f"{plain(last.get('state')):>9} {plain(last.get('progress')):>3}%  {plain(message)}"
        out.print(shown(line), highlight=False)
    return 0 if last.get("state") == "completed" else 1


def bulk(client: LabClient, args: argparse.Namespace) -> int:
    """Call `POST /jobs/bulk` until nothing eligible is left, showing each call's counts."""
    filters = {"state": args.state, "kind": args.kind, "ids": args.ids, "q": args.q}
    every = all(v is None for v in filters.values())
    if every and not args.dry_run and not args.yes:
        return bad_input(
            f"no filter: this would {args.bulk_action} every job; give --state, --kind, --id "
            "or --q, or add --yes to mean every job"
        )
    changed, unchanged = 0, {}  # type: tuple[int, dict[str, int]]
    while True:
        answer = client.bulk(args.bulk_action, dry_run=args.dry_run, every=every, **filters)
        if args.dry_run:
            say("{} matched; {} would change {}", answer["matched"], args.bulk_action,
                answer["eligible"], to=out)  # fmt: skip
            return 0
        changed += answer["changed"]
        for why, n in answer["unchanged"].items():
            unchanged[why] = unchanged.get(why, 0) + n
        say("{} matched, {} changed, {} left", answer["matched"], changed, answer["remaining"],
            to=out)  # fmt: skip
        if not answer["remaining"] or not answer["changed"]:
            break
    if unchanged:
        out.print(shown("unchanged: " + ", ".join(f"{n} {why}" for why, n in unchanged.items())))
    return 0
