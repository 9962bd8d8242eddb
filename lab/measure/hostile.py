"""The hostile inputs `lab` tries on itself: poison messages and hostile requests.

The `hostile` drill (`lab report hostile`) and the tests use the same lists, so what the report
proves is what CI checks. Each was once a way to stop a worker or get a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pika.exceptions

from lab.runtime import broker
from lab.runtime.messages import MAX_BODY_BYTES

# --- poison messages, published straight to a queue ------------------------------------------
MALFORMED: list[bytes] = [
    b"not json",
    b"\xff\xfe",
    b"[1, 2]",
    b'{"jobId": "a1", "kind": "index", "attempt": ' + b"9" * 5000 + b"}",
    b'{"jobId": "a2", "kind": "index", "payload": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    b"[" * 50_000,
    json.dumps({"jobId": "x-1", "runId": "x:active", "seq": 1, "kind": "index"}).encode(),
    json.dumps({"jobId": "j:log", "kind": "index"}).encode(),
    json.dumps({"jobId": "a3", "kind": "index", "attempt": 10**9}).encode(),
    json.dumps(
        {"jobId": "r-99999999999", "runId": "r", "seq": 99_999_999_999, "kind": "index"}
    ).encode(),
    b'{"jobId": "a4", "kind": "index", "createdAt": NaN}',
    json.dumps({"jobId": "a5", "kind": "../../etc"}).encode(),
    b'{"jobId": "a6", "kind": "index", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}',
    # Round two: numbers that overflow a float, names that end in a line break.
    b'{"jobId": "b1", "kind": "index", "createdAt": ' + b"9" * 400 + b"}",
    json.dumps({"jobId": "b2\n", "kind": "index"}).encode(),
    json.dumps({"jobId": "b3", "kind": "index\n"}).encode(),
]
UNKNOWN_KIND: list[bytes] = [json.dumps({"jobId": "a7", "kind": "nosuch"}).encode()]
# Valid jobs Elasticsearch refuses: the second maps `data.n` as an object where a number was, so
# it fails every attempt and is dead-lettered as exhausted.
REFUSED: list[bytes] = [
    json.dumps({"jobId": "m1", "kind": "index", "payload": {"data": {"n": 1}}}).encode(),
    json.dumps({"jobId": "m2", "kind": "index", "payload": {"data": {"n": {"o": 1}}}}).encode(),
]
# What each poison ends as in the dead-letter queue's `x-lab-reason` header.
EXPECTED_REASONS = {"malformed": len(MALFORMED), "unknown-kind": len(UNKNOWN_KIND), "exhausted": 1}


def publish_poison(channel: Any, queue: str) -> dict[str, int]:
    """Publish every poison message to `queue`; returns the dead letters to expect, by reason.

    A body over 1 MiB is refused by a broker configured as `lab` configures its nodes
    (`max_message_size`): it never reaches a worker, and is not expected among the dead letters.
    A broker without that setting takes it, and the worker dead-letters it as malformed."""
    expected = dict(EXPECTED_REASONS)
    for body in MALFORMED + UNKNOWN_KIND + REFUSED:
        if len(body) > MAX_BODY_BYTES:
            if refused_by_broker(channel.connection, queue, body):
                expected["malformed"] -= 1
            continue
        channel.basic_publish("", queue, body, broker.properties())
    return expected


def refused_by_broker(connection: Any, queue: str, body: bytes) -> bool:
    """Publish `body` on a channel of its own: True when the broker refuses it (406)."""
    own = connection.channel()
    own.basic_publish("", queue, body, broker.properties())
    try:
        own.queue_declare(queue, passive=True)  # the refusal closes the channel by then
    except pika.exceptions.ChannelClosedByBroker as exc:
        return exc.reply_code == 406
    own.close()
    return False


def dead_letters(channel: Any, queue: str) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Read (and take) the dead letters of `queue`: body and headers."""
    while True:
        method, props, body = channel.basic_get(f"{queue}.dead", auto_ack=True)
        if method is None:
            return
        yield body, props.headers or {}


