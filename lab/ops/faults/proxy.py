"""One TCP proxy with Toxiproxy's behaviour, on asyncio: a listener, and for each accepted
client a link to the upstream made of two pipes (`upstream`: client → service, `downstream`:
service → client) that apply the proxy's toxics as they are now, so adding or removing a toxic
changes the connections already open, as in Toxiproxy.

Each pipe reads, stamps each chunk with when it may leave (`latency`), drops it while a
`timeout` toxic holds (a blackhole), and writes it when due, paced by `bandwidth`, cut by
`slicer` and ended by `limit_data`; a watcher closes the link once a `timeout` toxic's time is
up, or resets it (RST) once a `reset_peer` toxic's is; `slow_close` holds a close back. Each link
draws once per toxic whether it gets it (`toxicity`). Disabling a proxy closes its listener
(new clients are refused) and cuts its links.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from typing import Any

from lab.ops.faults.toxics import FaultError, Toxic

log = logging.getLogger("lab.faults")
CHUNK = 32 * 1024
WATCH_S = 0.02
END = None  # what a pipe's queue carries after the last chunk


def split(address: str) -> tuple[str, int]:
    """`host:port` (the port may be 0: a free one) → (host, port); FaultError otherwise."""
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise FaultError(f"bad request body: {str(address)[:100]!r} is not host:port")
    return host.strip("[]"), int(port)


class Proxy:
    def __init__(self, name: str, listen: str, upstream: str, enabled: bool = True):
        split(listen)
        split(upstream)
        self.name, self.listen, self.upstream, self.enabled = name, listen, upstream, enabled
        self.toxics: dict[str, Toxic] = {}
        self._server: asyncio.Server | None = None
        self._links: set[Link] = set()

    def as_json(self) -> dict[str, Any]:
        toxics = [t.as_json() for t in self.toxics.values()]
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": toxics}  # fmt: skip

    async def start(self) -> None:
        if not self.enabled or self._server is not None:
            return
        host, port = split(self.listen)
        try:
            self._server = await asyncio.start_server(self._accept, host, port)
        except OSError as exc:
            self.enabled = False
            raise FaultError(f"cannot listen on {self.listen}: {exc.strerror}", 500) from None
        bound = self._server.sockets[0].getsockname()
        self.listen = f"{host}:{bound[1]}"

    async def stop(self) -> None:
        """Stop listening and cut every link (what disabling a proxy does)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self._links):
            link.close()

    async def update(self, listen: str | None, upstream: str | None, enabled: bool | None) -> None:
        """`POST /proxies/{proxy}`: a new address restarts it, dropping its links."""
        moved = (listen is not None and listen != self.listen) or (
            upstream is not None and upstream != self.upstream
        )
        if listen is not None:
            split(listen)
        if upstream is not None:
            split(upstream)
        if moved:
            await self.stop()
            self.listen, self.upstream = listen or self.listen, upstream or self.upstream
        if enabled is not None:
            self.enabled = enabled
        if self.enabled:
            await self.start()
        else:
            await self.stop()

    def add(self, toxic: Toxic) -> None:
        if toxic.name in self.toxics:
            raise FaultError("toxic already exists", 409)
        self.toxics[toxic.name] = toxic

    def remove(self, name: str) -> None:
        if self.toxics.pop(name, None) is None:
            raise FaultError("toxic not found", 404)

    async def reset(self) -> None:
        """`POST /reset` for this proxy: enabled again, no toxics."""
        self.toxics.clear()
        self.enabled = True
        await self.start()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = Link(self, reader, writer)
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)


