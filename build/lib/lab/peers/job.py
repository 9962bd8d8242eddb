"""The reference job body shared by both peers."""

from __future__ import annotations

import functools

from lab import config
from lab.batch import document
from lab.messages import run_job
from lab.state import State
from lab.store import Store


@functools.cache
def services() -> tuple[State, Store]:
    settings = config.load()
    return State(settings), Store(settings)


def index_job(run_id: str, seq: int, worker: str) -> None:
    state, store = services()
    job = run_job(run_id, seq)
    store.es.index(index=store.index, id=job.jobId, document=document(job, {}, worker))
    state.record({run_id: ([seq], [])})
