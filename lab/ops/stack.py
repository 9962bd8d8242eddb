"""`lab stack up|down|status`: make Redis, RabbitMQ and an Elasticsearch-API server answer.

`lab stack up` reuses whatever answers at the configured URLs and starts local instances for the
rest (`lab.ops.services`), with data, logs and pid files under `.lab/`. `lab stack down` stops
only what it started.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from lab.config import Settings, safe_url
from lab.ops import processes
from lab.ops.faults import plan
from lab.ops.servers import (
    CHECKS,
    OPTIONAL,
    SERVICES,
    STARTERS,
    Cluster,
    Local,
    StackError,
    port_of,
    save_when_idle,
    start_faults,
    start_prometheus,
    start_rabbitmq_cluster,
    urls,
)

__all__ = ["OPTIONAL", "SERVICES", "StackError", "down", "status", "up", "up_cluster"]


# --- lab stack up | down | status --------------------------------------------------------------
def _state_file(settings: Settings, service: str) -> Path:
    return settings.home_path / "stack" / f"{service}.pid"


def _is_local(url: str) -> bool:
    return urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")


LABELS = {
    "redis": "Redis server",
    "rabbitmq": "RabbitMQ node",
    "elasticsearch": "Elasticsearch-API server",
    "prometheus": "Prometheus server",
    "faults": "fault proxy",
}


def up(
    settings: Settings,
    only: tuple[str, ...] = SERVICES,
    say: Callable[[str], None] = lambda _line: None,
) -> dict[str, str]:
    """Make every service answer at its configured URL; returns how each was found.

    `say` gets one line per service as it goes ("rabbitmq: starting a local RabbitMQ node on
    127.0.0.1:5673 …", then "rabbitmq: ready in 9.2 s"), so a first run shows what it waits for."""
    how = {}
    for service, url in urls(settings).items():
        if service not in only:
            continue
        if "," in url:  # a cluster's nodes: lab uses them, it does not start them here
            silent = [u for u in url.split(",") if not CHECKS[service](u.strip())]
            if silent:
                raise StackError(
                    f"{service}: {len(silent)} of the nodes in its URL list do not answer "
                    f"({safe_url(','.join(silent))}). Start them, or for a local RabbitMQ "
                    "cluster: lab stack up --rabbitmq-nodes 3"
                )
            how[service] = "reused"
            say(f"{service}: reusing the cluster at {safe_url(url)}")
            continue
        if CHECKS[service](url):
            how[service] = "reused"
            say(f"{service}: reusing what answers at {safe_url(url)}")
            if service == "elasticsearch":
                _idle_saver_of_ours(settings)
            continue
        if not _is_local(url):
            raise StackError(
                f"{service} does not answer at {safe_url(url)}, and lab only starts local "
                f"services. Start it, or change LAB_* to a local URL."
            )
        say(f"{service}: starting a local {LABELS[service]} on 127.0.0.1:{port_of(url)} …")
        began = time.monotonic()
        if service == "prometheus":
            local = start_prometheus(
                port_of(url), settings.home_path, [settings.api_url], token=settings.api_token
            )
        elif service == "faults":
            local = start_faults(port_of(url), settings.home_path, plan.proxies_for(settings))
        else:
            local = STARTERS[service](port_of(url), settings.home_path)
        path = _state_file(settings, service)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"pid": local.pid, "node": local.node, "data": str(local.data_dir)}
        path.write_text(json.dumps(entry))
        how[service] = f"started ({local.node or 'pid ' + str(local.pid)})"
        say(f"{service}: ready in {time.monotonic() - began:.1f} s")
    return how


def _idle_saver_of_ours(settings: Settings) -> None:
    """An Elasticsearch-API server an earlier `lab stack up` started gets its saver idled too
    (`servers.save_when_idle`); one lab did not start is left as it is."""
    path = _state_file(settings, "elasticsearch")
    try:
        pid = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(pid, int) and processes.alive(pid):
        save_when_idle(pid)


def up_cluster(
    settings: Settings, count: int, say: Callable[[str], None] = lambda _line: None
) -> Cluster:
    """`lab stack up --rabbitmq-nodes N`: a local cluster on the ports LAB_AMQP_URL lists (when
    it lists N local nodes), else on free ports; `lab stack down` stops it and removes its data."""
    listed = [u.strip() for u in settings.amqp_url.split(",") if u.strip()]
    ports = None
    if len(listed) == count and all(_is_local(u) for u in listed):
        ports = [port_of(u) for u in listed]
    where = ", ".join(map(str, ports)) if ports else "free ports"
    say(f"rabbitmq: starting a local cluster of {count} nodes on {where} …")
    began = time.monotonic()
    cluster = start_rabbitmq_cluster(count, settings.home_path, ports)
    path = _state_file(settings, "rabbitmq")
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"nodes": [{"node": n.node, "data": str(n.data_dir)} for n in cluster.nodes]}
    path.write_text(json.dumps(entry))
    say(f"rabbitmq: cluster of {count} ready in {time.monotonic() - began:.1f} s")
    return cluster


def down(settings: Settings) -> dict[str, str]:
    """Stop what `up` started; services lab merely reused are left alone."""
    how = {}
    for service, url in urls(settings).items():
        path = _state_file(settings, service)
        if not path.exists():
            how[service] = "not started by lab"
            continue
        mark = path.read_text().strip()
        data: Path | None = None
        if mark.startswith("{") and "nodes" in json.loads(mark):
            for member in json.loads(mark)["nodes"]:
                Local(service, url, node=member["node"]).stop()
                shutil.rmtree(member["data"], ignore_errors=True)
            path.unlink()
            how[service] = "cluster stopped, its data removed"
            continue
        if mark.startswith("{"):
            entry = json.loads(mark)
            node, pid = entry.get("node"), entry.get("pid")
            data = Path(entry["data"]) if entry.get("data") not in (None, "None") else None
        else:  # written by an older lab: a node name or a pid
            node, pid = (mark, None) if "@" in mark else (None, int(mark))
        local = Local(service, url, pid=pid, node=node, group=service == "elasticsearch")
        local.stop()
        path.unlink()
        # Local services are the lab's scratch: their data goes with them.
        if data is not None and data.exists():
            shutil.rmtree(data, ignore_errors=True)
        how[service] = "stopped, its data removed"
    return how


def status(settings: Settings) -> dict[str, dict[str, object]]:
    out = {}
    for service, url in urls(settings).items():
        path = _state_file(settings, service)
        if service in OPTIONAL and not path.exists() and not CHECKS[service](url):
            continue  # not asked for, not there: nothing to report
        out[service] = {
            "url": url,
            "healthy": all(CHECKS[service](u.strip()) for u in url.split(",")),
            "managedByLab": path.exists(),
        }
        if service == "faults" and out[service]["healthy"]:
            out[service]["toxics"] = _toxics_in_force(url, settings.api_token)
    return out


def _toxics_in_force(url: str, token: str) -> list[str]:
    """`proxy: toxic` for each toxic, and `proxy: disabled` for each proxy cut off."""
    from lab.ops.faults.client import FaultApiError, FaultClient

    try:
        proxies = FaultClient(url, token=token).proxies()
    except FaultApiError:
        return []
    found = []
    for name, proxy in sorted(proxies.items()):
        found += [] if proxy.get("enabled", True) else [f"{name}: disabled"]
        toxics = [t for t in proxy.get("toxics") or [] if isinstance(t, dict)]
        found += [f"{name}: {t.get('name')}" for t in toxics]
    return found
