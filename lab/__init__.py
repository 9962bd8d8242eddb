"""lab: an experiment harness and load lab for a queue pipeline.

Five names to learn it by: a *run* (X jobs at Y per minute, `lab.runtime.state`), a *job*
(`lab.runtime.messages`, handlers in `workers/`), the *scheduler* (`lab.runtime.scheduler`), the
*worker* (`lab.runtime.worker`) and the *supervisor* (`lab.ops.supervisor`). The API is
`lab.api.app`, the CLI `lab.cli`.

    lab/runtime/   what runs a pipeline: messages, keys, state, store, broker, worker, scheduler
    lab/api/       the HTTP API over it: routes, the status snapshot, metrics, the admin page
    lab/ops/       what starts and stops it: the stack of services, the supervisor, reset, logs
    lab/measure/   what measures it: bench, load tests, drills and their reports
    lab/views/     what shows it in a notebook: the control panel
    lab/cli/       the command line, one module per command
"""

__version__ = "0.6.0.dev0"
