"""`lab stack` starts private services on free ports and stops exactly what it started."""

from __future__ import annotations

import json
import os
import shutil

import httpx
import pytest

from lab.ops import processes, servers, stack


def test_a_private_redis_starts_answers_and_stops(tmp_path) -> None:
    local = servers.start_redis(servers.free_port(), tmp_path)
    try:
        assert servers.redis_ok(local.url)
    finally:
        local.stop()
    assert not servers.redis_ok(local.url)


def _saver_policies(local: servers.Local) -> list[int]:
    assert local.pid is not None
    return [os.sched_getscheduler(tid) for tid in processes.threads_named(local.pid, "autosave")]


def test_the_elasticsearch_api_server_saves_only_when_a_core_is_free(tmp_path) -> None:
    """noida-db's saver runs on SCHED_IDLE, after a pause and resume too, and still saves: what
    was written is there after an orderly stop and a start on the same data."""
    port = servers.free_port()
    local = servers.start_elasticsearch(port, tmp_path)
    try:
        assert _saver_policies(local) == [os.SCHED_IDLE]
        docs = "".join(
            json.dumps({"index": {"_index": "saved", "_id": str(i)}})
            + "\n"
            + json.dumps({"n": i})
            + "\n"
            for i in range(500)
        )
        answer = httpx.post(
            f"{local.url}/_bulk?refresh=true",
            content=docs,
            headers={"content-type": "application/x-ndjson"},
        )
        assert answer.status_code == 200 and not answer.json()["errors"]
        local.pause_service()
        local.resume_service()
        assert _saver_policies(local) == [os.SCHED_IDLE]
    finally:
        local.stop()
    again = servers.start_elasticsearch(port, tmp_path)  # the same port: the same data folder
    try:
        assert httpx.get(f"{again.url}/saved/_count").json()["count"] == 500
    finally:
        again.stop()


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
