"""What a clustered Redis needs: with a braced prefix every key of a lab, whatever wrote it,
maps to one Redis Cluster slot, so each Lua script's keys stay together."""

from __future__ import annotations

from pathlib import Path

from redis.crc import key_slot

from lab.client import LabClient
from lab.ops.reset import reset
from lab.ops.supervisor import Supervisor
from lab.runtime.stores import Stores

from .conftest import make_settings
from .helpers import settle


def test_a_braced_prefix_puts_every_key_of_a_run_in_one_slot(es_url: str, tmp_path: Path) -> None:
    plain = make_settings(es_url, tmp_path)
    settings = plain.with_overrides(prefix="{" + plain.prefix + "}")
    supervisor = Supervisor(settings, log_dir=tmp_path / "logs")
    stores = Stores.of(settings)
    try:
        supervisor.up(workers=1)
        client = LabClient.of(settings)
        run_id = client.run(2000, 600_000)["runId"]
        run = settle(stores, run_id, 60)
        assert run.processed == 2000 and run.state == "completed"
        job = client.create_job("sleep", {"seconds": 0})
        keys = list(stores.redis.scan_iter(match=f"{settings.prefix}:*", count=1000))
        assert len(keys) >= 10, keys
        assert any(":job:" in k for k in keys) and any(":timeline" in k for k in keys)
        assert {key_slot(k.encode()) for k in keys} == {key_slot(settings.prefix.encode())}
        assert job["id"]
    finally:
        supervisor.down(grace_s=10)
        reset(settings)