# --- hostile requests ---------------------------------------------------------------------------
DEEP = {"kind": "index", "payload": {"data": json.loads("[" * 300 + "]" * 300)}}
NESTED = {"kind": "index", "payload": json.loads('{"a":' * 40 + "1" + "}" * 40)}
BAD_IDS = ["x:done", "x:tat", "job-1:log", "job-1:events", "a b", "%3A", "-x", "x" * 300]


@dataclass(frozen=True)
class Probe:
    """One hostile request and the answer it must get."""

    method: str
    path: str
    expected: int
    json: Any = None
    content: bytes | None = None
    chunks: int = 0  # send `content` this many times as a chunked body (no Content-Length)
    headers: tuple[tuple[str, str], ...] = ()

    def send(self, http: httpx.Client) -> httpx.Response:
        headers = dict(self.headers)
        body: Any = self.content
        if self.content is not None:
            headers.setdefault("content-type", "application/json")
            if self.chunks:
                body = (self.content for _ in range(self.chunks))
        return http.request(self.method, self.path, json=self.json, content=body, headers=headers)


def probes() -> list[Probe]:
    rates = ["NaN", "Infinity", "-Infinity", "1e309", "1e-12", "1e-302", "0"]
    by_id = [
        ("GET", "/runs/{id}"),
        ("GET", "/jobs/{id}"),
        ("POST", "/jobs/{id}/cancel"),
        ("POST", "/jobs/{id}/retry"),
        ("DELETE", "/jobs/{id}"),
        ("GET", "/jobs/{id}/stream"),
    ]
    return [
        *[Probe("POST", "/run", 422, content=f'{{"x": 10, "y": {y}}}'.encode()) for y in rates],
        Probe("POST", "/run", 422, json={"x": 10**30, "y": 60}),
        Probe("POST", "/run", 422, content=b"[" * 5000),
        Probe("POST", "/run", 400, content=b'{"x": ' + b"9" * 5000 + b', "y": 60}'),
        Probe("POST", "/jobs", 422, json=DEEP),
        Probe("POST", "/jobs", 422, json=NESTED),
        Probe("POST", "/jobs", 422, json={"kind": "sleep", "payload": {"seconds": 1e9}}),
        Probe("POST", "/jobs", 422, json={"kind": "sleep", "payload": {"seconds": "x" * 60_000}}),
        Probe(
            "POST",
            "/jobs",
            422,
            json={
                "kind": "agent",
                "payload": {"durationSeconds": 3600, "stepIntervalSeconds": 0.01},
            },
        ),
        Probe(
            "POST",
            "/jobs",
            422,
            json={"kind": "index", "payload": {"data": {f"k{i}": i for i in range(500)}}},
        ),
        Probe("POST", "/jobs", 422, json={"kind": "../x"}),
        Probe("POST", "/jobs", 422, json={"kind": "index", "attempts": 10**6}),
        Probe("POST", "/jobs", 413, content=b"x" * (2 * 1024 * 1024)),
        Probe("POST", "/jobs", 413, content=b"x" * 65536, chunks=128),  # 8 MB, chunked
        *[Probe(m, p.format(id=i), 404) for i in BAD_IDS for m, p in by_id],
        Probe("GET", "/jobs?runId=a:b", 422),
        Probe("GET", "/jobs?state=bogus", 422),
        Probe("GET", "/jobs?limit=100000", 422),
        Probe("GET", "/events", 422, headers=(("Last-Event-ID", "99999999999999999999-0"),)),
        Probe("GET", "/events", 422, headers=(("Last-Event-ID", "1-99999999999999999999"),)),
        Probe("GET", "/events?lastEventId=18446744073709551616-0", 422),
        Probe("GET", "/status", 421, headers=(("Host", "rebound.example:8000"),)),
        # Round two: non-ASCII digits, numbers past a float, ids ending in a newline, the
        # largest stream id, a quadratic body, destruction without intent.
        Probe("GET", "/jobs?from=%C2%B2", 422),
        Probe("GET", "/jobs?to=" + "9" * 40, 422),
        Probe("POST", "/jobs", 422, json={"kind": "sleep", "runAt": "\u00b2"}),
        Probe(
            "POST",
            "/jobs",
            422,
            content=b'{"kind": "sleep", "payload": {"seconds": ' + b"9" * 400 + b"}}",
        ),  # fmt: skip
        Probe(
            "POST",
            "/jobs",
            422,
            content=b'{"kind": "agent", "payload": {"durationSeconds": ' + b"9" * 400 + b"}}",
        ),  # fmt: skip
        Probe("GET", "/jobs/job-1%0A", 404),
        Probe("GET", "/runs/run-1%0A", 404),
        Probe("POST", "/jobs/bulk", 422, json={"action": "delete", "filter": {"ids": ["a\n"]}}),
        Probe("POST", "/jobs/bulk", 422, json={"action": "delete"}),
        Probe("POST", "/jobs/bulk", 422, json={"action": "delete", "filter": {}}),
        Probe(
            "GET",
            "/events",
            422,
            headers=(("Last-Event-ID", "18446744073709551615-18446744073709551615"),),
        ),  # fmt: skip
        Probe(
            "POST",
            "/jobs",
            422,
            content=b'{"kind": "x", "payload": {"a": "' + b'\\"' * 100_000 + b'"}}',
        ),  # fmt: skip
        Probe("POST", "/stop", 403, headers=(("Origin", "https://evil.example"),)),
        Probe("POST", "/run", 403, json={"x": 1, "y": 60}, headers=(("Origin", "null"),)),
        *[Probe("POST", "/run", 422, json={"x": 10, "shape": shape}) for shape in ROUND3_SHAPES],
        *[Probe("POST", "/run", 422, json={"x": 10, "y": 60, "slo": [o]}) for o in ROUND3_SLO],
        *[
            Probe(
                "POST",
                "/run",
                422,
                json={"x": 10, "y": 60, "kind": "synthetic", "payload": {"serviceMs": d}},
            )
            for d in ROUND3_DRAWS
        ],
        Probe("POST", "/run", 422, content=b'{"x": 10, "shape": {"type": "constant", "y": 1e400}}'),
    ]


