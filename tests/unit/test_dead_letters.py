"""What a dead letter says about itself, whatever it holds, and what its replay publishes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from lab.config import Settings
from lab.runtime.broker import Topology
from lab.runtime.deadletters import (
    DeadLetters,
    describe,
    fresh_attempt,
    letter_id,
    replay_headers,
)
from lab.runtime.messages import run_job

HEADERS = {
    "x-lab-reason": "exhausted",
    "x-lab-error": "injected failure",
    "x-lab-queue": "lab.jobs",
    "x-lab-attempt": 3,
    "x-lab-first-failed-ms": 1_700_000_000_000,
    "x-lab-last-failed-ms": 1_700_000_005_000,
}


def test_a_workers_letter_names_reason_queue_attempts_and_times() -> None:
    body = run_job("r1", 4).to_json()
    letter = describe(body, HEADERS)
    assert (letter.reason, letter.queue, letter.attempts) == ("exhausted", "lab.jobs", 3)
    assert (letter.jobId, letter.runId, letter.kind) == ("r1-4", "r1", "index")
    assert letter.firstFailedAt == "2023-11-14T22:13:20.000+00:00"
    assert letter.firstFailedAt < letter.lastFailedAt and letter.bytes == len(body)
    assert letter.id == describe(body, dict(HEADERS)).id  # stable across reads


def test_a_letter_the_broker_wrote_is_named_from_x_death() -> None:
    headers = {"x-death": [{"reason": "delivery_limit", "queue": "lab.jobs.long", "count": 1}]}
    letter = describe(b"\xff\xfe not json", headers)
    assert (letter.reason, letter.queue, letter.jobId, letter.attempts) == (
        "delivery-limit", "lab.jobs.long", None, 0,
    )  # fmt: skip
    assert letter.preview == "\ufffd\ufffd not json"


@given(st.binary(max_size=2000), st.dictionaries(st.text(max_size=20), st.integers() | st.text()))
def test_any_body_and_headers_describe_without_raising(body: bytes, headers: dict) -> None:
    letter = describe(body, headers)
    assert len(letter.id) == 16 and len(letter.preview) <= 300
    json.dumps(letter.view())


def test_a_replay_is_the_same_job_at_attempt_one_keeping_its_first_failure() -> None:
    job = run_job("r1", 4)
    failed = json.loads(job.to_json()) | {"attempt": 3}
    fresh = json.loads(fresh_attempt(json.dumps(failed).encode()))
    assert fresh == json.loads(job.to_json()) and fresh["attempt"] == 1
    assert fresh_attempt(b"{") is None
    assert replay_headers(HEADERS) == {
        "x-lab-replays": 1,
        "x-lab-first-failed-ms": 1_700_000_000_000,
    }
    assert replay_headers({"x-lab-replays": 2})["x-lab-replays"] == 3


def test_a_letter_dying_again_gets_a_new_id() -> None:
    body = run_job("r1", 4).to_json()
    assert letter_id(body, HEADERS) != letter_id(body, {**HEADERS, "x-lab-last-failed-ms": 1})


def test_a_replay_goes_only_to_a_queue_of_the_lab() -> None:
    dead = DeadLetters("amqp://127.0.0.1:9", Topology.of(Settings(queue="lab.jobs")))
    body = run_job("r1", 4).to_json()
    assert (
        dead.target(describe(body, {**HEADERS, "x-lab-queue": "lab.jobs.long"})) == "lab.jobs.long"
    )
    # A header naming someone else's queue is not followed: the kind's own queue is used.
    assert dead.target(describe(body, {**HEADERS, "x-lab-queue": "billing"})) == "lab.jobs"
