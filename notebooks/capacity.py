# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Capacity report
#
# The highest constant rate the pipeline sustains while its objectives hold, found by a search
# (`lab capacity --out FOLDER …`): each probe is one run at a constant rate, judged over its step
# only, its queue drained or purged before the next. The answer is an interval: the highest rate
# that held in every repetition, and the lowest that broke. Below: the knee curves it is read
# from, the Universal Scalability Law fitted to the capacities at each number of workers (or
# job threads), and the capacity under each fault preset. Made by `lab capacity report FOLDER`;
# docs/CAPACITY.md says how to read it.

# %% tags=["parameters"]
FOLDER = "capacity"
SUMMARY_PATH = None  # lab capacity report sets this

# %%
from IPython.display import Markdown, display

import lab.capacity
from lab.capacity import plots
from lab.measure.drill import Verdicts, save_summary

found = lab.capacity.load(FOLDER)
answer, probes = found.answer, found.probes
display(Markdown(f"**The pipeline {found.verdict}.**"))
for search in answer["searches"] if len(answer["searches"]) > 1 else []:
    levels = ", ".join(f"{k}={v}" for k, v in search["levels"].items())
    display(Markdown(f"- {levels}: {search['verdict']}"))
for fault in answer.get("faults", []):
    display(Markdown(f"- {fault['verdict']}"))

# %% [markdown]
# ## The knee
#
# Left: what the pipeline achieved against what was offered; it follows the 1:1 line while it
# keeps up and bends away at its capacity. Middle: the objectives' latency (p99) against what
# was offered, each objective's limit dashed. Right: the share of jobs that failed. Each probe
# held (●) or broke (×); the shaded band is the interval found.

# %%
chart = plots.knee(probes, answer)

# %% [markdown]
# ## Each search's latency: queue wait, service, end to end

# %%
for search in answer["searches"]:
    plots.latency(probes, answer, search["configuration"])

# %% [markdown]
# ## Scalability
#
# X(N) = λN / (1 + σ(N − 1) + κN(N − 1)): λ is what one unit sustains, σ the contention (the
# share that serialises), κ the coherency cost (what makes X fall past a peak). The intervals
# come from fitting capacities drawn within each search's interval.

# %%
usl = answer.get("usl")
if usl:
    plots.scalability(answer)
    for fit in answer["uslByGroup"]:
        p = fit["predicted"]["jobsPerSecond"]
        peak = (
            f"peaks at {fit['factor']} = {fit['peakN']['value']:.1f}"
            if fit["peakN"]["value"]
            else "no peak (κ = 0)"
        )
        display(
            Markdown(
                f"- {', '.join(f'{k}={v}' for k, v in fit['group'].items()) or 'all'}: "
                f"λ = {fit['lambda']['value']:,.2f} jobs/s ({fit['lambda']['low']:,.2f}–"
                f"{fit['lambda']['high']:,.2f}), σ = {fit['sigma']['value']:.4f} "
                f"({fit['sigma']['low']:.4f}–{fit['sigma']['high']:.4f}), κ = "
                f"{fit['kappa']['value']:.5f} ({fit['kappa']['low']:.5f}–{fit['kappa']['high']:.5f}); "
                f"R² {fit['fit']['r2']}, {fit['fit']['degreesOfFreedom']} degrees of freedom; {peak}; "
                f"at {fit['factor']} = {fit['predicted']['n']:g} it predicts {p['value']:,.1f} jobs/s "
                f"({p['low']:,.1f}–{p['high']:,.1f})"
            )
        )
else:
    print("no scalability fit: vary workers or concurrency over two or more levels")

# %% [markdown]
# ## Under faults

# %%
if plots.faults(answer) is None:
    print("no fault preset was searched (lab capacity --fault PRESET)")

# %% [markdown]
# ## Every probe

# %%
columns = [
    c
    for c in (
        "configuration",
        "probe",
        "phase",
        "rate",
        "held",
        "offeredPerSecond",
        "achievedPerSecond",
        "queueWait.p99Ms",
        "service.p99Ms",
        "endToEnd.p99Ms",
        "failedRatio",
        "ended",
        "broke",
        "error",
    )
    if c in probes
]
display(probes[columns])

# %% [markdown]
# ## Verdict

# %%
verdicts = Verdicts()
errors = probes["error"].fillna("").astype(bool) if "error" in probes else probes["rate"] < 0
verdicts.check("no probe errored", not errors.any(), 0, int(errors.sum()))
for search in answer["searches"]:
    levels = ", ".join(f"{k}={v}" for k, v in search["levels"].items()) or "the search"
    verdicts.check(
        f"{levels}: the search ended", search["done"], "done", search["why"] or "not yet"
    )
    verdicts.check(
        f"{levels}: an interval was found",
        search["jobsPerSecond"]["low"] is not None,
        "a rate that held",
        search["jobsPerSecond"],
    )
verdicts.check(
    "no backlog left behind",
    set(probes["ended"].dropna()) <= {"settled", "stopped, queue purged"}
    and (probes["queueAfter"].fillna(0) == 0).all(),
    "settled or purged, queue empty",
    sorted(set(probes["ended"].dropna())),
)
headline = {"capacity": found.verdict}
for search in answer["searches"] if len(answer["searches"]) > 1 else []:
    headline[", ".join(f"{k}={v}" for k, v in search["levels"].items())] = search["verdict"]
if usl:
    p = usl["predicted"]["jobsPerSecond"]
    headline["scalability"] = (
        f"σ = {usl['sigma']['value']:.4f}, κ = {usl['kappa']['value']:.5f}; "
        f"at {usl['factor']} = {usl['predicted']['n']:g}: "
        f"{p['value']:,.1f} jobs/s ({p['low']:,.1f}–{p['high']:,.1f})"
    )
for fault in answer.get("faults", []):
    headline[f"under {fault['fault']}"] = fault["verdict"]
save_summary(SUMMARY_PATH, answer, verdicts, headline, chart=chart)
verdicts
