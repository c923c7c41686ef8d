"""Survival statistics on the runs and steps tables (lifelines): crash rates with Wilson intervals,
Kaplan-Meier by condition, log-rank tests per grid factor, Cox PH on the condition factors with a
proportional-hazards check, the dose-response in p_shock, and the time-varying Cox on the PE accumulators
(the direct test of the hypothesis that accumulated prediction error raises the crash hazard), alone or held
against the shock exposure so far (shocks make both PE and crashes; the negative control, docs/METHOD.md).

Every function returns a DataFrame with a `note` column: a statistic that the data cannot support (too few
runs or crashes, no variation, no convergence) carries the reason there and NaN in its numbers, never a
number that means nothing.

A run is a crash (`crashed`) at `time_to_crash` (the crash's onset step) or is right-censored at the steps it
ran; a business failure counts as censoring (the cause-specific convention of docs/METHOD.md).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd  # inspect-evals-lint: ignore[external_dependencies] -- the analysis extra; no task imports it

Z95 = 1.959963984540054
MIN_RUNS_KM = 3
"""Runs a Kaplan-Meier median needs to be reported."""
MIN_EVENTS_COX = 5
"""Crashes a Cox model needs (a rule of thumb would ask 10 per covariate; 5 at least for any number)."""
MIN_EVENTS_TEST = 2
"""Crashes a log-rank or proportional-hazards test needs."""
MAX_SE_PER_SD = 5.0
"""Largest standard error of a log hazard ratio per SD of its covariate that is reported. Beyond it the fit
found no finite maximum (separation: a level in which every run, or none, crashed), and the CI spans
dozens of orders of magnitude: a number that means nothing."""
MAX_COEF_PER_SD = 5.0
"""Largest |log hazard ratio| per SD of its covariate that is reported: a hazard ratio of e^5 (about 150) per
SD, e^10 (22,000) between the levels of an evenly split factor. Where the runs' covariate values overlap no
crash hazard is that steep; on separated data lifelines' Newton-Raphson stops at 10 to 13 per SD with a
standard error that can look ordinary (1 to 4 per SD), which MAX_SE_PER_SD alone lets through."""
TV_COVARIATES = ("pe_combined_cum", "pe_combined_ewma_fast", "pe_combined_ewma_medium", "pe_combined_ewma_slow",
                 "pe_surprises")  # fmt: skip
"""The PE accumulators of the time-varying Cox model, each fitted alone (they are strongly correlated)."""
MIN_RUNS_LEVEL = 2
"""Runs a factor level (or a model) needs: a diverging hazard ratio of a level with fewer is put down to too few
runs (one run either crashed or did not), not to separation."""
NON_FACTORS = frozenset({"max_steps", "continue_after_crash"})
"""Condition fields that vary across runs but are not causes of a crash hazard (the horizon)."""


class NotEstimable(ValueError):
    """The data cannot support a Cox model; the message says why in words (it becomes a row's note)."""


class Diverging(NotEstimable):
    """Newton-Raphson found no finite maximum: the log partial likelihood keeps rising as a coefficient grows
    (separation). `coef_per_sd` holds the coefficients per SD of their covariates where the fit stopped."""

    def __init__(self, coef_per_sd: float | np.ndarray) -> None:
        self.coef_per_sd = np.atleast_1d(np.asarray(coef_per_sd, dtype=float))
        super().__init__("the estimate diverges (the likelihood has no finite maximum)")


NO_INFORMATION = ("no variation in the covariate among the runs at risk at any crash (it differs only between "
                  "strata, or only where no run is at risk)")  # fmt: skip
NO_INFORMATION_MULTI = ("singular design among the runs at risk: the covariates are collinear within the risk "
                        "sets of the crashes")  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Proportions


def wilson_interval(crashes: int, runs: int, z: float = Z95) -> tuple[float, float, float]:
    """Crash proportion and its Wilson score interval (NaN with no runs)."""
    if runs <= 0:
        return (math.nan, math.nan, math.nan)
    p = crashes / runs
    denominator = 1 + z * z / runs
    centre = (p + z * z / (2 * runs)) / denominator
    half = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)) / denominator
    # at 0 and n crashes the bound is exactly 0 or 1; rounding would put it a hair inside, past the estimate
    lo = 0.0 if crashes == 0 else max(0.0, centre - half)
    hi = 1.0 if crashes == runs else min(1.0, centre + half)
    return (p, lo, hi)


