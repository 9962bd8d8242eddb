"""Bulk actions on real services: a dry run counts and changes nothing, a bulk retry works
through failed jobs call by call and each runs once more, repeating it changes nothing, bulk
cancel and delete act on what the filter matches only."""

from __future__ import annotations

import httpx

from lab.client import LabClient
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.store import Store

from .helpers import wait_until


def states(client: LabClient, ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for job_id in ids:
        state = client.job(job_id)["state"]
        out[state] = out.get(state, 0) + 1
    return out


def test_bulk_retry_cancel_and_delete_act_on_what_matches_once(
    lab: Supervisor, settings: Settings, client: LabClient, store: Store
) -> None:
    lab.up(workers=1)
    failing = [client.create_job("index", {"failAttempts": 1}, attempts=1)["id"] for _ in range(12)]
    wait_until(lambda: states(client, failing) == {"failed": 12}, 60, "twelve failed jobs",
               lambda: str(states(client, failing)))  # fmt: skip

    # Single jobs held in their queue (paused): agent jobs to cancel in bulk, and the retries.
    client.queue_action(f"{settings.queue}.single", "pause")
    wait_until(lambda: client.status()["workers"][0]["paused"], 15, "the pause to apply")
    held = [client.create_job("agent", {"durationSeconds": 1})["id"] for _ in range(4)]

    dry = client.bulk("retry", dry_run=True, state="failed")
    assert (dry["matched"], dry["eligible"], dry["changed"]) == (12, 12, 0)
    assert states(client, failing) == {"failed": 12}  # a dry run changes nothing

    # Five a call: three calls, then nothing is left and a fourth changes nothing.
    answers = [client.bulk("retry", limit=5, state="failed") for _ in range(4)]
    assert [a["changed"] for a in answers] == [5, 5, 2, 0], answers
    assert [a["remaining"] for a in answers] == [7, 2, 0, 0], answers
    assert states(client, failing) == {"queued": 12}

    cancelled = client.bulk("cancel", state="queued", kind="agent")
    assert (cancelled["matched"], cancelled["changed"]) == (4, 4), cancelled
    assert states(client, held) == {"cancelled": 4}
    assert client.bulk("cancel", state="queued", kind="agent")["matched"] == 0

    client.queue_action(f"{settings.queue}.single", "resume")
    wait_until(lambda: states(client, failing) == {"completed": 12}, 60, "the retried jobs",
               lambda: str(states(client, failing)))  # fmt: skip
    assert {client.job(j)["attempt"] for j in failing} == {2}  # each ran exactly once more
    assert states(client, held) == {"cancelled": 4}  # their messages came and were skipped

    gone = client.bulk("delete", ids=failing[:3] + ["no-such-job"])
    assert (gone["matched"], gone["changed"]) == (3, 3), gone
    store.refresh()
    assert all(store.get(j) is None for j in failing[:3])
    assert store.get(failing[3]) is not None
    assert client.bulk("delete", ids=failing[:3])["matched"] == 0  # repeated: nothing to do


def test_bad_bulk_requests_are_named(lab: Supervisor, settings: Settings) -> None:
    lab.start("api")
    lab.wait_api()
    http = httpx.Client(base_url=settings.api_url, timeout=10)
    for body, field in [
        ({}, "action"),
        ({"action": "explode"}, "action"),
        ({"action": "retry", "filter": {"state": "lost"}}, "state"),
        ({"action": "retry", "filter": {"kind": "No Such"}}, "kind"),
        ({"action": "retry", "filter": {"ids": ["a:b"]}}, "ids"),
        ({"action": "retry", "filter": {"ids": ["x"] * 10_001}}, "ids"),
        ({"action": "retry", "filter": {"runId": "r1"}}, "runId"),
        ({"action": "retry", "limit": 0}, "limit"),
        ({"action": "retry", "dryRun": "yes"}, "dryRun"),
    ]:
        answer = http.post("/jobs/bulk", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.json()["error"], (body, answer.json())
