"""The CLI end to end: `lab demo` (the README's main command), and `lab run/status/stop/runs`."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pika.exceptions
import pytest

from lab.config import Settings
from lab.ops.supervisor import Supervisor

from .conftest import cleanup, make_settings
from .helpers import run_lab


def lab_cli(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_lab(*args, env={**os.environ, **settings.as_env()}, timeout=timeout)


def test_lab_demo_runs_and_verifies(es_url: str, tmp_path) -> None:
    settings = make_settings(es_url, tmp_path)
    try:
        done = lab_cli(settings, "demo", "--x", "300", "--y", "6000", timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "demo passed" in done.stderr
        assert "Elasticsearch documents" in done.stdout
        # It says what it leaves running (here: only services that were already running).
        assert "lab's processes are stopped" in done.stderr
        assert "Traceback" not in done.stdout + done.stderr
    finally:
        cleanup(settings)


@pytest.mark.slow
def test_run_status_stop_runs_from_the_command_line(lab: Supervisor, settings: Settings) -> None:
    lab.up(workers=1)
    started = lab_cli(settings, "run", "--x", "100", "--y", "60000", "--wait")
    assert started.returncode == 0, started.stderr
    final = json.loads(started.stdout)
    assert final["processed"] == 100 and final["state"] == "completed"
    status = json.loads(lab_cli(settings, "status", "--json").stdout)
    assert status["runId"] == final["runId"]
    nothing = lab_cli(settings, "stop")  # nothing is running: one clear line
    assert nothing.returncode == 1 and "no run is active" in nothing.stderr
    assert len(nothing.stderr.strip().splitlines()) <= 2 and "Traceback" not in nothing.stderr
    long_run = lab_cli(settings, "run", "--x", "100000", "--y", "60")
    assert long_run.returncode == 0
    stopped = lab_cli(settings, "stop")
    assert stopped.returncode == 0 and "stopped releasing" in stopped.stderr
    runs = json.loads(lab_cli(settings, "runs", "--json").stdout)
    assert [r["state"] for r in runs[:2]] == ["stopped", "completed"]


@pytest.mark.slow
def test_bad_cli_input_is_named(tmp_path, es_url: str) -> None:
    settings = make_settings(es_url, tmp_path)
    for args, says in [
        (["run", "--x", "0", "--y", "5"], "must be greater than 0"),
        (["run", "--x", "ten", "--y", "5"], "not a whole number"),
        (["run", "--x", "5", "--y", "inf"], "finite number"),
        (["worker", "--batch", "-3"], "must be greater than 0"),
    ]:
        done = lab_cli(settings, *args)
        assert done.returncode == 2 and says in done.stderr, (args, done.stderr)
    env_bad = settings.with_overrides()
    done = subprocess.run(
        [sys.executable, "-m", "lab", "status"],
        env={**os.environ, **env_bad.as_env(), "LAB_PREFETCH": "many"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "LAB_PREFETCH='many'" in done.stderr
    unreachable = lab_cli(settings, "status")  # no API is running for these settings
    assert unreachable.returncode == 1 and "did not answer" in unreachable.stderr
    ladder = lab_cli(settings.with_overrides(retry_ladder_ms="5000,1000"), "status")
    assert ladder.returncode == 1 and "LAB_RETRY_LADDER_MS" in ladder.stderr
    if importlib.util.find_spec("celery") is None:  # the [targets] extra is not installed
        peers = lab_cli(settings, "bench", "throughput", "--peers", "--jobs", "10")
        assert peers.returncode == 1 and "pip install -e '.[targets]'" in peers.stderr
    unknown = lab_cli(settings, "bench", "throughput", "--peers", "celery,nosuch")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1, unknown.stderr
    assert "'nosuch' is not a target" in unknown.stderr and "rq, arq, bullmq" in unknown.stderr
    for done in (unreachable, ladder):
        assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.slow
def test_single_jobs_from_the_command_line(lab: Supervisor, settings: Settings) -> None:
    lab.start("api")
    lab.start("worker-1", role="worker")
    lab.wait_api()
    payload = '{"durationSeconds": 1, "stepIntervalSeconds": 0.25}'
    added = lab_cli(settings, "job", "add", "agent", "--payload", payload, "--watch")
    assert added.returncode == 0, added.stdout + added.stderr
    job_id = added.stdout.split()[0]
    assert "completed 100%" in " ".join(added.stdout.split())
    assert "step 4/4" in added.stdout
    listed = lab_cli(settings, "job", "list", "--json")
    assert [j["id"] for j in json.loads(listed.stdout)["jobs"]] == [job_id]
    shown = json.loads(lab_cli(settings, "job", "show", job_id).stdout)
    assert shown["state"] == "completed" and len(shown["log"]) >= 6
    refused = lab_cli(settings, "job", "retry", job_id)
    assert refused.returncode == 1 and "409" in refused.stderr and "completed" in refused.stderr
    bad = lab_cli(settings, "job", "add", "agent", "--payload", '{"failRate": 5}')
    assert bad.returncode == 1 and "payload.failRate" in bad.stderr
    assert lab_cli(settings, "job", "delete", job_id).returncode == 0
    missing = lab_cli(settings, "job", "show", job_id)
    assert missing.returncode == 1 and "404" in missing.stderr


def test_job_text_reaches_the_terminal_as_data(lab: Supervisor, settings: Settings) -> None:
    """A job whose URL holds Rich markup and raw escape sequences: watch, list and the error
    line print it as text, with no escape sequence and no markup error."""
    lab.start("api")
    lab.start("worker-1", role="worker")
    lab.wait_api()
    hostile = "https://x/[/x][link=https://evil.example]click[/link]\x1b]0;owned\x07\x1b[2J"
    payload = json.dumps({"durationSeconds": 0.4, "stepIntervalSeconds": 0.2, "url": hostile,
                          "failAtStep": 2})  # fmt: skip
    watched = lab_cli(settings, "job", "add", "agent", "--payload", payload, "--watch")
    # It fails at step 2 on purpose (exit 1 for a job that did not complete), not on its text.
    assert watched.returncode == 1, watched.stdout + watched.stderr
    # Rich folds long lines at the terminal's width: compare without white space.
    folded = "".join(watched.stdout.split())
    assert "openedhttps://x/[/x][link=https://evil.example]click[/link]" in folded, watched.stdout
    listed = lab_cli(settings, "job", "list")
    assert listed.returncode == 0, listed.stderr
    for done in (watched, listed):
        assert "\x1b]" not in done.stdout and "\x1b[2J" not in done.stdout
        assert "MarkupError" not in done.stderr


def test_no_secret_is_printed(lab: Supervisor, settings: Settings) -> None:
    sentinel = "s3ntinel-Secret"
    secret = settings.with_overrides(
        redis_url=f"redis://:{sentinel}@127.0.0.1:1/0?password={sentinel}",
        api_token=sentinel,
        notebook_token=sentinel,
    )
    for args in (("stack", "status"), ("status",), ("job", "list")):
        done = lab_cli(secret, *args, timeout=60)
        assert sentinel not in done.stdout + done.stderr, (args, done.stdout, done.stderr)


@pytest.mark.slow
def test_noun_verb_forms_and_reset(lab: Supervisor, settings: Settings) -> None:
    """`lab run start|show|list`, `lab queue list --json`, `lab stack status --json` on stdout,
    then `lab reset`: refused while the lab's processes live, and once they are stopped it
    leaves no key, queue or index of the lab behind."""
    from lab.runtime import broker
    from lab.runtime.store import Store
    from lab.runtime.stores import Stores

    lab.up(workers=1)
    started = lab_cli(settings, "run", "start", "--x", "50", "--y", "60000", "--wait")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["runId"]
    shown = json.loads(lab_cli(settings, "run", "show", run_id).stdout)
    assert shown["processed"] == 50
    listed = json.loads(lab_cli(settings, "run", "list", "--json").stdout)
    assert listed[0]["runId"] == run_id
    table = lab_cli(settings, "run", "list")
    assert table.returncode == 0 and " ms" in table.stdout, table.stderr  # p99 end to end
    latency = lab_cli(settings, "run", "latency", run_id)
    assert latency.returncode == 0 and "endToEnd" in latency.stdout, latency.stderr
    queues = json.loads(lab_cli(settings, "queue", "list", "--json").stdout)
    assert settings.queue in [q["name"] for q in queues["queues"]]
    stack = lab_cli(settings, "stack", "status", "--json")
    assert json.loads(stack.stdout)["redis"]["healthy"] is True, stack.stderr

    refused = lab_cli(settings, "reset")
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    alive = lab_cli(settings, "reset", "--yes")
    assert alive.returncode == 2 and "alive" in alive.stderr, alive.stderr
    assert Stores.of(settings).runs.get(run_id) is not None

    lab.down()  # a process that stops takes its heartbeat with it
    stores = Stores.of(settings)
    assert stores.heartbeats.live() == []
    done = lab_cli(settings, "reset", "--yes")
    assert done.returncode == 0, done.stderr
    assert not list(stores.redis.scan_iter(stores.keys.pattern))
    store = Store(settings)
    try:
        assert not store.es.indices.exists(index=settings.es_index)
    finally:
        store.close()
    connection = broker.connect(settings.amqp_url, "test", broker.Deadlines.of(settings))
    try:
        channel = connection.channel()
        try:
            channel.queue_declare(settings.queue, passive=True)
            raise AssertionError(f"{settings.queue} is still declared")
        except pika.exceptions.ChannelClosedByBroker as exc:
            assert exc.reply_code == 404
    finally:
        if connection.is_open:
            connection.close()
