"""What every local service has in common: is it answering, a free port, waiting until it is
healthy, the binary it needs, and `Local`, the handle that stops (or kills) exactly what `lab`
started. `lab.ops.servers` starts each service with these."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pika
import redis

from lab.config import Settings, safe_url
from lab.ops import processes
from lab.wait import poll

SERVICES = ("redis", "rabbitmq", "elasticsearch")
APT_PACKAGES = {
    "redis-server": "redis-server",
    "rabbitmq-server": "rabbitmq-server",
    "prometheus": "prometheus",
}
# Started only when asked for: `lab stack up --with prometheus,faults`.
OPTIONAL = ("prometheus", "faults")
COMPOSE_HINT = "docker compose up -d redis rabbitmq elasticsearch"

log = logging.getLogger("lab.ops.servers")


class StackError(RuntimeError):
    """A service could not be reached or started; the message says what to do."""


# --- is it there? -------------------------------------------------------------------------------
def redis_ok(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def amqp_ok(url: str) -> bool:
    params = pika.URLParameters(url)
    params.socket_timeout = 2
    params.blocked_connection_timeout = 2
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
        return True
    except Exception:
        return False


def es_ok(url: str) -> bool:
    try:
        response = httpx.get(url, timeout=2)
        return response.status_code == 200 and "version" in response.json()
    except (httpx.HTTPError, ValueError):
        return False


def prometheus_ok(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def faults_ok(url: str) -> bool:
    """The fault proxy's API, or a real Toxiproxy's, answers."""
    try:
        return httpx.get(f"{url}/version", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


CHECKS = {
    "redis": redis_ok,
    "rabbitmq": amqp_ok,
    "elasticsearch": es_ok,
    "prometheus": prometheus_ok,
    "faults": faults_ok,
}


def urls(settings: Settings) -> dict[str, str]:
    return {
        "redis": settings.redis_url,
        "rabbitmq": settings.amqp_url,
        "elasticsearch": settings.es_url,
        "prometheus": settings.prometheus_url,
        "faults": settings.faults_url,  # after the services it stands in front of
    }


def free_port() -> int:
    return free_ports(1)[0]


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free now, below the kernel's ephemeral range: a port from that
    range can be taken meanwhile as the local end of any outgoing connection (a health probe,
    nodes of a cluster talking), and a server started there fails with EADDRINUSE."""
    floor = _ephemeral_floor()
    low = 10000 if floor > 11000 else 1024
    held: list[socket.socket] = []
    try:
        while len(held) < count:
            port = random.randrange(low, floor)
            if port in _handed_out:  # free now, but promised to a server not started yet
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            held.append(s)
        ports = [s.getsockname()[1] for s in held]
        _handed_out.update(ports)
        return ports
    finally:
        for s in held:
            s.close()


_handed_out: set[int] = set()  # ports this process already chose, never handed out twice


def port_of(url: str) -> int:
    parsed = urlparse(url)
    if parsed.port:
        return parsed.port
    return {"redis": 6379, "amqp": 5672, "http": 80, "https": 443}[parsed.scheme]


def wait_healthy(check, url: str, timeout_s: float, what: str, log: Path | None = None) -> None:
    if poll(lambda: check(url), timeout_s, 0.2):
        return
    where = f"; its log: {log}" if log else ""
    last = ""
    if log is not None and log.is_file():  # the log may be gone by the time anyone reads it
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        last = "\n" + "\n".join(line[:300] for line in lines[-8:])
    raise StackError(
        f"{what} did not become healthy at {safe_url(url)} within {timeout_s:.0f} s{where}{last}"
    )


def ensure_binary(name: str) -> str:
    """The path of `name`, installing its Debian package when we are root on Debian."""
    found = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if found:
        return found
    package = APT_PACKAGES.get(name)
    if package and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"lab: installing {package} with apt-get", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
        found = shutil.which(name) or (
            f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
        )
        if found:
            return found
    raise StackError(
        f"{name} is not installed and lab cannot install it here. Install it "
        f"(Debian/Ubuntu: sudo apt-get install {package or name}), or run the services with "
        f"Docker: `{COMPOSE_HINT}`, or point LAB_* URLs at running ones."
    )


