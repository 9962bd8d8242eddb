"""A kind owns its failure policy and describes its payload (stub channel, no services):
a permanent failure is dead-lettered at once, a kind's own attempts and retry steps are used,
a retry step the lab's ladder lacks is refused when the kind loads, and the declared fields
check payloads and describe themselves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from lab.runtime import handlers
from lab.runtime.handlers import Handler, HandlerBroken, from_module, handler_for
from lab.runtime.messages import Job, run_job
from lab.runtime.payload import Field, PayloadError, PermanentError
from tests.unit.stub_worker import SETTINGS, deliver, settle, worker


class GoneForGood(PermanentError):
    pass


def failing(permanent: bool) -> Any:
    def handle(job: Job) -> dict[str, Any]:
        if permanent:
            raise GoneForGood(f"record {job.seq} no longer exists upstream")
        raise RuntimeError("upstream busy")

    return handle


@pytest.fixture
def kinds() -> Iterator[None]:
    """Kinds of this test's own, registered in the process and removed after."""
    yield
    for kind in ("gone", "counted", "patient"):
        handlers.forget(kind)


def body(kind: str, seq: int, attempt: int = 1, **payload: object) -> bytes:
    j = run_job("run1", seq, kind, payload)
    return Job(**{**j.__dict__, "attempt": attempt}).to_json()


def test_a_permanent_failure_is_dead_lettered_at_once(kinds: None) -> None:
    handlers.register(Handler("gone", failing(permanent=True)))
    w, session, state, _ = worker()
    deliver(w, session, body("gone", 1))
    settle(w, session)
    (dead,) = session.channel.to("unit.jobs.dead")
    assert (
        dead.headers["x-lab-reason"] == "permanent"
        and "no longer exists" in dead.headers["x-lab-error"]
    )
    assert not [p for p in session.channel.published if ".retry." in p.queue]
    assert state.failed == {"run1": {1}} and session.channel.acks == [(1, True)]


def test_a_payload_the_kind_cannot_run_is_permanent_too(kinds: None) -> None:
    fields = (Field("n", "integer", "a count", low=0, high=10),)
    handlers.register(Handler("counted", lambda job: {}, fields=fields))
    w, session, _, store = worker()
    deliver(w, session, body("counted", 1, n=11), body("counted", 2, n=3))
    settle(w, session)
    (dead,) = session.channel.to("unit.jobs.dead")
    assert (
        dead.headers["x-lab-reason"] == "permanent" and "payload.n" in dead.headers["x-lab-error"]
    )
    assert list(store.docs) == ["run1-2"]


def test_a_kind_with_its_own_attempts_and_steps(kinds: None) -> None:
    # The lab's ladder is 200, 400, 800 ms and 3 attempts; this kind takes 5 attempts, waiting
    # 800 ms every time.
    handlers.register(
        Handler("patient", failing(permanent=False), attempts=5, retry_delays_ms=(800,))
    )
    w, session, _, _ = worker()
    deliver(w, session, body("patient", 1, attempt=3))  # past the lab's 3: still retried
    settle(w, session)
    (retry,) = session.channel.to("unit.jobs.retry.800")
    assert json.loads(retry.body)["attempt"] == 4
    deliver(w, session, body("patient", 2, attempt=5))
    settle(w, session)
    assert session.channel.to("unit.jobs.dead")[0].headers["x-lab-reason"] == "exhausted"


def module(**declared: Any) -> ModuleType:
    m = ModuleType("workers.test_kind", "A kind for a test.\n\nMore text.")
    setattr(m, "handle", lambda job: {})  # noqa: B010 - a module made in the test
    for name, value in declared.items():
        setattr(m, name, value)
    return m


def test_a_retry_step_the_ladder_lacks_is_refused_when_the_kind_loads() -> None:
    handlers.use_ladder(SETTINGS.retry_ladder)
    with pytest.raises(ValueError, match="RETRY_DELAYS_MS .* 1500"):
        from_module("odd", module(RETRY_DELAYS_MS=(400, 1500)))
    with pytest.raises(ValueError, match="ATTEMPTS"):
        from_module("odd", module(ATTEMPTS=0))
    assert from_module("fine", module(RETRY_DELAYS_MS=(200, 800))).ladder((1,)) == (200, 800)


def test_a_broken_declaration_fails_the_kinds_jobs_not_the_worker() -> None:
    broken = handlers.broken("odd", ValueError("RETRY_DELAYS_MS names 1500"))
    with pytest.raises(HandlerBroken, match="1500"):
        broken(run_job("r", 1, "odd"))


def test_declared_fields_check_payloads_and_describe_themselves() -> None:
    sleep = handler_for("sleep")
    assert sleep.describe() == {
        "kind": "sleep",
        "summary": sleep.doc.strip().splitlines()[0],
        "batchable": False,
        "attempts": None,
        "retryDelaysMs": None,
        "fields": [{"name": "seconds", "type": "number", "help": "how long the job waits",
                    "default": 1.0, "min": 0, "max": 60}],
    }  # fmt: skip
    with pytest.raises(PayloadError) as exc:
        sleep.check({"seconds": 61})
    assert exc.value.field == "seconds" and "from 0 to 60" in str(exc.value)
    with pytest.raises(PayloadError, match="not a setting"):
        sleep.check({"sconds": 1})
    # Every kind shipped declares its fields, each with help.
    for kind in handlers.known_kinds():
        described = handler_for(kind).describe()
        assert described["fields"] and all(f["help"] for f in described["fields"]), kind
