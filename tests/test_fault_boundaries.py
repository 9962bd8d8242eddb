"""The fault proxy holds the lab's boundaries, on real `lab fault serve` processes: every hostile
request is refused with a 4xx and changes nothing; the lab's token, when set, is asked for;
the caps on proxies, toxics and links hold; a link that cannot be written holds its sender back
instead of growing the proxy; and what a fault API answers (ours, or a hostile one) is checked
before `lab stack env`, `lab fault` or the notebook panel put it in a shell, a path or a page."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.config import Settings
from lab.measure.hostile_faults import send_probes
from lab.ops.faults.client import FaultApiError, FaultClient
from lab.ops.servers import free_port

from .helpers import wait_until
from .test_faults import answers, echo_server, serving

LAB = [sys.executable, "-m", "lab"]


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    with echo_server() as address:
        yield address


def lab(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*LAB, *args], env={**os.environ, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_hostile_requests_are_refused_and_change_nothing() -> None:
    with serving() as (url, _pid):
        report = send_probes(url)
    summary = report.summary()
    assert summary["serverErrors"] == 0 and summary["accepted"] == 0, summary
    assert summary["wrong"] == [] and summary["unchanged"], summary
    assert summary["probes"] > 80


def test_the_door_asks_for_the_lab_token_and_the_caps_hold(echo: str, tmp_path: Path) -> None:
    token = "s3cret-token"
    caps = {"LAB_FAULT_MAX_PROXIES": "2", "LAB_FAULT_MAX_TOXICS": "1", "LAB_FAULT_MAX_LINKS": "2"}
    with serving(LAB_API_TOKEN=token, **caps) as (url, _pid):
        assert httpx.get(f"{url}/version").status_code == 200  # open: a probe needs no token
        refused = httpx.get(f"{url}/proxies")
        assert refused.status_code == 401 and refused.json()["status"] == 401
        with pytest.raises(FaultApiError, match="401"):
            FaultClient(url).proxies()
        summary = send_probes(url, token).summary()
        assert summary["wrong"] == [] and summary["unchanged"], summary

        client = FaultClient(url, token=token)
        (made,) = client.populate([{"name": "one", "listen": "127.0.0.1:0", "upstream": echo}])
        client.populate([{"name": "two", "listen": "127.0.0.1:0", "upstream": echo}])
        with pytest.raises(FaultApiError, match="400.*LAB_FAULT_MAX_PROXIES"):
            client.populate([{"name": "three", "upstream": echo}])
        client.add_toxic("one", "latency", {"latency": 1})
        with pytest.raises(FaultApiError, match="400.*LAB_FAULT_MAX_TOXICS"):
            client.add_toxic("one", "timeout", {"timeout": 0})
        client.remove_toxic("one", "latency_downstream")

        address = ("127.0.0.1", int(made["listen"].rpartition(":")[2]))
        held = [socket.create_connection(address, timeout=5) for _ in range(2)]
        for conn in held:
            conn.sendall(b"ping")
            assert conn.recv(10) == b"ping"
        with socket.create_connection(address, timeout=5) as third:
            assert third.recv(10) == b""  # closed at once: two links are open
        links = httpx.get(f"{url}/links", headers={"authorization": f"Bearer {token}"}).json()
        assert links["one"] == {"open": 2, "refused": 1}
        for conn in held:
            conn.close()

        env = {"LAB_FAULTS_URL": url, "LAB_API_TOKEN": token, "LAB_HOME": str(tmp_path)}
        listed = lab("fault", "list", env=env)
        assert listed.returncode == 0 and "two" in listed.stdout, listed.stderr


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _sink() -> socket.socket:
    """A service that reads and drops whatever it is sent."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: [None for _ in iter(lambda: c.recv(65536), b"")],
                             daemon=True).start()  # fmt: skip

    threading.Thread(target=serve, daemon=True).start()
    return server


def _push(address: tuple[str, int], until: float, limit: int) -> int:
    """Send up to `limit` bytes until the deadline, never reading; returns what was taken."""
    sent, block = 0, b"x" * (1 << 20)
    with socket.create_connection(address, timeout=0.25) as conn:
        while sent < limit and time.monotonic() < until:
            try:
                sent += conn.send(block)
            except TimeoutError:
                continue
    return sent


def test_a_link_that_cannot_be_written_holds_its_sender_back(echo: str) -> None:
    """100 MB offered through a 16 KB/s link, and through an echo whose client never reads:
    each link's reader stops once its writer falls behind, so the proxy stays flat."""
    sink = _sink()
    try:
        with serving() as (url, pid):
            client = FaultClient(url)
            slow, deaf = client.populate([
                {"name": "slow", "listen": "127.0.0.1:0",
                 "upstream": f"127.0.0.1:{sink.getsockname()[1]}"},
                {"name": "deaf", "listen": "127.0.0.1:0", "upstream": echo},
            ])  # fmt: skip
            client.add_toxic("slow", "bandwidth", {"rate": 16}, stream="upstream")
            before = _rss_mb(pid)
            until = time.monotonic() + 5
            taken: dict[str, int] = {}
            pushers = [
                threading.Thread(target=lambda n=p["name"], a=p["listen"]: taken.__setitem__(
                    n, _push(("127.0.0.1", int(a.rpartition(":")[2])), until, 100 << 20)))
                for p in (slow, deaf)
            ]  # fmt: skip
            for pusher in pushers:
                pusher.start()
            for pusher in pushers:
                pusher.join(30)
            grown = _rss_mb(pid) - before
    finally:
        sink.close()
    print(f"proxy RSS {before:.0f} MB, +{grown:.1f} MB; taken: {taken}")
    assert grown < 30, (before, grown, taken)
    assert all(sent < 40 << 20 for sent in taken.values()), taken  # held back, not buffered


