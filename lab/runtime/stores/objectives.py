"""Objectives: a run's SLOs judged on their windows once a second by the scheduler leader
(`lab.runtime.slo` decides; this reads the windows and records the states). It reads the run's
record, the latency histograms of the 10-second windows an objective looks at and the seconds of
its timeline it covers, so a judgment costs what the windows hold, never what the run's whole
life does; and it writes `sloState` (and, on a breach with `abortOnBreach`, the run's end)
through `breach_run.lua`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lab.runtime import latency, scripts, shapes, slo
from lab.runtime.headage import HeadAge
from lab.runtime.stores.base import RedisStore

# The run's fields a judgment reads every second; `shapes`, which a run that changed its shape
# often makes large, is read only when the shape's version moved (`_planner`).
FIELDS = (
    *("slo", "state", "startedAt", "sloGrace", "sloState", "abortOnBreach", "shapeVersion"),
    *("pauses", "paused", "pausedAt", "stoppedAt", "xTotal", "seed", "shape", "yMinutes"),
)
PLAN_MOVES = ("shapeVersion", "paused", "pausedAt", "stoppedAt")


class Objectives(RedisStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._planners: dict[tuple[str, ...], Callable[[float], int]] = {}

    def judge(self, run_id: str, head: HeadAge) -> str:
        """Judge the run's objectives on their windows and record their states; with
        `abortOnBreach` and a breach, the run stops releasing and ends `breached`. Returns
        `none` (no objectives), `ok` or `breached`."""
        k = self.keys
        h = dict(zip(FIELDS, self.redis.hmget(k.run(run_id), FIELDS), strict=True))
        if not h.get("slo") or h.get("state") != "running":
            return "none"
        now_ms = head.now_ms
        objectives = slo.parse(json.loads(h["slo"]))
        longest = max((o.window_s for o in objectives), default=0)
        since_s = (now_ms - longest * 1000) // 1000
        first_window, last_window = since_s // latency.WINDOW_S, now_ms // 1000 // latency.WINDOW_S
        seconds = list(range(since_s, now_ms // 1000 + 1)) if longest else []
        pipe = self.redis.pipeline(transaction=False)
        for window in range(first_window, last_window + 1):
            pipe.hgetall(k.run_latency_window(run_id, window))
        fields = [f"{s}:{f}" for s in seconds for f in ("processed", "failed")]
        pipe.hmget(k.run_timeline(run_id), fields) if fields else pipe.echo("")
        *windows_raw, counted = pipe.execute()
        by_window = dict(zip(range(first_window, last_window + 1), windows_raw, strict=True))
        per_second = dict(zip(fields, counted or [], strict=False))
        planned = self._planner(run_id, h)
        unfinished = {"endToEnd": head.ages(head.unsettled), "queueWait": head.ages(head.waiting)}
        windows = []
        for objective in objectives:
            since_ms = now_ms - objective.window_s * 1000
            histograms = {m: latency.Histogram() for m in latency.METRICS}
            for window, raw in by_window.items():
                if window >= since_ms // 1000 // latency.WINDOW_S:
                    for metric, _kind, bucket, n in latency.parse_fields(raw):
                        histograms[metric].add(bucket, n)
            done = failed = 0
            for second in range(since_ms // 1000, now_ms // 1000 + 1):
                if second * 1000 >= since_ms:
                    done += int(per_second.get(f"{second}:processed") or 0)
                    failed += int(per_second.get(f"{second}:failed") or 0)
            asked = planned(now_ms / 1000) - planned(since_ms / 1000)
            windows.append(slo.Window(histograms, done, failed, asked, head.age_ms, unfinished))
        elapsed = (now_ms - int(h["startedAt"] or now_ms)) / 1000
        grace = float(h["sloGrace"]) if h.get("sloGrace") else None
        before = json.loads(h["sloState"]) if h.get("sloState") else None
        states = slo.judge(objectives, windows, elapsed, grace, before, now_ms)
        breached = any(s["state"] == "breached" for s in states)
        answer = self.call(
            scripts.BREACH_RUN,
            keys={"active": k.active_run, "run": k.run(run_id), "events": k.events},
            args={"run_id": run_id, "maxlen": self.settings.event_stream_len,
                  "states": json.dumps(states, separators=(",", ":")),
                  "abort": "1" if breached and h.get("abortOnBreach") == "1" else "0"},
        )  # fmt: skip
        return "breached" if breached or answer[0] == "breached" else "ok"

    def _planner(self, run_id: str, h: dict[str, Any]) -> Callable[[float], int]:
        """The run's plan over time (`shapes.planner`), made again only when its shapes, pauses
        or end moved."""
        pauses = str(h.get("pauses") or "")
        key = (run_id, str(len(pauses)), pauses[-64:], *(str(h.get(f) or "") for f in PLAN_MOVES))
        found = self._planners.get(key)
        if found is None:
            run = {f: v for f, v in h.items() if v is not None}
            run["shapes"] = self.redis.hget(self.keys.run(run_id), "shapes") or ""
            found = shapes.planner(run)
            self._planners = {key: found}  # one run is judged at a time
        return found
