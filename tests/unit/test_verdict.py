"""The delivery verdict from a run's counts and bitmaps (pure): lost, executed more than once,
unexpected, indeterminate, for lab's own target and another's."""

from __future__ import annotations

from lab.targets.verdict import Bitmaps, Documents, _bits, tally


def bits(*seqs: int) -> int:
    return sum(1 << s for s in seqs)


def test_redis_bitmaps_read_with_bit_0_first() -> None:
    assert _bits(b"\x80") == 1  # bit 0 is the first byte's most significant bit
    assert _bits(b"\x01\x80") == 1 << 7 | 1 << 8
    assert _bits(None) == 0


def test_lab_s_own_target_lost_is_what_was_released_and_never_ended() -> None:
    run = {"runId": "r", "enqueued": "10", "target": "lab"}
    maps = Bitmaps(done=bits(*range(8)), failed=bits(8), again=bits(3), submitted=None,
                   indeterminate=0)  # fmt: skip
    verdict = tally(run, maps)
    assert (verdict["released"], verdict["processed"], verdict["failed"]) == (10, 8, 1)
    assert verdict["lost"] == 1  # seq 9
    assert verdict["executedMoreThanOnce"] == 1 and not verdict["clean"]


def test_another_target_s_indeterminate_submits_are_neither_lost_nor_delivered() -> None:
    run = {"runId": "r", "enqueued": "6", "target": "celery", "submitOk": "5",
           "submitFailed": "2", "submitIndeterminate": "1", "unexpected": "1"}  # fmt: skip
    maps = Bitmaps(done=bits(0, 1, 2, 7), failed=0, again=0, submitted=bits(0, 1, 2, 3, 4, 5),
                   indeterminate=bits(5))  # fmt: skip
    verdict = tally(run, maps, Documents(found=bits(0, 1, 2), duplicated=2))
    assert verdict["submits"] == {"ok": 5, "failed": 2, "indeterminate": 1}
    assert verdict["lost"] == 2  # 3 and 4: taken, never ended; 5 is indeterminate
    assert verdict["indeterminate"] == {"total": 1, "ended": 0, "unfinished": 1}
    assert verdict["unexpected"] == 2  # one past x, and 7: ended, never submitted
    assert verdict["duplicated"] == 2 and not verdict["clean"]


def test_a_clean_run() -> None:
    run = {"runId": "r", "enqueued": "3"}
    verdict = tally(run, Bitmaps(bits(0, 1, 2), 0, 0, None, 0))
    assert verdict["clean"] and verdict["lost"] == 0


def test_a_job_whose_effect_exists_but_whose_end_was_never_counted_is_not_lost() -> None:
    """A worker that counts ends in batches can die after a job's document and before its
    count: the job ran, so it is an uncounted effect, not a loss."""
    run = {"runId": "r", "enqueued": "4", "target": "rq", "submitOk": "4"}
    maps = Bitmaps(done=bits(0, 1), failed=0, again=0, submitted=bits(0, 1, 2, 3), indeterminate=0)
    verdict = tally(run, maps, Documents(found=bits(0, 1, 2)))
    assert verdict["lost"] == 1  # seq 3: no end, no document
    assert verdict["uncountedEffects"] == 1  # seq 2
