"""Worker middleware: named hooks around each delivery, in the spirit of Dramatiq's.

The worker's loop (receive, run the handler, record, ack) stays on one screen; what cuts across
every delivery lives here, one module each, and a new such behaviour is one module plus one line
in `default_stack`. The hooks, in the order a delivery meets them:

    on_start(worker)                  the worker is about to consume
    before_process(worker, batch)     before anything of a batch (or a one-by-one job) starts:
                                      return "requeue" to put every delivery back unstarted
    counts(outcome)                   what it counts for a run's job, added to the batch's one
                                      Redis call and applied only when the job's bit was new
                                      (a redelivery adds nothing): [Count(key, field, n), ...]
    after_process(worker, outcomes,   on the connection's thread, once a batch (or a job) was
                  counted)            written and counted: `counted` is (newly processed, newly
                                      failed) as the exactly-once count found them
    on_success / on_retry /           then, as each outcome is acted on (before its ack)
    on_dead_letter(worker, outcome)
    on_heartbeat(worker) -> fields    each heartbeat: fields it adds (named in beats.WORKER),
                                      and its periodic work (renewing leases, watching pauses)
    on_stop(worker)                   the worker stops

Order matters where hooks decide: the first `before_process` that says "requeue" wins, and
`default_stack` puts the pause first so nothing else runs for a paused queue. Hooks that only
observe see every outcome whatever the order. A hook that raises is logged and skipped: a
middleware's bug never costs a delivery.

    hooks.py     the hooks (`Middleware`) and what a counting hook returns (`Count`)
    stack.py     the middleware in order (`Stack`) and `default_stack`
    pause.py, leases.py, counters.py    the default stack; kinds.py, the worked example

A middleware types the worker it is handed as `lab.runtime.seams.WorkerSeam`, never as the
`Worker` class: it sits below the worker, which imports it.
"""

from lab.runtime.middleware.counters import Counters
from lab.runtime.middleware.hooks import HOOKS, Count, Decision, Middleware
from lab.runtime.middleware.kinds import KindCounts
from lab.runtime.middleware.leases import Leases
from lab.runtime.middleware.pause import Pause
from lab.runtime.middleware.stack import ACTED, Stack, default_stack

__all__ = ["ACTED", "HOOKS", "Count", "Counters", "Decision", "KindCounts", "Leases",
           "Middleware", "Pause", "Stack", "default_stack"]  # fmt: skip
