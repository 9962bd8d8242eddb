"""A toxic is one class. The example of docs/guides/extending.md, registered here as it is written
there (and gone again after), is parsed with a 400 naming its attribute, listed by the registry,
`lab fault types` and the reference page, and applied by a real proxy, created through the
fault API, on real sockets; a toxic whose own code fails closes its link and nothing else.
Toxiproxy's toxics act through the same hooks, each checked here without sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lab.cli import main, reference
from lab.config import Settings
from lab.ops.faults import api, kinds, toxics
from lab.ops.faults.fields import FaultError
from lab.ops.faults.toxics import TOXICS, Flow, Send, Toxic
from tests import docs_pages

DEADLINE_S = 5.0


def guide_example() -> str:
    """The Python of the guide's `## A toxic` section."""
    return docs_pages.guide_python("extending.md", "A toxic")


@pytest.fixture
def corrupt() -> Iterator[type[Toxic]]:
    """The guide's class, as if it were written in kinds.py."""
    with docs_pages.registered(guide_example(), kinds, TOXICS, "corrupt") as cls:
        yield cls


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _exchange(listen: str, data: bytes) -> bytes:
    """Send `data` through the proxy at `listen`; what comes back before the echo's whole answer
    or the end of the connection."""
    host, _, port = listen.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        got = b""
        while len(got) < len(data):
            chunk = await asyncio.wait_for(reader.read(65536), DEADLINE_S)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        writer.close()


