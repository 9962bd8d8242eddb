"""Finding single jobs: an Elasticsearch index of their records, kept in step with Redis.

Redis holds each job's record (`lab.runtime.jobs`); searching it would mean reading every record.
So each record is also a document in `<LAB_ES_INDEX>-records`: its id, kind, state, times, and
one `text` field with the payload, the error and every log line, which `GET /jobs?q=` searches.

Kept in step by `RecordIndexer`: every change of a record is one Lua script that also appends a
`job` event to the lab's event stream; the indexer reads that stream in a Redis consumer group
(`record-index`), so each event is handled by one API process however many run, survives a
restart (unacked entries are claimed again after `CLAIM_IDLE_MS`), and is acked only once
Elasticsearch has the document. It reads the record as it is now, not the event, so replays and
duplicates are harmless; a record that is gone has its document deleted. An index that does not
exist yet is first filled from every record in Redis.

Search answers ids; the API shows the records themselves from Redis, so what it shows is never
older than Redis, only the match can be a moment behind.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import redis

from lab.config import Settings
from lab.runtime.background import BackgroundLoop
from lab.runtime.connections import TextRedis, redis_client
from lab.runtime.connections import unavailable as redis_unavailable
from lab.runtime.jobs import JobRecords
from lab.runtime.keys import Keys
from lab.runtime.messages import is_id
from lab.runtime.store import Store
from lab.runtime.store import unavailable as es_unavailable

log = logging.getLogger("lab.runtime.search")
BLOCK_S = 1.0  # the indexer waits this long for new events in one read

GROUP = "record-index"
CLAIM_IDLE_MS = 30_000
TEXT_LIMIT = 32_000  # characters of payload, error and log a document carries
MAPPINGS = {
    "properties": {
        "id": {"type": "keyword"},
        "kind": {"type": "keyword"},
        "state": {"type": "keyword"},
        "attempt": {"type": "integer"},
        "createdAt": {"type": "long"},
        "updatedAt": {"type": "long"},
        "text": {"type": "text"},
    }
}


class BadQuery(ValueError):
    """A search parameter that cannot be used; `field` names it, `reason` says why."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def record_doc(h: dict[str, str], log_lines: list[str]) -> dict[str, Any]:
    """The searchable document of one record (pure)."""
    messages = []
    for line in log_lines:
        try:
            messages.append(str(json.loads(line).get("message", "")))
        except (ValueError, AttributeError):
            continue
    text = " ".join([h["id"], h.get("kind", ""), h.get("payload", ""), h.get("error", ""),
                     *messages])  # fmt: skip
    return {
        "id": h["id"],
        "kind": h.get("kind"),
        "state": h.get("state"),
        "attempt": int(h.get("attempt") or 0),
        "createdAt": int(h.get("createdAt") or 0),
        "updatedAt": int(h.get("finishedAt") or h.get("startedAt") or h.get("createdAt") or 0),
        "text": text[:TEXT_LIMIT],
    }


