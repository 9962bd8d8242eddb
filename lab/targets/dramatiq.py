"""`dramatiq`: Dramatiq 2 on RabbitMQ as the system under test.

A lab job becomes one Dramatiq message whose `message_id` is the lab job id (Dramatiq takes any
text there and keeps it across its retries, so the shim finds the job from the id alone and a
duplicate submit is visible), sent to `<LAB_QUEUE>.dramatiq` with publisher confirms
(`confirm_delivery=True`). lab's metadata travels in the message's options under `lab`
(`createdAt`, `kind`; the shim adds `dueAt` to a retry), never in the actor's arguments:

    lab's kinds   actor `lab_job` (lab/targets/dramatiq_app.py), the job's JSON its one argument
    kind `task`   the actor named by `payload["task"]` with the payload's args and kwargs, each
                  "{seq}" and "{jobId}" in them replaced by the job's seq and id

Its workers are `python -m lab.targets.dramatiq_app --threads N`: Dramatiq's own `Worker` (its
consumer and worker threads, its middleware) in the one process lab supervises. The `dramatiq`
command cannot run that way: it always forks its worker processes under a parent that holds no
job, so `kill -9` or a freeze of the pid lab supervises would miss the worker (a killed parent
leaves its worker running, reparented, beyond the supervisor's reach).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lab.runtime.messages import Job
from lab.runtime.patience import brief
from lab.targets import Backlog, Outcome, Status, Target, usertask

ACTOR = "lab_job"  # the actor that runs lab's kinds
OPTION = "lab"  # the message option that carries lab's metadata
APP = "lab.targets.dramatiq_app"


def message_fields(job: Job, queue: str) -> dict[str, Any]:
    """The fields of the Dramatiq `Message` that carries `job` to `queue`. Pure."""
    if job.kind == "task":
        sent = usertask.call(job)  # its placeholders filled
        actor, args, kwargs = sent.name, sent.args, sent.kwargs
    else:
        actor, args, kwargs = ACTOR, [job.to_json().decode()], {}
    return {
        "queue_name": queue,
        "actor_name": actor,
        "args": tuple(args),
        "kwargs": kwargs,
        "options": {OPTION: {"createdAt": job.createdAt, "kind": job.kind}},
        "message_id": job.jobId,
        "message_timestamp": job.createdAt,  # what Dramatiq's AgeLimit counts from
    }


def make_broker(settings: Any, name: str) -> Any:
    """A Dramatiq RabbitMQ broker with publisher confirms, connecting with lab's deadlines
    (each node of `LAB_AMQP_URL`, its connect timeout and heartbeat)."""
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from lab.runtime.broker import Deadlines, endpoints

    made = RabbitmqBroker(confirm_delivery=True)
    made.parameters = endpoints(settings.amqp_url, name, Deadlines.of(settings))
    return made


class Dramatiq(Target, type="dramatiq"):
    help = "Dramatiq 2 on RabbitMQ: lab's kinds or your actors, with publisher confirms"
    packages = ("dramatiq", "pika")
    services = ("amqp_url", "es_url")

    _broker: Any = None
    _sent: list[str] | None = None

    def worker_argv(self, python: str, concurrency: int) -> list[str]:
        return [python, "-m", APP, "--threads", str(concurrency)]

    def open(self) -> None:
        if self._broker is None:
            self._broker, self._sent = make_broker(self.settings, "lab-dramatiq"), []
            self._broker.add_middleware(_sent_probe(self._sent))

    def close(self) -> None:
        if self._broker is not None:
            self._broker.close()
            self._broker = None

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Each job through Dramatiq's own `enqueue` (which waits for the confirm): `ok` when
        confirmed; when Dramatiq gives up (after its own reconnects and republishes),
        `indeterminate` if the message went out on a connection at least once, else `failed`,
        and the jobs after it are not tried."""
        from dramatiq import Message
        from dramatiq.errors import BrokerError

        self.open()
        assert self._sent is not None
        out: list[Outcome] = []
        for i, job in enumerate(jobs):
            self._sent.clear()
            try:
                message = self._broker.enqueue(Message(**message_fields(job, self.queue)))
            except BrokerError as exc:  # RabbitMQ away, or refusing every try
                status: Status = "indeterminate" if self._sent else "failed"
                out.append(Outcome(status, error=brief(exc)))
                untried = Outcome("failed", error="not tried: RabbitMQ did not take the job before")
                return out + [untried] * (len(jobs) - i - 1)
            except (TypeError, ValueError) as exc:  # the job's own: args JSON cannot carry
                out.append(Outcome("failed", error=brief(exc)))
                continue
            out.append(Outcome("ok", broker_id=message.message_id))
        return out

    def backlog(self) -> Backlog:
        """Messages ready in the queue and in its delay queue (retries not yet taken by a
        worker); RabbitMQ cannot tell the oldest one's age without taking it."""
        self.open()
        ready, delayed, _dead = self._broker.get_queue_message_counts(self.queue)
        return Backlog(int(ready) + int(delayed))

    def purge(self) -> None:
        """The queue, its delay queue and its dead letters, emptied."""
        self.open()
        self._broker.flush(self.queue)

    def amqp_queues(self) -> tuple[str, ...]:
        return (self.queue, f"{self.queue}.DQ", f"{self.queue}.XQ")


def _sent_probe(sent: list[str]) -> Any:
    """A middleware that notes each message Dramatiq hands to a connection (`before_enqueue`
    comes right before the publish), so a submit that Dramatiq gave up on can tell
    "never went out" from "went out, and no confirm came back"."""
    from dramatiq import Middleware

    class Sent(Middleware):
        def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
            sent.append(message.message_id)

    return Sent()
