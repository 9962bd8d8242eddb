"""The delivery verdict of a run, after it drains (Jepsen's total-queue, for task queues).

    released             jobs the scheduler released (for lab's pipeline: confirmed by RabbitMQ)
    submits              ok / failed / indeterminate, as the target's broker answered them
    processed, failed    jobs that ended done, or failed for good, each counted once
    lost                 submitted ok (or confirmed), never ended, and no effect of it found
    duplicated           more than one effect for one job: documents written again (`_version`
                         above 1; lab's own worker writes a run's document once, `create`)
    executedMoreThanOnce jobs that ended more than once (a redelivery, a stall, a visibility
                         timeout ran them again)
    unexpected           jobs that ended and that lab never released
    uncountedEffects     jobs whose document exists though no end of theirs was counted: a
                         worker died after the job's effect and before its batched count
    indeterminate        submits that timed out: `unfinished` of them (no end, no document) may
                         have been lost or may never have been taken; they are neither lost nor
                         counted as delivered

A verdict is `clean` when nothing was lost, duplicated or unexpected. The counts come from the
run's bitmaps (what ended, what was submitted) and its documents (what had an effect, and how
often). `tally` is pure; `read` reads a run's bitmaps and documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.runtime.store import Store
from lab.runtime.stores import Stores

# Each byte with its bits in reverse order: Redis numbers a bitmap's bits from the most
# significant bit of its first byte, an int from its least significant.
_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _bits(raw: bytes | None) -> int:
    """A Redis bitmap as an int whose bit `seq` is the bitmap's bit `seq`."""
    return int.from_bytes(raw.translate(_REVERSED), "little") if raw else 0


@dataclass(frozen=True)
class Documents:
    """What a run's documents say: which seqs have one, and how many were written again."""

    found: int = 0  # bit `seq` set: the job's document exists
    duplicated: int = 0


@dataclass(frozen=True)
class Bitmaps:
    done: int
    failed: int
    again: int
    submitted: int | None  # None: lab's own target, whose released jobs are those below enqueued
    indeterminate: int


def tally(run: dict[str, Any], maps: Bitmaps, docs: Documents = Documents()) -> dict[str, Any]:
    """The verdict from a run's record (`enqueued`, `submit*`, `unexpected`, `target`), its
    bitmaps and its documents. Pure."""
    released = int(run.get("enqueued") or 0)
    ended = maps.done | maps.failed
    if maps.submitted is None:
        taken = (1 << released) - 1
        submits = {"ok": released, "failed": 0, "indeterminate": 0}
        outside = ended & ~taken
    else:
        taken = maps.submitted & ~maps.indeterminate
        submits = {name: int(run.get(f"submit{name.capitalize()}") or 0)
                   for name in ("ok", "failed", "indeterminate")}  # fmt: skip
        outside = ended & ~maps.submitted
    lost = (taken & ~ended & ~docs.found).bit_count()
    unexpected = int(run.get("unexpected") or 0) + outside.bit_count()
    out = {
        "runId": run.get("runId"),
        "target": run.get("target") or "lab",
        "released": released,
        "submits": submits,
        "processed": maps.done.bit_count(),
        "failed": (maps.failed & ~maps.done).bit_count(),
        "lost": lost,
        "duplicated": docs.duplicated,
        "executedMoreThanOnce": maps.again.bit_count(),
        "unexpected": unexpected,
        "uncountedEffects": (docs.found & ~ended).bit_count(),
        "indeterminate": {
            "total": maps.indeterminate.bit_count(),
            "ended": (maps.indeterminate & ended).bit_count(),
            "unfinished": (maps.indeterminate & ~ended & ~docs.found).bit_count(),
        },  # fmt: skip
    }
    out["clean"] = not (lost or docs.duplicated or unexpected)
    return out


def documents(store: Store, run_id: str) -> Documents:
    """The run's documents: which seqs have one, and how many were written more than once
    (`_version` above 1); none when no index exists yet (a run of a user's own tasks writes no
    documents of lab's)."""
    from elasticsearch import NotFoundError

    try:
        store.refresh()
    except NotFoundError:
        return Documents()
    found, duplicated, after = 0, 0, None
    while True:
        page = store.es.search(index=store.index, version=True, size=5000,
                               query={"term": {"runId": run_id}}, sort=[{"seq": "asc"}],
                               search_after=after, source=False)["hits"]["hits"]  # fmt: skip
        for hit in page:
            found |= 1 << int(hit["sort"][0])
            duplicated += int(hit.get("_version") or 1) > 1
        if len(page) < 5000:
            return Documents(found, duplicated)
        after = page[-1]["sort"]


def read(stores: Stores, store: Store | None, run_id: str) -> dict[str, Any] | None:
    """The run's verdict now (None for an unknown run); `store` None leaves documents out."""
    run = stores.redis.hgetall(stores.keys.run(run_id))
    if not run:
        return None
    maps = bitmaps(stores, run_id, (run.get("target") or "lab") != "lab")
    docs = documents(store, run_id) if store is not None else Documents()
    return {**tally(run, maps, docs), "state": run.get("state")}


def bitmaps(stores: Stores, run_id: str, submitted: bool) -> Bitmaps:
    """The run's bitmaps as bytes: a client of its own that does not decode replies."""
    import redis

    k = stores.keys
    raw = redis.Redis.from_url(stores.settings.redis_url, decode_responses=False,
                               socket_timeout=stores.settings.redis_timeout_s)  # fmt: skip
    try:
        pipe = raw.pipeline(transaction=False)
        for key in (k.run_done(run_id), k.run_failed(run_id), k.run_again(run_id),
                    k.run_submitted(run_id), k.run_indeterminate(run_id)):  # fmt: skip
            pipe.get(key)
        done, failed, again, taken, unsure = pipe.execute()
    finally:
        raw.close()
    return Bitmaps(_bits(done), _bits(failed), _bits(again), _bits(taken) if submitted else None,
                   _bits(unsure))  # fmt: skip
