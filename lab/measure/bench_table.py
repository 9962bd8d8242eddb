"""`lab bench throughput`'s table (Markdown): lab's repetitions beside the path's ceilings, and
with `--peers` each target's figures with their 95 % intervals and lab's ratio to the best peer.
Pure: it renders a `Report`, whatever measured it."""

from __future__ import annotations

from typing import Any

from lab.measure.bench import Report

# The peers' table: (column, key of the target's summary, format).
PEER_COLUMNS = (
    ("release jobs/s", "release", ",.0f"),
    ("drain jobs/s", "drain", ",.0f"),
    ("end to end jobs/s", "e2e", ",.0f"),
    ("worker CPU s / 1,000 jobs", "workerCpu", ".3f"),
)


def markdown(report: Report) -> str:
    s = report.summary()
    p = report.params

    def row(name: str, key: str, unit: str, fmt: str = ",.0f") -> str:
        v = s[key]
        return f"| {name} | {v['median']:{fmt}} {unit} | {v['min']:{fmt}}–{v['max']:{fmt}} |"

    ratios = report.ratios()
    lines = [
        f"`lab bench throughput --jobs {p['jobs']} --workers {p['workers']} "
        f"--prefetch {p['prefetch']} --batch {p['batch']} --reps {p['reps']}"
        f"{peers_flag(report)}` on {report.machine['cpus']} CPUs, Python "
        f"{report.machine['python']}",
        "",
        "| measure | median | min–max |",
        "| --- | --- | --- |",
        row("release (scheduler alone, confirms)", "release_jobs_s", "jobs/s"),
        row(f"drain ({p['workers']} worker(s))", "drain_jobs_s", "jobs/s"),
        row("end to end (POST /run → last document)", "e2e_jobs_s", "jobs/s"),
        row("end-to-end latency p50 (release → written)", "e2e_latency_ms_p50", "ms"),
        row("end-to-end latency p99", "e2e_latency_ms_p99", "ms"),
        row("worker CPU per 1,000 jobs", "worker_cpu_s_per_1000", "s", ".3f"),
        row("worker peak RSS", "worker_peak_rss_mb", "MB", ".1f"),
        row("worker RSS at 10 % of the drain", "worker_rss_mb_at_10pct", "MB", ".1f"),
        row("worker RSS at the end of the drain", "worker_rss_mb_at_end", "MB", ".1f"),
        row("GET /status p50 during a run", "status_ms_p50", "ms", ".2f"),
        row("GET /status p99 during a run", "status_ms_p99", "ms", ".2f"),
        "",
        "| ceiling of the path on this machine | jobs/s |",
        "| --- | --- |",
        *(f"| {k} | {v:,.0f} |" for k, v in report.ceilings.items()),
        "",
        f"lab drain ÷ slowest ceiling: {ratios.get('drain_vs_slowest_ceiling', 0):.0%}",
        f"Redis memory of a run's exactly-once bitmap ({p['jobs']} jobs): "
        f"{report.redis_bytes_per_run:,} bytes",
    ]
    if report.peers:
        lines += ["", *peers_table(report.peers)]
    return "\n".join(lines) + "\n"


def peers_flag(report: Report) -> str:
    names = [name for name in report.peers.get("targets", {}) if name != "lab"]
    return f" --peers {','.join(names)}" if names else ""


def peers_table(peers: dict[str, Any]) -> list[str]:
    """Each target's mean and 95 % interval over its repetitions, its jobs and its verdict;
    then lab ÷ the best peer, with Welch's verdict on the difference."""
    head = (f"target ({peers['workers']} worker(s) × {peers['concurrency']} job threads, "
            f"{peers['jobs']:,} jobs, interleaved)")  # fmt: skip
    lines = [
        f"| {head} | {' | '.join(c for c, _, _ in PEER_COLUMNS)} | processed | verdict |",
        f"| --- |{' --- |' * (len(PEER_COLUMNS) + 2)}",
    ]
    for name, found in peers["targets"].items():
        cells = [with_interval(found[key], fmt) for _, key, fmt in PEER_COLUMNS]
        said = "clean" if found["clean"] else "NOT clean"
        if found["errors"]:
            said += f", {found['errors']} trial(s) failed"
        lines.append(f"| {name} | {' | '.join(cells)} | {found['processed']:,} of "
                     f"{found['expected']:,} | {said} |")  # fmt: skip
    best = peers.get("best")
    if best:
        lines += ["", f"lab ÷ best peer ({best}): " + "  ·  ".join(
            f"{measure} {ratio_text(peers['labVsBest'][key])}"
            for measure, key in (("drain", "drain"), ("end to end", "e2e")))]  # fmt: skip
    return lines


def with_interval(found: dict[str, Any], fmt: str) -> str:
    """`7,523 [7,067–9,418]`: the mean and its 95 % interval (the mean alone from one sample);
    every figure here is a rate or a time, so an interval's low end is shown from 0."""
    if found.get("mean") is None:
        return "–"
    text = f"{found['mean']:{fmt}}"
    if found.get("low") is not None and found.get("high") is not None:
        text += f" [{max(0.0, found['low']):{fmt}}–{found['high']:{fmt}}]"
    return text


def ratio_text(ratio: dict[str, Any]) -> str:
    """`7.8× [6.1–9.9×] (real)`: the ratio of the means, the range their intervals allow, and
    whether the difference is real, within noise, or cannot be told from the repetitions."""
    text = f"{ratio['ratio']:.1f}×"
    if ratio.get("low") is not None and ratio.get("high") is not None:
        text += f" [{ratio['low']:.1f}–{ratio['high']:.1f}×]"
    return f"{text} ({ratio['verdict']})"