async def _through_api(toxic: dict[str, Any], data: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """An echo service, the fault API in this process with a proxy in front of the echo and
    `toxic` on it (both made by HTTP requests), and `data` sent through: (the answers, the
    bytes back)."""
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxies = api.Proxies()
    app = api.app(Settings(), proxies)
    app.state.proxies = proxies  # what its lifespan does when it is served
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8474") as web:
            upstream = f"127.0.0.1:{echo.sockets[0].getsockname()[1]}"
            made = await web.post("/proxies", json={"name": "guide", "upstream": upstream})
            added = await web.post("/proxies/guide/toxics", json=toxic)
            answers = [made.json(), added.json() | {"status": added.status_code}]
            back = await _exchange(made.json()["listen"], data)
        return answers, back
    finally:
        await proxies.close()
        echo.close()


def test_the_guides_toxic_is_parsed_listed_and_applied_on_real_sockets(
    corrupt: type[Toxic], capsys: pytest.CaptureFixture[str]
) -> None:
    toxic = toxics.parse({"type": "corrupt", "attributes": {"mask": 0xFF}})
    assert isinstance(toxic, corrupt) and toxic.name == "corrupt_downstream"
    assert toxic.as_json()["attributes"] == {"mask": 255}
    with pytest.raises(FaultError) as refused:
        toxics.parse({"type": "corrupt", "attributes": {"mask": 256}})
    assert refused.value.as_json() == {
        "error": "bad request body: attributes.mask: must be from 0 to 255, got 256",
        "status": 400, "fields": ["attributes.mask"]}  # fmt: skip

    assert "corrupt" in TOXICS.names and "| `corrupt` | `mask` from 0 to 255 bits |" in (
        TOXICS.table()
    )
    assert "| `corrupt` | `mask` | bits | the bits flipped in each byte (0: none) |" in (
        reference.toxics()
    )
    assert main(["fault", "types", "--json"]) == 0
    listed = {kind["type"]: kind for kind in json.loads(capsys.readouterr().out)}
    assert [f["name"] for f in listed["corrupt"]["fields"]] == ["mask"]

    data = bytes(range(256)) * 64
    answers, back = asyncio.run(
        _through_api({"type": "corrupt", "attributes": {"mask": 0x0F}}, data)
    )
    assert answers[1] == {"attributes": {"mask": 15}, "name": "corrupt_downstream",
                          "type": "corrupt", "stream": "downstream", "toxicity": 1.0,
                          "status": 200}  # fmt: skip
    assert back == bytes(b ^ 0x0F for b in data)  # every byte, each chunk however TCP cut it

    answers, _ = asyncio.run(_through_api({"type": "corrupt", "attributes": {"mask": -1}}, b""))
    assert answers[1]["status"] == 400 and answers[1]["fields"] == ["attributes.mask"]


async def _through(bodies: list[dict[str, Any]], data: bytes) -> tuple[bytes, bytes, float]:
    """A proxy in front of an echo with these toxics: what `data` gets back with them, what it
    gets back once they are removed, and the seconds the first took."""
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxies = api.Proxies()
    try:
        upstream = f"127.0.0.1:{echo.sockets[0].getsockname()[1]}"
        proxy = await proxies.create({"name": "p", "upstream": upstream})
        for body in bodies:
            proxy.add(toxics.parse(body))
        began = time.monotonic()
        with_them = await _exchange(proxy.listen, data)
        took = time.monotonic() - began
        for name in list(proxy.toxics):
            proxy.remove(name)
        return with_them, await _exchange(proxy.listen, data), took
    finally:
        await proxies.close()
        echo.close()


def test_a_toxic_whose_code_fails_closes_its_link_and_nothing_else() -> None:
    with TOXICS.restored():

        class Broken(Toxic, type="broken"):
            help = "fails on every chunk"

            async def apply(self, data: bytes, out: Send, flow: Flow) -> None:
                raise RuntimeError("a bug in a toxic")

        failed, after, _ = asyncio.run(_through([{"type": "broken"}], b"ping"))
    assert failed == b"" and after == b"ping"  # closed, not hung; the proxy goes on


def test_the_lowest_bandwidth_of_a_stream_sets_its_pace() -> None:
    """One of rate 0 (no limit) beside one of 100 KB/s: 100 KB take about a second, at least
    the pace of all but the last chunk read (at most 32 KiB); a rate 0 used to lift the cap."""
    data = b"x" * 100 * 1024
    capped = [{"type": "bandwidth", "stream": "upstream", "name": f"cap{rate}",
               "attributes": {"rate": rate}} for rate in (0, 100)]  # fmt: skip
    back, _, took = asyncio.run(_through(capped, data))
    assert back == data and took >= 0.6, took


class Pipe:
    """A pipe's side of the chain, without sockets: what reached the peer, and how it ended."""

    def __init__(self) -> None:
        self.sent, self.written, self.ended = 0, [], None

    async def out(self, data: bytes) -> None:
        self.written.append(data)
        self.sent += len(data)

    def end(self, reset: bool = False) -> None:
        self.ended = "reset" if reset else "close"


def send(bodies: list[dict[str, Any]], data: bytes) -> Pipe:
    pipe = Pipe()
    asyncio.run(toxics.chain([toxics.parse(b) for b in bodies], pipe.out, pipe)(data))
    return pipe


def test_toxiproxys_toxics_act_through_the_hooks() -> None:
    latency = toxics.parse({"type": "latency", "attributes": {"latency": 200, "jitter": 50}})
    assert all(0.15 <= latency.delay_s() <= 0.25 for _ in range(100))
    assert toxics.parse({"type": "slow_close", "attributes": {"delay": 300}}).close_delay_s() == 0.3

    blackhole = toxics.parse({"type": "timeout"})
    timeout = toxics.parse({"type": "timeout", "attributes": {"timeout": 100}})
    reset = toxics.parse({"type": "reset_peer", "attributes": {"timeout": 100}})
    assert [blackhole.ending(1e6), timeout.ending(0.05), timeout.ending(0.1)] == [
        None,
        None,
        "close",
    ]
    assert [reset.ending(0.05), reset.ending(0.1)] == [None, "reset"]
    assert send([{"type": "timeout"}], b"x" * 100).written == []  # taken, never passed on

    data = bytes(range(256)) * 40
    sliced = send([{"type": "slicer", "attributes": {"average_size": 100, "size_variation": 30}}],
                  data)  # fmt: skip
    assert b"".join(sliced.written) == data
    assert all(70 <= len(p) <= 130 for p in sliced.written[:-1]) and len(sliced.written) > 50
    limited = send([{"type": "limit_data", "attributes": {"bytes": 1000}}], data)
    assert limited.written == [data[:1000]] and limited.ended == "close"
    # A chain: sliced, then limited piece by piece, cut at the very byte.
    both = send([{"type": "slicer", "attributes": {"average_size": 300}},
                 {"type": "limit_data", "attributes": {"bytes": 1000}}], data)  # fmt: skip
    assert b"".join(both.written) == data[:1000] and both.ended == "close"
    bandwidth = toxics.parse({"type": "bandwidth", "attributes": {"rate": 100}})
    assert bandwidth.pace_s(51_200) == 0.5 and toxics.parse({"type": "bandwidth"}).pace_s(1) == 0
    assert send([{"type": "bandwidth"}], data).written == [data]  # paced by the pipe, not here
    assert send([{"type": "reset_peer"}, {"type": "latency"}], data).written == [data]
