"""Pure logic: message parsing, confirms, backoff, status shaping, config, batch verdicts (no
service: `make unit` runs these with the rest of tests/unit)."""

from __future__ import annotations

import json

import pytest

from lab import config
from lab.runtime import broker
from lab.runtime.acks import ConfirmTracker
from lab.runtime.batch import Delivery, apply_bulk, counts_by_run, run_handlers
from lab.runtime.messages import Job, MalformedMessage, parse, run_job
from lab.runtime.retry import Budget
from lab.runtime.status import shape_status


def body(**fields: object) -> bytes:
    base = {
        "jobId": "r1-3",
        "runId": "r1",
        "seq": 3,
        "kind": "index",
        "attempt": 1,
        "createdAt": 1,
        "payload": {},
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def test_a_run_job_round_trips() -> None:
    job = run_job("20261122T000000-abcd", 7)
    assert job.jobId == "20261122T000000-abcd-7"
    assert parse(job.to_json()) == job
    assert job.next_attempt().attempt == 2


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe", "not JSON"),
        (body(jobId=...), "'jobId' is missing"),
        (body(kind=...), "'kind' is missing"),
        (body(seq="3"), "'seq' has the wrong type"),
        (body(seq=True), "'seq' has the wrong type"),
        (body(seq=-1, jobId="r1--1"), "'seq' must be from 0"),
        (body(runId=...), "'runId' and 'seq'"),
        (body(jobId="other-3"), "'<runId>-<seq>'"),
        (body(attempt=0), "'attempt' must be from 1"),
        (body(payload=[1]), "'payload' has the wrong type"),
    ],
)
def test_malformed_bodies_are_named(raw: bytes, names: str) -> None:
    with pytest.raises(MalformedMessage, match=names):
        parse(raw)


def test_a_single_job_needs_no_run() -> None:
    job = parse(json.dumps({"jobId": "abc", "kind": "index"}).encode())
    assert job.runId is None and job.seq is None and job.attempt == 1


def test_confirm_tracker_frontier_follows_the_lowest_unconfirmed() -> None:
    t = ConfirmTracker()
    tags = [t.published(seq) for seq in range(10, 15)]
    assert t.frontier(15) == 10
    t.acked(tags[1], multiple=False)
    assert t.frontier(15) == 10
    t.acked(tags[2], multiple=True)  # acks 10 and 12 (11 was acked already)
    assert t.frontier(15) == 13
    assert t.nacked(tags[3], multiple=False) == [13]
    assert t.frontier(15, republish=[13]) == 13
    t.acked(tags[4], multiple=False)
    assert t.outstanding == 0
    assert t.frontier(15) == 15
    t.published(15)
    assert t.reset() == [15] and t.next_tag == 1


def test_status_without_any_run() -> None:
    status = shape_status({"nowMs": 1_700_000_000_000, "active": False, "workers": {}})
    assert status["state"] == "idle" and status["runId"] is None
    assert status["workers"] == [] and status["rates"]["processedPerMinute"] == 0


def test_status_rates_and_workers() -> None:
    run = {
        "runId": "r",
        "state": "running",
        "xTotal": "100",
        "yMinutes": "60.0",
        "enqueued": "50",
        "processed": "52",
        "failed": "1",
        "running": "1",
        "startedAt": "1700000000000",
        "releasedAt": "",
        "stoppedAt": "",
        "finishedAt": "",
    }
    raw = {
        "nowMs": 1_700_000_010_000,
        "active": True,
        "run": run,
        "processedInWindow": 20,
        "enqueuedInWindow": 10,
        "windowSeconds": 10,
        "workers": [
            {
                "id": "w1",
                "pid": "42",
                "host": "h",
                "processed": "52",
                "seenMs": "1700000009000",
                "startedMs": "1700000000000",
            }
        ],
    }
    status = shape_status(raw)
    assert status["enqueued"] == 53  # never fewer released than settled
    assert status["running"] is True and status["durationSeconds"] == 10.0
    assert status["rates"]["processedPerMinute"] == 120.0
    assert status["rates"]["enqueuedPerMinute"] == 60.0
    assert status["workers"][0]["heartbeatAgeSeconds"] == 1.0
    assert status["startedAt"].startswith("2023-11-14T22:13:20")


