"""The hostile requests the fault proxy's API must refuse (`lab fault serve`, lab/ops/faults/):
requests from a page or a host name that is not the lab's, bodies that are not JSON or are too
large (refused before they are read whole), addresses that are not loopback or whose port is
not ASCII digits, names a path or a shell would read specially, and fields of the wrong type.

Each was once a 201, a 500 or a reset connection. `send_probes(url)` sends them all to a fault
API and returns a verdict per probe, and whether the proxies are as they were, so a drill report
and the tests judge the same list: no answer is a 5xx, none that must be refused is accepted,
and nothing changes.
"""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

PROBE_PROXY = "hostile-probe"
FOREIGN_ORIGIN = ("origin", "https://evil.example")
FOREIGN_HOST = ("host", "rebound.example:8474")
SHELL = ["$(touch pwned)", "`touch pwned`", "a;touch pwned", "a'b", 'a"b', "a\nb", "a b", "a|b"]
# Where a proxy may not listen: beyond loopback, or a port of digits that are not ASCII.
LISTEN = [
    "0.0.0.0:0", "[::]:0", "10.0.0.1:0", "example.com:0", "127.0.0.1:\u00b2", "127.0.0.1:\u0663",
    "127.0.0.1:99999", "127.0.0.1:", "127.0.0.1:0\n", "$(touch pwned):1", ["127.0.0.1:0"], 5,
    *[f"{s}:1" for s in SHELL],
]  # fmt: skip
UPSTREAM = [*[f"{s}:1" for s in SHELL], "127.0.0.1:0", "x:\u00b2", "127.0.0.1:1\n", 6, None]
NAMES = ["a/b", "x" * 65, "a b", "[/]", "<b>x</b>", "a\n", "..%2F", 5, ["a"], {"a": 1}]
TOXICS: list[Any] = [
    {"type": ["latency"]},
    {"type": "latency", "stream": ["upstream"]},
    {"type": "latency", "name": "a/b"},
    {"type": "latency", "name": "[/]"},
    {"type": "latency", "attributes": {"latency": "1"}},
    {"type": "latency", "attributes": {"latency": -1}},
    {"type": "latency", "attributes": {"lag": 1}},
    {"type": "latency", "attributes": []},
    {"type": "latency", "toxicity": "1"},
    {"type": "latency", "toxicity": 2},
    [],
    "latency",
]
TOXIC_BYTES = [
    b'{"type": "latency", "toxicity": NaN}',
    b'{"type": "latency", "attributes": {"latency": 1e400}}',
    b'{"type": "latency", "attributes": {"latency": ' + b"9" * 400 + b"}}",
    b'{"type": "latency", "attributes": ' + b"[" * 100 + b"]" * 100 + b"}",
    b"not json",
    b"\xff\xfe",
    b"[" * 50_000,
]


@dataclass(frozen=True)
class Probe:
    """One hostile request and the status it must get (every one a 4xx)."""

    about: str
    method: str
    path: str
    expected: int
    content: bytes | None = None
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    # A body declared larger than it is sent (or sent chunked without an end): sent on a raw
    # socket, the answer must come before the body is whole.
    declared: int = 0
    chunked: bool = False


def _json(about: str, method: str, path: str, body: Any, expected: int = 400,
          extra: tuple[tuple[str, str], ...] = ()) -> Probe:  # fmt: skip
    headers = (("content-type", "application/json"), *extra)
    return Probe(about, method, path, expected, json.dumps(body).encode(), headers)


