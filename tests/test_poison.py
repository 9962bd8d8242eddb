"""Poison messages: whatever a producer publishes, workers dead-letter it with the reason and go on.

Two workers run while hostile bodies are published straight to every consumed queue with raw
pika. Every one must land in the dead-letter queue with its reason in the headers, the workers
must be the very same processes afterwards, and a run started afterwards must count exactly.
"""

from __future__ import annotations

import pytest

from lab.client import LabClient
from lab.config import Settings
from lab.measure.hostile import MALFORMED, dead_letters, publish_poison
from lab.ops.supervisor import Supervisor
from lab.runtime.messages import MAX_BODY_BYTES
from lab.runtime.stores import Stores

from .helpers import assert_exactly_once, publish, queue_depth, settle, wait_until


@pytest.mark.slow
def test_poison_messages_are_dead_lettered_and_the_workers_live_on(
    lab: Supervisor, stores: Stores, settings: Settings, channel
) -> None:
    lab.up(workers=2)
    pids = {name: lab.pid(name) for name in lab.workers()}
    reasons_expected = publish_poison(channel, settings.queue)
    consumed = (settings.queue, f"{settings.queue}.single", f"{settings.queue}.long")
    for queue in consumed[1:]:  # the one-by-one consumers parse the same way
        for raw in MALFORMED[:4]:
            publish(channel, queue, raw)
    reasons_expected["malformed"] += 8
    expected = sum(reasons_expected.values())
    dead = f"{settings.queue}.dead"
    wait_until(
        lambda: queue_depth(settings, dead) >= expected,
        60,
        f"{expected} dead letters",
        lambda: f"dead-letter queue holds {queue_depth(settings, dead)}",
    )
    letters = list(dead_letters(channel, settings.queue))
    reasons: dict[str, int] = {}
    for _, headers in letters:
        reasons[headers["x-lab-reason"]] = reasons.get(headers["x-lab-reason"], 0) + 1
        assert headers["x-lab-error"]
        assert headers["x-lab-queue"] in consumed
        assert headers["x-lab-first-failed-ms"] <= headers["x-lab-last-failed-ms"]
    assert reasons == reasons_expected
    # Bodies are kept byte for byte, however hostile, so they can be read or replayed (a body
    # over the broker's max_message_size never got in).
    refused = reasons_expected["malformed"] < len(MALFORMED) + 8
    taken = [b for b in MALFORMED if not (refused and len(b) > MAX_BODY_BYTES)]
    assert sorted(b for b, _ in letters if b in MALFORMED) == sorted(taken + MALFORMED[:4] * 2)
    exhausted = [h for _, h in letters if h["x-lab-reason"] == "exhausted"]
    assert "elasticsearch refused" in exhausted[0]["x-lab-error"]
    assert exhausted[0]["x-lab-attempt"] == settings.max_attempts
    assert int(stores.redis.get(stores.keys.dead_lettered)) == expected

    # The same processes, never restarted, still consume: a run afterwards is exact.
    assert {name: lab.pid(name) for name in lab.workers()} == pids
    assert all(lab.children[name].restarts == 0 for name in pids)
    client = LabClient.of(settings)
    run_id = client.run(2000, 600_000)["runId"]
    settle(stores, run_id, 120)
    assert_exactly_once(settings, stores, run_id, 2000)
    assert {name: lab.pid(name) for name in lab.workers()} == pids
    client.close()