def crash_rates(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Runs, crashes and the crash proportion with its 95% Wilson interval per group. A censored run never
    counts as a crash, whatever ended it."""
    rows = []
    for key, group in runs.groupby(list(by), sort=True, dropna=False):
        n, k = len(group), int(group["crashed"].astype(bool).sum())
        p, lo, hi = wilson_interval(k, n)
        rows.append({**dict(zip(by, _as_tuple(key), strict=True)), "runs": n, "crashes": k, "crash_rate": p,
                     "crash_rate_lo": lo, "crash_rate_hi": hi})  # fmt: skip
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# Kaplan-Meier and log-rank


def kaplan_meier(runs: pd.DataFrame, by: Sequence[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Kaplan-Meier per group: median time to crash with its 95% CI (lifelines, exponential Greenwood).

    Returns the table and the fitted estimators by group label (for plotting; a curve is fitted however few
    the runs). The median is NaN with a note when the group has fewer than MIN_RUNS_KM runs, or when fewer
    than half the runs crashed ('not reached': it lies beyond the last observed time); a CI bound is NaN when
    not identified."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    rows, fitted = [], {}
    for key, group in runs.groupby(list(by), sort=True, dropna=False):
        label = _label(by, key)
        n, k = len(group), int(group["crashed"].astype(bool).sum())
        row: dict[str, Any] = {**dict(zip(by, _as_tuple(key), strict=True)), "label": label, "runs": n,
                               "crashes": k, "median": math.nan, "median_lo": math.nan, "median_hi": math.nan,
                               "note": ""}  # fmt: skip
        kmf = KaplanMeierFitter(label=label)
        kmf.fit(group["time_to_crash"].astype(float), event_observed=group["crashed"].astype(bool))
        fitted[label] = kmf  # the curve is shown however few the runs; the median is not
        if n < MIN_RUNS_KM:
            row["note"] = f"too few runs ({n} < {MIN_RUNS_KM})"
            rows.append(row)
            continue
        median = float(kmf.median_survival_time_)
        ci = median_survival_times(kmf.confidence_interval_)
        lo, hi = float(ci.iloc[0, 0]), float(ci.iloc[0, 1])
        row["median"] = median if math.isfinite(median) else math.nan
        row["median_lo"] = lo if math.isfinite(lo) else math.nan
        row["median_hi"] = hi if math.isfinite(hi) else math.nan
        if not math.isfinite(median):
            row["note"] = "median not reached (fewer than half the runs crashed)"
        elif not math.isfinite(hi):
            row["note"] = "upper CI bound not reached"
        rows.append(row)
    return pd.DataFrame(rows), fitted


def grid_factors(runs: pd.DataFrame, condition_columns: Sequence[str]) -> list[str]:
    """The condition columns that take more than one value across the runs: the grid's factors."""
    return [c for c in condition_columns if c in runs and c not in NON_FACTORS and runs[c].nunique(dropna=False) > 1]


def logrank_by_factor(runs: pd.DataFrame, factors: Sequence[str]) -> pd.DataFrame:
    """Log-rank test across the levels of each factor (lifelines multivariate_logrank_test, pooled over the
    other factors)."""
    from lifelines.statistics import multivariate_logrank_test

    rows = []
    for factor in factors:
        levels = runs[factor].nunique(dropna=False)
        k = int(runs["crashed"].astype(bool).sum())
        row = {"factor": factor, "levels": levels, "runs": len(runs), "crashes": k, "statistic": math.nan,
               "df": math.nan, "p": math.nan, "note": ""}  # fmt: skip
        if levels < 2:
            row["note"] = "one level only"
        elif k < MIN_EVENTS_TEST:
            row["note"] = f"too few crashes ({k} < {MIN_EVENTS_TEST})"
        else:
            result = multivariate_logrank_test(runs["time_to_crash"].astype(float), runs[factor].astype(str),
                                               runs["crashed"].astype(bool))  # fmt: skip
            row.update(statistic=float(result.test_statistic), df=levels - 1, p=float(result.p_value))
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# Cox PH on the condition factors


def cox_conditions(runs: pd.DataFrame, factors: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cox PH of time to crash on the condition factors (each as categories, first level the reference) and
    on the model when there are several. Returns the hazard ratios with 95% CIs and the proportional-hazards
    test (Schoenfeld residuals against rank of time, lifelines proportional_hazard_test) per covariate."""
    terms = list(factors) + (["model"] if "model" in runs and runs["model"].nunique() > 1 else [])
    k = int(runs["crashed"].astype(bool).sum())
    empty_ph = pd.DataFrame(columns=["covariate", "statistic", "p", "note"])
    if not terms:
        return _note_frame("no factor varies across the runs"), empty_ph
    if shortage := _crash_shortage(k):
        return _note_frame(shortage), empty_ph
    design = pd.get_dummies(runs[terms].astype(str), drop_first=True, prefix_sep="=", dtype=float)
    design = design.loc[:, design.std() > 0]
    if design.empty:
        return _note_frame("no covariate varies"), empty_ph
    if problem := _design_problem(design, len(runs)):
        return _note_frame(problem), empty_ph
    design["time_to_crash"] = runs["time_to_crash"].astype(float).to_numpy()
    design["crashed"] = runs["crashed"].astype(bool).to_numpy()
    fit = _fit_cox(design)
    if isinstance(fit, str):
        return _note_frame(fit), empty_ph
    table = _hazard_ratios(fit, k, len(runs), design)
    if (table["note"] != "").any():
        ph = pd.DataFrame([{"covariate": "", "statistic": math.nan, "p": math.nan,
                            "note": "not run: the Cox model is not estimable"}])  # fmt: skip
    else:
        ph = _ph_test(fit, design, k)
    return table, ph


def dose_response(runs: pd.DataFrame, dose: str = "p_shock") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Crash rate per dose level (Wilson), and the trend test: Cox PH on the dose as a number (adjusted for
    the model when there are several), whose Wald test of the slope is the test for a trend in the hazard.
    The hazard ratio is per unit of dose (for p_shock: from 0 to 1)."""
    if dose not in runs or runs[dose].nunique() < 2:
        return crash_rates(runs, [dose]) if dose in runs else pd.DataFrame(), _note_frame(f"{dose} has one level")
    rates = crash_rates(runs, [dose])
    k = int(runs["crashed"].astype(bool).sum())
    if shortage := _crash_shortage(k):
        return rates, _note_frame(shortage)
    design = pd.DataFrame({dose: runs[dose].astype(float)})
    if "model" in runs and runs["model"].nunique() > 1:
        design = design.join(pd.get_dummies(runs[["model"]], drop_first=True, prefix_sep="=", dtype=float))
    if problem := _design_problem(design, len(runs)):
        return rates, _note_frame(problem)
    design["time_to_crash"] = runs["time_to_crash"].astype(float)
    design["crashed"] = runs["crashed"].astype(bool)
    fit = _fit_cox(design)
    if isinstance(fit, str):
        return rates, _note_frame(fit)
    table = _hazard_ratios(fit, k, len(runs), design)
    return rates, table[table["covariate"] == dose].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------
# Time-varying Cox on the PE accumulators


def pe_intervals(runs: pd.DataFrame, steps: pd.DataFrame, covariates: Sequence[str] = TV_COVARIATES,
                 block: int = 1) -> pd.DataFrame:  # fmt: skip
    """The counting-process (start, stop] table of each run, for CoxTimeVaryingFitter.

    A run is at risk from step 0 to its `time_to_crash` (the crash onset, or the last step of a censored
    run), cut into blocks of `block` steps. A block's covariates are their values at the end of the step that
    precedes it: known before the block's risk, so the PE a crash itself produces cannot explain it. The event
    is on the block that ends at the onset of a crashed run. Sums and counts are 0 before their first value; a
    level (an EWMA, a step mean) stays NaN until the run's first prediction of its series (missing, never 0):
    the Cox fits leave such blocks out of the risk set."""
    if block < 1:
        raise ValueError(f"block must be at least 1, not {block}")
    missing = [c for c in covariates if c not in steps]
    if missing:
        raise ValueError(f"steps table lacks {', '.join(missing)}")
    ends = runs[["run_id", "time_to_crash", "crashed"]]
    ends = ends[ends["run_id"].isin(set(steps["run_id"])) & (ends["time_to_crash"].astype(int) >= 1)]
    if ends.empty:
        return pd.DataFrame(columns=["run_id", "start", "stop", "event", *covariates])
    end = ends["time_to_crash"].astype(int).to_numpy()
    blocks = -(-end // block)  # ceil(end / block) per run
    run = np.repeat(np.arange(len(ends)), blocks)
    starts = (np.arange(blocks.sum()) - np.repeat(np.cumsum(blocks) - blocks, blocks)) * block
    stops = np.minimum(starts + block, end[run])
    # the table's columns, made into a frame once at the end: pandas would copy them as they were added
    table = {"run_id": ends["run_id"].to_numpy()[run], "start": starts, "stop": stops,
             "event": (stops == end[run]) & ends["crashed"].astype(bool).to_numpy()[run]}  # fmt: skip
    # value at the end of step `start`: the last trace row at or before it (0 before step 1), forward-filled
    # over steps missing from the trace and over missing values. The trace rows sorted by run (as integer
    # codes) and step; each interval finds its row by one binary search on (run, step) keys.
    codes, run_ids = pd.factorize(steps["run_id"])
    step = steps["step"].to_numpy(np.int64)
    order = np.lexsort((step, codes))
    code, step = codes[order], step[order]
    run_first = np.r_[0, np.flatnonzero(code[1:] != code[:-1]) + 1]
    run_first = np.repeat(run_first, np.diff(np.r_[run_first, len(order)]))  # each sorted row's run's first row
    low = min(int(step.min()), int(starts.min()))
    width = max(int(step.max()), int(starts.max())) - low + 1
    interval_code = pd.Index(run_ids).get_indexer(ends["run_id"])[run]
    row = np.searchsorted(code * width + (step - low), interval_code * width + (starts - low), side="right") - 1
    row = np.maximum(row, 0)
    found = (code[row] == interval_code) & (step[row] <= starts)
    positions = np.arange(len(order))
    for name in covariates:
        values = steps[name].to_numpy(float)[order]
        last = np.maximum.accumulate(np.where(np.isnan(values), -1, positions))  # forward fill within the run
        known = found & (last[row] >= run_first[row])
        column = np.where(known, values[np.where(known, last[row], 0)], np.nan)
        table[name] = column if _is_level(name) else np.where(np.isnan(column), 0.0, column)
    return pd.DataFrame(table, copy=False)


def _is_level(column: str) -> bool:
    """A PE level (EWMA or step mean: missing before the first prediction) rather than a sum or count."""
    return column.startswith("pe_") and not column.endswith(("_cum", "_n", "pe_surprises"))


def time_varying_cox(
    intervals: pd.DataFrame, covariates: Sequence[str] = TV_COVARIATES, strata: str | None = None
) -> pd.DataFrame:
    """Hazard ratio per unit of each PE covariate, each in its own time-varying Cox model on the (start, stop]
    table (`efron_time_varying_cox`), with its 95% CI and Wald p.

    With `strata` (a column of `intervals`, e.g. the condition), each stratum has its own baseline hazard, so
    the PE effect is estimated within conditions: a condition that both raises PE and crashes more for another
    reason cannot produce it."""
    rows = []
    all_intervals = intervals
    # runs counted as codes: millions of ids as text are slow to count
    run_codes = pd.factorize(intervals["run_id"])[0] if "run_id" in intervals else np.zeros(len(intervals), int)
    for covariate in covariates:
        keep = all_intervals[covariate].notna().to_numpy() if covariate in all_intervals else slice(None)
        used = [c for c in dict.fromkeys(["start", "stop", "event", covariate, strata]) if c in all_intervals]
        intervals = all_intervals[used][keep]  # only the columns a fit reads (runs: their codes): a copy costs seconds
        codes = run_codes[keep]
        n_runs = np.count_nonzero(np.bincount(codes[codes >= 0])) if len(intervals) else 0
        k = int(intervals["event"].astype(bool).sum()) if len(intervals) else 0
        row = {**_empty_hr_row(covariate, k, n_runs), "sd": math.nan, "hr_per_sd": math.nan,
               "hr_per_sd_lo": math.nan, "hr_per_sd_hi": math.nan, "strata": strata or ""}  # fmt: skip
        if shortage := _crash_shortage(k):
            row["note"] = shortage
        elif intervals[covariate].std() == 0 or not np.isfinite(intervals[covariate].std()):
            row["note"] = "no variation in the covariate"
        else:
            start, stop = intervals["start"].to_numpy(float), intervals["stop"].to_numpy(float)
            event, x = intervals["event"].to_numpy(bool), intervals[covariate].to_numpy(float)
            groups = intervals[strata].to_numpy() if strata else None
            explain = partial(_separation_note, covariate, start, stop, event, x, groups)  # of a diverging fit
            try:
                with np.errstate(all="ignore"):  # a diverging fit overflows on its way out: reported below
                    fit = efron_time_varying_cox(start, stop, event, x, groups)
                sd = float(intervals[covariate].std())
                row.update(_summary_row(fit, sd, explain), sd=sd)
                if row["note"] == "":  # per SD of the covariate: comparable across accumulators of other scales
                    row.update(hr_per_sd=row["hr"] ** sd, hr_per_sd_lo=row["hr_lo"] ** sd,
                               hr_per_sd_hi=row["hr_hi"] ** sd)  # fmt: skip
            except Diverging as error:
                row["note"] = explain(_reached(error.coef_per_sd[0]))
            except NotEstimable as error:
                row["note"] = f"not estimable: {error}"
            except Exception as error:  # not foreseen: its message, the last resort
                row["note"] = f"not estimable: {_message(error)}"
        rows.append(row)
    return pd.DataFrame(rows)


def efron_time_varying_cox(start: np.ndarray, stop: np.ndarray, event: np.ndarray, x: np.ndarray,
                           strata: np.ndarray | None = None, max_iterations: int = 50, *, centre: float | None = None,
                           scale: float | None = None) -> dict[str, float]:  # fmt: skip
    """Cox model of one time-varying covariate on (start, stop] intervals: the partial likelihood with Efron's
    ties, maximised by Newton-Raphson; with `strata`, one baseline hazard per stratum.

    The estimator of lifelines' CoxTimeVaryingFitter (a test checks they agree), which masks every interval
    at each event time: O(intervals x event times) a step, about a minute per model at 1,000 runs x 500 steps.
    Here the risk-set sums at the event times are differences of cumulative sums over the intervals sorted by
    start and by stop: O(intervals log intervals). Returns coef, se(coef), exp(coef) with its 95% bounds, and
    the Wald p. Raises NotEstimable (a ValueError) when there is no maximum: Diverging when the likelihood
    rises without bound (separation), NotEstimable with the reason in words otherwise (no crash, no
    information, no convergence). `centre` and `scale` (the mean and SD of `x`) may be given when known."""
    centre = float(np.mean(x)) if centre is None else centre
    scale = float(np.std(x) if scale is None else scale) or 1.0
    z = (x - centre) / scale  # standardised: exp(beta * z) stays in range
    parts = [_risk_sets(*arrays) for arrays in _by_stratum(strata, start, stop, event, z)]
    parts = [part for part in parts if part is not None]
    if not parts:
        raise NotEstimable("no crashes")

    def at(beta: float) -> tuple[float, float, float]:
        totals = [_efron_terms(part, beta) for part in parts]
        return tuple(float(sum(values)) for values in zip(*totals, strict=True))  # type: ignore[return-value]

    beta = 0.0
    loglik, gradient, hessian = at(beta)
    for _ in range(max_iterations):
        if not (hessian < 0 and math.isfinite(hessian)):
            if beta == 0.0:
                raise NotEstimable(NO_INFORMATION)
            raise Diverging(beta)  # the information vanished on the way out: weights at the edge of range
        step = -gradient / hessian
        candidate = at(beta + step)
        while candidate[0] < loglik - 1e-12 and abs(step) > 1e-12:  # halve a step that lowers the likelihood
            step /= 2
            candidate = at(beta + step)
        beta += step
        loglik, gradient, hessian = candidate
        if abs(step) < 1e-10:
            break
    else:
        if abs(beta) > MAX_COEF_PER_SD:  # still climbing, far out: separation rather than a slow maximum
            raise Diverging(beta)
        raise NotEstimable(f"no convergence in {max_iterations} Newton-Raphson steps")
    if abs(beta) > 30 or not hessian < 0:  # the likelihood still climbs at the edge: separation
        raise Diverging(beta)
    coef, se = beta / scale, 1 / math.sqrt(-hessian) / scale
    return {"coef": coef, "se(coef)": se, "exp(coef)": math.exp(coef),
            "exp(coef) lower 95%": math.exp(coef - Z95 * se), "exp(coef) upper 95%": math.exp(coef + Z95 * se),
            "p": math.erfc(abs(coef / se) / math.sqrt(2))}  # fmt: skip


def _risk_sets(start: np.ndarray, stop: np.ndarray, event: np.ndarray, z: np.ndarray) -> dict[str, Any] | None:
    """What the Efron terms need of one stratum, for any beta: the intervals sorted by start and by stop, where
    each event time falls in both orders, and the tied events at each event time."""
    if not event.any():
        return None
    times = np.unique(stop[event])
    # Only an interval at risk at an event time (start < t <= stop) enters the sums; any other is added to and
    # taken from the same cumulative sums. At one block a step, most intervals are of that kind.
    at_risk = np.searchsorted(times, stop, side="right") > np.searchsorted(times, start, side="right")
    start, stop, event, z = start[at_risk], stop[at_risk], event[at_risk], z[at_risk]
    by_start, by_stop = np.argsort(start, kind="stable"), np.argsort(stop, kind="stable")
    tie = np.searchsorted(times, stop[event])  # the event time of each event
    ties = np.bincount(tie, minlength=len(times))
    repeat = np.repeat(np.arange(len(times)), ties)
    return {
        "z": z, "z_event": z[event], "by_start": by_start, "by_stop": by_stop, "tie": tie, "k": len(times),
        "entered": np.searchsorted(start[by_start], times, side="left"),  # intervals with start < t
        "left": np.searchsorted(stop[by_stop], times, side="left"),  # intervals with stop < t: out of the risk set
        "repeat": repeat,
        "fraction": (np.arange(len(repeat)) - np.repeat(np.cumsum(ties) - ties, ties)) / ties[repeat],
    }  # fmt: skip


def _by_stratum(strata: np.ndarray | None, *arrays: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """`arrays` split by stratum (None: one stratum): strata in order of first appearance, rows in their order,
    as one boolean mask per stratum would split them, in one sort rather than a pass over all rows per stratum."""
    if strata is None:
        return [arrays]
    codes, levels = pd.factorize(strata, use_na_sentinel=False)
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes, minlength=len(levels)))[:-1]
    return [tuple(a[rows] for a in arrays) for rows in np.split(order, ends)]


def _efron_terms(part: dict[str, Any], beta: float) -> tuple[float, float, float]:
    """Log partial likelihood, its first and second derivative in beta, for one stratum."""
    z, z_event = part["z"], part["z_event"]
    w = np.exp(beta * z)
    risk, tied = [], []
    for values, event_values in ((w, np.exp(beta * z_event)), (w * z, np.exp(beta * z_event) * z_event),
                                 (w * z * z, np.exp(beta * z_event) * z_event * z_event)):  # fmt: skip
        entered = np.concatenate([[0.0], np.cumsum(values[part["by_start"]])])[part["entered"]]
        left = np.concatenate([[0.0], np.cumsum(values[part["by_stop"]])])[part["left"]]
        risk.append((entered - left)[part["repeat"]])
        tied.append(np.bincount(part["tie"], weights=event_values, minlength=part["k"])[part["repeat"]])
    f = part["fraction"]
    phi0, phi1, phi2 = (r - f * t for r, t in zip(risk, tied, strict=True))
    loglik = beta * z_event.sum() - np.log(phi0).sum()
    gradient = z_event.sum() - (phi1 / phi0).sum()
    hessian = -(phi2 / phi0 - (phi1 / phi0) ** 2).sum()
    return float(loglik), float(gradient), float(hessian)


# ---------------------------------------------------------------------------------------------------------
# Time-varying Cox adjusted for shock exposure (and the state of the business)

SHOCK_EXPOSURE = ("shocks_cum", "blocked_cum")
"""The default adjustment of `adjusted_time_varying_cox` (columns of `shock_exposure`): effective shocks so far
and steps so far on which the world left no productive action."""
NO_SHOCK = frozenset({"", "none", "void"})
"""Values of the trace's `shock` column that are not an effective shock."""


def shock_exposure(steps: pd.DataFrame) -> pd.DataFrame:
    """Per-step shock-exposure covariates of each run, from the trace columns `shock` (the variant of the
    effective shock that fired after the step's action, empty when none did or when it was void) and
    `actionable` (a productive action was available in the state the agent acted in).

    `shocks_cum`: effective shocks up to and including the step; `shocks_<variant>_cum`: the same per shock
    variant (delay, tool_down, price_rise, ...). A void shock (its target did not exist, so it changed
    nothing) is not counted: an empty value, `void`, a value ending in `:void`, or `shock_void` true.
    `blocked_cum`: steps up to and including this one on which no productive action was available; NaN when
    the trace has no `actionable` column. Two more measure what the world let the agent do so far (from `tool`,
    `valid` and `error_kind`; NaN without them): `refused_cum`, calls the world refused (rejected for a reason
    other than the call's own fault, `crash.AGENT_ERRORS`: a tool down, an offer dropped, a minimum order, no
    money, a full warehouse, ...), and `progress_cum`, calls that moved the business (a valid order, ship,
    expedite or cancel). Returns `run_id`, `step` and these columns, rows in the order of `steps`. Lagged by
    `pe_intervals` like the PE, the exposure of an interval is what happened before it."""
    out = steps[["run_id", "step"]].copy()
    # runs as integer codes (sorting and grouping 5 million run ids as text took most of the time)
    run_codes = pd.factorize(steps["run_id"].astype(str))[0]
    order = np.lexsort((steps["step"].to_numpy(), run_codes))
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    run = run_codes[order]
    firsts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]]) if len(run) else np.zeros(0, int)
    lengths = np.diff(np.r_[firsts, len(run)])
    shock = steps["shock"] if "shock" in steps else pd.Series([None] * len(steps), index=steps.index)
    kinds = _text_map(shock, lambda text: text.fillna("").astype(str).str.strip())
    void = _text_map(kinds, lambda text: text.str.lower().isin(NO_SHOCK) | text.str.endswith(":void")).astype(bool)
    if "shock_void" in steps:
        void |= steps["shock_void"].fillna(False).astype(bool)
    # each kind as an integer code: a comparison of millions of texts takes a third of a second, one per kind
    kind_codes, kind_names = pd.factorize(kinds.where(~void, "").to_numpy())

    def cumulative(flags: np.ndarray) -> np.ndarray:
        # the running count within each run: counts are whole numbers, so the differences of one cumulative
        # sum are the per-run cumulative sums exactly
        values = flags[order].astype(float)
        total = np.cumsum(values)
        return (total - np.repeat(total[firsts] - values[firsts], lengths))[inverse]

    out["shocks_cum"] = cumulative((kind_names != "")[kind_codes])
    code_of = {kind: code for code, kind in enumerate(kind_names)}
    for kind in sorted(k for k in code_of if k):
        out[f"shocks_{kind}_cum"] = cumulative(kind_codes == code_of[kind])
    if "actionable" in steps:
        blocked = ~steps["actionable"].astype("boolean").fillna(True).to_numpy(bool)
        out["blocked_cum"] = cumulative(blocked)
    else:
        out["blocked_cum"] = math.nan
    if {"tool", "valid", "error_kind"} <= set(steps):
        from vendomini_eval.actionability import PROGRESS_TOOLS
        from vendomini_eval.crash import AGENT_ERRORS

        valid = steps["valid"].astype("boolean").fillna(False).to_numpy(bool)
        refused = _text_map(
            steps["error_kind"],
            lambda text: text.fillna("").astype(str).pipe(lambda e: e.ne("") & ~e.isin(AGENT_ERRORS)),
        )
        out["refused_cum"] = cumulative(~valid & refused.to_numpy(bool))
        out["progress_cum"] = cumulative(valid & steps["tool"].isin(PROGRESS_TOOLS).to_numpy())
    else:
        out["refused_cum"] = out["progress_cum"] = math.nan
    return out