def probes(token: str = "") -> list[Probe]:
    own = f"/proxies/{PROBE_PROXY}"
    good = {"name": "hostile-new", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"}
    out = [
        Probe("a text/plain body", "POST", "/proxies", 415, json.dumps(good).encode(),
              (("content-type", "text/plain"),)),
        Probe("a body without a type", "POST", "/proxies", 415, json.dumps(good).encode(), ()),
        Probe("a form body", "POST", f"{own}/toxics", 415, b"type=latency",
              (("content-type", "application/x-www-form-urlencoded"),)),
        _json("a foreign page creates", "POST", "/proxies", good, 403, (FOREIGN_ORIGIN,)),
        _json("a foreign host creates", "POST", "/proxies", good, 421, (FOREIGN_HOST,)),
        Probe("a foreign page resets", "POST", "/reset", 403, None, (FOREIGN_ORIGIN,)),
        Probe("a foreign host resets", "POST", "/reset", 421, None, (FOREIGN_HOST,)),
        _json("a foreign page disables", "POST", own, {"enabled": False}, 403, (FOREIGN_ORIGIN,)),
        Probe("a foreign page deletes", "DELETE", own, 403, None, (FOREIGN_ORIGIN,)),
        _json("a sandboxed page adds a toxic", "POST", f"{own}/toxics", {"type": "timeout"}, 403,
              (("origin", "null"),)),
        _json("a foreign host populates", "POST", "/populate", [good], 421, (FOREIGN_HOST,)),
        Probe("80 MB declared", "POST", "/proxies", 413, declared=80 * 2**20),
        Probe("80 MB chunked", "POST", "/populate", 413, chunked=True),
        Probe("an unknown route", "GET", "/nope", 404, None, ()),
        Probe("a name with a slash in the path", "GET", "/proxies/a%2Fb", 404, None, ()),
        Probe("a toxic named with a slash", "DELETE", f"{own}/toxics/a%2Fb", 404, None, ()),
        *[_json(f"listen {v!r}", "POST", "/proxies", {**good, "listen": v}) for v in LISTEN],
        *[_json(f"upstream {v!r}", "POST", "/proxies", {**good, "upstream": v}) for v in UPSTREAM],
        *[_json(f"proxy name {v!r}", "POST", "/proxies", {**good, "name": v}) for v in NAMES],
        _json("a disabled proxy moved to a shell line", "POST", own,
              {"enabled": False, "listen": "$(touch pwned):1"}),
        _json("a proxy moved beyond loopback", "POST", own, {"listen": "0.0.0.0:0"}),
        _json("enabled as text", "POST", own, {"enabled": "no"}),
        _json("an upstream of shell", "POST", own, {"upstream": "$(touch pwned):1"}),
        *[_json(f"toxic {v!r}", "POST", f"{own}/toxics", v) for v in TOXICS],
        *[Probe(f"toxic bytes {v[:40]!r}", "POST", f"{own}/toxics", 400, v) for v in TOXIC_BYTES],
        *[_json(f"toxic name {v!r}", "POST", f"{own}/toxics", {"type": "latency", "name": v})
          for v in NAMES],
        _json("populate: not a list", "POST", "/populate", {"name": "x"}),
        _json("populate: one bad entry of two", "POST", "/populate",
              [{"name": "hostile-ok", "upstream": "127.0.0.1:1"}, {**good, "name": "a/b"}]),
        _json("populate: past the cap of proxies", "POST", "/populate",
              [{"name": f"p{i}", "upstream": "h:1"} for i in range(1500)]),
    ]  # fmt: skip
    if token:
        out.append(Probe("no token", "POST", "/reset", 401, None, (("authorization", ""),)))
    return out


@dataclass(frozen=True)
class Verdict:
    probe: Probe
    status: int  # 0: no answer (a reset connection, a timeout)
    named: bool  # the body is JSON with an `error` saying what is wrong

    @property
    def right(self) -> bool:
        return self.status == self.probe.expected and self.named

    @property
    def server_error(self) -> bool:
        return self.status >= 500 or self.status == 0

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Report:
    verdicts: list[Verdict] = field(default_factory=list)
    unchanged: bool = False  # the proxies are as they were before the probes

    def summary(self) -> dict[str, Any]:
        wrong = [v for v in self.verdicts if not v.right]
        return {
            "probes": len(self.verdicts),
            "right": len(self.verdicts) - len(wrong),
            "serverErrors": sum(v.server_error for v in self.verdicts),
            "accepted": sum(v.accepted for v in self.verdicts),
            "unchanged": self.unchanged,
            "wrong": [f"{v.probe.about}: {v.status} (expected {v.probe.expected})" for v in wrong],
        }


def send_probes(url: str, token: str = "", timeout_s: float = 10.0) -> Report:
    """Every probe against the fault API at `url`, around a proxy of their own
    (`hostile-probe`, deleted after); the proxies before and after are compared."""
    auth = {"authorization": f"Bearer {token}"} if token else {}
    report = Report()
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s, headers=auth) as http:
        made = http.post("/proxies", json={"name": PROBE_PROXY, "listen": "127.0.0.1:0",
                                           "upstream": "127.0.0.1:9"})  # fmt: skip
        made.raise_for_status()
        try:
            before = http.get("/proxies").json()
            for probe in probes(token):
                report.verdicts.append(_send(http, url, probe, auth, timeout_s))
            report.unchanged = http.get("/proxies").json() == before
        finally:
            http.delete(f"/proxies/{PROBE_PROXY}")
    return report


def _send(http: httpx.Client, url: str, probe: Probe, auth: dict[str, str],
          timeout_s: float) -> Verdict:  # fmt: skip
    if probe.declared or probe.chunked:
        status, body = _raw(url, probe, auth, timeout_s)
    else:
        headers = {**auth, **dict(probe.headers)}
        try:
            response = http.request(probe.method, probe.path, content=probe.content,
                                    headers=headers)  # fmt: skip
        except httpx.HTTPError:
            return Verdict(probe, 0, False)
        status, body = response.status_code, response.content
    try:
        named = bool(json.loads(body).get("error"))
    except (ValueError, AttributeError):
        named = False
    return Verdict(probe, status, named)


def _raw(url: str, probe: Probe, auth: dict[str, str], timeout_s: float) -> tuple[int, bytes]:
    """Send the head and 1 MiB of a body that is much larger (declared, or chunked without an
    end), then read the answer: it must come though the body never does."""
    parts = urlsplit(url)
    head = [f"{probe.method} {probe.path} HTTP/1.1", f"host: {parts.netloc}",
            "content-type: application/json", *[f"{k}: {v}" for k, v in auth.items()]]  # fmt: skip
    piece = b"x" * 65536
    if probe.chunked:
        head.append("transfer-encoding: chunked")
        body = (b"10000\r\n" + piece + b"\r\n") * 16
    else:
        head.append(f"content-length: {probe.declared}")
        body = piece * 16
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout_s) as conn:
            conn.sendall("\r\n".join(head).encode() + b"\r\n\r\n")
            with contextlib.suppress(OSError):  # answered and closed early: read what it said
                conn.sendall(body)
            return _answer(conn)
    except OSError:
        return 0, b""


def _answer(conn: socket.socket) -> tuple[int, bytes]:
    raw = b""
    while b"\r\n\r\n" not in raw or len(raw.partition(b"\r\n\r\n")[2]) < _length(raw):
        chunk = conn.recv(65536)
        if not chunk:
            break
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
    return (int(status) if status.isdigit() else 0), body


def _length(raw: bytes) -> int:
    for line in raw.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return 0
