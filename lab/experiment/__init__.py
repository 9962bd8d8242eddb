"""Experiments: factors × levels × repetitions, each trial a run in its own namespace, the rows
in a DataFrame, the answers with confidence intervals.

spec.py      the experiment file (TOML), checked before anything runs
factors.py   what a file can vary: one class per factor (`FACTORS`), its levels and its effect
tomlfile.py  the file's text into data, every number bounded before anything converts it
plan.py      its trials: configurations × repetitions, ids, order, estimated time
trial.py     one trial: processes for its settings, one run, its measures, torn down
runner.py    the plan into a folder, row by row; resumable after any interruption
running.py   running.json: the trial in progress, read back like a request under --resume
results.py   results.csv, results.parquet, manifest.json; `load`
throughput.py  `lab bench throughput` as a built-in experiment (above lab.measure's bench)
peers.py     its `--peers`: which targets, and each one's figures beside lab's
analysis.py  means with 95 % intervals, per-factor effects, pairwise verdicts (real or noise)
view.py      `Experiment`: the same from a notebook, with a progress view that does not block
"""

from lab.experiment.results import load
from lab.experiment.spec import Spec, SpecError

__all__ = ["Experiment", "Spec", "SpecError", "load"]


def __getattr__(name: str):  # noqa: ANN202 - the widget view loads ipywidgets only when asked
    if name == "Experiment":
        from lab.experiment.view import Experiment

        return Experiment
    raise AttributeError(name)
