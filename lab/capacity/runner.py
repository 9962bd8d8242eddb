"""Capacity searches into a folder, one per configuration of a capacity spec (each combination
of its factors' levels: workers, concurrency, a fault preset, …), resumable.

Each search runs in a namespace of its own with the lab started once for it (`Supervisor`, its
workers and their settings; behind a fault proxy of its own for a `fault` level), probes until
`lab.capacity.bracket` says it is done, then stops everything and deletes its namespace. A row
is appended for each probe as it ends (`lab.experiment.results`: results.csv, results.parquet)
and capacity.json is written again after each search (`lab.capacity.answer`).

The folder, its manifest and `running.json` are the experiment runner's (`Runner`): another
experiment's folder is refused, rows need `--resume`, and `--resume` after a kill first stops
what the interrupted search left and deletes its namespace, then every search goes on from the
probes in its rows: the decisions are pure, so the same probes give the same next one.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from datetime import UTC, datetime
from typing import Any

from lab import targets
from lab.capacity import answer, bracket
from lab.capacity.plan import bounds_of, configurations, probes_of, worst_case_s
from lab.capacity.probe import Prober, Probing
from lab.experiment import results
from lab.experiment.plan import Trial
from lab.experiment.runner import Runner
from lab.experiment.trial import fault_proxy, namespace
from lab.measure import delivery
from lab.ops.reset import reset
from lab.ops.supervisor import Supervisor
from lab.runtime import slo

ANSWER = "capacity.json"


class Searches(Runner):
    """The experiment runner's folder and resume, with a capacity search per configuration."""

    @functools.cached_property
    def bounds(self) -> bracket.Bounds:
        return bounds_of(self.spec)

    @functools.cached_property
    def objectives(self) -> list[slo.Objective]:
        found = slo.parse(self.spec.slo)
        for objective in found:  # each is judged over the step, whatever it said
            if objective.window_s:
                objective.window_s = self.spec.capacity["stepSeconds"]
        return found

    def planned(self) -> dict[str, Any]:
        worst = bracket.worst_case(self.bounds)
        return {"plan": [{"configuration": c, "levels": levels, "worstCaseProbes": worst}
                         for c, levels in configurations(self.spec)],
                "estimateSeconds": round(worst_case_s(self.spec))}  # fmt: skip

    def run(self, stop: threading.Event | None = None) -> list[dict[str, Any]]:
        """Every search that is not done yet; returns the rows made now."""
        self.prepare()
        rows = self.rows()
        made: list[dict[str, Any]] = []
        for c, levels in configurations(self.spec):
            if stop is not None and stop.is_set():
                break
            made += self.search(c, levels, [r for r in rows if int(r["configuration"]) == c])
            self.write_answer()
        return made

    def rows(self) -> list[dict[str, Any]]:
        """The probes' rows so far, each checked like a request: the folder may hold anything,
        and what a search decides next comes from them (`ResultsError` names the row)."""
        if not (self.folder / results.CSV).is_file():
            return []
        frame = results.load(self.folder)
        rows = [{k: v for k, v in row.items() if v == v} for row in frame.to_dict("records")]
        searches = len(self.spec.configurations)
        for i, row in enumerate(rows, start=1):
            problem = probe_problem(row, searches)
            if problem:
                raise results.ResultsError(f"{self.folder / results.CSV}: row {i}: {problem}; "
                                           "not a row lab wrote")  # fmt: skip
        return rows

    def write_answer(self) -> dict[str, Any]:
        found = answer.of(self.spec, self.rows())
        results.write_json(self.folder / ANSWER, found)
        return found

    def search(self, c: int, levels: dict[str, Any], done: list[dict[str, Any]]) -> list[dict]:
        """One configuration's search, going on from its rows `done`."""
        probes = probes_of(done, c)
        step = bracket.decide(probes, self.bounds)
        label = ", ".join(f"{k}={v}" for k, v in levels.items()) or "(no factors)"
        if step.done:
            return []
        setup = self.spec.setup(levels)
        settings = namespace(self.settings, self.spec, Trial(f"c{c:03d}", c, 1, levels))
        number = max((int(r["probe"]) for r in done), default=0)
        made = []
        with fault_proxy(settings, setup.fault) as (through, proxy_pid):
            self._started(through, proxy_pid)
            supervisor = Supervisor(through)
            prober: Prober | None = None
            try:
                target = setup.body.get("target") or targets.DEFAULT
                delivery.start(supervisor, through, setup.workers, target)
                slots = setup.workers * int(setup.settings.get("concurrency", through.concurrency))
                prober = Prober(Probing(through, setup.body, self.objectives, self.spec.warmup_s,
                                        self.spec.capacity["stepSeconds"], slots))  # fmt: skip
                while step.rate is not None:
                    number += 1
                    self.say(f"lab: {label}: probe {number} at {step.rate:,.6g} jobs/s "
                             f"({step.phase})")  # fmt: skip
                    row = self._probe(prober, c, number, levels, step)
                    made.append(row)
                    if row["error"]:
                        self.say(f"lab: {label}: probe {number} failed: {row['error']}")
                        break
                    self.say(f"lab: {label}: {'held' if row['held'] else 'broke'}"
                             f"{': ' + row['broke'] if row['broke'] else ''}")  # fmt: skip
                    probes.append(bracket.Probe(step.rate, bool(row["held"])))
                    step = bracket.decide(probes, self.bounds)
            finally:
                if prober is not None:
                    prober.close()
                supervisor.down(grace_s=10)
                with contextlib.suppress(Exception):  # a service gone: the namespace is unique
                    reset(through)
        (self.folder / results.RUNNING).unlink(missing_ok=True)
        if step.done:
            self.say(f"lab: {label}: done, {step.why}")
        return made

    def _probe(
        self, prober: Prober, c: int, number: int, levels: dict[str, Any], step: bracket.Step
    ) -> dict[str, Any]:
        began = datetime.now(UTC).isoformat(timespec="seconds")
        row: dict[str, Any] = {"trial": f"c{c:03d}-p{number:02d}", "configuration": c,
                               "probe": number, **levels, "phase": step.phase,
                               "rate": step.rate, "startedAt": began}  # fmt: skip
        try:
            row.update(prober.probe(float(step.rate or 0)))
            row["error"] = ""
        except KeyboardInterrupt:
            raise  # no row: --resume probes this rate again
        except Exception as exc:  # noqa: BLE001 - a probe that errors is a row; its search ends
            row["error"] = f"{type(exc).__name__}: {exc}"[:500]
        row["commit"] = self.commit
        results.append(self.folder, row)
        return row


def probe_problem(row: dict[str, Any], searches: int) -> str:
    """What is wrong with a probe's row read back, or ""."""
    checks = (("configuration", 1, searches), ("probe", 1, 10_000))
    for key, low, high in checks:
        value = row.get(key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return f"{key} is not a whole number from {low} to {high:,}"
    if row.get("error"):
        return ""
    rate = row.get("rate")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate < 1e7:
        return "rate is not a number of jobs per second"
    if row.get("held") not in (True, False, "True", "False"):
        return "held is neither True nor False"
    return ""
