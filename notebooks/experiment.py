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
# # Experiment report
#
# The rows of one experiment (`lab experiment run FILE`), one per trial: for each factor, each
# level's mean with its 95 % confidence interval (Student's t below 10 repetitions, a seeded
# bootstrap above), the scaling efficiency of a numeric factor against its first level, an
# interaction plot for each pair of factors, and every pairwise difference judged *real* or
# *within noise* from the spread of the repetitions (Welch's t, Holm-corrected), never from a
# fixed tolerance. Made by `lab experiment report FOLDER`.

# %% tags=["parameters"]
FOLDER = "experiments/results/scaling"  # the experiment folder to analyse
MEASURE = "drainedPerSecond"   # the measure the answers are about
SUMMARY_PATH = None            # lab experiment report sets this

# %%
import json
from itertools import combinations
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from lab.experiment import analysis, load
from lab.measure.drill import Verdicts, save_summary

manifest = json.loads((Path(FOLDER) / "manifest.json").read_text())
factors = list(manifest["spec"]["factors"])
frame = load(FOLDER)
ok = frame[frame["error"].fillna("") == ""] if "error" in frame else frame
print(f"{manifest['name']}: {len(frame)} of {len(manifest['plan'])} trials, "
      f"{len(frame) - len(ok)} with an error; factors {', '.join(factors) or 'none'}")

# %% [markdown]
# ## Each configuration

# %%
configurations = analysis.by_configuration(ok, MEASURE, factors)
display(configurations.round(2))

# %% [markdown]
# ## Each factor: levels, intervals, efficiency and the differences between levels

# %%
levels, pairs = {}, []
for factor in factors:
    levels[factor] = analysis.by_level(ok, MEASURE, factor)
    display(levels[factor].round(3))
    pairs.append(analysis.differences(ok, MEASURE, factor))
pairs = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame()
if not pairs.empty:
    display(pairs.round(4))

# %%
fig, axes = plt.subplots(1, max(1, len(factors)), figsize=(5 * max(1, len(factors)), 3.5), squeeze=False)
for ax, factor in zip(axes[0], factors or [None]):
    if factor is None:
        break
    table = levels[factor]
    x = [str(v) for v in table[factor]]
    err = [[m - lo if lo == lo and lo is not None else 0 for m, lo in zip(table["mean"], table["low"])],
           [hi - m if hi == hi and hi is not None else 0 for m, hi in zip(table["mean"], table["high"])]]
    ax.bar(x, table["mean"], yerr=err, capsize=6, color="#2e90fa")
    ax.set_xlabel(factor); ax.set_ylabel(MEASURE); ax.set_title(f"{MEASURE} by {factor} (95 % CI)")
    ax.grid(alpha=0.3, axis="y")
plt.tight_layout(); plt.show()
chart = fig

# %% [markdown]
# ## Interactions: does one factor's effect depend on another's level?

# %%
for a, b in combinations(factors, 2):
    table = analysis.by_configuration(ok, MEASURE, [a, b])
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for level, group in table.groupby(b):
        ax.errorbar([str(v) for v in group[a]], group["mean"],
                    yerr=[(group["mean"] - group["low"]).fillna(0), (group["high"] - group["mean"]).fillna(0)],
                    marker="o", capsize=4, label=f"{b}={level}")
    ax.set_xlabel(a); ax.set_ylabel(MEASURE); ax.legend(); ax.grid(alpha=0.3)
    plt.tight_layout(); plt.show()

# %% [markdown]
# ## Verdict

# %%
verdicts = Verdicts()
verdicts.check("every trial of the plan has a row", len(frame) == len(manifest["plan"]),
               len(manifest["plan"]), len(frame))
verdicts.check("no trial failed", len(ok) == len(frame), 0, len(frame) - len(ok))
verdicts.check("every trial id once", frame["trial"].is_unique, "distinct", int(frame["trial"].duplicated().sum()))
headline = {}
for factor in factors:
    for _, row in levels[factor].iterrows():
        low = "–" if pd.isna(row["low"]) else f"{row['low']:,.1f}"
        high = "–" if pd.isna(row["high"]) else f"{row['high']:,.1f}"
        extra = f", efficiency {row['efficiency']:.0%}" if "efficiency" in row and not pd.isna(row.get("efficiency")) else ""
        headline[f"{factor}={row[factor]}"] = f"{MEASURE} {row['mean']:,.1f} [{low}, {high}] (n={row['n']}){extra}"
for _, row in pairs.iterrows():
    change = "" if pd.isna(row["change"]) else f"{row['change']:+.1%}, "
    headline[f"{row['factor']}: {row['a']} → {row['b']}"] = f"{change}{row['verdict']}"
figures = {"measure": MEASURE, "trials": len(frame), "failed": len(frame) - len(ok),
           "levels": {f: levels[f].to_dict(orient="records") for f in factors},
           "pairs": pairs.to_dict(orient="records"), "configurations": configurations.to_dict(orient="records")}
save_summary(SUMMARY_PATH, figures, verdicts, headline, chart=chart)
verdicts
