"""The admin page in a real browser: live progress, Retry on a failed job, a screenshot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from lab.client import LabClient
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores

from .helpers import browser_page, screenshot_path, settle, settled_run, wait_until


def test_admin_page_shows_progress_live_and_retries_a_failed_job(
    lab: Supervisor, client: LabClient, tmp_path: Path
) -> None:
    lab.start("api")
    lab.start("worker-1", role="worker")
    lab.wait_api()
    quick = {"durationSeconds": 1, "stepIntervalSeconds": 0.25}
    failed = client.create_job("agent", {**quick, "failAtStep": 2, "failAttempts": 1}, attempts=1)
    wait_until(lambda: client.job(failed["id"])["state"] == "failed", 30, "the job to fail")
    for _ in range(2):
        client.create_job("agent", quick)
    running = client.create_job("agent", {"durationSeconds": 12, "stepIntervalSeconds": 0.5})

    with browser_page() as page:
        page.goto(f"{client.api_url}/admin")
        expect(page.locator("#live")).to_have_text("live", timeout=15_000)
        row = page.locator(f'tr[data-job-id="{running["id"]}"]')
        progress = row.locator(".progress-text")
        expect(row.locator(".state")).to_have_text("active", timeout=15_000)
        first = progress.inner_text()
        # The page redraws from the event stream: the percentage moves without a reload.
        expect(progress).not_to_have_text(first, timeout=10_000)
        expect(progress).not_to_have_text(re.compile(rf"^{re.escape(first)}$"), timeout=10_000)

        failed_row = page.locator(f'tr[data-job-id="{failed["id"]}"]')
        expect(failed_row.locator(".state")).to_have_text("failed")
        failed_row.locator("button.retry").click()
        expect(failed_row.locator(".state")).to_have_text("completed", timeout=30_000)
        expect(failed_row.locator(".progress-text")).to_have_text("100%")

        row.click()
        expect(page.locator("#log li").first).to_contain_text("queued", timeout=10_000)
        expect(page.locator("#log")).to_contain_text("step 3/24", timeout=15_000)
        expect(page.locator(".count[data-state=completed] b")).not_to_have_text("–")
        # The live worker is listed by its id (not "no live workers").
        worker_id = client.status()["workers"][0]["id"]
        expect(page.locator("#workers")).to_contain_text(worker_id)
        page.screenshot(path=str(screenshot_path(tmp_path, "admin.png")), full_page=True)

    assert client.job(failed["id"])["attempt"] == 2


@pytest.mark.slow
def test_admin_chart_shows_the_last_hour_again_after_the_api_restarts(
    lab: Supervisor, client: LabClient, stores: Stores, tmp_path: Path
) -> None:
    x = 600
    settled_run(lab, client, stores, x, 120_000)

    def chart_says_processed(page) -> None:
        summary = page.locator("#history-summary")
        expect(summary).to_contain_text(f"{x:,} processed", timeout=20_000)
        line = page.locator('#history-chart polyline[data-field="processed"]')
        # 360 ten-second buckets, and the line rises somewhere above the baseline.
        points = line.get_attribute("points").split()
        assert len(points) == 360
        assert min(float(p.split(",")[1]) for p in points) < 130
        # Its axes: jobs per second from 0 to the peak, and five times of day over the hour.
        assert page.locator("#history-y span").all_inner_texts()[-1] == "0/s"
        assert page.locator("#history-y span").first.inner_text().endswith("/s")
        ticks = page.locator("#history-x span")
        expect(ticks).to_have_count(5)
        seconds = [int(t) for t in (ticks.nth(i).get_attribute("data-t") for i in range(5))]
        assert seconds[-1] - seconds[0] == 3590 and ":" in ticks.first.inner_text()

    with browser_page() as page:
        page.goto(f"{client.api_url}/admin")
        chart_says_processed(page)
        lab.restart("api")
        lab.wait_api()
        page.reload()
        chart_says_processed(page)
        page.locator("#history").screenshot(path=str(screenshot_path(tmp_path, "history.png")))


def test_admin_page_lists_and_replays_dead_letters(
    lab: Supervisor, client: LabClient, settings, channel, tmp_path: Path
) -> None:
    """Headless Chromium: the dead-letter table shows what failed for good; ticking one and
    Replay selected brings that job back (it completes); the malformed one stays; Purge empties
    the table after a confirm."""
    from .helpers import publish, queue_depth

    lab.start("api")
    lab.start("worker-1", role="worker")
    lab.wait_api()
    failing = client.create_job("index", {"failAttempts": 1}, attempts=1)["id"]
    publish(channel, settings.queue, b"not a job at all")
    dead = f"{settings.queue}.dead"
    wait_until(lambda: queue_depth(settings, dead) == 2, 30, "two dead letters")
    letter = next(d for d in client.dead_letters()["letters"] if d["jobId"] == failing)

    with browser_page() as page:
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{client.api_url}/admin")
        expect(page.locator("#dead-total")).to_have_text("(2)", timeout=15_000)
        row = page.locator(f'tr[data-letter-id="{letter["id"]}"]')
        expect(row).to_contain_text("exhausted")
        expect(page.locator("#dead-letters")).to_contain_text("malformed")
        expect(page.locator("#dead-replay")).to_be_disabled()
        row.locator("input.dead-pick").check()
        page.locator("#dead-replay").click()
        expect(page.locator("#dead-message")).to_have_text("replayed 1 of 1", timeout=15_000)
        expect(page.locator("#dead-total")).to_have_text("(1)")
        job_row = page.locator(f'tr[data-job-id="{failing}"]')
        expect(job_row.locator(".state")).to_have_text("completed", timeout=30_000)
        page.screenshot(
            path=str(screenshot_path(tmp_path, "admin-dead-letters.png")), full_page=True
        )
        page.locator("#dead-purge").click()
        expect(page.locator("#dead-message")).to_have_text("purged 1", timeout=15_000)
        expect(page.locator("#dead-letters")).to_contain_text("no dead letters")
    assert client.job(failing)["attempt"] == 2 and queue_depth(settings, dead) == 0


@pytest.mark.slow
def test_admin_page_pauses_and_resumes_a_queue_and_the_run(
    lab: Supervisor, client: LabClient, settings, stores: Stores
) -> None:
    """Headless Chromium: Pause on the job queue holds a run's jobs in it (the badge says so);
    Pause release stops the scheduler; Resume on both lets the run finish."""
    lab.up(workers=1)
    run_id = client.run(2000, 6000)["runId"]  # 100 a second: long enough to pause mid-run
    with browser_page() as page:
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{client.api_url}/admin")
        row = page.locator(f'#queues tr[data-queue="{settings.queue}"]')
        row.locator("button.queue-toggle").click()
        expect(row.locator(".paused")).to_have_text("paused", timeout=10_000)
        assert client.status()["pausedQueues"] == [settings.queue]
        expect(page.locator("#run-pause")).to_be_visible(timeout=10_000)
        page.locator("#run-pause").click()
        expect(page.locator("#run-state")).to_contain_text("release paused", timeout=10_000)
        assert client.status()["paused"] is True
        page.locator("#run-resume").click()
        expect(page.locator("#run-state")).to_contain_text("releasing", timeout=10_000)
        # The paused queue's oldest job ages: the head age column counts it in seconds.
        expect(row.locator(".head-age")).to_contain_text(" s", timeout=15_000)
        row.locator("button.queue-toggle").click()
        expect(row.locator(".paused")).to_have_count(0, timeout=10_000)
        # Where the run's jobs spent their time, once some were written.
        expect(page.locator("#run-latency")).to_contain_text("queueWait p50", timeout=15_000)
        expect(page.locator("#run-latency")).to_contain_text("endToEnd p50")
    assert client.status()["pausedQueues"] == [] and client.status()["paused"] is False
    settle(stores, run_id, 120)
    assert stores.runs.get(run_id).processed == 2000


def test_admin_page_counts_then_retries_every_failed_job(
    lab: Supervisor, client: LabClient
) -> None:
    """Headless Chromium: filter on failed, choose Retry for every job matching, Count shows how
    many would change before anything does, Apply retries them and they complete."""
    lab.start("api")
    lab.start("worker-1", role="worker")
    lab.wait_api()
    ids = [client.create_job("index", {"failAttempts": 1}, attempts=1)["id"] for _ in range(3)]
    wait_until(lambda: all(client.job(i)["state"] == "failed" for i in ids), 30, "three failures")
    with browser_page() as page:
        page.goto(f"{client.api_url}/admin")
        page.locator("#state-filter").select_option("failed")
        expect(page.locator("tr.job")).to_have_count(3, timeout=10_000)
        page.locator("#bulk-scope").select_option("matching")
        page.locator("#bulk-count").click()
        expect(page.locator("#bulk-message")).to_have_text("3 matched; retry would change 3")
        assert {client.job(i)["state"] for i in ids} == {"failed"}  # counting changed nothing
        page.locator("#bulk-apply").click()
        expect(page.locator("#bulk-message")).to_have_text("retry: 3 changed, 0 left")
        page.locator("#state-filter").select_option("")
        for job_id in ids:
            state = page.locator(f'tr[data-job-id="{job_id}"] .state')
            expect(state).to_have_text("completed", timeout=30_000)
    assert {client.job(i)["attempt"] for i in ids} == {2}


@pytest.mark.slow
def test_a_listing_older_than_the_events_does_not_draw_a_job_back(
    lab: Supervisor, client: LabClient
) -> None:
    """A `GET /jobs` answer can reach the page after events newer than it (a bulk retry once
    left a completed job showing "active" this way). The browser holds one listing taken while
    the job runs, lets the job complete and the page draw it from its event, then releases the
    listing: the row stays "completed", because the page keeps the higher `version`."""
    lab.start("api")
    lab.start("worker-1", role="worker")
    lab.wait_api()
    held: list[tuple[Any, Any]] = []

    def hold(route: Any) -> None:
        if held:
            route.continue_()
            return
        held.append((route, route.fetch()))  # the listing as it is now; answered later

    with browser_page() as page:
        page.goto(f"{client.api_url}/admin")
        expect(page.locator("#live")).to_have_text("live", timeout=15_000)
        # Created once the page is live, so the browser's start does not eat into its run.
        job = client.create_job("agent", {"durationSeconds": 6, "stepIntervalSeconds": 0.5})
        job_id = job["id"]
        state = page.locator(f'tr[data-job-id="{job_id}"] .state')
        expect(state).to_have_text("active", timeout=15_000)
        page.route(re.compile(r"/jobs\?"), hold)
        page.locator("#search").press("Enter")  # reloads the table
        # Route handlers run while playwright is called, so wait inside playwright.
        wait_until(lambda: held or page.wait_for_timeout(50), 15, "the page to ask for the table")
        route, stale = held[0]
        listed = {j["id"]: j for j in stale.json()["jobs"]}
        assert listed[job_id]["state"] == "active", "the held listing must be older than the end"
        expect(state).to_have_text("completed", timeout=30_000)  # drawn from the event
        page.evaluate("document.querySelector('#shown').textContent = ''")
        route.fulfill(response=stale)
        expect(page.locator("#shown")).not_to_have_text("", timeout=10_000)  # listing applied
        expect(state).to_have_text("completed")
        page.unroute(re.compile(r"/jobs\?"))
    assert client.job(job_id)["version"] > listed[job_id]["version"]


def test_admin_page_search_box_finds_a_job_by_its_payload(
    lab: Supervisor, client: LabClient
) -> None:
    """Headless Chromium: typing a word of one job's payload in the search box and pressing
    Enter leaves that job alone in the table; clearing it brings the others back."""
    lab.start("api")
    lab.wait_api()
    wanted = client.create_job("agent", {"url": "https://needle.example/page"})["id"]
    others = [client.create_job("agent", {"url": "https://hay.example"})["id"] for _ in range(3)]
    wait_until(lambda: [j["id"] for j in client.jobs(q="needle.example")["jobs"]] == [wanted],
               30, "the records index")  # fmt: skip
    with browser_page() as page:
        page.goto(f"{client.api_url}/admin")
        expect(page.locator("tr.job")).to_have_count(4, timeout=10_000)
        page.locator("#search").fill("needle.example")
        page.locator("#search").press("Enter")
        expect(page.locator("tr.job")).to_have_count(1, timeout=10_000)
        expect(page.locator(f'tr[data-job-id="{wanted}"]')).to_be_visible()
        page.locator("#search").fill("")
        page.locator("#search").press("Enter")
        expect(page.locator("tr.job")).to_have_count(1 + len(others), timeout=10_000)


def test_admin_page_shows_a_delayed_job_and_runs_it_now(lab: Supervisor, client: LabClient) -> None:
    """Headless Chromium: a job delayed by an hour says until when it waits; Run now runs it."""
    lab.start("api")
    lab.start("worker-1", role="worker")
    lab.wait_api()
    job = client.create_job("index", delay_s=3600)
    with browser_page() as page:
        page.goto(f"{client.api_url}/admin")
        row = page.locator(f'tr[data-job-id="{job["id"]}"]')
        expect(row.locator(".delayed")).to_contain_text("waits until", timeout=10_000)
        row.locator("button.run-now").click()
        expect(row.locator(".state")).to_have_text("completed", timeout=30_000)
    assert client.job(job["id"])["state"] == "completed"
