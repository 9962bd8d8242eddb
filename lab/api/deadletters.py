"""Dead letters over HTTP: list them, replay them with a fresh attempt budget, purge them.

    GET    /dead-letters?limit=&offset=     the letters, oldest first, none taken away
    POST   /dead-letters/replay             {"ids": [...]} or {"all": true}
    DELETE /dead-letters                    every letter, with the count

The letters stay in RabbitMQ (`lab.runtime.deadletters`). A replayed single job goes back through
its record (`queued`, attempt + 1, a fresh budget), as `POST /jobs/{id}/retry` does; any other job
is published again at attempt 1 to the queue it came from.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pika.adapters.blocking_connection import BlockingChannel
from pydantic import BaseModel, ConfigDict, Field

from lab.api.responses import error, invalid
from lab.api.services import Lab
from lab.runtime import broker
from lab.runtime.broker import PublishError
from lab.runtime.deadletters import (
    ID_LENGTH,
    SCAN_LIMIT,
    DeadLetterError,
    Taken,
    fresh_attempt,
    replay_headers,
)
from lab.runtime.jobs import JobConflict, JobNotFound
from lab.runtime.single_jobs import requeue

LETTER_ID = re.compile(rf"[0-9a-f]{{{ID_LENGTH}}}")
MAX_IDS = 1000


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    ids: list[str] | None = Field(
        default=None, max_length=MAX_IDS, description="letters to replay, by their `id`"
    )
    all: bool = Field(default=False, description="replay every letter (up to 10,000 a call)")


router = APIRouter(tags=["dead letters"])


@router.get("/dead-letters", operation_id="listDeadLetters")
def list_letters(
    lab: Lab,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=SCAN_LIMIT - 1)] = 0,
) -> Any:
    """Dead-lettered messages, oldest first: why, where from, attempts, first and last
    failure, and the start of the body. Reading them takes none away."""
    dead = lab.dead
    try:
        total, letters = dead.list(min(limit, SCAN_LIMIT - offset), offset)
    except DeadLetterError as exc:
        return error(503, str(exc))
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "letters": [letter.view() for letter in letters],
    }


@router.post("/dead-letters/replay", operation_id="replayDeadLetters")
def replay(body: ReplayRequest, lab: Lab) -> Any:
    """Put letters back on their queue with a fresh attempt budget; a letter leaves the
    dead letters only once its replay is confirmed. Letters that cannot be replayed (not a
    job, or a job that moved on) stay, and the answer says why."""
    dead, records, publisher = lab.dead, lab.records, lab.publisher
    if body.all == (body.ids is not None):
        return invalid("ids", "give either ids (a list of letter ids) or all: true")
    wanted = set(body.ids or [])
    for letter_id in wanted:
        if not LETTER_ID.fullmatch(letter_id):
            return invalid("ids", f"{letter_id[:40]!r} is not a dead letter id")

    def again(taken: Taken, channel: BlockingChannel) -> str:
        letter = taken.letter
        fresh = fresh_attempt(taken.body)
        if fresh is None:
            return "skipped: not a job"
        if letter.runId is None and letter.jobId is not None:
            try:
                requeue(records, publisher, letter.jobId)
                return "done"
            except JobConflict as exc:
                return f"skipped: job is {exc.state}"
            except JobNotFound:
                pass  # published outside the API: no record, replayed as it is
            except PublishError:
                return "failed: RabbitMQ refused the job"
        channel.basic_publish(
            "",
            dead.target(letter),
            fresh,
            broker.properties(replay_headers(taken.headers)),
            mandatory=True,
        )
        return "done"

    seen: set[str] = set()

    def pick(letter: Any) -> bool:
        if body.all or letter.id in wanted:
            seen.add(letter.id)
            return True
        return False

    try:
        answer = dead.act(pick, again)
    except DeadLetterError as exc:
        return error(503, str(exc))
    outcomes = answer.pop("outcomes")
    return {
        **answer,
        "replayed": outcomes.pop("done", 0),
        "kept": outcomes,  # reason → letters that stay dead-lettered
        "notFound": sorted(wanted - seen),
    }


@router.delete("/dead-letters", operation_id="purgeDeadLetters")
def purge(lab: Lab) -> Any:
    """Delete every dead letter; answers how many there were."""
    dead = lab.dead
    try:
        return {"purged": dead.purge()}
    except DeadLetterError as exc:
        return error(503, str(exc))
