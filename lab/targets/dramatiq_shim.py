"""The lab shim for a Dramatiq app: one middleware that tells lab what each job did.

    from lab.targets.dramatiq_shim import install
    install(broker)  # after the broker is made, before the worker starts

`install` puts `LabShim` first in the broker's middleware, so its `after_*` hooks run last
(Dramatiq runs them in reverse order), once `Retries` has decided whether the message fails for
good; and it declares lab's queue (`<LAB_QUEUE>.dramatiq`) on the broker, so `dramatiq yourapp`
consumes what lab submits to your actors beside your own queues.

Per message whose id is a lab job id (lab submits with `message_id` = `<runId>-<seq>`; any other
message is left alone), for every actor, lab's and yours:

    before_process_message   `started`, attempt = Dramatiq's `retries` option + 1
    after_process_message    `ended`: done (no exception), failed (Dramatiq failed the
                             message: `throws`, retries exhausted) or retry (it will run again)
    after_skip_message       `ended` failed: a middleware skipped it, it will not run
    before_nack              a message failed before any actor ran (no actor of its name):
                             started and ended failed, so the verdict does not call it lost
    before_enqueue           a retry's due time (`dueAt` in the `lab` option), so its queue
                             wait counts from when its backoff ended
    after_worker_shutdown    the last counts flushed (a worker process ends without `atexit`)

Count, then ack. The shim counts in batches on a thread of its own; were Dramatiq to ack a job
before its batch reached Redis, a kill -9 in between would drop the count of a job RabbitMQ no
longer holds, and the verdict would call it lost. So the ack (or nack) of a job that ended is
held (`HeldAcks`) until a flush has counted it, then sent: the worker thread goes on to its next
job at once, and a kill -9 before the ack makes RabbitMQ deliver the job again (it runs again,
as on lab's own worker). Dramatiq has no hook that may wait between a message's end and its ack
without holding the worker thread, so `install` wraps the broker's `consume` to hand each
consumer's acks through. A hook never fails a job: what goes wrong in one is logged.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from dramatiq import Middleware
from dramatiq.middleware import Retries

from lab import config
from lab.targets.dramatiq import OPTION
from lab.targets.shim import Attempt, job_of, shim

log = logging.getLogger("lab.targets.dramatiq_shim")


def _meta(message: Any) -> dict[str, Any]:
    found = message.options.get(OPTION)
    return found if isinstance(found, dict) else {}


def _ms(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class HeldAcks:
    """Acks and nacks of jobs that ended, sent once a flush of the shim has counted the jobs:
    a thread of its own takes every one held, flushes once and sends them (group commit)."""

    def __init__(self) -> None:
        self._held: list[Callable[[], None]] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def hold(self, send: Callable[[], None]) -> None:
        with self._ready:
            self._held.append(send)
            self._ready.notify()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="lab-shim-acks",
                                                daemon=True)  # fmt: skip
                self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: bool(self._held))
            self.release()

    def release(self) -> None:
        """Count every job that ended so far, then send the acks held before this call."""
        with self._ready:
            held, self._held = self._held, []
        if not held:
            return
        try:
            shim().flush()  # returns once everything that ended before it is counted
        except Exception as exc:  # noqa: BLE001 - sent all the same: the job is done
            log.warning("lab shim: %s", exc)
        for send in held:
            try:
                send()
            except Exception as exc:  # noqa: BLE001 - its connection is gone: RabbitMQ
                log.info("lab shim: an ack was not sent (%s)", exc)  # delivers it again


class _Consumer:
    """A broker's consumer whose acks and nacks of ended jobs wait for their count."""

    def __init__(self, consumer: Any, middleware: LabShim):
        self._consumer = consumer
        self._middleware = middleware

    def __iter__(self) -> _Consumer:
        return self

    def __next__(self) -> Any:
        return next(self._consumer)

    def ack(self, message: Any) -> None:
        self._send(self._consumer.ack, message)

    def nack(self, message: Any) -> None:
        self._send(self._consumer.nack, message)

    def _send(self, send: Callable[[Any], None], message: Any) -> None:
        if self._middleware.counted(message):
            self._middleware.acks.hold(functools.partial(send, message))
        else:
            send(message)

    def close(self) -> None:
        self._middleware.acks.release()  # what it held goes out before its connection closes
        self._consumer.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


class LabShim(Middleware):
    """Reports each lab job's attempts to this process's shim (`lab.targets.shim`)."""

    def __init__(self) -> None:
        self.acks = HeldAcks()
        self._begun: dict[int, Attempt] = {}  # by the id of the message's proxy
        self._counted: set[int] = set()  # ended: its ack waits for its count
        self._lock = threading.Lock()
        self._retries: bool | None = None  # does the broker retry a failed actor?

    # --- a message's attempt ------------------------------------------------------------------
    def before_process_message(self, broker: Any, message: Any) -> None:
        if job_of(message.message_id) is not None:
            self._start(message)

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if exception is None:
            self._end(message, "done")
        elif message.failed or not self._retried(broker):
            self._end(message, "failed")
        else:
            self._end(message, "retry")

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self._end(message, "failed")

    def before_nack(self, broker: Any, message: Any) -> None:
        with self._lock:
            seen = id(message) in self._counted or id(message) in self._begun
        if not seen and job_of(message.message_id) is not None:
            self._start(message)  # it never reached an actor: no actor of its name
            self._end(message, "failed")

    def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        meta = _meta(message)
        if delay and meta and job_of(message.message_id) is not None:
            meta["dueAt"] = shim().now_ms() + delay

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        shim().start()  # in /status from the start, not from its first job

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self.acks.release()
        shim().close()

    def counted(self, message: Any) -> bool:
        """Whether `message` ended a job whose count its ack must wait for (asked once)."""
        with self._lock:
            if id(message) not in self._counted:
                return False
            self._counted.discard(id(message))
            return True

    # --- the shim ------------------------------------------------------------------------------
    def _start(self, message: Any) -> None:
        try:
            meta = _meta(message)
            retries = message.options.get("retries", 0)
            attempt = retries + 1 if type(retries) is int else 1
            begun = shim().started(message.message_id, attempt, str(meta.get("kind") or "task"),
                                   _ms(meta.get("createdAt")), _ms(meta.get("dueAt")))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the job goes on without lab
            log.warning("lab shim: %s", exc)
            return
        with self._lock:
            self._begun[id(message)] = begun

    def _end(self, message: Any, outcome: str) -> None:
        with self._lock:
            begun = self._begun.pop(id(message), None)
            if begun is None:
                return
            if outcome != "retry":
                self._counted.add(id(message))
        try:
            shim().ended(begun, outcome)
        except Exception as exc:  # noqa: BLE001
            log.warning("lab shim: %s", exc)

    def _retried(self, broker: Any) -> bool:
        if self._retries is None:
            self._retries = any(isinstance(m, Retries) for m in broker.middleware)
        return self._retries


def install(broker: Any, *, consume: bool = True) -> LabShim:
    """Add the shim to `broker` (first, see above) and hand its consumers' acks through it;
    with `consume`, declare lab's queue on it so its workers consume what lab submits. Returns
    the middleware."""
    made = LabShim()
    if broker.middleware:
        broker.add_middleware(made, before=type(broker.middleware[0]))
    else:
        broker.add_middleware(made)
    plain = broker.consume

    @functools.wraps(plain)
    def consume_counted(*args: Any, **kwargs: Any) -> Any:
        return _Consumer(plain(*args, **kwargs), made)

    broker.consume = consume_counted
    if consume:
        broker.declare_queue(f"{config.load().queue}.dramatiq")
    return made
