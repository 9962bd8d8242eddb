"""Before and after, interleaved: `lab bench throughput` from an earlier commit and from this tree,
one repetition each in turn (which goes first alternates), so a slow minute of a shared machine
falls on both sides of a pair.

    .venv/bin/python scripts/bench_against.py COMMIT [--pairs 6] [--jobs 30000]
                                              [--batch B --prefetch P]

Each side runs with its own defaults unless --batch/--prefetch are given: then both run with
them, which separates what a change costs from what a changed default gains.

The earlier commit runs from a temporary git worktree (removed after); both sides use one
Elasticsearch-API server started here for them (stopped after), and the shared Redis and RabbitMQ
in namespaces of their own, as every benchmark does. Prints each pair's drain and worker CPU, and
the median of the paired ratios; the JSON of every run stays under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.cli.arguments import positive_int  # noqa: E402
from lab.ops import servers  # noqa: E402


def bench(tree: Path, es_url: str, jobs: int, out: Path, extra: list[str]) -> dict:
    """One `lab bench throughput` repetition run from `tree`'s own code."""
    env = {**os.environ, "PYTHONPATH": str(tree), "LAB_ES_URL": es_url}
    argv = [sys.executable, "-m", "lab", "bench", "throughput", "--jobs", str(jobs), "--reps", "1",
            "--out", str(out), *extra]  # fmt: skip
    done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"lab bench in {tree} failed:\n{done.stderr[-2000:]}")
    (summary,) = [p for p in out.glob("*.json") if p.parent == out]
    return json.loads(summary.read_text())["reps"][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", help="the commit to measure against (before)")
    parser.add_argument("--pairs", type=positive_int, default=6)
    parser.add_argument("--jobs", type=positive_int, default=30_000)
    parser.add_argument("--batch", type=positive_int, help="LAB_BATCH for both sides")
    parser.add_argument("--prefetch", type=positive_int, help="LAB_PREFETCH for both sides")
    parser.add_argument("--out", type=Path, help="where each run's JSON goes (default: temporary)")
    args = parser.parse_args()
    extra = [f"--{name}={value}" for name in ("batch", "prefetch")
             if (value := getattr(args, name)) is not None]  # fmt: skip
    known = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet",
                            f"{args.commit}^{{commit}}"], capture_output=True)  # fmt: skip
    if known.returncode != 0:
        parser.error(f"{args.commit!r} is not a commit of this repository")
    work = Path(tempfile.mkdtemp(prefix="lab-bench-against-"))
    out = args.out or work / "results"
    before = work / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(before),
                    args.commit], check=True)  # fmt: skip
    es = servers.start_elasticsearch(servers.free_port(), work / "es")
    try:
        rows = []
        for i in range(1, args.pairs + 1):
            # ABBA: which side runs first alternates, so what the first run leaves the second
            # (a warmer or busier server) falls on both sides.
            if i % 2:
                b = bench(before, es.url, args.jobs, out / f"before-{i}", extra)
                a = bench(ROOT, es.url, args.jobs, out / f"after-{i}", extra)
            else:
                a = bench(ROOT, es.url, args.jobs, out / f"after-{i}", extra)
                b = bench(before, es.url, args.jobs, out / f"before-{i}", extra)
            rows.append((b, a))
            print(f"pair {i}: drain {b['drain_jobs_s']:,.0f} → {a['drain_jobs_s']:,.0f} jobs/s "
                  f"({a['drain_jobs_s'] / b['drain_jobs_s']:.3f}); worker CPU per 1,000 jobs "
                  f"{b['worker_cpu_s_per_1000']:.4f} → {a['worker_cpu_s_per_1000']:.4f} s",
                  flush=True)  # fmt: skip
        ratios = [a["drain_jobs_s"] / b["drain_jobs_s"] for b, a in rows]
        median = statistics.median
        print(f"{args.commit} → this tree, {args.pairs} pairs of {args.jobs:,} jobs: drain median "
              f"{median(b['drain_jobs_s'] for b, _ in rows):,.0f} → "
              f"{median(a['drain_jobs_s'] for _, a in rows):,.0f} jobs/s; paired ratios "
              f"{min(ratios):.3f} to {max(ratios):.3f}, median {median(ratios):.3f}")  # fmt: skip
        print(f"results: {out}")
    finally:
        es.stop()
        shutil.rmtree(work / "es", ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)],
                       check=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
