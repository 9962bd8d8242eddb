"""The head-of-line age from what lab already knows (pure): the release time of the n-th newest
job from the run's timeline, and the older of what workers hold and what the broker holds."""

from __future__ import annotations

import pytest

from lab.runtime import headage


def test_the_nth_newest_job_is_found_counting_back_and_placed_within_its_second() -> None:
    newest_first = [(103, 0), (102, 10), (101, 4), (100, 100)]
    assert headage.released_at_rank(newest_first, 1) == pytest.approx(102_900)  # last of 102
    assert headage.released_at_rank(newest_first, 10) == pytest.approx(102_000)  # first of 102
    assert headage.released_at_rank(newest_first, 12) == pytest.approx(101_500)
    assert headage.released_at_rank(newest_first, 114) == pytest.approx(100_000)
    assert headage.released_at_rank(newest_first, 115) is None  # more than were released
    assert headage.released_at_rank(newest_first, 0) is None  # nothing waits


def test_the_head_is_the_oldest_of_the_hands_and_the_broker() -> None:
    assert headage.head_age_ms(10_000, [0, 0], None) == 0
    assert headage.head_age_ms(10_000, [9_000, 0, 7_500], None) == 2_500
    assert headage.head_age_ms(10_000, [9_000], 4_000.0) == 6_000
    assert headage.head_age_ms(10_000, [], 10_500.0) == 0  # clocks a little apart: never < 0


def test_a_measure_no_leader_renews_is_not_shown() -> None:
    raw = {"atMs": "1000", "run": "r1", "runAgeMs": "250", "q": "250", "q.single": "0"}
    assert headage.fresh(raw, 2_000) == {"atMs": 1000, "run": "r1", "runAgeMs": 250, "q": 250,
                                         "q.single": 0}  # fmt: skip
    assert headage.fresh(raw, 1000 + headage.STALE_MS + 1) == {}
    assert headage.fresh({}, 2_000) == {} and headage.fresh({"atMs": "x"}, 2_000) == {}
