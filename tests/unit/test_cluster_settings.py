"""Quorum queues and node lists: what lab declares and whom it connects to (no service)."""

from __future__ import annotations

import pytest

from lab import config
from lab.runtime import broker


def test_classic_queues_carry_no_quorum_arguments() -> None:
    topology = broker.Topology("q")
    for _name, arguments in topology.queues():
        assert "x-queue-type" not in arguments and "x-delivery-limit" not in arguments


def test_quorum_queues_dead_letter_at_least_once_and_limit_redeliveries() -> None:
    topology = broker.Topology("q", (1000, 5000), 50, "quorum", 7)
    queues = dict(topology.queues())
    assert set(queues) == {"q.dead", "q", "q.single", "q.long", *topology.retries}
    assert all(a["x-queue-type"] == "quorum" for a in queues.values())
    assert all("x-max-priority" not in a for a in queues.values())  # quorum queues refuse it
    for name in ("q", "q.single", "q.long"):
        assert queues[name]["x-delivery-limit"] == 7
        assert queues[name]["x-dead-letter-routing-key"] == "q.dead"
    for name in topology.retries:
        assert queues[name]["x-dead-letter-strategy"] == "at-least-once"
        assert queues[name]["x-overflow"] == "reject-publish"  # RabbitMQ requires it for that
        assert "x-delivery-limit" not in queues[name]
    # The dead letters keep the newest: a bounded queue that drops its oldest, no dead-lettering.
    assert queues["q.dead"] == {
        "x-max-length": 50,
        "x-overflow": "drop-head",
        "x-queue-type": "quorum",
    }


def test_every_node_of_the_url_list_is_tried_starting_anywhere() -> None:
    url = "amqp://a:1@n1:5672/%2F, amqp://a:1@n2:5673/%2F,amqp://a:1@n3:5674/%2F"
    starts = set()
    for _ in range(60):
        nodes = broker.endpoints(url, "lab-test")
        hosts = [(p.host, p.port) for p in nodes]
        assert sorted(hosts) == [("n1", 5672), ("n2", 5673), ("n3", 5674)]
        # A rotation of the list: each node's successor stays the same.
        ring = [("n1", 5672), ("n2", 5673), ("n3", 5674)]
        start = ring.index(hosts[0])
        assert hosts == ring[start:] + ring[:start]
        assert all(p.client_properties == {"connection_name": "lab-test"} for p in nodes)
        starts.add(hosts[0])
    assert len(starts) == 3


def test_queue_type_and_replicas_are_checked() -> None:
    assert config.load({"LAB_QUEUE_TYPE": "quorum"}).queue_type == "quorum"
    with pytest.raises(config.ConfigError, match="classic or quorum"):
        config.load({"LAB_QUEUE_TYPE": "stream"})
    assert config.load({"LAB_ES_REPLICAS": "0"}).es_replicas == 0
    with pytest.raises(config.ConfigError, match="0 or more"):
        config.load({"LAB_ES_REPLICAS": "-1"})


def test_a_stall_shows_as_a_dip_with_its_recovery_time() -> None:
    from lab.measure.drill import StatusSampler

    sampler = StatusSampler("http://127.0.0.1:9")  # never started: samples are filled by hand
    done, t = 0.0, 0.0
    while t < 10:
        sampler.samples.append({"t": t, "processed": done})
        done += 0 if 5 <= t < 7 else 100  # 1,000 jobs/s, stalled from 5 s to 7 s
        t = round(t + 0.1, 2)
    stalled = sampler.dip_after(5.0, 1000, 10)
    assert stalled["lowestJobsPerSecond"] == 0.0
    assert 2.0 <= stalled["recoverySeconds"] <= 3.0  # the stall, plus the 1-s window's lag
    assert sampler.dip_after(1.0, 1000, 4.5) == {
        "lowestJobsPerSecond": 1000.0,
        "recoverySeconds": 0.0,
    }
