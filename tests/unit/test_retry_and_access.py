"""The retry ladder, budgets, dead-letter headers, backoff and the API's access policy (pure)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.api.access import Policy, host_name
from lab.config import ConfigError, Settings
from lab.runtime.backoff import Backoff
from lab.runtime.retry import Budget, LadderError, dead_letter_headers, parse_ladder, short

LADDER = (1000, 5000, 30_000, 120_000, 600_000)


def test_the_ladder_is_climbed_then_its_top_step_repeats() -> None:
    budget = Budget.of_run_job(10)
    assert [budget.delay_ms(LADDER, a) for a in range(1, 9)] == [
        1000,
        5000,
        30_000,
        120_000,
        600_000,
        600_000,
        600_000,
        600_000,
    ]
    assert budget.after_failure(9) == "retry" and budget.after_failure(10) == "dead"


def test_a_manual_retry_starts_a_fresh_budget_at_the_bottom_of_the_ladder() -> None:
    # Attempts 1-3 failed; a retry by hand gives attempts 4-6 (`lastAttempt` 6, `attempts` 3).
    budget = Budget.of_record(last=6, attempts=3)
    assert budget == Budget(4, 6)
    assert [budget.delay_ms(LADDER, a) for a in (4, 5)] == [1000, 5000]
    assert budget.after_failure(5) == "retry" and budget.after_failure(6) == "dead"


@given(st.integers(1, 10_000), st.integers(1, 20), st.integers(1, 10_000))
def test_every_delay_is_a_ladder_step(first: int, size: int, attempt: int) -> None:
    assert Budget(first, first + size - 1).delay_ms(LADDER, attempt) in LADDER


@pytest.mark.parametrize(
    "text", ["", "a", "0", "5000,1000", "1000,1000", "-1", "1," * 11, "99999999999"]
)
def test_bad_ladders_are_refused(text: str) -> None:
    with pytest.raises(LadderError):
        parse_ladder(text)


def test_dead_letter_headers_keep_the_first_failure_and_stay_short() -> None:
    first = dead_letter_headers("exhausted", "x" * 5000, "q", "w", 3, now_ms=100)
    assert first["x-lab-first-failed-ms"] == 100 and len(first["x-lab-error"]) == 1000
    again = dead_letter_headers("exhausted", "boom", "q", "w", 1, old=first, now_ms=900)
    assert again["x-lab-first-failed-ms"] == 100 and again["x-lab-last-failed-ms"] == 900
    assert short(None) == ""
    for hostile in (2**70, -1, "yesterday", True, 10**15):
        kept = dead_letter_headers(
            "malformed", "x", "q", "w", None, old={"x-lab-first-failed-ms": hostile}, now_ms=900
        )
        assert kept["x-lab-first-failed-ms"] == 900


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    b = Backoff(initial_s=0.5, cap_s=4.0, rng=random.Random(1))
    waits = [b.next() for _ in range(8)]
    assert 0.25 <= waits[0] <= 0.5 and all(2.0 <= w <= 4.0 for w in waits[4:])
    b.reset()
    assert b.next() <= 0.5


def policy(**kw: str) -> Policy:
    return Policy.of(Settings(api_url="http://127.0.0.1:8000", **kw))


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8000", True),
        ("localhost", True),
        ("[::1]:8000", True),
        ("evil.example:8000", False),  # DNS rebinding
        ("", False),
        (None, False),
    ],
)
def test_only_loopback_and_configured_hosts_are_answered(host: str | None, ok: bool) -> None:
    assert policy().host_allowed(host) is ok
    assert policy(allowed_hosts="evil.example").host_allowed("evil.example:1") is True
    assert policy(allowed_hosts="*", api_token="t").host_allowed("anything") is True
    with pytest.raises(ConfigError, match="LAB_API_TOKEN"):
        policy(allowed_hosts="localhost, *")  # wide open without a token: refused
    assert host_name("[::1]:80") == "::1" and host_name("api:8000") == "api"


def test_browser_pages_may_change_things_only_from_their_own_or_configured_origin() -> None:
    p = policy(allowed_origins="http://notebook.local:8888")
    assert p.origin_allowed(None, "127.0.0.1:8000")  # not a browser
    assert p.origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert p.origin_allowed("http://notebook.local:8888", "127.0.0.1:8000")
    assert not p.origin_allowed("https://evil.example", "127.0.0.1:8000")
    assert not p.origin_allowed("null", "127.0.0.1:8000")


def test_the_token_is_needed_only_when_set() -> None:
    assert policy().token_ok(None, None)
    p = policy(api_token="s3cret")
    assert p.token_ok("Bearer s3cret", None) and p.token_ok("bearer s3cret", None)
    assert p.token_ok(None, "s3cret")
    assert not p.token_ok(None, None) and not p.token_ok("Bearer nope", None)
    assert not p.token_ok("Basic s3cret", None)


def test_bulk_actions_are_paced_from_the_start_without_drift() -> None:
    import time

    from lab.api.bulk import paced

    started = time.monotonic()
    assert list(paced(iter(range(11)), 100.0)) == list(range(11))
    assert time.monotonic() - started >= 0.1  # ten gaps of 10 ms at least; never faster
