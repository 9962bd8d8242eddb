"""Running an experiment's plan, trial by trial, into its folder; resumable.

Before a trial starts, its namespace goes to `running.json`; after it ends (measured, or with
its error) its row is appended and `running.json` cleared. After a kill (Ctrl-C, kill -9, a
reboot) `--resume` first stops what the interrupted trial left running and deletes its
namespace, then runs only the trials with no row: no trial is ever counted twice. A file that
changed since the folder was started is refused.

The folder is this experiment's when its `manifest.json` (written before the first trial
starts) names the experiment and the file's hash. Any other folder that is not empty is
refused, so `--out` never writes into a folder of something else; `running.json` is acted on
only under `--resume`, and only once it reads as this runner writes it (lab.experiment.running).
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.config import Settings, project_root
from lab.experiment import results, running
from lab.experiment.plan import Trial, estimate_s, trials
from lab.experiment.spec import Spec
from lab.experiment.trial import namespace, run_trial
from lab.version import __version__


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
        """The trials already done. Refuses (`ResultsError`, naming the folder) a folder that is
        not empty and not this experiment's, one of another version of the file, and one with
        rows or an interrupted trial unless resumed; under `--resume`, a running.json that does
        not read as this runner writes it."""
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise results.ResultsError(f"{folder}: not a folder; give a folder for --out")
        if not folder.exists() or not any(folder.iterdir()):
            return set()
        manifest = results.read_object(folder / results.MANIFEST)
        if manifest is None or manifest.get("name") != self.spec.name:
            raise results.ResultsError(
                f"{folder} is not empty and not a folder of experiment {self.spec.name} (its "
                "manifest.json does not name it): give an empty or new --out"
            )
        if manifest.get("digest") != self.spec.digest:
            raise results.ResultsError(
                f"{folder} holds the results of another version of this file (its hash "
                "differs): give a new --out, or restore the file"
            )
        done = results.done_ids(folder)
        interrupted = (folder / results.RUNNING).exists()
        if (done or interrupted) and not self.resume:
            held = f"{len(done)} trials of this experiment" if done else "a trial of it"
            held += " and an interrupted one" if done and interrupted else ""
            held += " that was interrupted" if interrupted and not done else ""
            raise results.ResultsError(
                f"{folder} already holds {held}: --resume runs the rest, or give a new --out"
            )
        if self.resume:
            running.read(folder, self.spec.name)  # refused now, before anything starts
        return done

    def prepare(self) -> set[str]:
        """The folder made ready to run into (`check`, then under --resume what an interrupted
        trial left is cleaned up, then the manifest); returns the trials already done."""
        done = self.check()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise results.ResultsError(f"{self.folder}: cannot be made ({exc})") from None
        self._clean_up_interrupted()
        self._write_manifest()
        return done

    def run(self, stop: threading.Event | None = None) -> list[dict[str, Any]]:
        """Every trial without a row; returns the rows made now."""
        if self.spec.procedure == "capacity":  # its searches have no trials
            raise results.ResultsError(
                f"{self.spec.name} is a capacity search: lab capacity, lab experiment run or "
                "lab.capacity.search run it"
            )
        done = self.prepare()
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
        results.write_json(self.folder / results.RUNNING, running.record(settings, faults_pid))

    def _clean_up_interrupted(self) -> None:
        """Under --resume: stop what an interrupted trial left running, delete its namespace."""
        interrupted = running.read(self.folder, self.spec.name) if self.resume else None
        if interrupted is None:
            return
        running.clean_up(interrupted, self.settings, self.say)
        (self.folder / results.RUNNING).unlink(missing_ok=True)

    def planned(self) -> dict[str, Any]:
        """The manifest's plan: every trial, and the time they take."""
        return {"plan": [{"trial": t.id, "configuration": t.configuration,
                          "repetition": t.repetition, "levels": t.levels} for t in self.plan],
                "estimateSeconds": round(estimate_s(self.spec))}  # fmt: skip

    def _write_manifest(self) -> None:
        from lab.measure.reports import provenance

        manifest = results.read_object(self.folder / results.MANIFEST) or {}
        code = provenance.git(project_root(Path(__file__).parent))
        self.commit = str(code.get("commit") or "")
        manifest.update({
            "name": self.spec.name,
            "digest": self.spec.digest,
            "spec": {"repetitions": self.spec.repetitions, "order": self.spec.order,
                     "seed": self.spec.seed, "warmupSeconds": self.spec.warmup_s,
                     "run": self.spec.run, "factors": self.spec.factors, "slo": self.spec.slo,
                     "procedure": self.spec.procedure, "capacity": self.spec.capacity},
            **self.planned(),
            "lab": __version__,
            "python": platform.python_version(),
            "machine": provenance.machine(),
            "git": code,
        })  # fmt: skip
        manifest.setdefault("startedAt", datetime.now(UTC).isoformat(timespec="seconds"))
        results.write_json(self.folder / results.MANIFEST, manifest)
