"""Named faults, so a run can be measured under one by name: `lab fault apply NAME` puts one on a
stack's proxies, an experiment's `fault` factor on each trial's own proxy (lab.experiment).

A preset is a list of toxics, each for every proxy of a service (`rabbitmq` also means a
cluster's `rabbitmq-1`, `rabbitmq-2`, …), named `preset_<type>_<stream>` so `lab fault list`
shows where each came from and `lab fault heal` removes them like any other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SERVICES = ("redis", "rabbitmq", "elasticsearch")


@dataclass(frozen=True)
class Toxic:
    service: str
    type: str
    stream: str
    attributes: dict[str, int]


PRESETS: dict[str, tuple[str, tuple[Toxic, ...]]] = {
    "none": ("no fault", ()),
    "es-slow": (
        "Elasticsearch answers 50 ms later (± 10 ms)",
        (Toxic("elasticsearch", "latency", "downstream", {"latency": 50, "jitter": 10}),),
    ),
    "es-very-slow": (
        "Elasticsearch answers 250 ms later (± 50 ms)",
        (Toxic("elasticsearch", "latency", "downstream", {"latency": 250, "jitter": 50}),),
    ),
    "redis-slow": (
        "Redis answers 5 ms later (± 2 ms)",
        (Toxic("redis", "latency", "downstream", {"latency": 5, "jitter": 2}),),
    ),
    "rabbitmq-slow": (
        "RabbitMQ answers 20 ms later (± 5 ms): confirms, deliveries",
        (Toxic("rabbitmq", "latency", "downstream", {"latency": 20, "jitter": 5}),),
    ),
    "rabbitmq-throttled": (
        "RabbitMQ capped at 256 KB/s each way",
        (
            Toxic("rabbitmq", "bandwidth", "upstream", {"rate": 256}),
            Toxic("rabbitmq", "bandwidth", "downstream", {"rate": 256}),
        ),
    ),
    "network-slow": (
        "every service 10 ms further away (± 5 ms)",
        tuple(Toxic(s, "latency", "downstream", {"latency": 10, "jitter": 5}) for s in SERVICES),
    ),
}


class PresetError(ValueError):
    """Not a preset, or its service has no proxy; the message names them."""


def describe(name: str) -> str:
    return PRESETS[name][0]


def check(name: Any) -> str:
    if not isinstance(name, str) or name not in PRESETS:
        raise PresetError(f"{name!r} is not a fault preset ({', '.join(PRESETS)})")
    return name


def services(name: str) -> tuple[str, ...]:
    """The services whose proxies the preset needs."""
    return tuple(sorted({t.service for t in PRESETS[check(name)][1]}))


def apply(client: Any, name: str) -> list[str]:
    """Add the preset's toxics through `client` (a FaultClient) to every proxy of each service;
    returns `proxy/toxic` of each (`… (updated)` where one of that name was already there).

    A toxic's name is its type and stream, so applying a preset again, or another that slows the
    same service (`es-slow`, then `es-very-slow`), sets the attributes of the toxic in place:
    one preset answers for a service at a time, and nothing needs healing in between."""
    proxies = list(client.proxies())
    added = []
    for toxic in PRESETS[check(name)][1]:
        targets = [p for p in proxies if p == toxic.service or p.startswith(toxic.service + "-")]
        if not targets:
            have = ", ".join(sorted(proxies)) or "none"
            raise PresetError(
                f"{name} needs a proxy in front of {toxic.service} (the proxy has {have})"
            )
        for proxy in targets:
            toxic_name = f"preset_{toxic.type}_{toxic.stream}"
            if any(t.get("name") == toxic_name for t in client.toxics(proxy)):
                client.update_toxic(proxy, toxic_name, dict(toxic.attributes))
                added.append(f"{proxy}/{toxic_name} (updated)")
                continue
            client.add_toxic(proxy, toxic.type, dict(toxic.attributes), toxic.stream,
                             name=toxic_name)  # fmt: skip
            added.append(f"{proxy}/{toxic_name}")
    return added
