"""The records index's documents and queries, built without a service."""

from __future__ import annotations

import json

import pytest

from lab.runtime.search import BadQuery, epoch_ms, phrased, query, record_doc


def test_a_records_document_carries_payload_error_and_log_text() -> None:
    h = {"id": "job-1", "kind": "agent", "state": "failed", "attempt": "2", "createdAt": "5",
         "finishedAt": "9", "payload": '{"url": "https://shop.example"}',
         "error": "boom"}  # fmt: skip
    lines = [json.dumps({"message": "Navigating to page"}), "not json", json.dumps([1])]
    doc = record_doc(h, lines)
    assert doc["id"] == "job-1" and doc["state"] == "failed" and doc["attempt"] == 2
    assert (doc["createdAt"], doc["updatedAt"]) == (5, 9)
    for word in ("shop.example", "boom", "Navigating", "agent"):
        assert word in doc["text"]


def test_times_are_epoch_ms_or_iso_8601() -> None:
    assert epoch_ms("1700000000000", "from") == 1_700_000_000_000
    assert epoch_ms("2023-11-14T22:13:20Z", "from") == 1_700_000_000_000
    assert epoch_ms("2023-11-14T23:13:20+01:00", "to") == 1_700_000_000_000
    with pytest.raises(BadQuery, match="^from: 'last week'"):
        epoch_ms("last week", "from")


def test_hyphenated_words_are_phrases_and_an_id_is_a_term() -> None:
    assert phrased("shop.example/check-out failed -timeout") == (
        "shop.example/check-out failed -timeout".replace(
            "shop.example/check-out", '"shop.example/check-out"'
        )
    )
    assert query("job-2026-abc", None, None, None, None)["bool"]["must"] == [
        {"term": {"id": "job-2026-abc"}}
    ]
    q = query("boom", "failed", "index", 1, 2)["bool"]
    assert {"term": {"state": "failed"}} in q["filter"] and {"term": {"kind": "index"}} in q[
        "filter"
    ]
    assert {"range": {"createdAt": {"gte": 1, "lte": 2}}} in q["filter"]
    assert query(None, None, None, None, None)["bool"]["must"] == [{"match_all": {}}]
