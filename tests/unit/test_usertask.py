"""A user's own task as a run's work (the `task` pseudo-kind): its payload is checked field by
field, each job's call fills `"{seq}"` and `"{jobId}"` wherever they stand whole (and nothing
else), and `lab run start --task` refuses what does not go together in one line."""

from __future__ import annotations

import argparse

import pytest

from lab.cli.runs import work_of
from lab.runtime.messages import run_job
from lab.targets import usertask
from lab.targets.usertask import TaskPayloadError


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], ""),
        ({}, "task"),
        ({"task": ""}, "task"),
        ({"task": 5}, "task"),
        ({"task": "1app.t"}, "task"),
        ({"task": "app.t\n"}, "task"),
        ({"task": "app-t"}, "task"),
        ({"task": "a" * 201}, "task"),
        ({"task": "app.t", "args": "x"}, "args"),
        ({"task": "app.t", "args": {}}, "args"),
        ({"task": "app.t", "kwargs": []}, "kwargs"),
        ({"task": "app.t", "queue": "q"}, "queue"),
    ],
)
def test_a_task_payload_names_the_field_it_refuses(payload: object, field: str) -> None:
    with pytest.raises(TaskPayloadError) as caught:
        usertask.check(payload)
    assert caught.value.field == field


def test_a_task_payload_gets_its_defaults() -> None:
    assert usertask.check({"task": "a" * 200}) == {"task": "a" * 200, "args": [], "kwargs": {}}
    assert usertask.check({"task": "_app.tasks.T1", "args": [1]})["args"] == [1]


def test_each_job_s_call_fills_its_seq_and_id_wherever_they_stand_whole() -> None:
    payload = {
        "task": "app.resize",
        "args": ["{seq}", "img-{seq}.png", ["{jobId}", {"n": "{seq}"}], 3, None],
        "kwargs": {"job": "{jobId}", "deep": {"list": ["{seq}"]}, "{seq}": "key stays"},
    }
    call = usertask.call(run_job("run1", 17, usertask.KIND, payload))
    assert call.name == "app.resize"
    assert call.args == [17, "img-{seq}.png", ["run1-17", {"n": 17}], 3, None]
    assert call.kwargs == {"job": "run1-17", "deep": {"list": [17]}, "{seq}": "key stays"}
    assert payload["args"][0] == "{seq}"  # the run's payload is not changed


def options(**given: object) -> argparse.Namespace:
    base = {"kind": "index", "payload": None, "task": None, "args": None, "kwargs": None,
            "target": None}  # fmt: skip
    return argparse.Namespace(**{**base, **given})


def test_lab_run_start_task_sets_the_task_kind_and_refuses_what_does_not_go_together() -> None:
    assert work_of(options(kind="sleep", payload={"seconds": 1})) == ("sleep", {"seconds": 1})
    assert work_of(options(task="app.t", args=["{seq}"], target="celery")) == (
        "task", {"task": "app.t", "args": ["{seq}"], "kwargs": {}})  # fmt: skip
    refused = {
        "--args and --kwargs go with --task": options(args=[1]),
        "--task takes --args and --kwargs, not --payload": options(task="app.t", payload={}),
        "--task runs a task of your own framework: give --target (lab target list)": options(
            task="app.t", target="lab"
        ),  # fmt: skip
        "--task: must be a dotted name of at most 200 letters, digits, '_' and '.'": options(
            task="app/t", target="celery"
        ),  # fmt: skip
    }
    for message, given in refused.items():
        with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
            work_of(given)
