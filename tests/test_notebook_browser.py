"""JupyterLab in a real browser: open control.ipynb, Run All, press Start, see processed reach X."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from lab.config import Settings, kernel_env
from lab.ops import servers
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores

from .helpers import browser_page, screenshot_path, wait_until

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
X = 2000  # the notebook's own default


@pytest.fixture
def jupyterlab(settings: Settings, tmp_path: Path) -> Iterator[str]:
    port = servers.free_port()
    log = open(tmp_path / "jupyterlab.log", "wb")  # noqa: SIM115 - lives as long as the server
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--ServerApp.root_dir={NOTEBOOKS}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            *(["--allow-root"] if os.geteuid() == 0 else []),
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env={
            **kernel_env(settings),
            "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
            "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if server.poll() is not None:
            raise AssertionError((tmp_path / "jupyterlab.log").read_text()[-3000:])
        try:
            return httpx.get(f"{url}/api/status", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(
            answers, 60, "JupyterLab to answer", lambda: (tmp_path / "jupyterlab.log").read_text()
        )
        yield url
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        # The kernel's processes die with it; make sure of it before the namespace is reset.
        Supervisor(settings).down(grace_s=15)


@pytest.mark.slow
def test_control_notebook_in_jupyterlab(
    jupyterlab: str, settings: Settings, stores: Stores, tmp_path: Path
) -> None:
    with browser_page(1400, 1300) as page:
        page.goto(f"{jupyterlab}/lab/tree/control.ipynb")
        expect(page.locator(".jp-Notebook")).to_be_visible(timeout=60_000)
        # The kernel must be up before Run All, or the cells are queued to nothing. Now and then
        # (seen under load) JupyterLab's page never opens the kernel's websocket; a reload does.
        idle = page.get_by_role("button", name=re.compile(r"\| Idle"))
        try:
            expect(idle).to_be_visible(timeout=60_000)
        except AssertionError:
            page.reload()
            expect(idle).to_be_visible(timeout=120_000)
        no_news = page.get_by_role("button", name="No", exact=True)
        if no_news.is_visible():
            no_news.click()  # JupyterLab asks once whether to fetch its news
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        # Run All ends with the demo run done and the stop demo stopped: the last cell's output.
        last_output = page.locator(
            ".jp-OutputArea-output", has_text="still running; call supervisor.down()"
        )
        expect(last_output).to_be_visible(timeout=240_000)
        start = page.locator(".jupyter-widgets.widget-button", has_text="Start")
        expect(start).to_be_enabled(timeout=30_000)
        before = {r.runId for r in stores.runs.newest()}
        start.click()
        run_id = wait_until(
            lambda: next((r.runId for r in stores.runs.newest() if r.runId not in before), None),
            30,
            "the Start click to start a run",
        )
        panel = page.locator(".widget-vbox", has=start).first
        expect(panel).to_contain_text(run_id, timeout=30_000)
        expect(panel).to_contain_text(f"{X:,} / {X:,}", timeout=120_000)
        expect(panel).to_contain_text("completed", timeout=60_000)
        # The chart ends where the counters end: its caption carries the values it drew last.
        last = panel.locator(f'.lab-chart-last[data-processed="{X}"]')
        expect(last).to_be_visible(timeout=30_000)
        status = httpx.get(f"{settings.api_url}/status", timeout=10).json()
        assert int(last.get_attribute("data-released")) == status["enqueued"] == X
        assert int(last.get_attribute("data-processed")) == status["processed"]
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=str(screenshot_path(tmp_path, "panel.png")))
    run = stores.runs.get(run_id)
    assert run is not None and run.processed == X and run.state == "completed"
