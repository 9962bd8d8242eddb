"""Live events: SSE and WebSocket push progress; a reconnecting client catches up exactly."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
from websockets.sync.client import connect as ws_connect

from lab.client import LabClient, parse_sse
from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores

from .helpers import settle


def sse_events(response: httpx.Response) -> Iterator[dict]:
    return parse_sse(response.iter_lines())


def collect(url: str, until, timeout_s: float, headers: dict | None = None) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout_s
    with httpx.stream("GET", url, headers=headers or {}, timeout=timeout_s) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in sse_events(response):
            got.append(event)
            if until(got) or time.monotonic() > deadline:
                break
    return got


def test_sse_snapshot_progress_heartbeat_and_resume(
    lab: Supervisor, client: LabClient, stores: Stores, settings: Settings
) -> None:
    lab.up(workers=1)
    url = f"{settings.api_url}/events"
    first = collect(url, lambda got: any("comment" in e for e in got), 10)
    assert first[0]["event"] == "status" and first[0]["data"]["state"] == "idle"
    assert any(e.get("comment") == "heartbeat" for e in first)  # LAB_SSE_HEARTBEAT_S = 1
    resume_from = first[0]["id"]

    run_id = client.run(400, 12_000)["runId"]  # 200/s: about 2 s
    settle(stores, run_id, 30)

    def finished(got: list[dict]) -> bool:
        return any(e.get("data", {}).get("state") == "completed" for e in got)

    missed = collect(url, finished, 15, headers={"Last-Event-ID": resume_from})
    events = [e for e in missed if "data" in e]
    assert all(e["event"] == "run" and e["data"]["runId"] == run_id for e in events)
    processed = [e["data"]["processed"] for e in events]
    assert processed == sorted(processed) and processed[-1] == 400
    assert events[0]["data"]["state"] == "running" and events[-1]["data"]["state"] == "completed"
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))

    # Resuming from the middle gives exactly the events after it, nothing before, nothing lost.
    middle = ids[len(ids) // 2]
    rest = collect(url, finished, 15, headers={"Last-Event-ID": middle})
    assert [e["id"] for e in rest if "data" in e] == ids[len(ids) // 2 + 1 :]


def test_websocket_sends_the_same_events(
    lab: Supervisor, client: LabClient, settings: Settings
) -> None:
    lab.up(workers=1)
    ws_url = settings.api_url.replace("http://", "ws://") + "/ws"
    with ws_connect(ws_url, open_timeout=10) as ws:
        snapshot = json.loads(ws.recv(timeout=10))
        assert snapshot["type"] == "status"
        run_id = client.run(100, 60_000)["runId"]
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "run":
                seen.append(message["data"])
                if message["data"]["state"] == "completed":
                    break
        assert seen and seen[-1]["runId"] == run_id and seen[-1]["processed"] == 100
    with ws_connect(ws_url + "?lastEventId=bogus", open_timeout=10) as ws:
        answer = json.loads(ws.recv(timeout=10))
        assert answer["type"] == "error" and "lastEventId" in answer["error"]


def test_many_live_clients_share_one_redis_reader_and_all_see_the_run(
    lab: Supervisor, settings: Settings, stores: Stores
) -> None:
    """50 SSE clients on one API process: a handful of Redis connections, not 50, and every
    client sees the run's last event."""
    import threading

    lab.up(workers=1)
    clients = 50
    last: dict[int, dict] = {}
    opened = threading.Barrier(clients + 1, timeout=60)

    def follow(n: int) -> None:
        own = LabClient.of(settings)
        try:
            for event in own.events():
                if event.get("event") == "status":
                    opened.wait()
                if event.get("event") == "run":
                    last[n] = event["data"]
                    if event["data"]["state"] == "completed":
                        return
        finally:
            own.close()

    threads = [threading.Thread(target=follow, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    opened.wait()
    pid = lab.pid("api")
    mine = [c for c in stores.redis.client_list() if c.get("name") == f"lab-api-{pid}"]
    assert 1 <= len(mine) <= 10, [c.get("cmd") for c in mine]  # 8 short + the hub's reader
    run_id = LabClient.of(settings).run(3000, 600_000)["runId"]
    settle(stores, run_id, 60)
    for t in threads:
        t.join(30)
    assert len(last) == clients and all(e["processed"] == 3000 for e in last.values())


def test_a_malformed_stream_entry_is_skipped_and_the_stream_goes_on(
    lab: Supervisor, client: LabClient, stores: Stores, settings: Settings
) -> None:
    """Whatever lands on the event stream (a buggy producer, a hand-typed XADD), clients keep
    receiving what follows it: the process's one reader must not die on an entry."""
    lab.up(workers=1)
    got: list[dict] = []

    def until(events: list[dict]) -> bool:
        if any(e.get("event") == "status" for e in events) and len(events) == 1:
            # The stream is open: now the hostile entries, then a real run.
            stores.redis.xadd(stores.keys.events, {"type": "run", "runId": "half-a-run"})
            stores.redis.xadd(stores.keys.events, {"type": "run", "startedAt": "not a number"})
            stores.redis.xadd(stores.keys.events, {"type": "job\ndata: injected", "jobId": "x"})
            client.run(5, 6000)
        return any(e.get("event") == "run" and e["data"]["state"] == "completed" for e in events)

    got = collect(f"{settings.api_url}/events", until, 60)
    finished = [e for e in got if e.get("event") == "run" and e["data"]["state"] == "completed"]
    assert finished and finished[-1]["data"]["processed"] == 5
    invalid = [e for e in got if e.get("event") == "invalid"]
    assert len(invalid) == 3 and all("unreadable entry" in e["data"]["error"] for e in invalid)
    assert lab.children["api"].running
