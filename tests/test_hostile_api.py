"""Hostile HTTP: every request gets a 4xx naming the problem, never a 5xx, and changes nothing.

The requests of `lab.measure.hostile` (those that used to be answered wrong: 500s, accepted
nonsense, cut streams) go to a real API process with a real worker behind it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab.client import LabClient
from lab.config import Settings
from lab.measure.hostile import DEEP, send_probes
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores

from .conftest import cleanup, make_settings
from .helpers import wait_until
from .test_api_validation import snapshot as full_snapshot


def snapshot(stores: Stores) -> dict[str, object]:
    """Every key of the lab but the workers' heartbeats, which change by themselves."""
    beats = stores.keys.worker("")
    return {k: v for k, v in full_snapshot(stores).items() if not k.startswith(beats)}


@pytest.fixture
def api(lab: Supervisor, settings: Settings, stores: Stores) -> str:
    """The API with its worker announced: a worker registers itself as it starts, and the
    tests' snapshots must not take that for a change a request made."""
    lab.up(workers=1, scheduler=False)
    wait_until(lambda: stores.heartbeats.live(), 30, "the worker to announce itself")
    return settings.api_url


def test_hostile_requests_get_a_named_4xx_and_change_nothing(api: str, stores: Stores) -> None:
    before = snapshot(stores)
    answers = send_probes(api)
    assert len(answers) > 60
    wrong = [(a.probe.method, a.probe.path[:60], a.probe.expected, a.status) for a in answers]
    assert [w for w, a in zip(wrong, answers, strict=True) if not a.right] == []
    assert snapshot(stores) == before


def test_a_too_deep_payload_is_refused_before_it_is_stored(api: str, stores: Stores) -> None:
    client = LabClient(api)
    for _ in range(2):
        with pytest.raises(Exception, match="nest"):
            client.create_job("index", DEEP["payload"])
    assert client.jobs()["jobs"] == []
    created = client.create_job("index", {"data": {"fine": [1, 2, 3]}})
    assert client.job(created["id"])["payload"]["data"] == {"fine": [1, 2, 3]}
    client.close()


def test_a_websocket_from_another_origin_is_refused(api: str) -> None:
    host, port = api.removeprefix("http://").split(":")
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    for origin, expected in (("https://evil.example", b" 403"), (api, b" 101")):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(
                f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n".encode()
            )
            assert expected in s.recv(200).split(b"\r\n")[0], origin


@pytest.fixture
def locked(es_url: str, tmp_path: Path) -> Iterator[tuple[Supervisor, Settings]]:
    """A lab whose API needs a token and serves at most two live streams (all of them to one
    client: the per-client share has a test of its own)."""
    settings = make_settings(
        es_url, tmp_path, api_token="s3cret-token", max_streams=2, stream_share=1.0
    )
    supervisor = Supervisor(settings, log_dir=tmp_path / "logs")
    supervisor.start("api")
    yield supervisor, settings
    supervisor.down(grace_s=10)
    cleanup(settings)


def test_with_a_token_every_route_but_healthz_needs_it(locked: tuple[Supervisor, Settings]) -> None:
    supervisor, settings = locked
    api = settings.api_url
    supervisor.wait_api()  # /healthz needs no token
    for path in ("/status", "/admin", "/jobs", "/openapi.json"):
        refused = httpx.get(f"{api}{path}")
        assert refused.status_code == 401 and "token" in refused.json()["error"], path
        assert (
            httpx.get(f"{api}{path}", headers={"Authorization": "Bearer nope"}).status_code == 401
        )
    assert httpx.get(f"{api}/status?token=s3cret-token").status_code == 200
    client = LabClient.of(settings)
    assert client.status()["state"] == "idle"
    client.close()


def test_live_streams_are_capped_without_starving_status(
    locked: tuple[Supervisor, Settings],
) -> None:
    supervisor, settings = locked
    supervisor.wait_api()
    auth = {"Authorization": "Bearer s3cret-token"}
    with httpx.Client(base_url=settings.api_url, headers=auth, timeout=10) as http:
        streams = [http.stream("GET", "/events") for _ in range(2)]
        opened = [s.__enter__() for s in streams]
        try:
            assert [r.status_code for r in opened] == [200, 200]
            full = http.get("/events")
            assert full.status_code == 503 and "LAB_MAX_STREAMS" in full.json()["error"]
            assert http.get("/status").status_code == 200
        finally:
            for s in streams:
                s.__exit__(None, None, None)

        # A closed stream gives its slot back.
        def reopened() -> bool:
            with http.stream("GET", "/events") as again:
                return again.status_code == 200

        from .helpers import wait_until

        wait_until(reopened, 10, "a stream slot to be free again")