class Link:
    """One client's connection through the proxy to its upstream."""

    def __init__(self, proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.proxy = proxy
        self.client = (reader, writer)
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.drawn: dict[str, bool] = {}  # toxic name → whether this link gets it
        self.since: dict[str, float] = {}  # toxic name → when this link first had it
        self.done = asyncio.Event()

    def active(self, stream: str | None = None) -> list[Toxic]:
        """The proxy's toxics this link has now (on `stream`, or either)."""
        loop = asyncio.get_running_loop()
        out = []
        for toxic in list(self.proxy.toxics.values()):
            if stream is not None and toxic.stream != stream:
                continue
            key = toxic.name
            if key not in self.drawn:
                self.drawn[key] = random.random() < toxic.toxicity
            if self.drawn[key]:
                self.since.setdefault(key, loop.time())
                out.append(toxic)
        return out

    async def run(self) -> None:
        host, port = split(self.proxy.upstream)
        try:
            self.upstream = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, TimeoutError):
            self.close()
            return
        c_reader, c_writer = self.client
        u_reader, u_writer = self.upstream
        tasks = [
            asyncio.create_task(Pipe(self, "upstream", c_reader, u_writer).run()),
            asyncio.create_task(Pipe(self, "downstream", u_reader, c_writer).run()),
            asyncio.create_task(self._watch()),
        ]
        try:
            await self.done.wait()
        finally:
            for task in tasks:
                task.cancel()
            self.close()

    async def _watch(self) -> None:
        """End the link when a `timeout` or `reset_peer` toxic's time is up."""
        loop = asyncio.get_running_loop()
        while not self.done.is_set():
            for toxic in self.active():
                waited_ms = (loop.time() - self.since[toxic.name]) * 1000
                limit = toxic.attributes.get("timeout", 0)
                if toxic.type == "reset_peer" and waited_ms >= limit:
                    self.close(reset=True)
                elif toxic.type == "timeout" and limit and waited_ms >= limit:
                    self.close()
            await asyncio.sleep(WATCH_S)

    def close(self, reset: bool = False) -> None:
        """Close both sides (with an RST when `reset`), once."""
        writers = [self.client[1]] + ([self.upstream[1]] if self.upstream else [])
        for writer in writers:
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                writer.transport.abort()
            else:
                writer.close()
        self.done.set()


class Pipe:
    """One direction of a link: read, delay, drop, then write paced and sliced."""

    def __init__(
        self, link: Link, stream: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        self.link, self.stream, self.reader, self.writer = link, stream, reader, writer
        self.queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        self.sent = 0

    async def run(self) -> None:
        writing = asyncio.create_task(self._write())
        try:
            await self._read()
            await writing
        except (OSError, asyncio.IncompleteReadError):
            self.link.close()
        finally:
            writing.cancel()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await self.reader.read(CHUNK)
            if not data:
                await self.queue.put(END)
                return
            toxics = self.link.active(self.stream)
            if any(t.type == "timeout" for t in toxics):
                continue  # silence: taken and never passed on
            delay_ms = 0.0
            for t in toxics:
                if t.type == "latency":
                    jitter = t.attributes["jitter"]
                    delay_ms += t.attributes["latency"] + random.uniform(-jitter, jitter)
            await self.queue.put((loop.time() + max(0.0, delay_ms) / 1000, data))

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.queue.get()
            if item is END:
                for t in self.link.active(self.stream):
                    if t.type == "slow_close":
                        await asyncio.sleep(t.attributes["delay"] / 1000)
                self.link.close()
                return
            due, data = item
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            await self._send(data)

    async def _send(self, data: bytes) -> None:
        toxics = self.link.active(self.stream)
        for t in toxics:
            if t.type == "limit_data":
                room = t.attributes["bytes"] - self.sent
                if len(data) >= room:
                    self.writer.write(data[: max(0, room)])
                    await self.writer.drain()
                    self.link.close()
                    return
        pieces = [data]
        pause_s = 0.0
        for t in toxics:
            if t.type == "slicer" and t.attributes["average_size"] > 0:
                pieces = _slices(data, t.attributes["average_size"], t.attributes["size_variation"])
                pause_s = t.attributes["delay"] / 1_000_000
        rate = min((t.attributes["rate"] for t in toxics if t.type == "bandwidth"), default=0)
        for piece in pieces:
            self.writer.write(piece)
            await self.writer.drain()
            self.sent += len(piece)
            if rate > 0:
                await asyncio.sleep(len(piece) / (rate * 1024))
            if pause_s:
                await asyncio.sleep(pause_s)


def _slices(data: bytes, average: int, variation: int) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        size = max(1, average + random.randint(-variation, variation))
        out.append(data[at : at + size])
        at += size
    return out
