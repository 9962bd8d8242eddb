"""Elasticsearch: one document per job, `_id` = jobId, written in bulk.

Only the official client and plain Elasticsearch semantics are used, so the local ES-API server
and a real Elasticsearch 8 behave the same. Indexing by `_id` makes every write an upsert: a
redelivered or republished job overwrites its own document instead of adding one.

The client is imported when a `Store` is first made, not with this module: it is half of a `lab`
process's start, and the scheduler and most CLI commands never talk to Elasticsearch. It is
imported without pyarrow (`import_client`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from lab.config import Settings

MAPPINGS = {
    "properties": {
        "jobId": {"type": "keyword"},
        "runId": {"type": "keyword"},
        "seq": {"type": "long"},
        "kind": {"type": "keyword"},
        "attempt": {"type": "integer"},
        "createdAt": {"type": "date", "format": "epoch_millis"},  # first released
        "releasedAt": {"type": "date", "format": "epoch_millis"},  # this attempt's release
        "startedAt": {"type": "date", "format": "epoch_millis"},  # this attempt's start
        "processedAt": {"type": "date", "format": "epoch_millis"},  # written
        "worker": {"type": "keyword"},
    }
}

BUSY = frozenset({429, 502, 503, 504})  # a cluster that is overloaded or electing a master
BULK_ANSWER = "errors,items.*.status,items.*.error"  # of a bulk write, what the worker reads


@cache
def _encoder() -> Callable[[Any], str]:
    """As the client's serializer encodes (dates, UUIDs, decimals by its `default`), in one
    call."""
    import_client()
    from elasticsearch.serializer import JsonSerializer

    return json.JSONEncoder(
        default=JsonSerializer().default, ensure_ascii=False, separators=(",", ":")
    ).encode


def _op(doc: dict[str, Any]) -> str:
    return "create" if doc.get("runId") else "index"


def unavailable(exc: BaseException) -> bool:
    """Elasticsearch is unreachable or busy (wait and retry), not refusing this request. Being
    unreachable is not a job's fault: the worker waits and tries again instead of spending the
    job's attempts. A process that never imported the client's transport (elastic_transport,
    where its errors are defined) cannot have one of its errors."""
    if "elastic_transport" not in sys.modules:
        return False
    from elastic_transport import ApiError, TransportError

    if isinstance(exc, TransportError):  # connection refused or reset, a timeout
        return True
    return isinstance(exc, ApiError) and exc.meta is not None and exc.meta.status in BUSY


def client_errors() -> tuple[type[Exception], ...]:
    """The client's exception classes `unavailable` can be true of, for whoever must name them
    by class (the API answers them by class, lab.api.app)."""
    from elastic_transport import ApiError, TransportError

    return (ApiError, TransportError)


def import_client() -> None:
    """Import the client, without the pyarrow it would load. Called early by a process that
    will run jobs under someone else's timeout (a framework's worker), so its first jobs do not
    wait on the import.

    The client imports pyarrow, when installed, for an Arrow serializer lab never asks for, and
    pyarrow imports numpy: 43 MB and 0.3 s more in every worker and API process, and a heap that
    its interpreter then takes seconds to tear down on a busy machine. While the client loads,
    pyarrow reads as absent (the import system's own `None` entry); after, anything may import
    it as usual. A process that already has pyarrow keeps it."""
    if "elasticsearch" in sys.modules:
        return
    hidden = "pyarrow" not in sys.modules
    if hidden:
        sys.modules["pyarrow"] = None  # type: ignore[assignment]
    try:
        import elasticsearch  # noqa: F401
    finally:
        if hidden and sys.modules.get("pyarrow", 0) is None:
            del sys.modules["pyarrow"]


@dataclass
class BulkResult:
    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # jobId → reason


class Store:
    def __init__(self, settings: Settings, timeout_s: float | None = None):
        import_client()
        from elasticsearch import Elasticsearch

        self.index = settings.es_index
        self.replicas = settings.es_replicas
        # Several nodes of a cluster: comma-separated; the client spreads requests over them
        # and retries another node when one fails.
        nodes = [url.strip() for url in settings.es_url.split(",") if url.strip()]
        # Each request has a deadline (LAB_ES_TIMEOUT_S) and one retry on another node.
        self.es = Elasticsearch(
            nodes,
            request_timeout=timeout_s or settings.es_timeout_s,
            retry_on_timeout=True,
            max_retries=1,
        )

    def ensure_index(self) -> None:
        from elasticsearch import ApiError

        if self.es.indices.exists(index=self.index):
            return
        try:
            self.es.indices.create(
                index=self.index,
                mappings=MAPPINGS,
                settings={"number_of_replicas": self.replicas},
            )
        except ApiError as exc:
            # Another worker created it first.
            if "resource_already_exists" not in str(exc):
                raise

    def bulk_upsert(self, docs: list[dict[str, Any]]) -> BulkResult:
        """Write documents by jobId; per-item errors are returned, not raised."""
        result = BulkResult()
        if not docs:
            return result
        # One NDJSON body built here: the index named once, in the path, not in every action
        # line; each line encoded by one C encoder (the client's serializer, line by line, took
        # twice as long: a worker's batch is mostly this). Only each item's status and error are
        # read back: the rest of an item (index, _id, version, shards) is most of the answer.
        # A run's job is written once: `create`, so a redelivery after its document was written
        # (a worker killed between the write and the ack) finds it there (409) and writes
        # nothing again; the document's `_version` stays 1, which is how the delivery verdict
        # tells one effect from two. A single job's document is written as it ends (`index`).
        encode = _encoder()
        body = "".join(f'{{"{_op(doc)}":{{"_id":{encode(doc["jobId"])}}}}}\n{encode(doc)}\n'
                       for doc in docs)  # fmt: skip
        encoded = body.encode("utf-8", "surrogatepass")  # as the client's NDJSON serializer
        # The client sends an already encoded body as it is (its type says documents only).
        response = self.es.bulk(index=self.index, operations=encoded, filter_path=BULK_ANSWER)  # type: ignore[arg-type]
        for doc, item in zip(docs, response["items"], strict=True):
            outcome = item.get(_op(doc), {})
            status = outcome.get("status", 500)
            if status < 300 or (status == 409 and _op(doc) == "create"):
                result.written.append(doc["jobId"])
            else:
                error = outcome.get("error", {})
                reason = error.get("reason", error) if isinstance(error, dict) else error
                result.failed[doc["jobId"]] = f"{outcome.get('status')}: {reason}"
        return result

    def ping(self) -> None:
        """Raises when Elasticsearch does not answer."""
        self.es.info()

    def refresh(self) -> None:
        self.es.indices.refresh(index=self.index)

    def count(self, run_id: str | None = None) -> int:
        query = {"term": {"runId": run_id}} if run_id else {"match_all": {}}
        return int(self.es.count(index=self.index, query=query)["count"])

    def distinct_job_ids(self, run_id: str | None = None) -> int:
        """Distinct jobIds (exact below 40,000; approximate above, as Elasticsearch is)."""
        query = {"term": {"runId": run_id}} if run_id else {"match_all": {}}
        response = self.es.search(
            index=self.index,
            size=0,
            query=query,
            aggs={"ids": {"cardinality": {"field": "jobId", "precision_threshold": 40000}}},
        )
        return int(response["aggregations"]["ids"]["value"])

    def get(self, job_id: str) -> dict[str, Any] | None:
        response = self.es.options(ignore_status=404).get(index=self.index, id=job_id)
        return response.get("_source") if response.get("found") else None

    def run_jobs(
        self, run_id: str, limit: int, after: list[Any] | None = None, kind: str | None = None
    ) -> tuple[list[dict[str, Any]], list[Any] | None]:
        """A run's documents, newest first; returns them and the `search_after` of the next page."""
        filters: list[dict[str, Any]] = [{"term": {"runId": run_id}}]
        if kind:
            filters.append({"term": {"kind": kind}})
        response = self.es.options(ignore_status=404).search(
            index=self.index,
            query={"bool": {"filter": filters}},
            sort=[{"processedAt": "desc"}, {"seq": "desc"}],
            size=limit,
            search_after=after,
        )
        hits = response.get("hits", {}).get("hits", [])
        docs = [hit["_source"] for hit in hits]
        return docs, (hits[-1]["sort"] if len(hits) == limit else None)

    def upsert(self, doc: dict[str, Any]) -> None:
        """One document by its jobId (what a target's task does: one request per job)."""
        self.es.index(index=self.index, id=doc["jobId"], document=doc)

    def run_fields(
        self, run_id: str, fields: list[str], limit: int | None = None
    ) -> list[dict[str, Any]]:
        """`fields` of a run's documents in processing order: all of them, or the first `limit`
        (measurements read times from the documents themselves)."""
        out: list[dict[str, Any]] = []
        after = None
        while limit is None or len(out) < limit:
            size = 5000 if limit is None else min(5000, limit - len(out))
            response = self.es.search(
                index=self.index,
                query={"term": {"runId": run_id}},
                sort=[{"processedAt": "asc"}, {"seq": "asc"}],
                size=size,
                search_after=after,
                source=fields,  # type: ignore[arg-type]  # a list of fields is valid _source
            )
            hits = response["hits"]["hits"]
            out.extend(h["_source"] for h in hits)
            if len(hits) < size:
                break
            after = hits[-1]["sort"]
        return out

    def delete(self, job_id: str) -> bool:
        """Remove one job's document; False when there was none."""
        response = self.es.options(ignore_status=404).delete(index=self.index, id=job_id)
        return response.get("result") == "deleted"

    def delete_run(self, run_id: str) -> int:
        """Remove every document of a run; returns how many there were."""
        response = self.es.options(ignore_status=404).delete_by_query(
            index=self.index, query={"term": {"runId": run_id}}, conflicts="proceed"
        )
        return int(response.get("deleted") or 0)

    def delete_many(self, job_ids: list[str]) -> int:
        """Remove these jobs' documents in one request; returns how many were there."""
        if not job_ids:
            return 0
        operations = [{"delete": {"_index": self.index, "_id": job_id}} for job_id in job_ids]
        response = self.es.bulk(operations=operations)
        return sum(1 for item in response["items"] if item["delete"].get("result") == "deleted")

    # --- other indices of the lab (the records index of lab.runtime.search) -------------------
    def create_index(self, index: str, mappings: dict[str, Any]) -> bool:
        """Create `index` unless it exists; True when this call created it."""
        from elasticsearch import ApiError

        if self.es.indices.exists(index=index):
            return False
        try:
            self.es.indices.create(
                index=index, mappings=mappings, settings={"number_of_replicas": self.replicas}
            )
        except ApiError as exc:  # another process created it first
            if "resource_already_exists" in str(exc):
                return False
            raise
        return True

    def bulk_write(self, index: str, docs: list[dict[str, Any]], gone: list[str]) -> None:
        """Upsert `docs` by their `id` and delete the documents of `gone`, in one request."""
        operations: list[dict[str, Any]] = []
        for doc in docs:
            operations += [{"index": {"_index": index, "_id": doc["id"]}}, doc]
        operations += [{"delete": {"_index": index, "_id": job_id}} for job_id in gone]
        if operations:
            self.es.bulk(operations=operations)

    def search_ids(
        self, index: str, query: dict[str, Any], sort: list[Any], size: int,
        after: list[Any] | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """The hits (ids and sort values, no source) of a query; none when the index is new."""
        response = self.es.options(ignore_status=404).search(
            index=index, query=query, sort=sort, size=size, search_after=after, source=False
        )
        return response.get("hits", {}).get("hits", [])

    def drop_index(self, index: str) -> None:
        self.es.options(ignore_status=404).indices.delete(index=index)

    def delete_index(self) -> None:
        self.es.options(ignore_status=404).indices.delete(index=self.index)

    def close(self) -> None:
        self.es.close()
