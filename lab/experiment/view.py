"""`Experiment.from_file(path).run()` in a notebook: the runner on a thread of its own (the kernel
stays free), with a view of the trials done, the current trial and an ETA; `.frame()` the rows
so far, `.stop()` ends after the current trial (`resume=True` goes on later)."""

from __future__ import annotations

import html
import threading
from pathlib import Path
from typing import Any

import ipywidgets as w

from lab.config import Settings
from lab.experiment import results
from lab.experiment.runner import Progress, Runner
from lab.experiment.spec import Spec
from lab.views.notebook import lab_settings


class Experiment:
    def __init__(
        self, spec: Spec, folder: str | Path | None = None, settings: Settings | None = None
    ):
        self.spec = spec
        self.folder = Path(folder or Path("experiments") / "results" / spec.name)
        self.settings = settings or lab_settings()
        self.bar = w.IntProgress(value=0, min=0, max=spec.trial_count, description="trials")
        self.label = w.HTML()
        self.view = w.VBox([self.bar, self.label])
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: str | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Experiment:
        return cls(Spec.from_file(path), **kwargs)

    def run(self, resume: bool = False) -> w.VBox:
        """Start the plan in the background; returns the view to display."""
        runner = Runner(self.spec, self.folder, self.settings, resume=resume,
                        progress=self._show)  # fmt: skip
        runner.check()  # a folder it may not write to is said now, not on the thread
        self._stop.clear()
        self.thread = threading.Thread(target=self._run, args=(runner,), daemon=True)
        self.thread.start()
        return self.view

    def _run(self, runner: Runner) -> None:
        try:
            runner.run(self._stop)
        except Exception as exc:  # noqa: BLE001 - shown in the view
            self.error = f"{type(exc).__name__}: {exc}"
            self.label.value = f'<span style="color:#b42318">{html.escape(self.error)}</span>'

    def _show(self, progress: Progress) -> None:
        self.bar.value = progress.done
        eta = f", about {progress.eta_s / 60:.1f} min left" if progress.eta_s else ""
        # The trial's label is the file's levels: text, never markup.
        now = f"running <code>{html.escape(progress.current)}</code>" if progress.current else ""
        now = now or "done"
        self.label.value = f"{progress.done} of {progress.total} trials; {now}{eta}"

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout_s: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout_s)

    def frame(self) -> Any:
        return results.load(self.folder)