def _text_map(values: pd.Series, function: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """`function` (elementwise string operations) applied to `values` through their distinct values: the same
    result, without a pass of Python string methods over millions of rows."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    mapped = function(pd.Series(uniques, dtype=object)).to_numpy()
    return pd.Series(mapped[codes], index=values.index)


BUSINESS_STATE = ("cash", "goods_value")
"""Columns of `business_state`: the state of the business after each step."""


def business_state(steps: pd.DataFrame) -> pd.DataFrame:
    """Per-step state of the business, from the trace columns `cash_cents` and `net_worth_cents`: `cash` and
    `goods_value` (net worth less cash: stock at unit cost plus goods paid for and on their way), in dollars;
    NaN where the trace lacks a column. Returns `run_id`, `step` and these columns, rows in the order of
    `steps`. The world's shocks shape this state and the state shapes the hazard (a crash judged on actionable
    steps needs goods to ship; a budget denial needs the money gone), so it is a confounder of the PE effect
    for an agent that cannot respond to PE, and a mediator as well for one that can."""
    out = steps[["run_id", "step"]].copy()
    cash = steps["cash_cents"].astype(float) / 100 if "cash_cents" in steps else math.nan
    out["cash"] = cash
    out["goods_value"] = steps["net_worth_cents"].astype(float) / 100 - cash if "net_worth_cents" in steps else math.nan
    return out


def adjusted_time_varying_cox(intervals: pd.DataFrame, covariate: str, adjust: Sequence[str] = SHOCK_EXPOSURE,
                              strata: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Hazard ratio per SD of one PE covariate in a time-varying Cox model that also holds the `adjust`
    covariates (e.g. `shock_exposure`'s, `business_state`'s), on the (start, stop] table of `pe_intervals`
    (which must carry all of them, lagged as the PE is): the PE effect among runs with the same exposure so
    far. Efron's ties; with `strata`, one baseline hazard per stratum.

    One row per term, the PE covariate first: runs, crashes, coef, hr (per unit) with its 95% CI and Wald p,
    sd and hr_per_sd with its CI, and `adjusted_for` (the adjustment terms that entered the model, joined by
    commas). An adjustment column that is absent, all NaN or constant is left out and named in the note of the
    PE row; a model that cannot be fitted has NaN numbers and the reason in its note."""
    if covariate in intervals:  # blocks before the run's first prediction have no PE level: not at risk here
        intervals = intervals.dropna(subset=[covariate])
    n_runs = intervals["run_id"].nunique() if len(intervals) else 0
    k = int(intervals["event"].astype(bool).sum()) if len(intervals) else 0
    usable, dropped = [], []
    for name in adjust:
        values = intervals[name].astype(float) if name in intervals else None
        if name == covariate or values is None or not values.notna().any() or not values.std() > 0:
            dropped.append(name)
        else:
            usable.append(name)
    terms = [covariate, *usable]
    rows = [{**_empty_hr_row(term, k, n_runs), "sd": math.nan, "hr_per_sd": math.nan, "hr_per_sd_lo": math.nan,
             "hr_per_sd_hi": math.nan, "adjusted_for": ",".join(usable), "strata": strata or ""}
            for term in terms]  # fmt: skip
    notes = [f"not used (missing or constant): {', '.join(dropped)}"] if dropped else []

    def finish(note: str = "") -> pd.DataFrame:
        for row in rows:
            row["note"] = "; ".join(filter(None, [note or row["note"], *(notes if row is rows[0] else [])]))
        return pd.DataFrame(rows)

    if covariate not in intervals:
        return finish(f"no column {covariate}")
    if shortage := _crash_shortage(k):
        return finish(shortage)
    design = intervals[terms].astype(float).fillna(0.0)
    x = design.to_numpy()
    if not np.isfinite(x[:, 0]).all() or not x[:, 0].std() > 0:
        return finish("no variation in the covariate")
    if problem := _design_problem(design, n_runs):
        return finish(problem)
    start, stop = intervals["start"].to_numpy(float), intervals["stop"].to_numpy(float)
    event, groups = intervals["event"].to_numpy(bool), intervals[strata].to_numpy() if strata else None
    try:
        with np.errstate(all="ignore"):  # a diverging fit overflows on its way out: reported below
            fit = efron_time_varying_cox_multi(start, stop, event, x, groups)
    except Diverging as error:  # named by the term that ran furthest out
        i = int(np.nanargmax(np.abs(error.coef_per_sd))) if np.isfinite(error.coef_per_sd).any() else 0
        return finish(_separation_note(terms[i], start, stop, event, x[:, i], groups, _reached(error.coef_per_sd[i])))
    except NotEstimable as error:
        return finish(f"not estimable: {error}")
    except (ValueError, np.linalg.LinAlgError) as error:  # not foreseen: its message, the last resort
        return finish(f"not estimable: {_message(error)}")
    for i, row in enumerate(rows):
        sd = float(x[:, i].std(ddof=1))
        values = {key: fit[key][i] for key in ("coef", "se(coef)", "exp(coef)", "exp(coef) lower 95%",
                                                "exp(coef) upper 95%", "p")}  # fmt: skip
        explain = partial(_separation_note, terms[i], start, stop, event, x[:, i], groups)  # of a diverging term
        row.update(_summary_row(pd.Series(values), sd, explain), sd=sd)
        if row["note"] == "":
            row.update(hr_per_sd=row["hr"] ** sd, hr_per_sd_lo=row["hr_lo"] ** sd, hr_per_sd_hi=row["hr_hi"] ** sd)
    return finish()


