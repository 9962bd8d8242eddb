"""Running an experiment's plan, trial by trial, into its folder; resumable.

Before a trial starts, its namespace goes to `running.json`; after it ends (measured, or with
its error) its row is appended and `running.json` cleared. After a kill (Ctrl-C, kill -9, a
reboot) `--resume` first stops what the interrupted trial left running and deletes its
namespace, then runs only the trials with no row: no trial is ever counted twice. A file that
changed since the folder was started is refused.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab import __version__
from lab.config import Settings, project_root
from lab.experiment import results
from lab.experiment.plan import Trial, estimate_s, trials
from lab.experiment.spec import Spec
from lab.experiment.trial import namespace, run_trial


@dataclass
class Progress:
    done: int
    total: int
    current: str  # the trial running now ("" between trials)
    eta_s: float | None


class Runner:
    def __init__(
        self,
        spec: Spec,
        folder: Path,
        settings: Settings,
        resume: bool = False,
        say: Callable[[str], None] = lambda _line: None,
        progress: Callable[[Progress], None] = lambda _p: None,
        observe: Callable[[Settings, str, dict[str, Any]], None] | None = None,
    ):
        self.spec, self.folder, self.settings = spec, Path(folder), settings
        self.resume, self.say, self.progress = resume, say, progress
        self.observe = observe  # told each run's settings, id and row before its keys go
        self.plan = trials(spec)
        self.commit = ""  # of the tree the trials run, read once when the run starts

    def check(self) -> set[str]:
        """The trials already done; refuses a folder of another file, or one not resumed."""
        manifest = results.read_json(self.folder / results.MANIFEST)
        done = results.done_ids(self.folder)
        if manifest and manifest.get("digest") != self.spec.digest:
            raise results.ResultsError(
                f"{self.folder} holds the results of another version of this file (its hash "
                "differs): give a new --out, or restore the file"
            )
        if done and not self.resume:
            raise results.ResultsError(
                f"{self.folder} already holds {len(done)} trials of this experiment: --resume "
                "runs the rest, or give a new --out"
            )
        return done

    def run(self, stop: threading.Event | None = None) -> list[dict[str, Any]]:
        """Every trial without a row; returns the rows made now."""
        self.folder.mkdir(parents=True, exist_ok=True)
        done = self.check()
        self._clean_up_interrupted()
        self._write_manifest()
        left = [t for t in self.plan if t.id not in done]
        if done:
            self.say(f"lab: {len(done)} of {len(self.plan)} trials already done; "
                     f"{len(left)} to run")  # fmt: skip
        made = []
        began = time.monotonic()
        for i, trial in enumerate(left):
            if stop is not None and stop.is_set():
                break
            spent = time.monotonic() - began
            eta = spent / i * (len(left) - i) if i else estimate_s(self.spec) * len(left) / len(
                self.plan)  # fmt: skip
            self.progress(Progress(len(done) + i, len(self.plan), trial.label, eta))
            self.say(f"lab: trial {len(done) + i + 1} of {len(self.plan)}: {trial.id} "
                     f"({trial.label})")  # fmt: skip
            made.append(self.run_one(trial))
        self.progress(Progress(len(results.done_ids(self.folder)), len(self.plan), "", 0.0))
        return made

    def run_one(self, trial: Trial) -> dict[str, Any]:
        settings = namespace(self.settings, self.spec, trial)
        row: dict[str, Any] = {"trial": trial.id, "configuration": trial.configuration,
                               "repetition": trial.repetition, **trial.levels}  # fmt: skip
        row["startedAt"] = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            row.update(run_trial(self.spec, trial, settings, started=self._started,
                                 observe=self.observe))  # fmt: skip
            row["error"] = ""
        except KeyboardInterrupt:
            raise  # the trial has no row: --resume runs it again
        except Exception as exc:  # noqa: BLE001 - a trial that errors is a row, not the end
            row["error"] = f"{type(exc).__name__}: {exc}"[:500]
            self.say(f"lab: trial {trial.id} failed: {row['error']}")
        row["commit"] = self.commit
        results.append(self.folder, row)
        (self.folder / results.RUNNING).unlink(missing_ok=True)
        return row

    def _started(self, settings: Settings, faults_pid: int | None = None) -> None:
        results.write_json(self.folder / results.RUNNING, {"prefix": settings.prefix,
                           "queue": settings.queue, "index": settings.es_index,
                           "apiUrl": settings.api_url, "faultsPid": faults_pid})  # fmt: skip

    def _clean_up_interrupted(self) -> None:
        """Stop what an interrupted trial left running and delete its namespace."""
        running = results.read_json(self.folder / results.RUNNING)
        if not running:
            return
        from lab.ops.reset import reset
        from lab.ops.supervisor import Supervisor

        settings = self.settings.with_overrides(
            prefix=running["prefix"], queue=running["queue"], es_index=running["index"],
            api_url=running["apiUrl"],
        )  # fmt: skip
        leftover = Supervisor(settings)
        stopped = leftover.down(grace_s=5)
        _stop_fault_proxy(running.get("faultsPid"))
        reset(settings)
        self.say(f"lab: cleaned up the interrupted trial ({len(stopped)} processes stopped)")
        (self.folder / results.RUNNING).unlink(missing_ok=True)

    def _write_manifest(self) -> None:
        from lab.measure.reports import provenance

        manifest = results.read_json(self.folder / results.MANIFEST) or {}
        code = provenance.git(project_root(Path(__file__).parent))
        self.commit = str(code.get("commit") or "")
        manifest.update({
            "name": self.spec.name,
            "digest": self.spec.digest,
            "spec": {"repetitions": self.spec.repetitions, "order": self.spec.order,
                     "seed": self.spec.seed, "warmupSeconds": self.spec.warmup_s,
                     "run": self.spec.run, "factors": self.spec.factors, "slo": self.spec.slo},
            "plan": [{"trial": t.id, "configuration": t.configuration,
                      "repetition": t.repetition, "levels": t.levels} for t in self.plan],
            "estimateSeconds": round(estimate_s(self.spec)),
            "lab": __version__,
            "python": platform.python_version(),
            "machine": provenance.machine(),
            "git": code,
        })  # fmt: skip
        manifest.setdefault("startedAt", datetime.now(UTC).isoformat(timespec="seconds"))
        results.write_json(self.folder / results.MANIFEST, manifest)


def _stop_fault_proxy(pid: object) -> None:
    """The interrupted trial's own fault proxy, if it is still that process (a pid can be
    reused: only a `lab fault serve` is stopped)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if b"fault" in cmdline and b"serve" in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