class HostileToxiproxy(BaseHTTPRequestHandler):
    """A fault API that answers what it likes: addresses that are shell, names that are markup."""

    proxies: dict[str, Any] = {}
    seen: list[str] = []

    def _answer(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(f"GET {self.path}")
        if self.path == "/version":
            self._answer(200, {"version": "hostile"})
        elif self.path == "/proxies":
            self._answer(200, self.proxies)
        else:
            proxy = next(iter(self.proxies.values()))
            self._answer(200, proxy["toxics"] if self.path.endswith("/toxics") else proxy)

    def do_POST(self) -> None:  # noqa: N802
        self.seen.append(f"POST {self.path}")
        self._answer(200, next(iter(self.proxies.values())))

    def do_DELETE(self) -> None:  # noqa: N802
        self.seen.append(f"DELETE {self.path}")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def hostile_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileToxiproxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_what_a_fault_api_answers_is_checked_before_a_shell_a_path_or_a_page(
    hostile_api: str, tmp_path: Path
) -> None:
    env = {"LAB_FAULTS_URL": hostile_api, "LAB_HOME": str(tmp_path / "home")}
    script = f'printed="$({shlex.join(LAB)} stack env)"; echo "exit $?"; eval "$printed"'
    for listen in ("$(touch pwned):1", "127.0.0.1:1;touch pwned", "127.0.0.1:1\ntouch pwned"):
        redis = {"name": "redis", "listen": listen, "upstream": "127.0.0.1:6379", "toxics": []}
        HostileToxiproxy.proxies = {"redis": redis}
        found = subprocess.run(["bash", "-c", script], cwd=tmp_path, env={**os.environ, **env},
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        assert found.stdout == "exit 1\n", found  # nothing printed for the shell to run
        assert "listen" in found.stderr and "not host:port" in found.stderr
        assert not (tmp_path / "pwned").exists()

    toxics = [{"name": n, "type": "latency", "stream": "downstream", "toxicity": 1,
               "attributes": {"latency": 1}} for n in ("[/]", "a/b", "<b>x</b>")]  # fmt: skip
    markup = {"name": "[/]", "listen": "127.0.0.1:1", "upstream": "127.0.0.1:1", "toxics": toxics}
    HostileToxiproxy.proxies = {"[/]": markup}
    listed = lab("fault", "list", env=env)
    assert listed.returncode == 0 and "[/]" in listed.stdout and "<b>x</b>" in listed.stdout
    HostileToxiproxy.seen.clear()
    healed = lab("fault", "heal", "[/]", env=env)
    assert healed.returncode == 0 and "[/] healed" in healed.stderr, healed.stderr
    assert "DELETE /proxies/%5B%2F%5D/toxics/a%2Fb" in HostileToxiproxy.seen  # one segment each

    from lab.views.faults import FaultControls

    panel = FaultControls(Settings(faults_url=hostile_api))
    wait_until(lambda: "latency" in panel.state_html.value, 10, "the panel to show the toxics")
    assert "&lt;b&gt;x&lt;/b&gt;" in panel.state_html.value and "<b>x</b>" not in (
        panel.state_html.value
    )


@pytest.mark.slow
def test_eval_stack_env_then_lab_up_runs_a_lab_through_the_proxy(
    settings: Settings, tmp_path: Path
) -> None:
    """The documented recipe: `lab stack up --with faults`, then `eval "$(lab stack env)"; lab up`.
    The API listens at LAB_API_BIND (where the proxy forwards), every process reaches Redis,
    RabbitMQ and Elasticsearch through their proxies, and the API answers through its own."""
    env = {**settings.as_env(), "LAB_FAULTS_URL": f"http://127.0.0.1:{free_port()}"}
    up = lab("stack", "up", "--only", "redis", "--with", "faults", env=env)
    assert up.returncode == 0, up.stderr
    log = (tmp_path / "up.log").open("w")
    recipe = f'eval "$({shlex.join(LAB)} stack env)" && exec {shlex.join(LAB)} up --workers 1'
    running = subprocess.Popen(["bash", "-c", recipe], env={**os.environ, **env}, cwd=tmp_path,
                               stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        faults = FaultClient(env["LAB_FAULTS_URL"])
        proxied = f"http://{faults.proxies()['api']['listen']}"
        wait_until(lambda: answers(f"{proxied}/healthz", 2), 60, "the lab's API through its proxy",
                   lambda: (tmp_path / "up.log").read_text()[-2000:])  # fmt: skip
        assert httpx.get(f"{settings.api_url}/healthz", timeout=5).status_code == 200  # its bind
        assert "workers" in httpx.get(f"{proxied}/status", timeout=5).json()
        links = httpx.get(f"{env['LAB_FAULTS_URL']}/links", timeout=5).json()
        assert all(links[name]["open"] > 0 for name in ("redis", "rabbitmq", "elasticsearch")), (
            links
        )
    finally:
        running.send_signal(signal.SIGTERM)
        running.wait(60)
        log.close()
        down = lab("stack", "down", env=env)
    assert "faults         stopped" in down.stderr, down.stderr
