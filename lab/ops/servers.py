"""Each service lab uses, run locally: is it answering, and starting one on a free port.

Redis (`redis-server`), RabbitMQ (a private node with its own name, ports and data, or a cluster
of them), an Elasticsearch-API server (noida-db) and Prometheus. `lab.ops.stack` decides what to
start; drills that must kill a broker and the tests call these `start_*` functions directly.
What each service's quirks are on this kind of machine is in docs/SERVICES.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

# Checks, ports, waiting and `Local` live in lab.ops.local; they are named here too, where the
# drills and `lab.ops.stack` have always found them.
from lab.ops.local import (  # noqa: F401
    APT_PACKAGES,
    CHECKS,
    COMPOSE_HINT,
    OPTIONAL,
    SERVICES,
    Local,
    StackError,
    _rabbit_pid,
    amqp_ok,
    ensure_binary,
    es_ok,
    faults_ok,
    free_port,
    free_ports,
    noida_binary,
    port_of,
    prometheus_ok,
    redis_ok,
    save_when_idle,
    urls,
    wait_healthy,
)
from lab.runtime.messages import MAX_BODY_BYTES
from lab.wait import poll

log = logging.getLogger("lab.ops.servers")


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A server of lab's own, writing to `log`; it outlives `lab stack up` (a session of its
    own), and `lab stack down` ends it."""
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


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


def start_elasticsearch(port: int, home: Path) -> Local:
    """noida-db's Elasticsearch 8 API on `port`, data under `home/es-<port>`."""
    data = home / f"es-{port}"
    data.mkdir(parents=True, exist_ok=True)
    log = data / "server.log"
    process = _spawn(
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
        log,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(es_ok, url, 30, "Elasticsearch API (noida-db)", log)
    save_when_idle(process.pid)
    return Local("elasticsearch", url, pid=process.pid, group=True, data_dir=data)


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
    process = _spawn(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=2d",
        ],
        log,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(prometheus_ok, url, 60, "Prometheus", log)
    return Local("prometheus", url, pid=process.pid, data_dir=data)


def start_faults(port: int, home: Path, proxies: list[dict[str, object]]) -> Local:
    """The fault proxy (`lab fault serve`) on 127.0.0.1:`port` with `proxies` open; its log
    under `home/faults-<port>`."""
    data = home / f"faults-{port}"
    data.mkdir(parents=True, exist_ok=True)
    log = data / "faults.log"
    argv = [sys.executable, "-m", "lab", "fault", "serve", "--port", str(port)]
    for proxy in proxies:
        argv += ["--proxy", f"{proxy['name']}={proxy['listen']}>{proxy['upstream']}"]
    process = _spawn(argv, log)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(faults_ok, url, 30, "the fault proxy", log)
    return Local("faults", url, pid=process.pid, data_dir=data)


STARTERS = {"redis": start_redis, "rabbitmq": start_rabbitmq, "elasticsearch": start_elasticsearch}