def epoch_ms(value: str, name: str) -> int:
    """`from`/`to`: epoch milliseconds or an ISO 8601 time (UTC unless it says otherwise)."""
    # ASCII digits only: `'²'.isdigit()` is true and `int('²')` raises.
    if value.isascii() and value.isdigit():
        if len(value) > 16:
            raise BadQuery(name, "epoch milliseconds have at most 16 digits")
        return int(value)
    if len(value) > 64:
        raise BadQuery(name, "is too long for a time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError):  # also year 1 at +14:00, which has no timestamp
        raise BadQuery(name, f"{value[:40]!r} is neither epoch ms nor an ISO 8601 time") from None


def phrased(q: str) -> str:
    """Words with a `-` inside (a URL, a date, an id) searched as phrases, not as "a NOT b"."""
    words = []
    for word in q.split():
        inner = "-" in word.strip("-") and not word.startswith('"')
        words.append(f'"{word}"' if inner else word)
    return " ".join(words)


def query(
    q: str | None, state: str | None, kind: str | None, since: int | None, until: int | None
) -> dict[str, Any]:
    """The Elasticsearch query for a search (pure)."""
    filters: list[dict[str, Any]] = []
    if state:
        filters.append({"term": {"state": state}})
    if kind:
        filters.append({"term": {"kind": kind}})
    if since is not None or until is not None:
        bounds = {"gte": since} if since is not None else {}
        if until is not None:
            bounds["lte"] = until
        filters.append({"range": {"createdAt": bounds}})
    must: list[dict[str, Any]] = []
    if q and is_id(q) and "-" in q:
        must.append({"term": {"id": q}})  # a job id: its `-` would read as "not" below
    elif q:
        words = {"query": phrased(q), "fields": ["text", "id", "kind"], "default_operator": "and"}
        must.append({"simple_query_string": words})
    return {"bool": {"must": must or [{"match_all": {}}], "filter": filters}}


class RecordSearch:
    """The records index: search it, write to it (the indexer), drop it (`lab reset`)."""

    def __init__(self, settings: Settings, store: Store | None = None):
        self.store = store or Store(settings)
        self.index = f"{settings.es_index}-records"

    def ensure(self) -> bool:
        """Create the index; True when it was just created (so it needs filling)."""
        return self.store.create_index(self.index, MAPPINGS)

    def write(self, docs: list[dict[str, Any]], gone: list[str]) -> None:
        self.store.bulk_write(self.index, docs, gone)

    def find(
        self, q: str | None, state: str | None, kind: str | None, since: int | None,
        until: int | None, limit: int, after: list[Any] | None = None,
    ) -> tuple[list[str], list[Any] | None]:  # fmt: skip
        """Matching job ids, newest first, and the `search_after` of the next page."""
        hits = self.store.search_ids(
            self.index, query(q, state, kind, since, until),
            [{"createdAt": "desc"}, {"id": "desc"}], limit, after,
        )  # fmt: skip
        ids = [h["_id"] for h in hits]
        return ids, (hits[-1]["sort"] if len(hits) == limit else None)

    def all_ids(self, q: str | None, state: str | None, kind: str | None, limit: int) -> list[str]:
        """Every matching id, up to `limit` (bulk actions)."""
        found: list[str] = []
        after = None
        while len(found) < limit:
            ids, after = self.find(q, state, kind, None, None, min(1000, limit - len(found)), after)
            found += ids
            if after is None:
                break
        return found

    def drop(self) -> None:
        self.store.drop_index(self.index)


class RecordIndexer(BackgroundLoop):
    """Keeps the records index in step with Redis (see the module's docstring); one thread of
    each API process, sharing the work through the consumer group."""

    name = "record-index"

    def __init__(self, settings: Settings, consumer: str):
        super().__init__()
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.records = JobRecords(settings)
        self.search = RecordSearch(settings)
        self.redis: TextRedis = redis_client(settings, waits_s=BLOCK_S)
        self.consumer = consumer
        self.indexed = 0  # documents written or deleted (tests, metrics)

    def failed(self, exc: Exception) -> None:
        if not (redis_unavailable(exc) or es_unavailable(exc)):
            log.error("record indexer failed; starting again", exc_info=exc)

    def prepare(self) -> None:
        try:
            self.redis.xgroup_create(self.keys.events, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        if self.search.ensure():
            self._index(list(self.records.ids()))  # a new index: every record there is

    def step(self) -> None:
        _next, claimed, *_ = self.redis.xautoclaim(
            self.keys.events, GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=500
        )
        answer = self.redis.xreadgroup(
            GROUP, self.consumer, {self.keys.events: ">"}, count=500, block=int(BLOCK_S * 1000)
        )
        entries = list(claimed or [])
        for _stream, found in answer or []:
            entries += found
        if not entries:
            return
        ids = list(dict.fromkeys(f.get("jobId") for _, f in entries if f.get("type") == "job"))
        self._index([i for i in ids if i])
        self.redis.xack(self.keys.events, GROUP, *[entry_id for entry_id, _ in entries])

    def _index(self, job_ids: list[str]) -> None:
        for start in range(0, len(job_ids), 500):
            chunk = job_ids[start : start + 500]
            pipe = self.redis.pipeline(transaction=False)
            for job_id in chunk:
                pipe.hgetall(self.keys.job(job_id))
                pipe.lrange(self.keys.job_log(job_id), 0, -1)
            answers = pipe.execute()
            docs, gone = [], []
            for job_id, h, lines in zip(chunk, answers[::2], answers[1::2], strict=True):
                if h:
                    docs.append(record_doc(h, lines))
                else:
                    gone.append(job_id)
            self.search.write(docs, gone)
            self.indexed += len(docs) + len(gone)
