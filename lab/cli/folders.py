"""Running into a results folder, for the commands that do (`lab experiment run`, `lab capacity`):
the folder is checked before the stack starts, and a folder refused is one line."""

from __future__ import annotations

from typing import Any

from lab.cli.terminal import bad_input, note
from lab.config import Settings


def run_into(runner: Any, settings: Settings) -> list[dict[str, Any]] | None:
    """The runner's rows made now; None, once the folder was refused in one line, before the
    stack starts (an experiment's `Runner`, a capacity search's `Searches`)."""
    from lab.experiment.results import ResultsError
    from lab.ops import stack

    try:
        runner.check()
        stack.up(settings, say=note)
        return list(runner.run())
    except ResultsError as exc:
        bad_input(str(exc))
        return None
