"""lab's kinds on Dramatiq: the worker app of the `dramatiq` target (lab/targets/dramatiq.py).

One actor, `lab_job`, runs one attempt of a lab job (`lab.targets.tasks.run_attempt`) with
Dramatiq's attempt count (its `retries` option + 1). A failure the kind calls permanent raises
`Permanent`, which the actor `throws`: Dramatiq fails the message at once, to the queue's dead
letters (`.XQ`), never retried. Any other raises Dramatiq's `Retry`: its `Retries` middleware
sends the message again after a backoff (from the first step of `LAB_RETRY_LADDER_MS`,
doubling with jitter, at most its last step), `LAB_MAX_ATTEMPTS` attempts in all. The shim is
installed as a user installs it (`lab.targets.dramatiq_shim.install`).

    python -m lab.targets.dramatiq_app --threads N

runs Dramatiq's `Worker` (consumer threads that own the RabbitMQ connections and do every ack,
N worker threads that run actors) in this one process, consuming `<LAB_QUEUE>.dramatiq` and
its delay queue, as the `dramatiq` command's worker process does: after
`process_boot`, start; on SIGTERM or SIGINT, stop (jobs running finish, prefetched ones go
back to RabbitMQ), close. `lab worker --target dramatiq` execs it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

import dramatiq
from dramatiq.middleware import CurrentMessage

from lab import config
from lab.targets.dramatiq import ACTOR, make_broker
from lab.targets.dramatiq_shim import install
from lab.targets.shim import shim
from lab.targets.tasks import Permanent, Retryable, run_attempt

SHUTDOWN_MS = 10_000  # running jobs get this long to finish on SIGTERM (the supervisor waits 15 s)

settings = config.load()
QUEUE = f"{settings.queue}.dramatiq"
broker = make_broker(settings, "lab-dramatiq-worker")
broker.add_middleware(CurrentMessage())
install(broker)
dramatiq.set_broker(broker)
_ladder = settings.retry_ladder


def _attempt() -> int:
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else 0
    return retries + 1 if isinstance(retries, int) else 1


@dramatiq.actor(
    actor_name=ACTOR,
    queue_name=QUEUE,
    max_retries=max(0, settings.max_attempts - 1),
    min_backoff=_ladder[0],
    max_backoff=_ladder[-1],
    throws=(Permanent,),
)
def lab_job(message: str) -> None:
    try:
        run_attempt(message, _attempt(), shim().worker_id)  # documents name the worker
    except Retryable as exc:
        raise dramatiq.Retry(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name if __spec__ else __name__}",
                                     description="a Dramatiq worker of lab's kinds")  # fmt: skip
    parser.add_argument("--threads", type=int, default=settings.concurrency,
                        help="jobs run at once (default LAB_CONCURRENCY)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=max(1, args.threads))
    worker.start()
    logging.getLogger(__name__).info("consuming %s with %d threads", QUEUE, args.threads)
    stopping.wait()
    worker.stop(timeout=SHUTDOWN_MS)
    broker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