def test_config_names_the_bad_variable() -> None:
    with pytest.raises(config.ConfigError, match="LAB_PREFETCH='ten'"):
        config.load({"LAB_PREFETCH": "ten"})
    with pytest.raises(config.ConfigError, match="LAB_BATCH='0' must be a finite number greater"):
        config.load({"LAB_BATCH": "0"})
    for raw in ("nan", "inf", "-1"):
        with pytest.raises(config.ConfigError, match=f"LAB_BULK_RATE='{raw}' must be a finite"):
            config.load({"LAB_BULK_RATE": raw})
    s = config.load({"LAB_QUEUE": "q1", "LAB_LINGER_MS": "5"})
    assert s.queue == "q1" and s.linger_ms == 5
    assert config.load(s.as_env()) == s


def test_batch_verdicts() -> None:
    ok = run_job("r", 0).to_json()
    failing = run_job("r", 1, payload={"failAttempts": 5}).to_json()
    last_try = json.loads(failing)
    last_try["attempt"] = 3
    refused = run_job("r", 2).to_json()
    deliveries = [
        Delivery(1, ok),
        Delivery(2, failing),
        Delivery(3, json.dumps(last_try).encode()),
        Delivery(4, b"{}"),
        Delivery(5, refused),
        Delivery(6, body(kind="nosuchkind")),
    ]
    outcomes = run_handlers(deliveries, "w", Budget(1, 3))
    assert [o.verdict for o in outcomes] == ["pending", "retry", "dead", "dead", "pending", "dead"]
    assert "no handler for job kind 'nosuchkind'" in outcomes[5].error
    apply_bulk(outcomes, {"r-2": "400: mapping"}, Budget(1, 3))
    assert [o.verdict for o in outcomes] == ["written", "retry", "dead", "dead", "retry", "dead"]
    assert counts_by_run(outcomes) == {"r": ([0], [1]), "r1": ([], [3])}


def test_env_example_lists_every_setting_with_its_default(tmp_path) -> None:
    from pathlib import Path

    listed = config.read_env_file(Path(__file__).resolve().parents[2] / ".env.example")
    assert listed == config.Settings().as_env()
    assert config.load(listed) == config.Settings()


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path, monkeypatch) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\nLAB_QUEUE=from-file\nLAB_BATCH='7'\n")
    monkeypatch.setenv("LAB_BATCH", "9")
    s = config.load(env_file=env)
    assert s.queue == "from-file" and s.batch == 9
    env.write_text("LAB_QUEUE\n")
    with pytest.raises(config.ConfigError, match="expected KEY=VALUE"):
        config.load(env_file=env)
    with pytest.raises(config.ConfigError, match="LAB_PREFIX='a%s'"):
        config.load({"LAB_PREFIX": "a%s"})


def test_environment_yml_lists_the_same_dependencies_as_pyproject() -> None:
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = set(project["dependencies"]) | set(extras["targets"])  # make setup installs both
    for requirement in extras["dev"]:
        if requirement.startswith("lab["):  # dev includes the other extras by name
            for extra in requirement[4:-1].split(","):
                wanted |= set(extras[extra])
        else:
            wanted.add(requirement)
    listed = {
        line.strip()[2:]
        for line in (root / "environment.yml").read_text().splitlines()
        if line.strip().startswith("- ") and line.startswith("      ")
    }
    assert listed == wanted


def test_ack_tracker_never_acks_past_work_in_progress() -> None:
    from lab.runtime.acks import AckTracker

    t = AckTracker()
    for tag in range(1, 9):
        t.delivered(tag)
    assert t.finish([4, 5]) == (None, [4, 5])  # 1-3 still in work: ack 4 and 5 one by one
    assert t.finish([1, 2]) == (2, [])
    assert t.finish([3, 6, 7, 8]) == (8, [])
    assert t.in_work == 0
    t.delivered(9)
    t.delivered(10)
    assert t.finish([10]) == (None, [10])
    assert t.finish([9]) == (9, [])


# --- single jobs --------------------------------------------------------------------------------
def test_job_view_shapes_a_record() -> None:
    from lab.runtime.jobviews import view

    record = {
        "id": "job-1",
        "kind": "agent",
        "state": "active",
        "progress": "40",
        "step": "Scrolling",
        "attempt": "2",
        "attempts": "3",
        "lastAttempt": "4",
        "cancelRequested": "0",
        "payload": '{"durationSeconds": 5}',
        "createdAt": "1763856000000",
        "queuedAt": "",
        "startedAt": "1763856001000",
        "finishedAt": "",
        "worker": "w1",
        "error": "",
        "result": "",
        "version": "7",
    }
    shaped = view(record, ['{"at": 1, "message": "queued"}'])
    assert shaped["version"] == 7 and view({**record, "version": ""})["version"] == 0
    assert shaped["progress"] == 40 and shaped["attempt"] == 2 and shaped["maxAttempt"] == 4
    assert shaped["payload"] == {"durationSeconds": 5} and shaped["result"] is None
    assert shaped["finishedAt"] is None and shaped["startedAt"].startswith("2025-11-23T00:00:01")
    assert shaped["error"] is None and shaped["log"] == [{"at": 1, "message": "queued"}]


