"""The shared /status snapshot: one read serves every concurrent caller; its age is stated."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis

from lab.api.access import LOOPBACK, Policy
from lab.api.snapshot import Snapshot, StatusFastPath, StatusSnapshot


def test_concurrent_callers_share_one_read_and_a_stale_snapshot_is_read_again() -> None:
    async def scenario() -> tuple[int, int, list[dict]]:
        count = {"n": 0}

        async def read() -> dict:
            count["n"] += 1
            await asyncio.sleep(0.02)  # a Redis round trip
            return {"processed": count["n"]}

        snap = StatusSnapshot(read, max_age_s=0.05)
        first = await asyncio.gather(*(snap.get() for _ in range(200)))
        reads_after_burst = snap.reads
        await asyncio.sleep(0.06)
        again = await asyncio.gather(*(snap.get() for _ in range(50)))
        return reads_after_burst, snap.reads, [s.data for s in first + again]

    burst, total, seen = asyncio.run(scenario())
    assert burst == 1 and total == 2
    assert {d["processed"] for d in seen} == {1, 2}


def test_a_failed_read_reaches_every_waiting_caller_and_the_next_call_tries_again() -> None:
    async def scenario() -> list[object]:
        calls = {"n": 0}

        async def read() -> dict:
            calls["n"] += 1
            await asyncio.sleep(0.01)
            if calls["n"] == 1:
                raise ConnectionError("redis away")
            return {"ok": True}

        snap = StatusSnapshot(read, max_age_s=1.0)
        failed = await asyncio.gather(*(snap.get() for _ in range(5)), return_exceptions=True)
        later = await snap.get()
        return [*failed, later.data]

    *failed, later = asyncio.run(scenario())
    assert all(isinstance(f, ConnectionError) for f in failed) and later == {"ok": True}


@pytest.mark.parametrize("age_s", [0.0, 0.0123, 1.5])
def test_each_answer_is_the_snapshot_plus_its_age(age_s: float) -> None:
    snap = Snapshot({"a": 1, "b": [1, 2]}, b'{"a":1,"b":[1,2]}', taken=100.0)
    assert json.loads(snap.answer(now=100.0 + age_s)) == {
        "a": 1,
        "b": [1, 2],
        "ageMs": int(age_s * 1000),
    }


def test_the_scripts_key_templates_are_keys_py_names() -> None:
    """Per-second and per-bucket keys are named in keys.py; the Lua scripts only fill in the
    run and the second (`string.format` reads %s and %d as Python's % does)."""
    from lab.runtime.keys import Keys

    k = Keys("{lab}")
    assert k.run_processed_in("r1") % 17 == k.run_processed_in("r1", 17) == "{lab}:run:r1:rate:p:17"
    assert k.run_released_in("%s") % ("r1", 17) == k.run_released_in("r1", 17)
    assert k.history() % 1700000000 == k.history(1700000000) == "{lab}:history:1700000000"
    assert k.run_keys("r1")[3] == k.run_processed_in("r1")


class _App:
    """Stands in for the FastAPI app behind the fast path: records what it was handed."""

    def __init__(self, snapshot: StatusSnapshot):
        self.state = type("State", (), {"snapshot": snapshot})()
        self.handed: list[str] = []

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        self.handed.append(scope["path"])


def _call(path: str, headers: list[tuple[bytes, bytes]], token: str = "") -> tuple[list, list]:
    async def read() -> dict:
        return {"processed": 3}

    app = _App(StatusSnapshot(read, 1.0))
    fast = StatusFastPath(app, Policy(LOOPBACK, frozenset(), token))
    sent: list = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "GET", "headers": headers}
    asyncio.run(fast(scope, None, send))
    return app.handed, sent


def test_the_fast_path_answers_only_plain_permitted_gets_of_status() -> None:
    """Refused requests, requests with a body and other paths go to the app, whose middleware
    names the problem; a permitted one is answered here with the snapshot and its age."""
    host = (b"host", b"127.0.0.1:8000")
    handed, sent = _call("/status", [host])
    assert handed == [] and sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["processed"] == 3 and "ageMs" in sent[1]["body"].decode()
    assert _call("/status", [(b"host", b"evil.example")])[0] == ["/status"]
    assert _call("/status", [host, (b"content-length", b"9")])[0] == ["/status"]
    assert _call("/status", [host, (b"transfer-encoding", b"chunked")])[0] == ["/status"]
    assert _call("/status", [host], token="secret")[0] == ["/status"]
    assert _call("/status", [host, (b"authorization", b"Bearer secret")], "secret")[0] == []
    assert _call("/runs", [host])[0] == ["/runs"]


def test_a_read_with_no_answer_is_a_named_timeout_within_the_deadline_for_every_caller() -> None:
    async def scenario() -> tuple[list[object], float, int]:
        reads = {"n": 0}

        async def silent() -> dict:
            reads["n"] += 1
            await asyncio.sleep(60)  # a Redis that accepts and never answers
            return {}

        snap = StatusSnapshot(silent, max_age_s=0.05, deadline_s=0.2)
        began = asyncio.get_running_loop().time()
        first = await asyncio.gather(*(snap.get() for _ in range(5)), return_exceptions=True)
        again = await asyncio.gather(snap.get(), return_exceptions=True)  # the route, right after
        return [*first, *again], asyncio.get_running_loop().time() - began, reads["n"]

    answers, took, reads = asyncio.run(scenario())
    assert all(isinstance(a, redis.TimeoutError) for a in answers), answers
    assert reads == 1 and took < 1.0  # one read for all six callers; the deadline, not 60 s


def test_healthz_answers_within_its_deadline_and_calls_a_slow_service_slow_not_down() -> None:
    import threading

    from lab.api.health import Health

    release = threading.Event()
    calls = {"silent": 0}

    def silent() -> None:
        calls["silent"] += 1
        release.wait(30)
        raise ConnectionError("gone")

    slow = threading.Event()

    def busy() -> None:
        if slow.is_set():
            release.wait(30)

    health = Health({"silent": silent, "busy": busy}, deadline_s=0.2)

    async def scenario() -> tuple[list[dict[str, str]], float]:
        began = asyncio.get_running_loop().time()
        first = await asyncio.gather(*(health.report() for _ in range(5)))
        slow.set()  # busy answered before; now it takes longer than the deadline
        later = await health.report()
        return [*first, later], asyncio.get_running_loop().time() - began

    reports, took = asyncio.run(scenario())
    release.set()
    health.close()
    assert took < 1.0 and calls["silent"] == 1  # one check in flight, shared by every caller
    assert all(r["silent"].startswith("no answer") for r in reports)
    assert all(r["busy"] == "ok" for r in reports)  # answered recently: slow, not down