# --- local instances ----------------------------------------------------------------------------
@dataclass
class Local:
    """A service lab started; `stop()` ends it (and only it)."""

    service: str
    url: str
    pid: int | None = None
    node: str | None = None  # RabbitMQ node name
    group: bool = False  # pid leads its own process group (stop the whole group)
    data_dir: Path | None = None  # its data folder (noida-db's control commands name it too)

    def pause_service(self) -> None:
        """noida-db only: stop serving (the port refuses connections), data saved; the process
        stays. What a drill uses to make Elasticsearch unreachable without losing writes."""
        self._noida("stop")

    def resume_service(self, timeout_s: float = 30.0) -> None:
        self._noida("start")
        wait_healthy(es_ok, self.url, timeout_s, "Elasticsearch API (noida-db)")
        if self.pid:
            save_when_idle(self.pid)

    def _noida(self, action: str) -> None:
        if self.service != "elasticsearch" or self.data_dir is None:
            raise StackError(f"{self.service} has no service to {action}")
        done = subprocess.run(
            [noida_binary(), action, "elasticsearch", "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise StackError(f"noida-db {action} elasticsearch failed: {done.stderr[-500:]}")

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.node:
            # `rabbitmqctl stop` returns before the node's OS process is gone, and a process
            # still holding the AMQP port makes a restart on that port fail with EADDRINUSE
            # (seen on a loaded machine): wait for the process itself.
            pid = _rabbit_pid(self.node)
            subprocess.run(
                ["rabbitmqctl", "-q", "-n", self.node, "stop"],
                check=False,
                capture_output=True,
                timeout=timeout_s,
            )
            # The node stops by itself once asked; SIGKILL only if it does not.
            if pid is not None and not poll(functools.partial(_gone, pid), timeout_s):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return
        if not self.pid:
            return
        pid = self.pid
        # Wait for every process of the group: noida-db's launcher exits before the server it
        # started has written its data file, and killing the server then loses the writes it
        # acknowledged since its last save.
        running = processes.group_alive if self.group else processes.alive
        processes.terminate(self._signal, lambda: running(pid), timeout_s)

    def kill(self) -> None:
        """SIGKILL, as in a crash (RabbitMQ: the node's OS process)."""
        if self.node:
            pid = _rabbit_pid(self.node)
            if pid and processes.alive(pid):
                os.kill(pid, signal.SIGKILL)
        elif self.pid:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)


def _gone(pid: int) -> bool:
    return not processes.alive(pid)


def _rabbit_pid(node: str) -> int | None:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "-n", node, "eval", "os:getpid()."],
        capture_output=True,
        text=True,
        check=False,
    )
    digits = out.stdout.strip().strip('"')
    return int(digits) if digits.isdigit() else None


def noida_binary() -> str:
    beside = Path(sys.executable).parent / "noida-db"
    found = str(beside) if beside.exists() else shutil.which("noida-db")
    if not found:
        raise StackError(
            "noida-db (the local Elasticsearch-API server) is not installed: "
            f"pip install 'lab[stack]', or run Elasticsearch with `{COMPOSE_HINT}`"
        )
    return found


def save_when_idle(pgid: int) -> None:
    """noida-db writes everything it holds to one file every few seconds from one thread,
    `autosave`, and that costs CPU in proportion to the data held, not to the writes: with
    100,000 documents it is most of the server's CPU, and it competes with the API, the
    worker and the broker on a small machine. On SCHED_IDLE it saves when a core is free; a
    busy machine saves less often, and an orderly stop still saves everything (docs/SERVICES.md)."""
    if not processes.idle_threads(pgid, "autosave"):
        log.info("noida-db: no autosave thread found to idle")
