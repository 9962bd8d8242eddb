"""Drill notebooks run as reports a reader can trust and compare.

run.py         `lab report NAME`: papermill runs the notebook; the summary gets its provenance
provenance.py  git commit, rerun command, versions, machine
page.py        the HTML: verdict, headline figures and main chart first, code hidden
index.py       `reports/index.html` and `lab report list`
compare.py     `lab report compare`: every figure of two runs, with tolerances and verdicts
"""

REPORTS = ("resilience", "scaleout", "latency", "hostile", "cluster")
