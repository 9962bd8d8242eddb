"""Bad input gets a 4xx with a JSON error naming the field, and changes nothing in Redis."""

from __future__ import annotations

import httpx
import pytest

from lab.config import Settings
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores


def snapshot(stores: Stores) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in stores.redis.scan_iter(stores.keys.pattern):
        kind = stores.redis.type(key)
        if kind == "stream":  # its entries: the search indexer's group reads it as it likes
            out[key] = stores.redis.xrange(key)
        else:
            out[key] = stores.redis.hgetall(key) if kind == "hash" else stores.redis.dump(key)
    return out


@pytest.fixture
def api(lab: Supervisor, settings: Settings) -> str:
    lab.start("api")
    lab.wait_api()
    return settings.api_url


BAD_BODIES = [
    ({}, "x"),
    ({"y": 60}, "x"),
    ({"x": 10}, "y"),
    ({"x": "10", "y": 60}, "x"),
    ({"x": 10, "y": "60"}, "y"),
    ({"x": -1, "y": 60}, "x"),
    ({"x": 0, "y": 60}, "x"),
    ({"x": 10, "y": 0}, "y"),
    ({"x": 10, "y": -5}, "y"),
    ({"x": 10_000_001, "y": 60}, "x"),
    ({"x": 10**30, "y": 60}, "x"),
    ({"x": 10, "y": 1e12}, "y"),
    ({"x": 1.5, "y": 60}, "x"),
    ({"x": True, "y": 60}, "x"),
    ({"x": None, "y": 60}, "x"),
    ({"x": 10, "y": 60, "z": 1}, "z"),
]


def test_bad_run_bodies_are_rejected_by_field(api: str, stores: Stores) -> None:
    before = snapshot(stores)
    for body, field in BAD_BODIES:
        response = httpx.post(f"{api}/run", json=body)
        assert response.status_code == 422, (body, response.text)
        answer = response.json()
        assert field in answer["fields"], (body, answer)
        assert field in answer["error"], (body, answer)
    for raw in (b"not json", b"", b"[1,2]", b'{"x": 10, "y":'):
        response = httpx.post(
            f"{api}/run", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (raw, response.text)
        assert response.json()["error"]
    assert snapshot(stores) == before


def test_conflicts_and_unknowns(api: str, stores: Stores) -> None:
    assert httpx.post(f"{api}/stop").status_code == 409
    first = httpx.post(f"{api}/run", json={"x": 5, "y": 1})
    assert first.status_code == 201
    run_id = first.json()["runId"]
    before = snapshot(stores)
    second = httpx.post(f"{api}/run", json={"x": 5, "y": 1})
    assert second.status_code == 409 and second.json()["runId"] == run_id
    assert snapshot(stores) == before
    assert httpx.get(f"{api}/runs/nosuchrun").status_code == 404
    assert httpx.get(f"{api}/runs", params={"limit": 0}).status_code == 422
    bad_resume = httpx.get(f"{api}/events", headers={"Last-Event-ID": "yesterday"})
    assert bad_resume.status_code == 422 and "Last-Event-ID" in bad_resume.json()["error"]
    stopped = httpx.post(f"{api}/stop")
    assert stopped.status_code == 200 and stopped.json()["stopped"] == run_id
    assert httpx.post(f"{api}/run", json={"x": 5, "y": 1}).status_code == 201


def test_status_and_docs_answer(api: str) -> None:
    status = httpx.get(f"{api}/status").json()
    for field in (
        "xTotal",
        "yMinutes",
        "enqueued",
        "processed",
        "running",
        "runId",
        "failed",
        "rates",
        "workers",
    ):
        assert field in status
    assert httpx.get(f"{api}/docs").status_code == 200
    assert "/run" in httpx.get(f"{api}/openapi.json").json()["paths"]
    health = httpx.get(f"{api}/healthz").json()
    assert health["status"] == "ok"
    assert health["services"] == {"redis": "ok", "rabbitmq": "ok", "elasticsearch": "ok"}
