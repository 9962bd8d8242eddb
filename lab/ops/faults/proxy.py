"""One TCP proxy with Toxiproxy's behaviour, on asyncio: a listener, and for each accepted
client a link to the upstream made of two pipes (`upstream`: client → service, `downstream`:
service → client) that apply the proxy's toxics as they are now, so adding or removing a toxic
changes the connections already open, as in Toxiproxy.

What a toxic does is its own (`toxics.Toxic`'s hooks; the proxy never asks which toxic it
holds): each pipe reads, stamps each chunk with when it may leave (the toxics' `delay_s`), and
writes it when due through the chain of its toxics' `apply` (which may cut it, change it, hold
it back or end the link) at the pace of the slowest toxic's `pace_s`; a watcher ends the link
when a toxic's `ending` says so, and a close waits the toxics' `close_delay_s`. Each link draws
once per toxic whether it gets it (`toxicity`). Disabling a proxy closes its listener (new
clients are refused) and cuts its links.

Everything held is bounded: between a pipe's reader and its writer at most `QUEUED` chunks of
`CHUNK` bytes wait, so a reader whose writer cannot keep up (a `bandwidth` toxic, a peer that
does not read) stops reading, and TCP holds the sender back; a proxy keeps at most
`max_links` links (LAB_FAULT_MAX_LINKS), closing a client past them at once and counting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from typing import Any

from lab.ops.faults import fields
from lab.ops.faults.fields import FaultError
from lab.ops.faults.toxics import Toxic, chain

log = logging.getLogger("lab.faults")
CHUNK = 32 * 1024
QUEUED = 8  # chunks a pipe holds between reading and writing: 256 KiB each way per link
WATCH_S = 0.02
END = None  # what a pipe's queue carries after the last chunk


class ListenError(FaultError):
    """The proxy's address is taken (or not ours to take): a conflict with the machine, 409."""

    def __init__(self, message: str):
        super().__init__(message, 409, field="listen")


class Proxy:
    def __init__(
        self, name: str, listen: str, upstream: str, enabled: bool = True, *,
        max_toxics: int = 32, max_links: int = 512,
    ):  # fmt: skip
        self.name = fields.name(name)
        self.listen, self.upstream = fields.listen(listen), fields.upstream(upstream)
        self.enabled = enabled
        self.max_toxics, self.max_links = max_toxics, max_links
        self.toxics: dict[str, Toxic] = {}
        self._server: asyncio.Server | None = None
        self._links: set[Link] = set()
        self.refused = 0  # clients closed at once: `max_links` links were open

    @property
    def links_open(self) -> int:
        return len(self._links)

    def as_json(self) -> dict[str, Any]:
        toxics = [t.as_json() for t in self.toxics.values()]
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": toxics}  # fmt: skip

    async def start(self) -> None:
        if not self.enabled or self._server is not None:
            return
        host, port = fields.address(self.listen, "listen")
        try:
            self._server = await asyncio.start_server(self._accept, host, port)
        except OSError as exc:
            self.enabled = False
            raise ListenError(f"cannot listen on {self.listen}: {exc.strerror}") from None
        bound = self._server.sockets[0].getsockname()
        self.listen = fields.joined(host, bound[1])

    async def stop(self) -> None:
        """Stop listening and cut every link (what disabling a proxy does)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self._links):
            link.close()

    async def update(self, listen: str | None, upstream: str | None, enabled: bool | None) -> None:
        """`POST /proxies/{proxy}` (its fields checked by `fields.change`): a new address
        restarts it, dropping its links."""
        moved = (listen is not None and listen != self.listen) or (
            upstream is not None and upstream != self.upstream
        )
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
        if len(self.toxics) >= self.max_toxics:
            raise FaultError(f"bad request body: {self.name} already has {self.max_toxics} "
                             "toxics (LAB_FAULT_MAX_TOXICS)", field="name")  # fmt: skip
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
        if len(self._links) >= self.max_links:
            self.refused += 1
            if self.refused in (1, 10) or self.refused % 100 == 0:
                log.warning(
                    "%s: %d connections closed at once: %d links are open (LAB_FAULT_MAX_LINKS)",
                    self.name, self.refused, self.max_links,
                )  # fmt: skip
            writer.close()
            return
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
        host, port = fields.address(self.proxy.upstream, "upstream")
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
        """End the link (closed, or reset) when one of its toxics' time is up."""
        loop = asyncio.get_running_loop()
        while not self.done.is_set():
            for toxic in self.active():
                try:
                    how = toxic.ending(loop.time() - self.since[toxic.name])
                except Exception:  # a toxic's own code failed: as in `Pipe.run`
                    log.exception("%s: toxic %s failed; its link is closed", self.proxy.name,
                                  toxic.name)  # fmt: skip
                    how = "close"
                if how is not None:
                    self.close(reset=how == "reset")
                    return
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
    """One direction of a link: read and stamp when each chunk may leave, then write it when
    due through its toxics. It is the `toxics.Flow` they act on."""

    def __init__(
        self, link: Link, stream: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        self.link, self.stream, self.reader, self.writer = link, stream, reader, writer
        # Bounded: when the writer falls behind, `put` waits, so the reader stops reading.
        self.queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUED)
        self.sent = 0

    async def run(self) -> None:
        writing = asyncio.create_task(self._write())
        try:
            await self._read()
            await writing
        except (OSError, asyncio.IncompleteReadError):
            self.link.close()
        except Exception:  # a toxic's own code failed: its link ends, the proxy goes on
            log.exception("%s: a toxic failed on a link, which is closed", self.link.proxy.name)
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
            delay_s = sum(t.delay_s() for t in self.link.active(self.stream))
            await self.queue.put((loop.time() + max(0.0, delay_s), data))

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.queue.get()
            if item is END:
                for t in self.link.active(self.stream):
                    if (wait_s := t.close_delay_s()) > 0:
                        await asyncio.sleep(wait_s)
                self.link.close()
                return
            due, data = item
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            await self._send(data)

    async def _send(self, data: bytes) -> None:
        """`data` through the chain of this stream's toxics, in the order they were added, then
        to the peer at the slowest toxic's pace."""
        toxics = self.link.active(self.stream)

        async def out(piece: bytes) -> None:
            if not piece or self.link.done.is_set():
                return  # nothing once a toxic has ended the link
            self.writer.write(piece)
            await self.writer.drain()
            self.sent += len(piece)
            if toxics and (pause_s := max(t.pace_s(len(piece)) for t in toxics)) > 0:
                await asyncio.sleep(pause_s)

        try:
            await chain(toxics, out, self)(data)
        except OSError:
            raise
        except Exception:  # as in `run`, at once: the reader may be waiting on a quiet peer
            log.exception("%s: a toxic failed on a link, which is closed", self.link.proxy.name)
            self.end()

    def end(self, reset: bool = False) -> None:
        self.link.close(reset)