# Round three: the parsers that came with shapes, objectives and the synthetic kind. Each was a
# 500, an accepted value that could never be followed or drawn, or a digit only Python counts.
ROUND3_SHAPES: list[Any] = [
    {"type": ["latency"]},
    {"type": "ramp", "from": 600, "to": True, "seconds": 10},
    {"type": "steps", "steps": [{"seconds": "\u0663", "y": 600}]},
    {"type": "steps", "steps": [[30, 600]]},
    {"type": "poisson", "y": 1e-300},
    {"type": "trace", "perSecond": [10**40]},
    {"type": "sine", "min": 900, "max": 600, "period": 10},
    {"type": "constant", "y": 600, "[/]": 1},
]
ROUND3_SLO: list[Any] = [
    {"metric": ["endToEnd.p99"], "maxMs": 10},
    {"metric": "endToEnd.p99", "maxMs": "\u00b2"},
    {"metric": "endToEnd.p99", "maxMs": 10, "windowSeconds": 10**12},
    {"metric": "service.p42", "maxMs": 10},
    {"metric": "headAgeMs", "max": 10, "windowSeconds": 5},
]
ROUND3_DRAWS: list[Any] = [
    {"dist": "pareto", "min": 1, "alpha": 1e-300},
    {"dist": "lognormal", "median": 5e-324, "p99": 1},
    {"dist": "fixed", "value": "\u0663"},
]


@dataclass(frozen=True)
class Answer:
    probe: Probe
    status: int
    named: bool  # the body is JSON with an `error` saying what is wrong

    @property
    def right(self) -> bool:
        return self.status == self.probe.expected and self.named


def send_probes(api_url: str, token: str = "") -> list[Answer]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answers = []
    with httpx.Client(base_url=api_url, timeout=30, headers=headers) as http:
        for probe in probes():
            response = probe.send(http)
            try:
                named = bool(response.json().get("error"))
            except (ValueError, AttributeError):
                named = False
            answers.append(Answer(probe, response.status_code, named))
    return answers
