"""Every Lua script is called through one `Script` that names its KEYS and ARGV: a call must
name exactly those, and the names match what the script itself reads (pure, no Redis)."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from lab.runtime import scripts
from lab.runtime.scripts import Script

ALL = [v for v in vars(scripts).values() if isinstance(v, Script)]
VARIADIC = {"record", "job_renew"}  # they take a batch's runs, a worker's leases, after these


def highest(text: str, name: str) -> int:
    return max((int(n) for n in re.findall(rf"{name}\[(\d+)\]", text)), default=0)


@pytest.mark.parametrize("script", ALL, ids=lambda s: s.name)
def test_each_script_is_named_as_its_lua_reads_it(script: Script) -> None:
    lua = (resources.files("lab.runtime") / "lua" / f"{script.name}.lua").read_text()
    if script.name in VARIADIC:
        assert highest(lua, "ARGV") <= len(script.args) + 1
        return
    # A job script may leave its first keys to common.lua's helpers (job_emit reads them).
    shared = script.keys[: len(scripts.JOB_KEYS)] == scripts.JOB_KEYS
    assert highest(lua, "KEYS") == len(script.keys) or (shared and len(script.keys) == 4)
    assert highest(lua, "ARGV") == len(script.args), script.args


def test_every_lua_script_has_its_named_wrapper() -> None:
    files = {
        p.name.removesuffix(".lua") for p in (resources.files("lab.runtime") / "lua").iterdir()
    }
    assert files - {"common"} == {s.name for s in ALL}


def test_a_call_must_name_every_key_and_argument_and_nothing_else() -> None:
    calls = []

    def runner(name: str):
        return lambda keys, args: calls.append((name, keys, args))

    script = Script("demo", ("job", "log"), ("id", "maxlen"))
    script.call(runner, {"log": "k2", "job": "k1"}, {"maxlen": 9, "id": "a"}, more_keys=["k3"])
    assert calls == [("demo", ["k1", "k2", "k3"], ["a", 9])]  # in the script's order
    with pytest.raises(TypeError, match=r"KEYS: missing \['log'\], unknown \['logs'\]"):
        script.call(runner, {"job": "k1", "logs": "k2"}, {"id": "a", "maxlen": 9})
    with pytest.raises(TypeError, match="ARGV: missing"):
        script.call(runner, {"job": "k1", "log": "k2"}, {"id": "a"})