def efron_time_varying_cox_multi(start: np.ndarray, stop: np.ndarray, event: np.ndarray, x: np.ndarray,
                                 strata: np.ndarray | None = None, max_iterations: int = 50, *,
                                 centre: np.ndarray | None = None, scale: np.ndarray | None = None
                                 ) -> dict[str, np.ndarray]:  # fmt: skip
    """Cox model of several time-varying covariates (`x`: one column each) on (start, stop] intervals: the
    estimator of `efron_time_varying_cox` (Efron's ties, risk sets from cumulative sums, Newton-Raphson with
    step halving) for a vector of coefficients. Returns arrays, one entry per column: coef, se(coef),
    exp(coef) with its 95% bounds, and the Wald p. Raises NotEstimable (a ValueError) when there is no
    maximum: Diverging when the likelihood rises without bound (separation), NotEstimable with the reason in
    words otherwise (no crash, no information, collinear covariates, no convergence). `centre` and `scale` (the
    means and SDs of the columns) may be given when known."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    centre = x.mean(axis=0) if centre is None else centre
    scale = np.array(x.std(axis=0) if scale is None else scale, dtype=float)
    scale[scale == 0] = 1.0
    z = (x - centre) / scale
    parts = [_risk_sets(*arrays) for arrays in _by_stratum(strata, start, stop, event, z)]
    parts = [part for part in parts if part is not None]
    if not parts:
        raise NotEstimable("no crashes")
    dim = z.shape[1]

    def at(beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        loglik, gradient, hessian = 0.0, np.zeros(dim), np.zeros((dim, dim))
        for part in parts:
            terms = _efron_terms_multi(part, beta)
            loglik, gradient, hessian = loglik + terms[0], gradient + terms[1], hessian + terms[2]
        return loglik, gradient, hessian

    beta = np.zeros(dim)
    loglik, gradient, hessian = at(beta)
    for _ in range(max_iterations):
        if not np.isfinite(hessian).all():
            if not beta.any():
                raise NotEstimable("a covariate has values that are not finite")
            raise Diverging(beta)  # weights beyond range make it infinite: the fit ran off to the edge
        try:
            step = np.linalg.solve(hessian, -gradient)
        except np.linalg.LinAlgError:
            if not beta.any():
                raise NotEstimable(NO_INFORMATION_MULTI) from None
            raise Diverging(beta) from None
        candidate = at(beta + step)
        while candidate[0] < loglik - 1e-12 and np.abs(step).max() > 1e-12:  # halve a step that lowers it
            step = step / 2
            candidate = at(beta + step)
        beta = beta + step
        loglik, gradient, hessian = candidate
        if np.abs(step).max() < 1e-10:
            break
    else:
        if np.abs(beta).max() > MAX_COEF_PER_SD:  # still climbing, far out: separation rather than a slow maximum
            raise Diverging(beta)
        raise NotEstimable(f"no convergence in {max_iterations} Newton-Raphson steps")
    eigenvalues = np.linalg.eigvalsh(hessian)
    if np.abs(beta).max() > 30:  # still climbing at the edge: separation
        raise Diverging(beta)
    if not (eigenvalues < 0).all():  # a direction without information at the maximum
        raise NotEstimable(NO_INFORMATION_MULTI)
    covariance = np.linalg.inv(-hessian)
    coef, se = beta / scale, np.sqrt(np.diag(covariance)) / scale
    p = np.array([math.erfc(abs(c / s) / math.sqrt(2)) for c, s in zip(coef, se, strict=True)])
    return {"coef": coef, "se(coef)": se, "exp(coef)": np.exp(coef), "exp(coef) lower 95%": np.exp(coef - Z95 * se),
            "exp(coef) upper 95%": np.exp(coef + Z95 * se), "p": p}  # fmt: skip


def _efron_terms_multi(part: dict[str, Any], beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log partial likelihood, gradient and Hessian in beta (a vector), for one stratum."""
    z, z_event = part["z"], part["z_event"]
    dim = z.shape[1]
    w, w_event = np.exp(z @ beta), np.exp(z_event @ beta)
    outer = (z[:, :, None] * z[:, None, :]).reshape(len(z), dim * dim)
    outer_event = (z_event[:, :, None] * z_event[:, None, :]).reshape(len(z_event), dim * dim)
    risk, tied = [], []
    for values, event_values in ((w[:, None], w_event[:, None]), (w[:, None] * z, w_event[:, None] * z_event),
                                 (w[:, None] * outer, w_event[:, None] * outer_event)):  # fmt: skip
        width = values.shape[1]
        zeros = np.zeros((1, width))
        entered = np.concatenate([zeros, np.cumsum(values[part["by_start"]], axis=0)])[part["entered"]]
        left = np.concatenate([zeros, np.cumsum(values[part["by_stop"]], axis=0)])[part["left"]]
        risk.append((entered - left)[part["repeat"]])
        sums = np.stack([np.bincount(part["tie"], weights=event_values[:, j], minlength=part["k"])
                         for j in range(width)], axis=1)  # fmt: skip
        tied.append(sums[part["repeat"]])
    f = part["fraction"][:, None]
    phi0, phi1, phi2 = (r - f * t for r, t in zip(risk, tied, strict=True))
    phi0 = phi0[:, 0]
    mean = phi1 / phi0[:, None]
    loglik = float(z_event.sum(axis=0) @ beta - np.log(phi0).sum())
    gradient = z_event.sum(axis=0) - mean.sum(axis=0)
    second = (phi2 / phi0[:, None]).sum(axis=0).reshape(dim, dim)
    hessian = -(second - mean.T @ mean)
    return loglik, gradient, hessian


