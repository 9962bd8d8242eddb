"""Each service lab uses, run locally: is it answering, and starting one on a free port.

Redis (`redis-server`), RabbitMQ (a private node with its own name, ports and data, or a cluster
of them), an Elasticsearch-API server (noida-db) and Prometheus. `lab.ops.stack` decides what to
start; drills that must kill a broker and the tests call these `start_*` functions directly.
What each service's quirks are on this kind of machine is in docs/SERVICES.md.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pika
import redis

from lab.config import Settings, safe_url
from lab.ops import processes
from lab.runtime.messages import MAX_BODY_BYTES
from lab.wait import poll

SERVICES = ("redis", "rabbitmq", "elasticsearch")
APT_PACKAGES = {
    "redis-server": "redis-server",
    "rabbitmq-server": "rabbitmq-server",
    "prometheus": "prometheus",
}
OPTIONAL = ("prometheus",)  # started only when asked for: `lab stack up --with prometheus`
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


CHECKS = {
    "redis": redis_ok,
    "rabbitmq": amqp_ok,
    "elasticsearch": es_ok,
    "prometheus": prometheus_ok,
}


def urls(settings: Settings) -> dict[str, str]:
    return {
        "redis": settings.redis_url,
        "rabbitmq": settings.amqp_url,
        "elasticsearch": settings.es_url,
        "prometheus": settings.prometheus_url,
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


def start_redis(port: int, home: Path) -> Local:
    binary = ensure_binary("redis-server")
    data = home / "redis"
    data.mkdir(parents=True, exist_ok=True)
    pidfile = data / "redis.pid"
    log = data / "redis.log"
    subprocess.run(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(log),
            "--save",
            "",
            "--appendonly",
            "yes",
        ],
        check=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_healthy(redis_ok, url, 20, "Redis", log)
    return Local("redis", url, pid=int(pidfile.read_text().strip()), data_dir=data)


def start_rabbitmq(
    port: int, home: Path, data_dir: Path | None = None, dist_port: int | None = None
) -> Local:
    """A private RabbitMQ node on `port` (about 10 s to start), e.g. for a drill that kills it.
    `data_dir` (a stopped node's `Local.data_dir`) starts that same node again: same name, same
    messages, and, in a cluster, the same membership."""
    ensure_binary("rabbitmq-server")
    base = data_dir or home / f"rabbitmq-{port}"
    if data_dir is None and os.geteuid() == 0 and not _others_can_enter(home):
        # Debian's script runs the node as the rabbitmq user, who cannot reach a private
        # directory of root's (pytest's tmp_path is one); use a directory it can enter.
        base = Path(tempfile.mkdtemp(prefix=f"lab-rabbitmq-{port}-"))
        base.chmod(0o755)
    for sub in ("mnesia", "log"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    config = base / "rabbitmq.conf"
    # The broker refuses bodies a worker would only refuse after holding them (compose mounts
    # deploy/rabbitmq/lab.conf with the same line).
    config.write_text(
        f"listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users = none\n"
        f"max_message_size = {MAX_BODY_BYTES}\n"
    )
    (base / "enabled_plugins").write_text("[].\n")
    if os.geteuid() == 0:
        # Debian's script switches to the rabbitmq user, who must own the node's files.
        for path in [base, *base.rglob("*")]:
            os.chown(path, *_rabbit_ids())
    node = f"lab{port}@localhost"
    env = {
        **os.environ,
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port or free_port()),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(config),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
    }
    subprocess.run(["rabbitmq-server", "-detached"], env=env, check=True, capture_output=True)
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    wait_healthy(amqp_ok, url, 120, "RabbitMQ", base / "log" / f"{node}.log")
    return Local("rabbitmq", url, node=node, data_dir=base)


@dataclass
class Cluster:
    """Private RabbitMQ nodes joined into one cluster, as three hosts would run it."""

    nodes: list[Local]

    @property
    def url(self) -> str:
        """`LAB_AMQP_URL` for the cluster: every node, comma-separated."""
        return ",".join(n.url for n in self.nodes)

    def node_of(self, name: str) -> Local:
        return next(n for n in self.nodes if n.node == name)

    def restart(self, local: Local) -> Local:
        """Start a stopped or killed node again with its data; it rejoins the cluster."""
        again = start_rabbitmq(port_of(local.url), Path(), data_dir=local.data_dir)
        self.nodes[self.nodes.index(local)] = again
        return again

    def leader_of(self, queue: str) -> str | None:
        """The node leading a quorum queue (None for a classic queue or when nobody answers)."""
        for local in self.nodes:
            assert local.node is not None  # a cluster is made of RabbitMQ nodes
            done = _ctl(local.node, "list_queues", "name", "leader", "--no-table-headers", ok=True)
            for line in done.stdout.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == queue:
                    return parts[1]
        return None

    def stop(self) -> None:
        for local in reversed(self.nodes):
            local.stop()


def _ctl(node: str, *args: str, ok: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["rabbitmqctl", "-q", "-n", node, *args], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0 and not ok:
        raise StackError(f"rabbitmqctl -n {node} {' '.join(args)}: {done.stderr.strip()[-400:]}")
    return done


def start_rabbitmq_cluster(count: int, home: Path, ports: list[int] | None = None) -> Cluster:
    """`count` private nodes on free ports (or `ports`), started side by side, then joined to
    the first with `rabbitmqctl join_cluster`. They share the Erlang cookie of the user Debian's
    script runs them as, which is what lets them talk."""
    # Every node's AMQP and Erlang distribution ports, chosen together so none collide.
    spare = free_ports(count * 2)
    ports = ports or spare[:count]
    dist = [p for p in spare if p not in ports][:count]
    with ThreadPoolExecutor(max_workers=count) as pool:
        nodes = list(
            pool.map(
                lambda pair: start_rabbitmq(pair[0], home, dist_port=pair[1]),
                zip(ports, dist, strict=True),
            )
        )
    names = [n.node for n in nodes if n.node is not None]
    first = names[0]
    for node in names[1:]:
        _ctl(node, "stop_app")
        _ctl(node, "join_cluster", first)
        _ctl(node, "start_app")
    cluster = Cluster(nodes)

    def formed() -> bool:
        answer = _ctl(first, "cluster_status", "--formatter", "json", ok=True)
        with contextlib.suppress(ValueError):
            return len(json.loads(answer.stdout or "{}").get("running_nodes", [])) == count
        return False

    if poll(formed, 60, 0.5):
        return cluster
    cluster.stop()
    raise StackError(f"the {count} RabbitMQ nodes did not form one cluster within 60 s")


def _others_can_enter(path: Path) -> bool:
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def _rabbit_ids() -> tuple[int, int]:
    try:
        user = pwd.getpwnam("rabbitmq")
        return user.pw_uid, user.pw_gid
    except KeyError:
        return os.getuid(), os.getgid()


def noida_binary() -> str:
    beside = Path(sys.executable).parent / "noida-db"
    found = str(beside) if beside.exists() else shutil.which("noida-db")
    if not found:
        raise StackError(
            "noida-db (the local Elasticsearch-API server) is not installed: "
            f"pip install 'lab[stack]', or run Elasticsearch with `{COMPOSE_HINT}`"
        )
    return found


def start_elasticsearch(port: int, home: Path) -> Local:
    """noida-db's Elasticsearch 8 API on `port`, data under `home/es-<port>`."""
    data = home / f"es-{port}"
    data.mkdir(parents=True, exist_ok=True)
    log = data / "server.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                noida_binary(),
                "start",
                "--only",
                "elasticsearch",
                "--elasticsearch-port",
                str(port),
                "--data-dir",
                str(data),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `lab stack up`; `lab stack down` ends it
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(es_ok, url, 30, "Elasticsearch API (noida-db)", log)
    save_when_idle(process.pid)
    return Local("elasticsearch", url, pid=process.pid, group=True, data_dir=data)


def save_when_idle(pgid: int) -> None:
    """noida-db writes everything it holds to one file every few seconds from one thread,
    `autosave`, and that costs CPU in proportion to the data held, not to the writes: with
    100,000 documents it is most of the server's CPU, and it competes with the API, the
    worker and the broker on a small machine. On SCHED_IDLE it saves when a core is free; a
    busy machine saves less often, and an orderly stop still saves everything (docs/SERVICES.md)."""
    if not processes.idle_threads(pgid, "autosave"):
        log.info("noida-db: no autosave thread found to idle")


def prometheus_config(targets: list[str], scrape_interval_s: float = 5.0, token: str = "") -> str:
    """A scrape config for `lab`'s API (one target per API address: any API process answers
    for the whole pipeline, see lab/api/metrics.py) and for Prometheus itself."""
    hosts = [urlparse(t).netloc for t in targets]
    auth = f"\n    authorization:\n      credentials: {json.dumps(token)}" if token else ""
    return (
        f"global:\n  scrape_interval: {scrape_interval_s:g}s\n"
        f"  evaluation_interval: {scrape_interval_s:g}s\n"
        "scrape_configs:\n"
        "  - job_name: lab\n"
        f"    metrics_path: /metrics{auth}\n"
        f"    static_configs:\n      - targets: {json.dumps(hosts)}\n"
        "  - job_name: prometheus\n"
        "    static_configs:\n      - targets: ['localhost:PORT']\n"
    )


def start_prometheus(
    port: int,
    home: Path,
    targets: list[str],
    scrape_interval_s: float = 5.0,
    token: str = "",
) -> Local:
    """Debian's Prometheus on `port`, scraping `targets` (the lab API's URLs), data under
    `home/prometheus-<port>`."""
    binary = ensure_binary("prometheus")
    data = home / f"prometheus-{port}"
    data.mkdir(parents=True, exist_ok=True)
    config = data / "prometheus.yml"
    config.write_text(
        prometheus_config(targets, scrape_interval_s, token).replace("PORT", str(port))
    )
    log = data / "prometheus.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=2d",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `lab stack up`; `lab stack down` ends it
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(prometheus_ok, url, 60, "Prometheus", log)
    return Local("prometheus", url, pid=process.pid, data_dir=data)


STARTERS = {"redis": start_redis, "rabbitmq": start_rabbitmq, "elasticsearch": start_elasticsearch}
