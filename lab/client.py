"""A small client of the lab API, shared by the CLI, `lab demo`, notebooks and tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from lab.config import Settings


class ApiError(RuntimeError):
    """The API answered with an error, or did not answer; the message says which."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class ApiClient:
    """An HTTP client of one of lab's APIs (`lab api`, the fault proxy's): every call goes to
    `url` with a deadline, and with the bearer token their door (`lab.gate`) asks for when the
    lab has one. `LabClient` is one; the fault proxy's client can be another."""

    def __init__(self, url: str, timeout_s: float = 10.0, token: str = ""):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self.http.close()


class LabClient(ApiClient):
    """The lab API's Python client: the CLI, the notebooks, the drills and the tests use it."""

    @property
    def api_url(self) -> str:
        return self.url

    @classmethod
    def of(cls, settings: Settings, timeout_s: float = 10.0) -> LabClient:
        """A client of the lab `settings` describe: its API URL and, if set, its token."""
        return cls(settings.api_url, timeout_s, settings.api_token)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"the lab API at {self.api_url} did not answer ({exc}); "
                f"is `lab api` (or `lab up`) running?"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            message = body.get("error") if isinstance(body, dict) else body
            raise ApiError(
                f"{method} {path} → {response.status_code}: {message}", response.status_code, body
            )
        return body

    def run(
        self,
        x: int,
        y: float | None = None,
        *,
        shape: dict[str, Any] | None = None,
        kind: str | None = None,
        payload: dict[str, Any] | None = None,
        seed: int | None = None,
        slo: list[dict[str, Any]] | None = None,
        abort_on_breach: bool | None = None,
        target: str | None = None,
    ) -> dict[str, Any]:
        """Start a run of `x` jobs at `y` a minute or following `shape` (lab.runtime.shapes),
        of `kind` (default `index`) with `payload`; `seed` repeats a run's randomness; `slo`
        objectives judge it while it runs (lab.runtime.slo), stopping it on a breach with
        `abort_on_breach`."""
        body: dict[str, Any] = {"x": x}
        given = {"y": y, "shape": shape, "kind": kind, "payload": payload, "seed": seed,
                 "slo": slo, "abortOnBreach": abort_on_breach, "target": target}  # fmt: skip
        body.update({name: value for name, value in given.items() if value is not None})
        return self._call("POST", "/run", json=body)

    def change_run(
        self, y: float | None = None, shape: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The active run follows a new rate or shape from now on (`PATCH /run`)."""
        body = {"y": y} if y is not None else {"shape": shape}
        return self._call("PATCH", "/run", json=body)

    def kinds(self) -> list[dict[str, Any]]:
        return self._call("GET", "/kinds")

    def stop(self) -> dict[str, Any]:
        return self._call("POST", "/stop")

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._call("GET", "/runs", params={"limit": limit})

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/runs/{run_id}")

    def latency(self, run_id: str, windows: bool = True) -> dict[str, Any]:
        """The run's queue wait, service and end-to-end latency (`GET /runs/{id}/latency`)."""
        return self._call(
            "GET", f"/runs/{run_id}/latency", params={"windows": str(windows).lower()}
        )

    def latency_frame(self, run_id: str) -> Any:
        """The run's latency as a pandas DataFrame: one row per metric and window (and one per
        metric for the whole run, window `all`), with count, mean and quantiles in ms."""
        import pandas as pd

        answer = self.latency(run_id)
        rows = []
        for metric in ("queueWait", "service", "endToEnd"):
            entry = answer[metric]
            whole = {k: v for k, v in entry.items() if k not in ("byKind", "windows")}
            rows.append({"metric": metric, "window": "all", "t": None, **whole})
            for window in entry.get("windows", []):
                rows.append({"metric": metric, "window": "10s", **window})
        return pd.DataFrame(rows)

    def verdict(self, run_id: str) -> dict[str, Any]:
        """The run's delivery verdict (`lab.targets.verdict`)."""
        return self._call("GET", f"/runs/{quote(run_id, safe='')}/verdict")

    def targets(self) -> list[dict[str, Any]]:
        return self._call("GET", "/targets")

    def timeline(self, run_id: str) -> dict[str, Any]:
        """The run's jobs per second (`GET /runs/{id}/timeline`)."""
        return self._call("GET", f"/runs/{run_id}/timeline")

    def history(self, seconds: int = 3600) -> dict[str, Any]:
        """The lab's jobs per 10-second bucket over the last `seconds` (`GET /history`)."""
        return self._call("GET", "/history", params={"seconds": seconds})

    def events(self, last_event_id: str | None = None) -> Iterator[dict[str, Any]]:
        """The lab's event stream (`GET /events`, SSE): a status snapshot, then run and job
        events, heartbeats as {"comment": "heartbeat"}; resumes after `last_event_id`."""
        yield from self._sse("/events", last_event_id)

    def _sse(self, path: str, last_event_id: str | None) -> Iterator[dict[str, Any]]:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        try:
            with self.http.stream("GET", path, headers=headers, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(
                        f"GET {path} → {response.status_code}: {response.json().get('error')}",
                        response.status_code,
                    )
                yield from parse_sse(response.iter_lines())
        except httpx.HTTPError as exc:
            raise ApiError(f"the event stream at {self.api_url}{path} broke off ({exc})") from None

    # --- single jobs ----------------------------------------------------------------------------
    def create_job(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        attempts: int | None = None,
        delay_s: float | None = None,
        run_at: str | None = None,
        priority: str | None = None,
        target: str | None = None,
    ) -> dict[str, Any]:
        """Queue one job; with `delay_s` or `run_at` (epoch ms or ISO 8601) it runs then;
        `priority` is low, normal (the default) or high; `target` who runs it: lab (the
        default) or bullmq."""
        body: dict[str, Any] = {"kind": kind, "payload": payload or {}}
        if target is not None:
            body["target"] = target
        if priority is not None:
            body["priority"] = priority
        if attempts is not None:
            body["attempts"] = attempts
        if delay_s is not None:
            body["delaySeconds"] = delay_s
        if run_at is not None:
            body["runAt"] = run_at
        return self._call("POST", "/jobs", json=body)

    def run_job_now(self, job_id: str) -> dict[str, Any]:
        """A delayed job runs now (`POST /jobs/{id}/run-now`)."""
        return self._call("POST", f"/jobs/{job_id}/run-now")

    def jobs(self, **filters: Any) -> dict[str, Any]:
        """`GET /jobs`: filters state, kind, runId, q, from, to, limit, cursor → {jobs,
        nextCursor}; `from` and `to` are passed as since= and until= (epoch ms or ISO 8601)."""
        filters = {{"since": "from", "until": "to"}.get(k, k): v for k, v in filters.items()}
        return self._call(
            "GET", "/jobs", params={k: v for k, v in filters.items() if v is not None}
        )

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{job_id}/cancel")

    def retry_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{job_id}/retry")

    def delete_job(self, job_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/jobs/{job_id}")

    def prune_jobs(self, older_than_s: float | None = None) -> dict[str, Any]:
        body = {} if older_than_s is None else {"olderThanSeconds": older_than_s}
        return self._call("POST", "/jobs/prune", json=body)

    def bulk(
        self,
        action: str,
        dry_run: bool = False,
        limit: int | None = None,
        every: bool = False,
        **filters: Any,
    ) -> dict[str, Any]:
        """Retry, cancel or delete every single job `filters` match (`state`, `kind`, `ids`);
        one call changes at most `limit` (`POST /jobs/bulk`); see `remaining`. With no filter,
        `every=True` must say that every job is meant."""
        body: dict[str, Any] = {"action": action, "dryRun": dry_run}
        if every:
            body["all"] = True
        body["filter"] = {k: v for k, v in filters.items() if v is not None}
        if limit is not None:
            body["limit"] = limit
        return self._call("POST", "/jobs/bulk", json=body, timeout=120)

    def follow_job(self, job_id: str, last_event_id: str | None = None) -> Iterator[dict[str, Any]]:
        """The job's events (SSE) until it ends; heartbeats come as {"comment": "heartbeat"}."""
        yield from self._sse(f"/jobs/{job_id}/stream", last_event_id)

    # --- queues and pausing -------------------------------------------------------------------
    def queues(self) -> dict[str, Any]:
        return self._call("GET", "/queues")

    def queue_action(self, name: str, action: str) -> dict[str, Any]:
        """`pause`, `resume` or `purge` one of the lab's queues (`POST /queues/{name}/...`)."""
        return self._call("POST", f"/queues/{quote(name, safe='')}/{action}")

    def pause_run(self, paused: bool = True) -> dict[str, Any]:
        return self._call("POST", "/run/pause" if paused else "/run/resume")

    # --- dead letters ---------------------------------------------------------------------------
    def dead_letters(self, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Dead-lettered messages, oldest first (`GET /dead-letters`); none is taken away."""
        return self._call("GET", "/dead-letters", params={"limit": limit, "offset": offset})

    def replay_dead_letters(self, ids: list[str] | None = None) -> dict[str, Any]:
        """Replay these letters, or every one when `ids` is None (`POST /dead-letters/replay`)."""
        body: dict[str, Any] = {"all": True} if ids is None else {"ids": ids}
        return self._call("POST", "/dead-letters/replay", json=body)

    def purge_dead_letters(self) -> dict[str, Any]:
        return self._call("DELETE", "/dead-letters")


def parse_sse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Server-sent events as {id, event, data}; comments (heartbeats) as {"comment": ...}."""
    event: dict[str, Any] = {}
    for line in lines:
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line == "":
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        else:
            name, _, value = line.partition(":")
            event[name] = value.lstrip(" ")
