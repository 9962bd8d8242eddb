"""Every JSON and TOML example of the docs is one the code takes. A fenced ```json or ```toml block
says what it is in the marker right above it, `<!-- example: WHAT -->`:

    run-body        a POST /run body: `RunRequest`, its shape (`shapes.parse`), its objectives
                    (`slo.parse`) and its payload, checked by its kind as the API checks it
    payload:KIND    a payload of that job kind, checked by the kind's fields
    shape           a load shape (`shapes.parse`)
    objective       an objective (`slo.parse`)
    experiment      an experiment file (`lab.experiment.spec`)
    none            an answer or a fragment: it must parse, and nothing more is claimed

A block without a marker fails: a reader cannot tell what accepts it, and neither can this test.
A code span that is a whole JSON object naming a shape's `type` or an objective's `metric` is
held to `shapes.parse` or `slo.parse` too. Each failure names the page, the line and the error.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
from fastapi.responses import JSONResponse

from lab.api.kinds import checked
from lab.api.runs import RunRequest
from lab.experiment import tomlfile
from lab.experiment.spec import Spec
from lab.runtime import shapes, slo
from tests import docs_pages
from tests.docs_pages import Block

MARKED = ("json", "toml")


def examples() -> list[Block]:
    return [b for page in docs_pages.PAGES for b in docs_pages.blocks(page) if b.info in MARKED]


def payload_accepted(kind: str, payload: dict[str, Any]) -> None:
    answer = checked(kind, payload)
    if isinstance(answer, JSONResponse):
        raise ValueError(answer.body.decode())


def run_body_accepted(text: str) -> None:
    body = RunRequest.model_validate_json(text)
    shapes.parse(body.shape if body.shape is not None else {"type": "constant", "y": body.y})
    if body.slo is not None:
        slo.parse(body.slo)
    payload_accepted(body.kind, body.payload)


def accepted(block: Block) -> None:
    """Raises, naming the problem, unless the code takes the block as what its marker says."""
    if block.info == "toml":
        tomllib.loads(block.text)
        if block.marker == "experiment":
            Spec.of(tomlfile.loads(block.text.encode()))
        return
    value = json.loads(block.text)
    marker = block.marker or ""
    if marker == "run-body":
        run_body_accepted(block.text)
    elif marker.startswith("payload:"):
        payload_accepted(marker.split(":", 1)[1], value)
    elif marker == "shape":
        shapes.parse(value)
    elif marker == "objective":
        slo.parse([value])


@pytest.mark.parametrize("block", examples(), ids=lambda b: docs_pages.where(b.page, b.line))
def test_every_json_and_toml_example_is_taken_by_the_code(block: Block) -> None:
    place = docs_pages.where(block.page, block.line)
    known = ("run-body", "shape", "objective", "experiment", "none")
    if not block.marker or not (block.marker in known or block.marker.startswith("payload:")):
        pytest.fail(f"{place}: a ```{block.info} block with no `<!-- example: WHAT -->` above it "
                    f"({', '.join(known)}, payload:KIND)")  # fmt: skip
    try:
        accepted(block)
    except Exception as exc:  # noqa: BLE001 - whatever refuses it, the page is wrong
        pytest.fail(f"{place}: the {block.marker} example is refused: {type(exc).__name__}: {exc}")


def json_spans() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for page in docs_pages.PAGES:
        for span in docs_pages.spans(page):
            text = span.text.strip()
            if not text.startswith("{"):
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict) and ("type" in value or "metric" in value):
                found.append((docs_pages.where(page, span.line), value))
    return found


def test_every_shape_and_objective_in_a_code_span_is_taken() -> None:
    found = json_spans()
    judged, stale = 0, []
    for place, value in found:
        try:
            if value.get("type") in shapes.SHAPES.names:
                judged += 1
                shapes.parse(value)
            elif "metric" in value:
                judged += 1
                slo.parse([value])
        except (shapes.ShapeError, slo.SloError) as exc:
            stale.append(f"{place}: `{json.dumps(value)}` is refused: {exc}")
    assert judged >= 10, found
    assert not stale, "\n".join(stale)