# ---------------------------------------------------------------------------------------------------------
# PE trajectories aligned to the crash onset


def aligned_trajectories(
    runs: pd.DataFrame, steps: pd.DataFrame, covariate: str = "pe_combined_ewma_fast", window: int = 50
) -> pd.DataFrame:
    """Mean (and standard error) of a PE covariate over the `window` steps up to the crash onset of crashed
    runs, against censored runs (controls) aligned the same way at their last step. `relative_step` 0 is the
    onset (or the last step); -k is k steps before."""
    columns = ["runs_kind", "relative_step", "runs", "mean", "se"]
    if covariate not in steps or runs.empty:
        return pd.DataFrame(columns=columns)
    ends = runs[["run_id", "time_to_crash", "crashed"]]
    joined = steps[["run_id", "step", covariate]].merge(ends, on="run_id")
    joined["relative_step"] = joined["step"] - joined["time_to_crash"]
    joined = joined[(joined["relative_step"] <= 0) & (joined["relative_step"] > -window)]
    joined["runs_kind"] = np.where(joined["crashed"].astype(bool), "crashed", "censored")
    table = joined.groupby(["runs_kind", "relative_step"])[covariate].agg(["count", "mean", "std"]).reset_index()
    table["se"] = table["std"] / np.sqrt(table["count"])
    return table.rename(columns={"count": "runs"})[columns]


