"""Toxiproxy's toxics, one class each, registered in `TOXICS` with Toxiproxy's names, attributes
and units: a new toxic is one more class here (`docs/guides/extending.md` walks through one).
Each overrides only the hooks of `toxics.Toxic` it needs."""

from __future__ import annotations

import asyncio
import random

from lab.ops.faults.toxics import Ending, Flow, Send, Toxic, attribute


class Latency(Toxic, type="latency"):
    help = "each chunk delayed by latency ± jitter"
    fields = (
        attribute("latency", "ms", "the delay added to each chunk"),
        attribute("jitter", "ms", "up to this much more or less, drawn for each chunk"),
    )

    def delay_s(self) -> float:
        jitter = self.attributes["jitter"]
        return (self.attributes["latency"] + random.uniform(-jitter, jitter)) / 1000


class Bandwidth(Toxic, type="bandwidth"):
    help = "data paced to the rate"
    fields = (attribute("rate", "KB/s", "the most that passes each second (0: no limit)"),)

    def pace_s(self, size: int) -> float:
        rate = self.attributes["rate"]
        return size / (rate * 1024) if rate > 0 else 0.0


class SlowClose(Toxic, type="slow_close"):
    help = "the close held back"
    fields = (attribute("delay", "ms", "how long a close waits before it is passed on"),)

    def close_delay_s(self) -> float:
        return self.attributes["delay"] / 1000


class Timeout(Toxic, type="timeout"):
    help = ("nothing gets through; closed after the timeout (0: silence until removed, "
            "a blackhole)")  # fmt: skip
    fields = (attribute("timeout", "ms", "how long the link lives with it (0: until removed)"),)

    async def apply(self, data: bytes, out: Send, flow: Flow) -> None:
        return  # silence: taken and never passed on

    def ending(self, held_s: float) -> Ending | None:
        limit = self.attributes["timeout"]
        return "close" if limit and held_s * 1000 >= limit else None


class ResetPeer(Toxic, type="reset_peer"):
    help = "the connection reset (RST) after the timeout"
    fields = (attribute("timeout", "ms", "how long the link lives before it is reset"),)

    def ending(self, held_s: float) -> Ending | None:
        return "reset" if held_s * 1000 >= self.attributes["timeout"] else None


class Slicer(Toxic, type="slicer"):
    help = "data cut into small writes"
    fields = (
        attribute("average_size", "bytes", "the size of a piece on average (0: not cut)"),
        attribute("size_variation", "bytes", "up to this much more or less, drawn for each piece"),
        attribute("delay", "µs", "the pause after each piece"),
    )

    async def apply(self, data: bytes, out: Send, flow: Flow) -> None:
        average, variation = self.attributes["average_size"], self.attributes["size_variation"]
        if average <= 0:
            await out(data)
            return
        at = 0
        while at < len(data):
            size = max(1, average + random.randint(-variation, variation))
            await out(data[at : at + size])
            at += size
            if self.attributes["delay"]:
                await asyncio.sleep(self.attributes["delay"] / 1_000_000)


class LimitData(Toxic, type="limit_data"):
    help = "closed once that many bytes went through"
    fields = (attribute("bytes", "bytes", "what passes before the link is closed"),)

    async def apply(self, data: bytes, out: Send, flow: Flow) -> None:
        room = self.attributes["bytes"] - flow.sent
        if len(data) < room:
            await out(data)
            return
        await out(data[: max(0, room)])
        flow.end()
