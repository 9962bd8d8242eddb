"""Small helpers shared by the tests: waiting on conditions, looking at the broker and the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pika

from lab.config import Settings
from lab.runtime import broker
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.wait import wait_until

__all__ = [
    "wait_until",
    "queue_depth",
    "settle",
    "settled_run",
    "run_lab",
    "assert_exactly_once",
    "publish",
    "browser_page",
    "screenshot_path",
    "kill_when",
]


def queue_depth(settings: Settings, name: str) -> int:
    """Messages ready in `name`; 0 while nobody has declared it yet."""
    connection = broker.connect(settings.amqp_url, "lab-test-depth")
    try:
        return connection.channel().queue_declare(name, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return 0
        raise
    finally:
        if connection.is_open:
            connection.close()


def publish(channel: Any, queue: str, body: bytes) -> None:
    channel.basic_publish("", queue, body, broker.properties())


def settle(stores: Stores, run_id: str, timeout_s: float) -> Any:
    """Wait until every job of the run is processed or failed; return the run."""

    def done() -> Any:
        run = stores.runs.get(run_id)
        return run if run and run.settled else None

    return wait_until(
        done, timeout_s, f"run {run_id} to settle", lambda: f"last seen: {stores.runs.get(run_id)}"
    )


def settled_run(lab: Any, client: Any, stores: Stores, x: int, y: float, workers: int = 1) -> str:
    """Start the lab's processes (`workers` of them working), run `x` jobs at `y` a minute and
    wait until every one is processed or failed; returns the run's id."""
    lab.up(workers=workers)
    run_id = client.run(x, y)["runId"]
    settle(stores, run_id, 60)
    return str(run_id)


def run_lab(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m lab ARGS` as a user runs it (`env`: its whole environment; default, this
    one's), its output as text; stdin is closed, so a command that asks a question fails
    instead of waiting."""
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def assert_exactly_once(settings: Settings, stores: Stores, run_id: str, x: int) -> None:
    """The invariant: one document per jobId, and `processed` equals X."""
    store = Store(settings)
    try:
        store.refresh()
        count = store.count(run_id)
        distinct = store.distinct_job_ids(run_id)
    finally:
        store.close()
    run = stores.runs.get(run_id)
    assert run is not None
    observed = {
        "es_count": count,
        "distinct": distinct,
        "processed": run.processed,
        "failed": run.failed,
    }
    assert observed == {"es_count": x, "distinct": x, "processed": x, "failed": 0}, observed


CHROMIUM = "/usr/bin/chromium"
README_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """Where a browser test saves its screenshot: its temporary folder, so the suite leaves the
    tree clean, or the README's folder when `make screenshots` asks (LAB_SCREENSHOTS=readme)."""
    folder = README_SCREENSHOTS if os.environ.get("LAB_SCREENSHOTS") == "readme" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@contextmanager
def browser_page(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A page in headless Debian Chromium, driven by playwright (see scripts/test-tools.sh)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise AssertionError(f"{CHROMIUM} is missing; run scripts/test-tools.sh")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


class SilentServer:
    """A TCP server on loopback that accepts every connection, reads what it is sent and never
    answers: a service that hangs, as a partition without a reset looks to a client."""

    def __init__(self) -> None:
        import socket
        import threading

        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._held: list[Any] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, name="silent-server", daemon=True).start()

    def _serve(self) -> None:
        import contextlib
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock, *self._held], [], [], 0.1)
            for sock in ready:
                if sock is self._sock:
                    with contextlib.suppress(OSError):
                        self._held.append(self._sock.accept()[0])
                else:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        self._held.remove(sock)
                        sock.close()

    def close(self) -> None:
        self._stop.set()
        for sock in [*self._held, self._sock]:
            sock.close()


def kill_when(
    process: subprocess.Popen, ready: Callable[[], Any], timeout_s: float, what: str
) -> None:
    """SIGKILL `process` once `ready()` holds (or once waiting for it has failed)."""
    try:
        wait_until(ready, timeout_s, what)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
