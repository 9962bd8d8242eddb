"""The reference job body shared by both peers."""

from __future__ import annotations

import functools

from lab import config
from lab.runtime.batch import document
from lab.runtime.messages import run_job
from lab.runtime.state import State
from lab.runtime.store import Store


@functools.cache
def services() -> tuple[State, Store]:
    settings = config.load()
    return State(settings), Store(settings)


def index_job(run_id: str, seq: int, worker: str) -> None:
    state, store = services()
    job = run_job(run_id, seq)
    store.upsert(document(job, {}, worker))
    state.record({run_id: ([seq], [])})
