"""The paired observability comparison: same world, different information.

Arms of an experiment that differ only in what the agent is told (`INFORMATION_KEYS`: observability, notice
delay) run on the same seeds, so each seed gives one run per arm in the same world: same demand, same shock
schedule. Per experiment and model, every arm is compared with the reference arm (full observability) over
its pairs (same seed and epoch):

- PE: the mean within-pair difference of the run's mean combined PE (the headline's PE) and of its mean
  temporal PE (what a notice is about: when goods arrive), arm minus reference, t interval over the pairs where
  both runs have that PE. An agent that uses what it is told has the lower temporal PE where it is told; its
  combined PE can move either way (looking again costs steps of its routine).
- Crash by the end of the run: the discordant pairs (a crash in one arm only), McNemar's exact test.
- Time to crash: the pair-stratified Cox estimate. With two runs per stratum and the arm as the covariate, its
  exact conditional likelihood is binomial: a pair informs only when one run crashes while its twin is still
  running (later crash or censoring), and the hazard ratio is the odds that the arm's run was the first,
  k / (n - k), with the Clopper-Pearson interval and the exact binomial p. Pairs that crash at the same step
  carry no information about the order and are left out.

A reviewer's reading: the plain heuristic ignores notices, so its arms are identical run for run (no PE
difference, no discordant pair); that the statistic is 0 there is what makes a difference elsewhere the
information's doing rather than the world's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd  # inspect-evals-lint: ignore[external_dependencies] -- the analysis extra; no task imports it

from vendomini_eval.analysis.stats import MIN_EVENTS_COX
from vendomini_eval.experiments import INFORMATION_KEYS

REFERENCE = "full"
"""The reference arm's observability: every shock announced when it happens."""
PAIR_KEYS = ("seed", "epoch")
PE_DIFFERENCES = {"pe_diff": "pe_combined_mean", "pe_temporal_diff": "pe_temporal_mean"}
"""Each paired PE difference and the run-table column it is taken of."""
COLUMNS = ("experiment", "model", "reference", "arm", "pairs", "pe_pairs", "pe_diff", "pe_diff_lo", "pe_diff_hi",
           "pe_temporal_diff", "pe_temporal_diff_lo", "pe_temporal_diff_hi", "crashes_reference", "crashes_arm",
           "crash_reference_only", "crash_arm_only", "mcnemar_p",
           "informative_pairs", "arm_first", "hr_arm", "hr_arm_lo", "hr_arm_hi", "hr_p", "note")  # fmt: skip


def paired_observability(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment, model and non-reference arm (see the module docstring); empty when no
    experiment varies an information knob."""
    keys = [key for key in INFORMATION_KEYS if key in runs]
    rows: list[dict[str, Any]] = []
    for (experiment, model), part in runs.groupby(["experiment", "model"], sort=True) if keys and len(runs) else []:
        varying = [key for key in keys if part[key].nunique(dropna=False) > 1]
        if not varying:
            continue
        arms = part[varying].astype(str).apply(lambda row: ",".join(f"{k}={v}" for k, v in row.items()), axis=1)
        labels = sorted(arms.unique())
        full = arms[part["observability"] == REFERENCE] if "observability" in part else arms.iloc[:0]
        reference = min(full) if len(full) else labels[0]
        for arm in (label for label in labels if label != reference):
            row = {"experiment": experiment, "model": model, "reference": reference, "arm": arm}
            row.update(compare_pairs(part[arms == reference], part[arms == arm]))
            rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def compare_pairs(reference: pd.DataFrame, arm: pd.DataFrame) -> dict[str, Any]:
    """The paired statistics of `arm` against `reference`, over the runs of both on the same seed and epoch."""
    from scipy import stats as sp

    columns = [*PAIR_KEYS, "crashed", "time_to_crash", *PE_DIFFERENCES.values()]
    pairs = reference[columns].drop_duplicates(list(PAIR_KEYS)).merge(
        arm[columns].drop_duplicates(list(PAIR_KEYS)), on=list(PAIR_KEYS), suffixes=("_ref", "_arm"))  # fmt: skip
    n = len(pairs)
    crashed_ref = pairs["crashed_ref"].astype(bool).to_numpy()
    crashed_arm = pairs["crashed_arm"].astype(bool).to_numpy()
    out: dict[str, Any] = {"pairs": n, "crashes_reference": int(crashed_ref.sum()),
                           "crashes_arm": int(crashed_arm.sum()),
                           "crash_reference_only": int((crashed_ref & ~crashed_arm).sum()),
                           "crash_arm_only": int((crashed_arm & ~crashed_ref).sum())}  # fmt: skip
    notes = []

    for name, column in PE_DIFFERENCES.items():
        diff = (pairs[f"{column}_arm"].astype(float) - pairs[f"{column}_ref"].astype(float)).dropna()
        mean = float(diff.mean()) if len(diff) else math.nan
        half = float(sp.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff))) if len(
            diff) >= 2 else math.nan  # fmt: skip
        out.update({name: mean, f"{name}_lo": mean - half, f"{name}_hi": mean + half})
        if name == "pe_diff":
            out["pe_pairs"] = len(diff)
            if not len(diff):
                notes.append("no pair with a PE in both runs (no cards stated)")

    discordant = out["crash_reference_only"] + out["crash_arm_only"]
    out["mcnemar_p"] = float(sp.binomtest(out["crash_arm_only"], discordant).pvalue) if discordant else math.nan

    t_ref, t_arm = pairs["time_to_crash_ref"].to_numpy(float), pairs["time_to_crash_arm"].to_numpy(float)
    arm_first = int((crashed_arm & (t_arm < t_ref)).sum())
    informative = arm_first + int((crashed_ref & (t_ref < t_arm)).sum())
    out.update(informative_pairs=informative, arm_first=arm_first, hr_arm=math.nan, hr_arm_lo=math.nan,
               hr_arm_hi=math.nan, hr_p=math.nan)  # fmt: skip
    if informative < MIN_EVENTS_COX:
        notes.append(f"hazard ratio not estimated: {informative} informative pairs (< {MIN_EVENTS_COX}); a pair "
                     "informs only when one run crashes while its twin is still running")  # fmt: skip
    else:
        k = arm_first
        lo = float(sp.beta.ppf(0.025, k, informative - k + 1)) if k else 0.0
        hi = float(sp.beta.ppf(0.975, k + 1, informative - k)) if k < informative else 1.0
        out.update(hr_arm=_odds(k / informative), hr_arm_lo=_odds(lo), hr_arm_hi=_odds(hi),
                   hr_p=float(sp.binomtest(k, informative).pvalue))  # fmt: skip
        if k in (0, informative):
            notes.append("every informative pair crashed first in the same arm: the ratio is at its bound")
    if n == 0:
        notes = ["no pairs: the arms share no seed (runs from before arms shared seeds, or other replications)"]
    out["note"] = "; ".join(notes)
    return out


def _odds(p: float) -> float:
    return math.inf if p >= 1.0 else float(np.float64(p) / (1.0 - p))
