"""Round two of hostile input (pure, no services): every parser raises only its own error.

Numbers are bounded before any conversion (a 400-digit integer overflows a float), only ASCII
digits count as digits (`'²'.isdigit()` is true), and every name pattern matches the whole text
(a `$` would let `job-1\\n` through).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.api.limits import ScanCost, StreamsFull, StreamSlots, json_depth
from lab.api.pages import with_page_headers
from lab.config import Settings, redacted, safe_url
from lab.runtime.deadletters import describe, fresh_attempt, replay_headers
from lab.runtime.handlers import PayloadError, handler_for, known_kinds
from lab.runtime.messages import MAX_DEPTH, MalformedMessage, is_id, is_kind, parse
from lab.runtime.search import BadQuery, epoch_ms

HUGE = int("9" * 400)
# Integers of every size, digits of other scripts, newlines and control characters.
NASTY_NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([HUGE, -HUGE, 2**63, 2**64, 10**4000]),
    st.floats(),
)
NASTY_TEXT = st.text(
    alphabet=st.sampled_from(list("job-1_.\n\r\t\x00\x1b[]/²٣\u202e:")), max_size=20
)
NASTY = st.one_of(NASTY_NUMBERS, NASTY_TEXT, st.booleans(), st.none())


@pytest.mark.parametrize("name", ["jobId", "runId", "kind"])
@pytest.mark.parametrize("tail", ["\n", "\r\n", "\x00", " "])
def test_names_that_end_in_a_line_break_or_control_character_are_refused(
    name: str, tail: str
) -> None:
    body = {"jobId": "job-1", "kind": "index"}
    if name == "runId":
        body.update(runId="run" + tail, seq=1, jobId=f"run{tail}-1")
    else:
        body[name] = body[name] + tail
    with pytest.raises(MalformedMessage, match="jobId" if name == "runId" else name):
        parse(json.dumps(body).encode())
    assert not is_id("job-1" + tail) and not is_kind("index" + tail)


@pytest.mark.parametrize("field", ["createdAt", "attempt", "seq"])
def test_a_400_digit_number_in_any_field_is_named_not_raised(field: str) -> None:
    body: dict = {"jobId": "r-1", "runId": "r", "seq": 1, "kind": "index", field: HUGE}
    with pytest.raises(MalformedMessage, match=field):
        parse(json.dumps(body).encode())


@given(st.dictionaries(st.sampled_from(["jobId", "runId", "seq", "kind", "attempt",
                                        "createdAt", "payload"]), NASTY, max_size=7))  # fmt: skip
def test_any_nasty_field_parses_or_is_malformed(body: dict) -> None:
    try:
        job = parse(json.dumps(body).encode())
    except MalformedMessage:
        return
    assert is_id(job.jobId) and is_kind(job.kind)


@given(st.dictionaries(st.text(max_size=5), NASTY, max_size=4), st.binary(max_size=200))
def test_dead_letter_views_never_raise(headers: dict, body: bytes) -> None:
    hostile_headers = {
        "x-lab-attempt": HUGE,
        "x-lab-last-failed-ms": float("inf"),
        "x-lab-first-failed-ms": "²",
        "x-lab-replays": "many",
        **headers,
    }
    letter = describe(body, hostile_headers)
    assert letter.id and letter.reason
    fresh_attempt(body)
    assert replay_headers(hostile_headers)["x-lab-replays"] == 1


def test_a_letter_whose_body_overflows_a_float_is_listed_as_malformed() -> None:
    body = json.dumps({"jobId": "a", "kind": "index", "createdAt": HUGE}).encode()
    letter = describe(body, {})
    assert letter.jobId is None and letter.bytes == len(body)
    assert fresh_attempt(body) is None


@pytest.mark.parametrize("value", ["²", "٣", "1" * 30, "9" * 400, "nan", "0001-01-01T00:00+14:00x"])
def test_times_of_non_ascii_digits_or_huge_numbers_are_named(value: str) -> None:
    with pytest.raises(BadQuery):
        epoch_ms(value, "from")


@pytest.mark.parametrize("kind", known_kinds())
@given(payload=st.dictionaries(st.sampled_from(["seconds", "durationSeconds", "stepIntervalSeconds",
                                                "failAtStep", "failAttempts", "failRate", "url",
                                                "other"]), NASTY, max_size=4))  # fmt: skip
def test_every_kind_answers_any_payload_with_a_payload_error_at_most(
    kind: str, payload: dict
) -> None:
    try:
        handler_for(kind).check(payload)
    except PayloadError as exc:
        assert str(exc).startswith("payload")


@pytest.mark.parametrize("kind", ["sleep", "agent"])
def test_a_400_digit_duration_is_a_named_payload_error(kind: str) -> None:
    field = "seconds" if kind == "sleep" else "durationSeconds"
    with pytest.raises(PayloadError, match=field):
        handler_for(kind).check({field: HUGE})


def _adversarial(size: int) -> list[bytes]:
    """Bodies that made the old string regex backtrack, and the scanner's own worst cases."""
    pairs = size // 2
    return [
        b'"' + b'\\"' * pairs,  # a string that never ends, full of escaped quotes
        b'["' + b'\\"' * pairs + b'"]',
        b'{"a":"' + b'\\"\\\\' * (pairs // 2) + b'"}',
        b'"' * size,  # as many strings as there can be
        b"[1," * (size // 3),
    ]


@pytest.mark.parametrize("case", range(5))
def test_the_body_check_costs_in_proportion_to_the_body(case: int) -> None:
    small, large = (_adversarial(n)[case] for n in (8 * 1024, 256 * 1024))
    costs = []
    for body in (small, large):
        cost = ScanCost()
        json_depth(body, MAX_DEPTH, cost)
        # Every byte is examined at most twice, and no token visited twice.
        assert cost.examined <= 2 * len(body) + 2 and cost.steps <= len(body) + 1, cost
        costs.append(cost.examined + cost.steps)
    assert costs[1] <= 40 * max(costs[0], 1), costs  # 32 times the body: 32 times the work


def test_every_html_answer_refuses_frames_and_inline_script() -> None:
    page = dict(with_page_headers([(b"content-type", b"text/html; charset=utf-8")]))
    assert page[b"x-frame-options"] == b"DENY" and page[b"referrer-policy"] == b"no-referrer"
    csp = page[b"content-security-policy"].decode()
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page[b"x-content-type-options"] == b"nosniff"
    # A page that brings its own CSP (/docs) keeps it; JSON gets nosniff alone.
    own = dict(with_page_headers([(b"content-type", b"text/html"),
                                  (b"content-security-policy", b"x")]))  # fmt: skip
    assert own[b"content-security-policy"] == b"x"
    json_only = dict(with_page_headers([(b"content-type", b"application/json")]))
    assert b"content-security-policy" not in json_only and b"x-content-type-options" in json_only


def test_the_admin_page_has_no_inline_script_or_style() -> None:
    from importlib import resources

    static = resources.files("lab.api") / "static"
    page = (static / "admin.html").read_text()
    assert "<script>" not in page and "<style" not in page and "style=" not in page
    assert "style=" not in (static / "admin.js").read_text()


SENTINEL = "s3ntinel-Secret"


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SENTINEL}@127.0.0.1:6379/0",
        f"redis://user:{SENTINEL}@127.0.0.1:6379/0",
        f"redis://127.0.0.1:6379/0?password={SENTINEL}",
        f"amqp://guest:{SENTINEL}@a:5672/%2F,amqp://guest:{SENTINEL}@b:5672/%2F",
        f"http://127.0.0.1:9200/?api_key={SENTINEL}",
        f"http://[::1:{SENTINEL}@x",  # unreadable: masked whole
    ],
)
def test_every_url_form_prints_without_its_secret(url: str) -> None:
    assert SENTINEL not in safe_url(url)


