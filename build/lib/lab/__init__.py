"""lab: an experiment harness and load lab for a queue pipeline.

Five names to learn it by: a *run* (X jobs at Y per minute, `lab.state`), a *job*
(`lab.messages`, handlers in `workers/`), the *scheduler* (`lab.scheduler`), the *worker*
(`lab.worker`) and the *supervisor* (`lab.supervisor`). The API is `lab.api`, the CLI `lab.cli`.
"""

__version__ = "0.1.0"
