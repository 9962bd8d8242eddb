"""Fault presets: names checked, each toxic put on every proxy of its service (a cluster's nodes
too), and a preset whose service has no proxy refused naming it."""

from __future__ import annotations

import pytest

from lab.experiment.trial import jain
from lab.ops.faults import presets, toxics


class FakeFaults:
    def __init__(self, proxies: list[str]):
        self.names = proxies
        self.added: list[tuple[str, str, dict, str, str]] = []

    def proxies(self) -> dict[str, dict]:
        return {name: {} for name in self.names}

    def add_toxic(self, proxy: str, kind: str, attributes: dict, stream: str, name: str) -> dict:
        self.added.append((proxy, kind, attributes, stream, name))
        return {}

    def toxics(self, proxy: str) -> list[dict]:
        return [{"name": name, "attributes": attributes}
                for (p, _, attributes, _, name) in self.added if p == proxy]  # fmt: skip

    def update_toxic(self, proxy: str, name: str, attributes: dict) -> dict:
        for i, (p, kind, _, stream, n) in enumerate(self.added):
            if (p, n) == (proxy, name):
                self.added[i] = (p, kind, attributes, stream, n)
        return {}


def test_every_preset_is_made_of_toxics_the_proxy_knows() -> None:
    for name, (about, parts) in presets.PRESETS.items():
        assert about and presets.check(name) == name
        for toxic in parts:
            assert toxic.service in presets.SERVICES
            parsed = toxics.parse({"type": toxic.type, "stream": toxic.stream,
                                   "attributes": toxic.attributes})  # fmt: skip
            assert parsed.attributes.items() >= toxic.attributes.items()


def test_a_preset_goes_on_every_node_of_its_service() -> None:
    faults = FakeFaults(["redis", "rabbitmq-1", "rabbitmq-2", "elasticsearch", "api"])
    added = presets.apply(faults, "rabbitmq-throttled")
    assert added == ["rabbitmq-1/preset_bandwidth_upstream", "rabbitmq-2/preset_bandwidth_upstream",
                     "rabbitmq-1/preset_bandwidth_downstream",
                     "rabbitmq-2/preset_bandwidth_downstream"]  # fmt: skip
    assert presets.apply(faults, "none") == []
    assert presets.services("network-slow") == ("elasticsearch", "rabbitmq", "redis")


def test_a_preset_applied_again_or_a_harsher_one_updates_its_toxic_in_place() -> None:
    faults = FakeFaults(["elasticsearch"])
    assert presets.apply(faults, "es-slow") == ["elasticsearch/preset_latency_downstream"]
    again = presets.apply(faults, "es-very-slow")
    assert again == ["elasticsearch/preset_latency_downstream (updated)"]
    assert faults.toxics("elasticsearch") == [
        {"name": "preset_latency_downstream", "attributes": {"latency": 250, "jitter": 50}}
    ]


@pytest.mark.parametrize("name", ["earthquake", "", None, 3])
def test_an_unknown_preset_is_named(name: object) -> None:
    with pytest.raises(presets.PresetError, match="not a fault preset"):
        presets.check(name)


def test_a_preset_without_its_proxy_says_which_is_missing() -> None:
    with pytest.raises(presets.PresetError, match="needs a proxy in front of elasticsearch"):
        presets.apply(FakeFaults(["redis"]), "es-slow")


def test_jain_is_one_when_even_and_one_over_n_when_one_did_all() -> None:
    assert jain([50, 50]) == 1.0 and jain([100, 0, 0, 0]) == 0.25 and jain([0, 0]) is None


def test_the_docs_list_every_preset_as_it_is() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "FAULTS.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip()
            for line in text.splitlines() if line.startswith("| `")}  # fmt: skip
    assert {name: rows.get(name) for name in presets.PRESETS} == {
        name: about for name, (about, _) in presets.PRESETS.items()
    }
