"""The fault proxy as a real process (`lab fault serve`) in front of an echo server on loopback:
each toxic does what Toxiproxy's does (bytes in = bytes out, added latency and bandwidth within
generous bounds, a blackhole never answers, a reset is an RST, a disabled proxy refuses), its
API answers with Toxiproxy's shapes, Toxiproxy's own Python client drives it, and `lab fault`
names what is wrong."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from lab.config import Settings
from lab.ops.faults.client import FaultApiError, FaultClient
from lab.ops.servers import free_port

from .helpers import wait_until


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        # A proxy's reset_peer toxic (or a test closing its end) resets the echo's connection:
        # that is the end of this client, not an error worth a traceback in the suite's output.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            while data := self.request.recv(65536):
                self.request.sendall(data)


@contextlib.contextmanager
def echo_server() -> Iterator[str]:
    """An echo service on loopback: its host:port."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    with echo_server() as address:
        yield address


def answers(url: str, timeout_s: float = 1.0) -> bool:
    """`url` answers 200."""
    try:
        return httpx.get(url, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def serving(**settings: str) -> Iterator[tuple[str, int]]:
    """`lab fault serve` as a process of its own, with these `LAB_*` settings: (its URL, pid)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lab", "fault", "serve", "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, **settings},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/version"), 20, "the fault proxy's API")
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def faults_url() -> Iterator[str]:
    with serving() as (url, _pid):
        yield url


@pytest.fixture
def faults(faults_url: str) -> Iterator[FaultClient]:
    client = FaultClient(faults_url)
    yield client
    for name in client.proxies():
        httpx.delete(f"{faults_url}/proxies/{name}", timeout=5)
    client.close()


def through(faults: FaultClient, upstream: str) -> tuple[str, tuple[str, int]]:
    name = f"echo-{secrets.token_hex(3)}"
    (proxy,) = faults.populate([{"name": name, "listen": "127.0.0.1:0", "upstream": upstream}])
    host, _, port = proxy["listen"].rpartition(":")
    return name, (host, int(port))


def exchange(address: tuple[str, int], data: bytes, timeout_s: float = 10.0) -> bytes:
    with socket.create_connection(address, timeout=timeout_s) as conn:
        conn.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_bytes_in_are_bytes_out_and_latency_and_bandwidth_are_added(
    faults: FaultClient, echo: str
) -> None:
    name, address = through(faults, echo)
    data = os.urandom(200_000)
    assert exchange(address, data) == data
    faults.add_toxic(name, "slicer", {"average_size": 700, "size_variation": 300, "delay": 10})
    assert exchange(address, data) == data  # cut into small writes, nothing lost or reordered
    faults.remove_toxic(name, "slicer_downstream")

    faults.add_toxic(name, "latency", {"latency": 300, "jitter": 20})
    began = time.monotonic()
    assert exchange(address, b"ping") == b"ping"
    assert time.monotonic() - began >= 0.28
    faults.remove_toxic(name, "latency_downstream")

    faults.add_toxic(name, "bandwidth", {"rate": 100}, stream="upstream")  # 100 KB/s
    began = time.monotonic()
    assert exchange(address, data) == data
    assert time.monotonic() - began >= 1.5  # 200 KB at 100 KB/s: about 2 s


def test_a_blackhole_never_answers_a_reset_is_an_rst_and_a_disabled_proxy_refuses(
    faults: FaultClient, echo: str
) -> None:
    name, address = through(faults, echo)
    faults.blackhole(name)
    with socket.create_connection(address, timeout=5) as conn:  # accepted …
        conn.sendall(b"anyone there?")  # … bytes taken …
        conn.settimeout(1.0)
        with pytest.raises(TimeoutError):
            conn.recv(100)  # … never answered
    faults.heal(name)
    assert exchange(address, b"back") == b"back"

    faults.add_toxic(name, "reset_peer", {"timeout": 100})
    with socket.create_connection(address, timeout=5) as conn:
        conn.settimeout(5)
        with pytest.raises(ConnectionResetError):
            conn.sendall(b"x")
            while conn.recv(100):
                pass
    faults.heal(name)

    faults.add_toxic(name, "limit_data", {"bytes": 1000})
    assert len(exchange(address, os.urandom(5000))) == 1000  # then closed
    faults.heal(name)

    faults.disable(name)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5)
    faults.heal(name)
    assert exchange(address, b"again") == b"again"


def test_the_api_answers_with_toxiproxys_shapes(faults_url: str, echo: str) -> None:
    api = httpx.Client(base_url=faults_url, timeout=5)
    assert api.get("/version").json()["version"]
    made = api.post("/proxies", json={"name": "shapes", "listen": "127.0.0.1:0",
                                      "upstream": echo})  # fmt: skip
    assert made.status_code == 201
    assert set(made.json()) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert made.json()["enabled"] is True and made.json()["toxics"] == []
    again = api.post("/proxies", json={"name": "shapes", "upstream": echo})
    assert again.status_code == 409
    assert again.json() == {"error": "proxy already exists", "status": 409}
    assert api.get("/proxies/nope").json() == {"error": "proxy not found", "status": 404}
    assert api.post("/proxies", json={"name": "x"}).json()["error"] == (
        "missing required field: upstream"
    )

    toxic = api.post("/proxies/shapes/toxics", json={"type": "latency",
                                                    "attributes": {"latency": 100}})  # fmt: skip
    assert toxic.status_code == 200
    assert toxic.json() == {"attributes": {"latency": 100, "jitter": 0},
                            "name": "latency_downstream", "type": "latency",
                            "stream": "downstream", "toxicity": 1.0}  # fmt: skip
    duplicate = api.post("/proxies/shapes/toxics", json={"type": "latency"})
    assert duplicate.status_code == 409 and duplicate.json()["error"] == "toxic already exists"
    bad = api.post("/proxies/shapes/toxics", json={"type": "lightning"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("invalid toxic type")
    assert (
        api.post("/proxies/shapes/toxics", json={"type": "latency", "stream": "sideways"}).json()[
            "error"
        ]
        == "stream was invalid, can be either upstream or downstream"
    )
    updated = api.post("/proxies/shapes/toxics/latency_downstream",
                       json={"attributes": {"jitter": 5}, "toxicity": 0.5})  # fmt: skip
    assert updated.json()["attributes"] == {"latency": 100, "jitter": 5}
    assert updated.json()["toxicity"] == 0.5
    assert api.get("/proxies/shapes/toxics").json() == [updated.json()]
    assert api.get("/proxies/shapes").json()["toxics"] == [updated.json()]
    assert api.get("/proxies").json()["shapes"]["name"] == "shapes"

    assert api.post("/proxies/shapes", json={"enabled": False}).json()["enabled"] is False
    assert api.post("/reset").status_code == 204
    assert api.get("/proxies/shapes").json()["enabled"] is True
    assert api.get("/proxies/shapes/toxics").json() == []

    populated = api.post("/populate", json=[{"name": "shapes", "upstream": echo,
                                             "listen": made.json()["listen"]}])  # fmt: skip
    assert populated.status_code == 201 and populated.json()["proxies"][0]["name"] == "shapes"
    assert api.delete("/proxies/shapes/toxics/nope").status_code == 404
    assert api.delete("/proxies/shapes").status_code == 204
    assert api.get("/proxies").json() == {}
    for body in (b"not json", b"[1]", b'{"name": 5, "upstream": 6}'):
        answer = api.post("/proxies", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400 and "error" in answer.json(), body
    plain = api.post("/proxies", content=b'{"name": "p", "upstream": "127.0.0.1:1"}')
    assert plain.status_code == 415 and plain.json()["status"] == 415  # JSON bodies only


def test_toxiproxys_own_python_client_drives_it(faults_url: str, echo: str) -> None:
    from toxiproxy import Toxiproxy

    server = Toxiproxy()
    host, _, port = faults_url.removeprefix("http://").rpartition(":")
    server.update_api_consumer(host, int(port))
    assert server.running() and server.version()
    proxy = server.create(upstream=echo, name="client", listen="127.0.0.1:0")
    try:
        address = proxy.listen.rpartition(":")
        assert "client" in server.proxies()
        proxy = server.get_proxy("client")
        proxy.add_toxic(type="latency", attributes={"latency": 200})
        assert list(proxy.toxics()) == ["latency_downstream"]
        began = time.monotonic()
        assert exchange((address[0], int(address[2])), b"hi") == b"hi"
        assert time.monotonic() - began >= 0.18
        proxy.destroy_toxic("latency_downstream")
        assert proxy.toxics() == {}
        with proxy.down(), pytest.raises(ConnectionRefusedError):
            socket.create_connection((address[0], int(address[2])), timeout=5)
        assert server.reset()
    finally:
        server.destroy_all()
    assert server.proxies() == {}


@pytest.mark.slow
def test_lab_fault_lists_adds_heals_and_names_what_is_wrong(faults_url: str, echo: str) -> None:
    env = {**os.environ, "LAB_FAULTS_URL": faults_url}

    def lab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lab", "fault", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    client = FaultClient(faults_url)
    client.populate([{"name": "cli", "listen": "127.0.0.1:0", "upstream": echo}])
    added = lab("add", "cli", "latency", "-a", "latency=200", "-a", "jitter=50")
    assert added.returncode == 0, added.stderr
    assert "latency_downstream (latency 200, jitter 50)" in added.stderr
    listed = lab("list")
    assert "cli" in listed.stdout and "latency_downstream" in listed.stdout
    assert lab("blackhole", "cli").returncode == 0
    assert {t["name"] for t in client.toxics("cli")} == {
        "latency_downstream", "blackhole_up", "blackhole_down"}  # fmt: skip
    assert lab("heal", "cli").returncode == 0 and client.toxics("cli") == []
    assert lab("disable", "cli").returncode == 0 and not client.proxy("cli")["enabled"]
    assert lab("reset").returncode == 0 and client.proxy("cli")["enabled"]

    # A preset applied again, or a harsher one for the same service, changes its toxic in place.
    client.populate([{"name": "elasticsearch", "listen": "127.0.0.1:0", "upstream": echo}])
    try:
        for preset in ("es-slow", "es-slow", "es-very-slow"):
            applied = lab("apply", preset)
            assert applied.returncode == 0, applied.stderr
        assert "preset_latency_downstream (updated)" in applied.stdout + applied.stderr
        (toxic,) = client.toxics("elasticsearch")
        assert toxic["attributes"] == {"latency": 250, "jitter": 50}
    finally:
        httpx.delete(f"{faults_url}/proxies/elasticsearch", timeout=5)

    wrong = lab("add", "cli", "latency", "-a", "lag=5")
    assert wrong.returncode == 2 and "latency takes latency=N, jitter=N" in wrong.stderr
    missing = lab("remove", "nope", "x")
    assert missing.returncode == 1 and "proxy not found" in missing.stderr
    with pytest.raises(FaultApiError, match="did not answer"):
        FaultClient(f"http://127.0.0.1:{free_port()}").proxies()
    down = subprocess.run(
        [sys.executable, "-m", "lab", "fault", "list"],
        env={**env, "LAB_FAULTS_URL": f"http://127.0.0.1:{free_port()}"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert down.returncode == 1 and "lab stack up --with faults" in down.stderr
    client.close()


@pytest.mark.slow
def test_stack_up_with_faults_puts_the_proxy_in_front_of_each_service(tmp_path: Path) -> None:
    """`lab stack up --only redis --with faults`: the proxy starts in front of the stack's
    services; `lab stack env` gives the URLs through it; Redis answers through it until it is
    blackholed (a client with a deadline gives up) and again once healed; `stack status` shows
    the toxics in force; `stack down` stops the proxy and leaves the shared Redis alone."""
    port = free_port()
    env = {**os.environ, "LAB_HOME": str(tmp_path), "LAB_FAULTS_URL": f"http://127.0.0.1:{port}",
           "LAB_API_URL": f"http://127.0.0.1:{free_port()}"}  # fmt: skip

    def lab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lab", *args], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    up = lab("stack", "up", "--only", "redis", "--with", "faults")
    assert up.returncode == 0, up.stderr
    assert "faults: http://127.0.0.1:" in up.stderr and "redis, rabbitmq" in up.stderr
    try:
        exported = lab("stack", "env").stdout.splitlines()
        assert all(line.startswith("export LAB_") for line in exported), exported
        lines = dict(line.removeprefix("export ").split("=", 1) for line in exported)
        assert lines["LAB_FAULTS_URL"] == env["LAB_FAULTS_URL"]
        listening = {name: p["listen"] for name, p in FaultClient(env["LAB_FAULTS_URL"])
                     .proxies().items()}  # fmt: skip
        assert lines["LAB_REDIS_URL"] == f"redis://{listening['redis']}/0"
        assert lines["LAB_AMQP_URL"] == f"amqp://guest:guest@{listening['rabbitmq']}/%2F"
        # The API listens where the proxy in front of it forwards to, not where it is reached.
        assert lines["LAB_API_BIND"] == env["LAB_API_URL"].removeprefix("http://")
        assert lines["LAB_API_URL"] == f"http://{listening['api']}"
        through_proxy = redis.Redis.from_url(lines["LAB_REDIS_URL"], socket_timeout=1)
        assert through_proxy.ping()
        assert lab("fault", "blackhole", "redis").returncode == 0
        silent = redis.Redis.from_url(lines["LAB_REDIS_URL"], socket_timeout=1)
        with pytest.raises(redis.TimeoutError):
            silent.ping()
        status = lab("stack", "status", "--json")
        toxics = json.loads(status.stdout)["faults"]["toxics"]
        assert sorted(toxics) == ["redis: blackhole_down", "redis: blackhole_up"]
        assert lab("fault", "heal", "redis").returncode == 0
        assert redis.Redis.from_url(lines["LAB_REDIS_URL"], socket_timeout=2).ping()
    finally:
        down = lab("stack", "down")
    assert "faults         stopped" in down.stderr, down.stderr
    assert redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()  # the shared one is untouched
    assert subprocess.run([sys.executable, "-m", "lab", "fault", "list"], env=env,
                          capture_output=True, timeout=60).returncode == 1  # fmt: skip


def test_the_panels_fault_buttons_act_on_the_picked_service(faults_url: str, echo: str) -> None:
    from lab.views.faults import FaultControls

    client = FaultClient(faults_url)
    client.populate([{"name": "panel", "listen": "127.0.0.1:0", "upstream": echo}])
    controls = FaultControls(Settings(faults_url=faults_url))
    wait_until(lambda: "panel" in controls.proxy.options, 10, "the panel to list the proxies")
    controls.proxy.value = "panel"
    controls.act(lambda name: controls.client.blackhole(name))  # what the button runs, inline
    assert "blackhole_up" in controls.state_html.value
    controls.blackhole_button.click()  # in the background, as in a notebook
    wait_until(lambda: "already exists" in controls.state_html.value, 10, "the second blackhole")
    controls.heal_button.click()
    wait_until(lambda: client.toxics("panel") == [], 10, "the heal")
    wait_until(lambda: "no faults" in controls.state_html.value, 10, "the panel to show it")
    controls.preset.value = "es-slow"
    controls.preset_button.click()
    wait_until(lambda: "needs a proxy in front of elasticsearch" in controls.state_html.value, 10,
               "the panel to name the missing proxy")  # fmt: skip
    client.populate([{"name": "elasticsearch", "listen": "127.0.0.1:0", "upstream": echo}])
    try:
        controls.preset_button.click()
        wait_until(lambda: "elasticsearch" in controls.state_html.value
                   and "latency" in controls.state_html.value, 10, "the preset shown")  # fmt: skip
        (toxic,) = client.toxics("elasticsearch")
        assert toxic["name"] == "preset_latency_downstream" and toxic["attributes"]["latency"] == 50
    finally:
        httpx.delete(f"{faults_url}/proxies/elasticsearch", timeout=5)
    away = FaultControls(Settings(faults_url=f"http://127.0.0.1:{free_port()}"))
    wait_until(lambda: "no fault proxy answers" in away.state_html.value, 10, "the hint")
    assert all(b.disabled for b in away.buttons)
    client.close()
