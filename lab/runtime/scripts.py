"""The Lua scripts of `lab/runtime/lua/`: each is `common.lua`'s helpers plus its own body,
registered once per Redis client (`State.script`, `AsyncStatus`)."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def script_source(name: str) -> str:
    lua = resources.files("lab.runtime") / "lua"
    return (lua / "common.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()