def test_job_context_stops_a_handler_at_its_next_step() -> None:
    from lab.runtime.progress import JobCancelled, JobContext

    answers = iter(["ok", "cancel"])
    seen: list[tuple] = []
    ctx = JobContext(lambda *a: (seen.append(a), next(answers))[1])
    ctx.progress(50, "Scrolling")
    with pytest.raises(JobCancelled):
        ctx.progress(75, "Typing text", "typed 3 characters")
    assert seen == [(50, "Scrolling", "Scrolling"), (75, "Typing text", "typed 3 characters")]
    with pytest.raises(ValueError, match="from 0 to 100"):
        ctx.progress(101, "x")


def test_agent_payload_validation_names_the_field() -> None:
    from lab.runtime.handlers import PayloadError, handler_for

    validate = handler_for("agent").check

    validate({})
    validate({"durationSeconds": 2, "stepIntervalSeconds": 0.5, "failAtStep": 2, "failRate": 0})
    for payload, field in [
        ({"durationSeconds": "10"}, "durationSeconds"),
        ({"durationSeconds": True}, "durationSeconds"),
        ({"stepIntervalSeconds": 0}, "stepIntervalSeconds"),
        ({"durationSeconds": 0.5, "stepIntervalSeconds": 1}, "durationSeconds"),
        ({"failAtStep": 1.5}, "failAtStep"),
        ({"failAttempts": -1}, "failAttempts"),
        ({"failRate": float("nan")}, "failRate"),
        ({"url": 3}, "url"),
        ({"speed": 3}, "speed"),
    ]:
        with pytest.raises(PayloadError) as exc:
            validate(payload)
        assert exc.value.field == field, payload


def test_agent_steps_and_injected_failure() -> None:
    from lab.runtime.progress import JobContext
    from workers.agent import ACTIONS, AgentFailure, handle

    steps: list[tuple] = []
    ctx = JobContext(lambda *a: (steps.append(a), "ok")[1])
    job = Job(
        "job-x", None, None, "agent", 1, 0, {"durationSeconds": 0.04, "stepIntervalSeconds": 0.01}
    )
    result = handle(job, ctx)
    assert result["steps"] == 4 and [s[0] for s in steps] == [25, 50, 75, 100]
    assert steps[0][1] == "Navigating to page" and all(s[1] in dict(ACTIONS) for s in steps)
    failing = Job(
        "job-y",
        None,
        None,
        "agent",
        1,
        0,
        {"durationSeconds": 0.04, "stepIntervalSeconds": 0.01, "failAtStep": 2, "failAttempts": 1},
    )
    with pytest.raises(AgentFailure, match="step 2"):
        handle(failing, JobContext())
    assert handle(Job(**{**failing.__dict__, "attempt": 2}), JobContext())["steps"] == 4


def test_kinds_route_to_their_queue() -> None:
    topology = broker.Topology("q")
    assert topology.route("index", single=False) == "q"
    assert topology.route("agent", single=False) == "q.long"
    assert topology.route("sleep", single=False) == "q.long"
    assert topology.route("nosuch", single=False) == "q"
    # Single jobs of any kind wait in their own priority queue, never behind a run's backlog.
    assert {topology.route(k, single=True) for k in ("index", "agent", "nosuch")} == {"q.single"}
    queues = dict(topology.queues())
    assert queues["q.single"]["x-max-priority"] == broker.MAX_PRIORITY
    assert all("x-max-priority" not in a for n, a in queues.items() if n != "q.single")
    assert queues["q.single.retry.1000"]["x-dead-letter-routing-key"] == "q.single"
    assert broker.PRIORITIES["low"] < broker.PRIORITIES["normal"] < broker.PRIORITIES["high"]
    # A quorum queue (3.12+) puts 5 and above first: high must be there, normal must not.
    assert broker.PRIORITIES["high"] >= 5 > broker.PRIORITIES["normal"]
    assert topology.retry(1000, "q.long") == "q.long.retry.1000"
    assert topology.retry_arguments(1000, "q.long")["x-dead-letter-routing-key"] == "q.long"


def test_parse_sse() -> None:
    from lab.client import parse_sse

    lines = ["retry: 1000", "", ": heartbeat", "id: 1-0", "event: job", 'data: {"a": 1}', ""]
    assert list(parse_sse(lines)) == [
        {"comment": "heartbeat"},
        {"id": "1-0", "event": "job", "data": {"a": 1}},
    ]
