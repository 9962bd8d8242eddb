"""Preload a peer's queue with N reference jobs through the peer's own client:
`python -m lab.measure.peers.preload {celery|dramatiq} RUN_ID N` (settings from LAB_* variables)."""

from __future__ import annotations

import sys


def main(peer: str, run_id: str, n: int) -> None:
    if peer == "celery":
        from lab.measure.peers.celery_app import index

        for seq in range(n):
            index.apply_async((run_id, seq))
    elif peer == "dramatiq":
        from lab.measure.peers.dramatiq_app import index

        for seq in range(n):
            index.send(run_id, seq)
    else:
        raise SystemExit(f"unknown peer {peer!r}: expected celery or dramatiq")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
