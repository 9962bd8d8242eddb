"""`lab stack` starts private services on free ports and stops exactly what it started."""

from __future__ import annotations

import shutil

import pytest

from lab.ops import servers, stack


def test_a_private_redis_starts_answers_and_stops(tmp_path) -> None:
    local = servers.start_redis(servers.free_port(), tmp_path)
    try:
        assert servers.redis_ok(local.url)
    finally:
        local.stop()
    assert not servers.redis_ok(local.url)


@pytest.mark.slow
def test_a_private_rabbitmq_node_starts_answers_and_stops(tmp_path) -> None:
    """The drill path: a broker of our own that may be killed, never the machine's."""
    local = servers.start_rabbitmq(servers.free_port(), tmp_path)
    try:
        assert servers.amqp_ok(local.url)
    finally:
        local.stop()
        if local.data_dir is not None:  # a folder of its own outside tmp_path, when run as root
            shutil.rmtree(local.data_dir, ignore_errors=True)
    assert not servers.amqp_ok(local.url)
    assert servers.amqp_ok(servers.urls(stack.Settings())["rabbitmq"]), "the shared broker"


def test_stack_up_reuses_what_answers_and_down_leaves_it_alone(tmp_path) -> None:
    settings = stack.Settings(home=str(tmp_path), es_url="http://127.0.0.1:9")
    assert stack.up(settings, only=("redis", "rabbitmq")) == {
        "redis": "reused",
        "rabbitmq": "reused",
    }
    assert stack.down(settings)["redis"] == "not started by lab"