# ---------------------------------------------------------------------------------------------------------
# Crash-type mix


def crash_type_mix(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Runs per crash type (with `none` for runs that did not crash) in each group: counts and shares."""
    counts = runs.groupby([*by, "crash_type"], dropna=False).size().rename("runs").reset_index()
    totals = counts.groupby(list(by), dropna=False)["runs"].transform("sum")
    counts["share"] = counts["runs"] / totals
    return counts


# ---------------------------------------------------------------------------------------------------------
# Why a Cox model is not estimable, in words


def _crash_shortage(crashes: int) -> str:
    """The note of a model with too few crashes to fit (empty when there are enough)."""
    if crashes == 0:
        return f"no crashes (a Cox model needs at least {MIN_EVENTS_COX})"
    return f"too few crashes ({crashes} < {MIN_EVENTS_COX})" if crashes < MIN_EVENTS_COX else ""


def _design_problem(design: pd.DataFrame, runs: int) -> str:
    """Why a Cox model of these covariate columns cannot be fitted, found before fitting it (empty when
    nothing is found): too few runs for its terms, a column that does not vary, or a singular design (a column
    that is a linear combination of earlier ones; centred, since the baseline hazard absorbs any constant). In
    each case the model has no unique maximum: the fit would fail or return arbitrary numbers."""
    terms = len(design.columns)
    if runs <= terms:
        return f"too few runs ({runs} for {terms} terms: a Cox model needs more runs than terms)"
    spread = design.std()
    constant = [str(name) for name in design.columns if not spread[name] > 0]
    if constant:
        return f"no variation in {', '.join(constant)}"
    z = ((design - design.mean()) / spread).to_numpy(float)
    kept: list[int] = []
    for j in range(terms):
        if np.linalg.matrix_rank(z[:, [*kept, j]]) <= len(kept):
            weights = np.linalg.lstsq(z[:, kept], z[:, j], rcond=None)[0]
            partners = [str(design.columns[i]) for i, w in zip(kept, weights, strict=True) if abs(w) > 1e-6]
            return (f"singular design: {design.columns[j]} is collinear with {', '.join(partners)} (a linear "
                    "combination of them in these runs: their effects cannot be told apart)")  # fmt: skip
        kept.append(j)
    return ""


def _divergence(coef_per_sd: float, se_per_sd: float, bounds: tuple[float, float]) -> str:
    """Why an estimate is taken as diverging, so not reported (empty when it is): a coefficient, standard
    error or CI bound that is not finite, SE x SD above MAX_SE_PER_SD, or |coef| x SD above MAX_COEF_PER_SD."""
    if not all(map(math.isfinite, (coef_per_sd, se_per_sd, *bounds))):
        return "its coefficient, standard error or CI is not finite"
    if se_per_sd > MAX_SE_PER_SD:
        return f"SE x SD {se_per_sd:.3g} > {MAX_SE_PER_SD:g}"
    if abs(coef_per_sd) > MAX_COEF_PER_SD:
        return f"|coef| x SD {abs(coef_per_sd):.3g} > {MAX_COEF_PER_SD:g}"
    return ""


def _reached(coef_per_sd: float) -> str:
    """Why a fit that raised Diverging diverged, from where its coefficient got to."""
    if not math.isfinite(coef_per_sd):
        return "its coefficient ran out of range"
    return f"|coef| x SD reached {abs(coef_per_sd):.3g} with the likelihood still rising"


def _separation_note(name: str, start: np.ndarray | None, stop: np.ndarray, event: np.ndarray, x: np.ndarray,
                     strata: np.ndarray | None, why: str, complete_only: bool = False) -> str:  # fmt: skip
    """The note of a diverging estimate of `name`: too few runs for an indicator of fewer than MIN_RUNS_LEVEL
    runs; complete separation in `name` alone when `_separation_side` finds it (saying on which side); else
    near-separation, or separation in a combination of the covariates (empty then, with `complete_only`).
    `start` None: one row per run, at risk from the start."""
    indicator = set(np.unique(x)) <= {0.0, 1.0}  # a factor level or a model
    if start is None and indicator and (n := int((x == 1).sum())) < MIN_RUNS_LEVEL:
        return f"not estimable: too few runs with {name} ({n} < {MIN_RUNS_LEVEL}; {why})"
    side = _separation_side(np.full(len(stop), -np.inf) if start is None else start, stop, event, x, strata)
    if side == 0:
        return "" if complete_only else (
            f"not estimable: diverging estimate ({why}): separation, the crashes fall (almost) all on one side "
            f"of {name} or of a combination of the covariates")  # fmt: skip
    if indicator:
        where = (f"every crash while a run with {name} was at risk came from such a run" if side > 0 else
                 f"no run with {name} crashed while a run without it was at risk")  # fmt: skip
    else:
        where = f"at every crash the crashing run had the {'highest' if side > 0 else 'lowest'} {name} at risk"
    limit = "grows without bound" if side > 0 else "falls to 0"
    return f"not estimable: complete separation ({where}), so its hazard ratio {limit} ({why})"


def _separation_side(start: np.ndarray, stop: np.ndarray, event: np.ndarray, x: np.ndarray,
                     strata: np.ndarray | None = None) -> int:  # fmt: skip
    """+1 when at every crash the crashing run has the highest `x` of the runs then at risk (in its stratum), -1
    when the lowest, 0 when neither holds or when `x` never differs within a risk set. At +1 or -1 the partial
    likelihood rises without bound in the coefficient of `x`, whatever the others (complete separation, or
    monotone likelihood). On (start, stop] intervals: at risk at t when start < t <= stop."""
    up = down = True
    differs = False
    for i in np.flatnonzero(event):
        at_risk = (start < stop[i]) & (stop >= stop[i])
        if strata is not None:
            at_risk &= strata == strata[i]
        low, high = x[at_risk].min(), x[at_risk].max()
        up, down, differs = up and x[i] >= high, down and x[i] <= low, differs or low < high
        if not (up or down):
            return 0
    return (1 if up else -1) if differs else 0


def _message(error: BaseException) -> str:
    """An exception's message on one line, cut short: the last resort of a note (never its class name alone)."""
    text = " ".join(str(error).split())
    if not text:
        return f"{type(error).__name__} without a message"
    return text if len(text) <= 200 else text[:199] + "…"


# ---------------------------------------------------------------------------------------------------------
# Helpers


def _fit_cox(design: pd.DataFrame) -> Any:
    """lifelines' Cox PH on a runs design (covariates, `time_to_crash`, `crashed`), or the note saying why it
    could not be fitted."""
    from lifelines import CoxPHFitter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return CoxPHFitter().fit(design, duration_col="time_to_crash", event_col="crashed")
    except Exception as error:  # ConvergenceError, singular matrices: separation, else the message
        time, crashed = _risk_times(design)
        for name in design.columns.drop(["time_to_crash", "crashed"]):
            note = _separation_note(str(name), None, time, crashed, design[name].to_numpy(float), None,
                                    "the fit stopped without a maximum", complete_only=True)  # fmt: skip
            if note:
                return note
        return f"not estimable: {_message(error)}"


def _hazard_ratios(fit: Any, crashes: int, runs: int, design: pd.DataFrame) -> pd.DataFrame:
    time, crashed = _risk_times(design)
    rows = []
    for covariate, values in fit.summary.iterrows():
        row = _empty_hr_row(str(covariate), crashes, runs)
        x = design[covariate].to_numpy(float)
        explain = partial(_separation_note, str(covariate), None, time, crashed, x, None)
        row.update(_summary_row(values, float(design[covariate].std()), explain))
        rows.append(row)
    return pd.DataFrame(rows)


def _risk_times(design: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(time, crashed) of a runs design: each run at risk from the start to its time."""
    return design["time_to_crash"].to_numpy(float), design["crashed"].to_numpy(bool)


def _ph_test(fit: Any, design: pd.DataFrame, crashes: int) -> pd.DataFrame:
    from lifelines.statistics import proportional_hazard_test

    if crashes < MIN_EVENTS_TEST:
        return pd.DataFrame([{"covariate": "", "statistic": math.nan, "p": math.nan, "note": "too few crashes"}])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = proportional_hazard_test(fit, design, time_transform="rank")
    except Exception as error:
        return pd.DataFrame([{"covariate": "", "statistic": math.nan, "p": math.nan,
                              "note": f"not computable: {_message(error)}"}])  # fmt: skip
    summary = result.summary
    return pd.DataFrame({
        "covariate": [str(i[0]) if isinstance(i, tuple) else str(i) for i in summary.index],
        "statistic": summary["test_statistic"].to_numpy(dtype=float),
        "p": summary["p"].to_numpy(dtype=float),
        "note": ["" for _ in range(len(summary))],
    })  # fmt: skip


def _summary_row(values: pd.Series, sd: float, explain: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Coefficient, hazard ratio per unit with its 95% CI and p; NaN and a note for a diverging estimate
    (`_divergence`), worded by `explain` (which tells complete separation from near-separation)."""
    bounds = (float(values["exp(coef) lower 95%"]), float(values["exp(coef) upper 95%"]))
    why = _divergence(float(values["coef"]) * sd, float(values["se(coef)"]) * sd, bounds)
    if why:
        note = explain(why) if explain else f"not estimable: diverging estimate ({why})"
        return {"coef": math.nan, "hr": math.nan, "hr_lo": math.nan, "hr_hi": math.nan, "p": math.nan,
                "note": note}  # fmt: skip
    return {"coef": float(values["coef"]), "hr": float(values["exp(coef)"]),
            "hr_lo": float(values["exp(coef) lower 95%"]), "hr_hi": float(values["exp(coef) upper 95%"]),
            "p": float(values["p"]), "note": ""}  # fmt: skip


def _empty_hr_row(covariate: str, crashes: int, runs: int) -> dict[str, Any]:
    return {"covariate": covariate, "runs": runs, "crashes": crashes, "coef": math.nan, "hr": math.nan,
            "hr_lo": math.nan, "hr_hi": math.nan, "p": math.nan, "note": ""}  # fmt: skip


def _note_frame(note: str) -> pd.DataFrame:
    return pd.DataFrame([{**_empty_hr_row("", 0, 0), "note": note}])


def _as_tuple(key: Any) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def _label(by: Sequence[str], key: Any) -> str:
    """The group's value when grouped by one column, else `name=value` pairs."""
    values = _as_tuple(key)
    if len(by) == 1:
        return str(values[0])
    return ", ".join(f"{name}={value}" for name, value in zip(by, values, strict=True))
