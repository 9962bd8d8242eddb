"""Whatever arrives, the boundaries answer with a named error and nothing else (pure, no services).

Hypothesis throws arbitrary bytes and JSON at message parsing and at every request model; the
hand-picked cases are the ones a hostile producer or user sent before these checks existed.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from lab.api.app import RunRequest
from lab.api.jobs import JobRequest
from lab.api.limits import json_depth
from lab.runtime.events import BadEventId, check_event_id
from lab.runtime.messages import MAX_DEPTH, Job, MalformedMessage, depth, is_id, parse, run_job

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
FIELDS = ("jobId", "runId", "seq", "kind", "attempt", "createdAt", "payload")


@given(st.binary(max_size=300))
def test_any_bytes_parse_to_a_job_or_a_named_error(raw: bytes) -> None:
    try:
        parse(raw)
    except MalformedMessage as exc:
        assert str(exc)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=7))
def test_any_json_object_parses_to_a_safe_job_or_a_named_error(body: dict) -> None:
    try:
        job = parse(json.dumps(body).encode())
    except MalformedMessage:
        return
    # What gets through is safe to put in a Redis key, a bitmap and a Lua number.
    assert is_id(job.jobId) and ":" not in job.jobId
    assert job.runId is None or (is_id(job.runId) and job.jobId == f"{job.runId}-{job.seq}")
    assert 1 <= job.attempt <= 10_000
    assert depth(job.payload) <= MAX_DEPTH


@given(st.integers(min_value=0, max_value=9_999_999), st.integers(min_value=1, max_value=10_000))
def test_valid_run_jobs_round_trip(seq: int, attempt: int) -> None:
    job = Job(**{**run_job("20261122T000000-abcd", seq).__dict__, "attempt": attempt})
    assert parse(job.to_json()) == job


HOSTILE_BODIES = [
    (b'{"jobId": "a", "kind": "index", "attempt": ' + b"9" * 5000 + b"}", "not JSON"),
    (b'{"jobId": "a", "kind": "index", "payload": ' + b"[" * 1000 + b"]" * 1000 + b"}", "nested"),
    (b"[" * 100_000, "nested too deeply|not JSON"),
    (
        json.dumps({"jobId": "active-1", "runId": "x:active", "seq": 1, "kind": "index"}).encode(),
        "runId",
    ),
    (json.dumps({"jobId": "a:log", "kind": "index"}).encode(), "jobId"),
    (json.dumps({"jobId": "a", "kind": "index", "attempt": 10**6}).encode(), "attempt"),
    (json.dumps({"jobId": "r-1", "runId": "r", "seq": 2**40, "kind": "index"}).encode(), "seq"),
    (b'{"jobId": "a", "kind": "index", "createdAt": NaN}', "createdAt"),
    (b'{"jobId": "a", "kind": "index", "createdAt": 1e999}', "createdAt"),
    (json.dumps({"jobId": "a", "kind": "Index!"}).encode(), "kind"),
    (b" " * (1024 * 1024 + 1), "bytes"),
]


@pytest.mark.parametrize(("raw", "names"), HOSTILE_BODIES)
def test_hostile_bodies_are_named(raw: bytes, names: str) -> None:
    with pytest.raises(MalformedMessage, match=names):
        parse(raw)


@given(JSON)
def test_json_depth_matches_the_parsed_depth(value: object) -> None:
    text = json.dumps(value).encode()
    assert json_depth(text, 1000) == depth(value, 1000)


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": "[[[[{{{{\\"]]"}') == 1
    assert json_depth(b"[" * 10_000) == MAX_DEPTH + 1


@given(st.dictionaries(st.sampled_from(["x", "y", "z"]), JSON, max_size=3))
def test_run_requests_validate_or_name_the_field(body: dict) -> None:
    try:
        request = RunRequest.model_validate(body)
    except ValidationError as exc:
        assert exc.errors()
        return
    # y may be absent (a shape instead): the route then answers 422 naming y (shape_of).
    assert 1 <= request.x <= 10_000_000 and (request.y is None or 0.1 <= request.y <= 60_000_000)


@pytest.mark.parametrize("y", [math.nan, math.inf, -math.inf, 1e309, 1e-12, 1e-302, 0.09])
def test_rates_outside_the_documented_bounds_are_refused(y: float) -> None:
    with pytest.raises(ValidationError):
        RunRequest.model_validate({"x": 10, "y": y})


@given(st.dictionaries(st.sampled_from(["kind", "payload", "attempts", "other"]), JSON, max_size=4))
def test_job_requests_validate_or_name_the_field(body: dict) -> None:
    try:
        JobRequest.model_validate(body)
    except ValidationError as exc:
        assert exc.errors()


@pytest.mark.parametrize(
    "value",
    ["x", "1-", "-1", "1-0-0", "18446744073709551616-0", "0-18446744073709551616", "9" * 21 + "-0"],
)
def test_event_ids_past_the_stream_id_range_are_refused(value: str) -> None:
    with pytest.raises(BadEventId):
        check_event_id(value)


def test_the_largest_stream_id_is_refused_since_nothing_can_follow_it() -> None:
    below = "18446744073709551615-18446744073709551614"
    assert check_event_id(below) == below and check_event_id("") is None
    with pytest.raises(BadEventId):
        check_event_id("18446744073709551615-18446744073709551615")