def test_every_secret_setting_is_masked_in_what_reports_print() -> None:
    settings = Settings(
        redis_url=f"redis://:{SENTINEL}@h:6379/0",
        api_token=SENTINEL,
        notebook_token=SENTINEL,
        es_url=f"http://elastic:{SENTINEL}@h:9200",
    )
    shown_settings = redacted(settings)
    assert SENTINEL not in json.dumps(shown_settings)
    assert (
        shown_settings["LAB_NOTEBOOK_TOKEN"] == "***" and shown_settings["LAB_QUEUE"] == "lab.jobs"
    )


def test_one_client_cannot_take_every_live_stream() -> None:
    slots = StreamSlots(limit=8, share=0.25)
    mine = [slots.take("10.0.0.1") for _ in range(2)]
    with pytest.raises(StreamsFull, match="LAB_STREAM_SHARE"):
        slots.take("10.0.0.1")
    others = [slots.take(f"10.0.0.{n}") for n in range(2, 8)]
    with pytest.raises(StreamsFull, match="LAB_MAX_STREAMS"):
        slots.take("10.0.0.9")
    mine[0]()
    mine[0]()  # giving back twice gives back once
    assert slots.used == 7 and slots.by_client["10.0.0.1"] == 1
    slots.take("10.0.0.1")
    for give in [*others, mine[1]]:
        give()
    assert slots.used == 1


def test_the_locustfile_sends_the_token_only_to_the_labs_own_host() -> None:
    """In a process of its own: importing Locust patches the standard library with gevent."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"
    script = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('lf', {str(path)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "hosts = ['http://127.0.0.1:8000', 'http://attacker.example:80', None,"
        " 'https://api.internal/']\n"
        "print(json.dumps([m.token_goes_to(h) for h in hosts]))\n"
    )
    env = {**os.environ, "LAB_API_URL": "http://127.0.0.1:8000",
           "LAB_LOADTEST_TOKEN_HOSTS": "api.internal"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120, check=True)  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, False, False, True]


NASTY_JSON = st.recursive(
    NASTY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY_TEXT, inner, max_size=3),
    max_leaves=12,
)


@pytest.mark.parametrize("model", ["RunRequest", "JobRequest", "PruneRequest", "BulkRequest",
                                   "ReplayRequest"])  # fmt: skip
@given(body=st.dictionaries(st.sampled_from(["x", "y", "kind", "payload", "attempts", "runAt",
                                             "delaySeconds", "priority", "olderThanSeconds",
                                             "action", "filter", "dryRun", "limit", "all", "ids",
                                             "state", "q"]), NASTY_JSON, max_size=5))  # fmt: skip
def test_every_request_model_validates_or_names_the_field(model: str, body: dict) -> None:
    from pydantic import ValidationError

    from lab.api import app, bulk, deadletters, jobs

    found = {m: getattr(mod, m) for mod in (app, bulk, deadletters, jobs) for m in dir(mod)}
    try:
        found[model].model_validate(body)
    except ValidationError as exc:
        assert exc.errors()


def test_a_log_line_cannot_be_forged_by_what_a_job_holds() -> None:
    import logging

    from lab.ops.logs import FORMAT, OneLine

    forged = ("job-1", "payload.a\nFAKE ERROR x")
    record = logging.LogRecord("lab", logging.ERROR, __file__, 1, "dead: %s: %s", forged, None)
    line = OneLine(FORMAT).format(record)
    assert "\n" not in line and "payload.a\\nFAKE ERROR x" in line
