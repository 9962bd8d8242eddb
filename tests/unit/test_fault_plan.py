"""The fault proxy's pure parts: toxics checked as Toxiproxy checks them, and where the proxy
stands in a stack (its proxies and the URLs through it)."""

from __future__ import annotations

import pytest

from lab.config import Settings
from lab.ops.faults import plan, toxics
from lab.ops.faults.serve import parse_proxy


def test_a_toxic_gets_toxiproxys_defaults_and_refusals_name_the_problem() -> None:
    toxic = toxics.parse({"type": "latency", "attributes": {"latency": 200}})
    assert toxic.as_json() == {"attributes": {"latency": 200, "jitter": 0},
                               "name": "latency_downstream", "type": "latency",
                               "stream": "downstream", "toxicity": 1.0}  # fmt: skip
    toxic.update({"attributes": {"jitter": 30}, "toxicity": 0.25})
    assert toxic.attributes == {"latency": 200, "jitter": 30} and toxic.toxicity == 0.25
    for body, message in [
        ([], "expected a JSON object"),
        ({"type": "lightning"}, "invalid toxic type"),
        ({"type": "latency", "stream": "both"}, "stream was invalid"),
        ({"type": "latency", "toxicity": 2}, "toxicity must be a number from 0 to 1"),
        ({"type": "latency", "toxicity": True}, "toxicity must be a number from 0 to 1"),
        (
            {"type": "latency", "attributes": {"lag": 1}},
            "attributes.lag: is not one of its fields: latency, jitter",
        ),
        ({"type": "bandwidth", "attributes": {"rate": -1}}, "attributes.rate: must be from 0"),
        ({"type": "bandwidth", "attributes": {"rate": 1.5}}, "attributes.rate: must be a whole"),
        ({"type": "slicer", "attributes": []}, "attributes must be an object"),
        ({"type": "timeout", "name": ""}, None),  # an empty name takes the default
    ]:
        if message is None:
            assert toxics.parse(body).name == "timeout_downstream"
            continue
        with pytest.raises(toxics.FaultError, match=message) as refused:
            toxics.parse(body)
        assert refused.value.status == 400


def test_the_stack_puts_a_proxy_before_each_service_and_gives_the_urls_through_it() -> None:
    settings = Settings(
        redis_url="redis://:secret@127.0.0.1:6379/2",
        amqp_url="amqp://u:p@127.0.0.1:5672/%2F,amqp://u:p@127.0.0.1:5673/%2F",
        es_url="http://127.0.0.1:9200",
        api_url="http://127.0.0.1:8000",
    )
    assert [(p["name"], p["listen"], p["upstream"]) for p in plan.proxies_for(settings)] == [
        ("redis", "127.0.0.1:17379", "127.0.0.1:6379"),
        ("rabbitmq-1", "127.0.0.1:16672", "127.0.0.1:5672"),
        ("rabbitmq-2", "127.0.0.1:16673", "127.0.0.1:5673"),
        ("elasticsearch", "127.0.0.1:20200", "127.0.0.1:9200"),
        ("api", "127.0.0.1:19000", "127.0.0.1:8000"),
    ]
    assert plan.through(settings) == {
        "redis_url": "redis://:secret@127.0.0.1:17379/2",
        "amqp_url": "amqp://u:p@127.0.0.1:16672/%2F,amqp://u:p@127.0.0.1:16673/%2F",
        "es_url": "http://127.0.0.1:20200",
        "api_url": "http://127.0.0.1:19000",
    }


def test_a_proxy_on_the_command_line() -> None:
    assert parse_proxy("redis=127.0.0.1:17379>127.0.0.1:6379") == {
        "name": "redis", "listen": "127.0.0.1:17379", "upstream": "127.0.0.1:6379",
        "enabled": True}  # fmt: skip
    for bad in ("redis", "redis=1>2", "a b=127.0.0.1:1>127.0.0.1:2", "=127.0.0.1:1>127.0.0.1:2"):
        with pytest.raises(ValueError, match="is not NAME=HOST:PORT>HOST:PORT"):
            parse_proxy(bad)
