"""`lab`: lab's own pipeline as a target, the first of them and the default. Its scheduler
publishes with confirms on its own connection (lab/runtime/scheduler.py), not through `submit`,
so behaviour and throughput are what they were before targets; this class says what the rest
of lab needs to know of it: its workers, its services, its backlog, its purge."""

from __future__ import annotations

from collections.abc import Sequence

from lab.runtime import broker
from lab.runtime.messages import Job
from lab.targets import Backlog, Outcome, Target


class Lab(Target, type="lab"):
    help = "lab's own pipeline: scheduler → RabbitMQ → lab worker → Elasticsearch"
    services = ("amqp_url", "redis_url", "es_url")
    extra = ""

    @property
    def queue(self) -> str:
        return self.settings.queue

    def worker_argv(self, python: str, concurrency: int) -> list[str]:
        return [python, "-m", "lab", "worker", "--concurrency", str(concurrency)]

    def submit(self, jobs: Sequence[Job]) -> list[Outcome]:
        raise NotImplementedError("lab's scheduler publishes its own runs with confirms")

    def backlog(self) -> Backlog:
        topology = broker.Topology.of(self.settings)
        publisher = broker.Publisher(self.settings.amqp_url, "lab-target", topology,
                                     broker.Deadlines.of(self.settings))  # fmt: skip
        try:
            depths = publisher.depths(topology.consumed)
        finally:
            publisher.close()
        return Backlog(sum(int(str(d["ready"])) for d in depths))

    def purge(self) -> None:
        topology = broker.Topology.of(self.settings)
        publisher = broker.Publisher(self.settings.amqp_url, "lab-target", topology,
                                     broker.Deadlines.of(self.settings))  # fmt: skip
        try:
            for queue in topology.consumed:
                publisher.purge(queue)
        finally:
            publisher.close()
