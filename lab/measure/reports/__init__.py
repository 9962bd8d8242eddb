"""Drill notebooks run as reports a reader can trust and compare.

run.py         `lab report NAME`: papermill runs the notebook; the summary gets its provenance
provenance.py  git commit, rerun command, versions, machine
page.py        the HTML: verdict, headline figures and main chart first, code hidden
index.py       `reports/index.html` and `lab report list`
compare.py     `lab report compare`: every figure of two runs, with tolerances and verdicts
"""

REPORTS = {
    "resilience": "kill -9 a worker, restart the API, the scheduler and RabbitMQ, stop ES",
    "scaleout": "1, 2 and 4 workers: speed-up and fairness",
    "latency": "GET /status latency while a run is active, stepped up to the knee",
    "hostile": "poison messages, hostile requests, outages of each service",
    "cluster": "three private RabbitMQ nodes: the leader killed, a follower stopped",
    "degraded": "latency, bandwidth, resets and silence on each service, through the fault proxy",
    "workloads": "shapes released as declared, a synthetic workload against its distributions",
    "targets": "one seeded workload and a kill -9 on every target: delivery verdicts side by side",
}
"""Every drill: `notebooks/<name>.py` (paired with its .ipynb) and what it does, for `lab report`.
A new drill is a notebook pair and a line here (docs/guides/drill.md). The names `run`, `list`
and `compare` are `lab report`'s own actions and cannot be drills."""
