"""What a toxic is, as Toxiproxy defines it: a type, a direction (`upstream`: client → service,
`downstream`: service → client), a toxicity (the chance a link gets it) and the type's
attributes; and what it does to the bytes of a link, through five hooks that `proxy.py` calls
without knowing which toxic it holds:

    delay_s()                     seconds a chunk read now waits before it may leave
    await apply(data, out, flow)  pass a chunk on through `out`: whole, cut, changed, held
                                  back or not at all; `flow` is the pipe (the bytes it has
                                  written, and `end()` to close the link)
    pace_s(size)                  seconds the link needs for `size` bytes just written (a cap)
    ending(held_s)                "close" or "reset" once the link has had the toxic that long
    close_delay_s()               seconds a close waits before it is passed on

Each type is one class (`kinds.py` holds Toxiproxy's), registered in `TOXICS`, which gives the
API its parsing, `lab fault` its help and `lab fault types`, and the docs their table
(`docs/reference/toxics.md`). Parsing is pure; only `apply` does I/O, through `out`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Literal, Protocol

from lab.ops.faults.fields import FaultError, name
from lab.runtime.fields import Field, FieldError, read_fields
from lab.runtime.registry import Described, Registry

__all__ = ["STREAMS", "TOXICS", "FaultError", "Flow", "Send", "Toxic", "chain", "describe", "parse"]

STREAMS = ("upstream", "downstream")
MAX_ATTRIBUTE = 10**12  # every attribute is a whole number from 0 to this
Send = Callable[[bytes], Awaitable[None]]
Ending = Literal["close", "reset"]


class Flow(Protocol):
    """What a toxic sees of the pipe it acts on."""

    sent: int  # bytes this pipe has written to its peer so far

    def end(self, reset: bool = False) -> None:
        """Close the link, both ways (with an RST when `reset`)."""


def refused(field: str, message: str) -> FaultError:
    """A field of a toxic's body that is wrong, in Toxiproxy's error shape."""
    return FaultError(f"bad request body: {field}: {message}", field=field)


def attribute(name: str, unit: str, help: str, high: int = MAX_ATTRIBUTE) -> Field:
    """An attribute as Toxiproxy has them: a whole number from 0, 0 when it is not given."""
    return Field(name, "integer", help, default=0, low=0, high=high, unit=unit)


TOXICS: Registry[Toxic] = Registry("toxic", refused)


class Toxic(Described):
    """One toxic on a proxy. A type is a subclass with its `type`, `help` and attributes
    (`fields`), overriding the hooks it needs; the defaults pass every byte on at once."""

    registry = TOXICS
    fields: ClassVar[tuple[Field, ...]] = ()

    def __init__(self, name: str, stream: str = "downstream", toxicity: float = 1.0,
                 attributes: dict[str, int] | None = None):  # fmt: skip
        self.name, self.stream, self.toxicity = name, stream, toxicity
        self.attributes = self.read({} if attributes is None else attributes)

    # --- the hooks ------------------------------------------------------------------------
    def delay_s(self) -> float:
        """Seconds a chunk read now waits before it may leave (the delays of a stream add)."""
        return 0.0

    async def apply(self, data: bytes, out: Send, flow: Flow) -> None:
        """Pass `data` on through `out`. The toxics of a stream are a chain in the order they
        were added, each `out` the next one's `apply`, the last the peer's socket."""
        await out(data)

    def pace_s(self, size: int) -> float:
        """Seconds the link needs to carry `size` bytes it has just written: the pipe waits
        them before it writes again (the slowest toxic of a stream sets the pace)."""
        return 0.0

    def ending(self, held_s: float) -> Ending | None:
        """How the link ends, once it has had this toxic for `held_s` seconds (None: not)."""
        return None

    def close_delay_s(self) -> float:
        """Seconds a close (the sender's end of stream) waits before it is passed on."""
        return 0.0

    # --- its JSON -------------------------------------------------------------------------
    @classmethod
    def read(cls, given: Any) -> dict[str, int]:
        """Every attribute of `given` checked (`fields`), the missing ones at their default."""
        if not isinstance(given, dict):
            raise FaultError("bad request body: attributes must be an object", field="attributes")
        try:
            values = read_fields(cls.fields, {k: _whole(v) for k, v in given.items()},
                                 "attributes")  # fmt: skip
            cls.check(values, "attributes")
        except FieldError as exc:
            raise TOXICS.error(exc.field, exc.message) from None
        return values

    def as_json(self) -> dict[str, Any]:
        return {"attributes": dict(self.attributes), "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": self.toxicity}  # fmt: skip

    def update(self, body: Any) -> None:
        """`POST /proxies/{proxy}/toxics/{toxic}`: new attributes and toxicity, the rest kept;
        all checked before any is changed."""
        if not isinstance(body, dict):
            raise FaultError("bad request body: expected a JSON object")
        attributes = self.attributes
        if "attributes" in body:
            given = body["attributes"]
            attributes = self.read({**self.attributes, **given} if isinstance(given, dict)
                                   else given)  # fmt: skip
        toxicity = _toxicity(body["toxicity"]) if "toxicity" in body else self.toxicity
        self.attributes, self.toxicity = attributes, toxicity


def chain(toxics: list[Toxic], out: Send, flow: Flow) -> Send:
    """`out` behind `toxics`' `apply`, the first added first: what a pipe sends a chunk into."""
    send = out
    for toxic in reversed(toxics):
        send = functools.partial(toxic.apply, out=send, flow=flow)
    return send


def parse(body: Any) -> Toxic:
    """A new toxic from `POST /proxies/{proxy}/toxics` (defaults as Toxiproxy's: downstream,
    toxicity 1, named `<type>_<stream>`)."""
    if not isinstance(body, dict):
        raise FaultError("bad request body: expected a JSON object")
    kind = body.get("type")
    stream = body.get("stream", "downstream") or "downstream"
    if not isinstance(stream, str) or stream not in STREAMS:
        raise FaultError("stream was invalid, can be either upstream or downstream", field="stream")
    if not isinstance(kind, str) or kind not in TOXICS.kinds:
        raise FaultError(f"invalid toxic type (one of {', '.join(TOXICS.names)})", field="type")
    given = body.get("name")
    called = name(given) if given not in (None, "") else f"{kind}_{stream}"
    toxicity = _toxicity(body.get("toxicity", 1.0))
    attributes = body.get("attributes")
    return TOXICS.kinds[kind](called, stream, toxicity, {} if attributes is None else attributes)


def _toxicity(value: Any) -> float:
    # Compared, never converted, first: a 400-digit integer overflows a float.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise FaultError("bad request body: toxicity must be a number from 0 to 1",
                         field="toxicity")  # fmt: skip
    return float(value)


def _whole(value: Any) -> Any:
    """A whole float (`200.0`) as the integer it is; anything else as it came, for its field to
    judge (NaN, infinities and fractions are not whole)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def describe(toxic: Any) -> str:
    """A toxic (its JSON, as any server answered it) in a few words:
    `latency_downstream (latency 200, jitter 50)`. Plain text: whoever shows it escapes it."""
    if not isinstance(toxic, dict):
        return "?"
    attributes = toxic.get("attributes")
    pairs = attributes.items() if isinstance(attributes, dict) else ()
    attrs = ", ".join(f"{k} {v}" for k, v in pairs)
    toxicity = toxic.get("toxicity", 1)
    numeric = isinstance(toxicity, (int, float)) and not isinstance(toxicity, bool)
    share = f", {toxicity:g} of connections" if numeric and toxicity < 1 else ""
    return f"{toxic.get('name', '?')} ({attrs}{share})"
