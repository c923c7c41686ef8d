"""Competing risks: a run is lost to a crash (the primary endpoint) or to a business failure (the business went
bankrupt or lost its customers), whichever comes first, or is censored (max_steps, an Inspect limit, a harness
error). A bankrupt agent can no longer crash, so the business failure is a competing event, not independent
censoring: the Kaplan-Meier of `stats.kaplan_meier` estimates the crash risk in a world where businesses never
fail (`CAUSE_SPECIFIC_KM_LABEL`), and the Aalen-Johansen cumulative incidence here the crash risk as it was.

Exact Aalen-Johansen in numpy: tied times need no jitter (lifelines' `AalenJohansenFitter` moves tied event
times by random amounts), so the same runs give the same numbers bit for bit, in any row order. Incoherence,
the secondary endpoint, never ends a run and plays no part. docs/METHOD.md, "Competing risks".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd  # inspect-evals-lint: ignore[external_dependencies] -- the analysis extra; no task imports it

from vendomini_eval.analysis.stats import Z95

CENSORED, CRASH, BUSINESS_FAILURE = 0, 1, 2
CAUSES = (CRASH, BUSINESS_FAILURE)
CAUSE_NAMES = {CENSORED: "censored", CRASH: "crash", BUSINESS_FAILURE: "business_failure"}
CAUSE_SPECIFIC_KM_LABEL = "Kaplan-Meier, crash-specific (business failure censored)"
"""The name of a Kaplan-Meier of time to crash that censors business failures (1 - KM is then not the crash
risk: it assumes the failed businesses would have gone on, and overstates the risk wherever businesses fail)."""
CIF_LABEL = "Aalen-Johansen cumulative incidence (business failure competing)"
"""The name of the crash risk that `cumulative_incidence` estimates, to set beside CAUSE_SPECIFIC_KM_LABEL."""
EVENT_COLUMNS = ("crashed", "time_to_crash", "terminated", "steps")
"""The run-table columns the endpoint is read from (vendomini_eval/analysis/tables.py, run_row)."""
CURVE_COLUMNS = ("label", "cause", "cause_name", "time", "at_risk", "events", "competing_events", "censored",
                 "cif", "cif_se", "cif_lo", "cif_hi", "event_free")  # fmt: skip
SUMMARY_COLUMNS = ("label", "runs", "crashes", "business_failures", "censored", "last_time", "cif_crash",
                   "cif_crash_lo", "cif_crash_hi", "cif_business_failure", "cif_business_failure_lo",
                   "cif_business_failure_hi", "event_free")  # fmt: skip


def event_codes(runs: pd.DataFrame) -> pd.DataFrame:
    """The competing-risks endpoint of each run: `time` and `cause` of its first event, and `lost`.

    cause 1 (crash): the run crashed; `time` is the crash's onset step (`time_to_crash`). cause 2 (business
    failure): the business failed with no crash; `time` is the step it failed on (`steps`: a failure ends the
    run). cause 0 (censored): neither; `time` is the steps run.

    A run can have both (`crashed` and `terminated`): the crash came first, and counts. Its onset is never after
    the failure: a crash confirmed before the failure may run `continue_after_crash` steps more, and a
    breakdown still open when the business fails is confirmed at that step with its earlier onset (a stall that
    lets the business die is a crash at the stall's onset, not a business failure). When the onset is the very
    step of the failure, the crash counts as well: the breakdown began with that step's action, the failure is
    its consequence, recorded after it.

    `lost` is the combined endpoint "run lost" (crash or business failure, whichever first): (`time`, `lost`),
    with `lost` = `cause` > 0, since the competing-risks time already is the first of the two.

    The frame has the index of `runs`. Raises ValueError when a column is missing or has missing values, or a
    crash's onset lies after the run's last step."""
    missing = [column for column in EVENT_COLUMNS if column not in runs.columns]
    if missing:
        raise ValueError(f"the runs table lacks {', '.join(missing)}")
    for column in EVENT_COLUMNS:
        if runs[column].isna().any():
            raise ValueError(f"{int(runs[column].isna().sum())} run(s) without `{column}`")
    crashed = runs["crashed"].to_numpy(dtype=bool)
    terminated = runs["terminated"].to_numpy(dtype=bool)
    onset, steps = runs["time_to_crash"].to_numpy(dtype=np.int64), runs["steps"].to_numpy(dtype=np.int64)
    late = crashed & (onset > steps)
    if late.any():
        raise ValueError(f"{int(late.sum())} crash(es) with an onset after the run's last step")
    cause = np.where(crashed, CRASH, np.where(terminated, BUSINESS_FAILURE, CENSORED)).astype(np.int64)
    return pd.DataFrame({"time": np.where(crashed, onset, steps), "cause": cause, "lost": cause > 0},
                        index=runs.index)  # fmt: skip


def cumulative_incidence(runs: pd.DataFrame, by: Sequence[str], cause: int | Sequence[int] = CRASH,
                         z: float = Z95) -> pd.DataFrame:  # fmt: skip
    """Aalen-Johansen cumulative incidence of `cause` (1 crash, 2 business failure, or both) per group of `by`.

    One row per group, cause and time: time 0 and every time at which a run of the group had its event or was
    censored (so the curve runs to the group's last time), in the order of the groups, the causes, the times.
    Columns: the `by` columns, `label` (the group: its value, or `name=value` pairs), `cause`, `cause_name`,
    `time`, `at_risk` (runs with time >= t), `events` (of this cause at t), `competing_events` (of the other
    cause at t), `censored` (at t), `cif` (the probability of an event of this cause by t), `cif_se`, `cif_lo`,
    `cif_hi` and `event_free` (the probability of neither event by t: the Kaplan-Meier of the combined endpoint).

    At a tied time every event counts before every censoring (a run censored at t is at risk at t), and events
    of both causes at one time share the risk set: no jitter. `cif_se` is the delta-method (Greenwood-type)
    standard error (Marubini and Valsecchi 1995; SAS LIFETEST ERROR=DELTA, lifelines' `AalenJohansenFitter`).
    The interval (z = 1.96: 95%) is computed on the log(-log) scale, so it stays within (0, 1); it is NaN
    where the cif is 0 or 1 (no event of the cause yet, or every run had it), where it does not exist."""
    causes = [int(cause)] if isinstance(cause, int | np.integer) else [int(c) for c in cause]
    unknown = [c for c in causes if c not in CAUSES]
    if unknown:
        raise ValueError(f"unknown cause(s) {unknown}: 1 (crash) or 2 (business failure)")
    frames = []
    for values, _, curves in _group_curves(runs, by, z):
        for c in causes:
            other = BUSINESS_FAILURE if c == CRASH else CRASH
            frame = pd.DataFrame({
                "label": _label(by, values), "cause": c, "cause_name": CAUSE_NAMES[c], "time": curves["time"],
                "at_risk": curves["at_risk"], "events": curves["events"][c],
                "competing_events": curves["events"][other], "censored": curves["censored"],
                "cif": curves["cif"][c], "cif_se": curves["se"][c], "cif_lo": curves["lo"][c],
                "cif_hi": curves["hi"][c], "event_free": curves["event_free"],
            })  # fmt: skip
            for name, value in reversed(list(zip(by, values, strict=True))):
                frame.insert(0, name, value)
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*by, *CURVE_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def incidence_summary(runs: pd.DataFrame, by: Sequence[str], z: float = Z95) -> pd.DataFrame:
    """Per group of `by`: `label`, `runs`, `crashes`, `business_failures`, `censored`, `last_time` (the group's
    last time, event or censoring), and at that time `cif_crash` and `cif_business_failure` with their
    intervals (`_lo`, `_hi`, as in `cumulative_incidence`) and `event_free`. The two cifs and `event_free` sum
    to 1."""
    rows = []
    for values, cause, curves in _group_curves(runs, by, z):
        row: dict[str, Any] = {**dict(zip(by, values, strict=True)), "label": _label(by, values),
                               "runs": len(cause), "crashes": int((cause == CRASH).sum()),
                               "business_failures": int((cause == BUSINESS_FAILURE).sum()),
                               "censored": int((cause == CENSORED).sum()),
                               "last_time": int(curves["time"][-1])}  # fmt: skip
        for c in CAUSES:
            for part in ("cif", "lo", "hi"):
                row[f"cif_{CAUSE_NAMES[c]}" + ("" if part == "cif" else f"_{part}")] = float(curves[part][c][-1])
        row["event_free"] = float(curves["event_free"][-1])
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by, *SUMMARY_COLUMNS])


def _group_curves(runs: pd.DataFrame, by: Sequence[str], z: float) -> Iterator[tuple[tuple, np.ndarray, dict]]:
    """Per group of `by` (sorted, missing values kept and last; with no `by`, all runs as one group): its
    values, its runs' causes and its Aalen-Johansen curves."""
    codes = event_codes(runs)
    time, cause = codes["time"].to_numpy(), codes["cause"].to_numpy()
    if not by:
        groups = [((), np.arange(len(codes)))] if len(codes) else []
    else:  # by position: the runs' index may repeat (tables concatenated)
        keys = runs[list(by)].reset_index(drop=True)
        groups = [(key if isinstance(key, tuple) else (key,), group.index.to_numpy())
                  for key, group in keys.groupby(list(by), sort=True, dropna=False)]  # fmt: skip
    for values, rows in groups:
        yield values, cause[rows], _aalen_johansen(time[rows], cause[rows], z)


def _aalen_johansen(time: np.ndarray, cause: np.ndarray, z: float) -> dict[str, Any]:
    """The estimator on one group's (time, cause) pairs, at time 0 and at each distinct time."""
    grid = np.unique(np.concatenate([[0], time]))
    at = np.searchsorted(grid, time)
    size = len(grid)
    events = {c: np.bincount(at[cause == c], minlength=size) for c in CAUSES}
    censored = np.bincount(at[cause == CENSORED], minlength=size)
    at_risk = np.bincount(at, minlength=size)[::-1].cumsum()[::-1]  # runs with time >= t (never 0 on the grid)
    failed = sum(events.values())
    event_free = np.cumprod(1.0 - failed / at_risk)
    before = np.concatenate([[1.0], event_free[:-1]])  # S(t-): event-free just before t
    # The delta-method variance of F_k(t_i), summed over the times t_l <= t_i (Marubini and Valsecchi 1995):
    #   (F_k(t_i) - F_k(t_l))^2 d_l / (n_l (n_l - d_l))  +  S(t_l-)^2 d_kl (n_l - d_kl) / n_l^3
    #   - 2 (F_k(t_i) - F_k(t_l)) S(t_l-) d_kl / n_l^2
    # where n_l - d_l = 0 only at the last time (every run still at risk fails), whose difference is 0.
    survivors = at_risk - failed
    greenwood = np.divide(failed, at_risk * survivors, out=np.zeros(size), where=survivors > 0)
    cif, se, lo, hi = {}, {}, {}, {}
    for c, d in events.items():
        cif[c] = np.cumsum(before * d / at_risk)
        own = np.cumsum(before**2 * d * (at_risk - d) / at_risk**3)
        cross = before * d / at_risk**2
        variance = np.array([
            np.sum((cif[c][i] - cif[c][: i + 1]) ** 2 * greenwood[: i + 1]) + own[i]
            - 2 * np.sum((cif[c][i] - cif[c][: i + 1]) * cross[: i + 1])
            for i in range(size)
        ])  # fmt: skip
        se[c] = np.sqrt(np.clip(variance, 0.0, None))
        lo[c], hi[c] = _loglog_interval(cif[c], se[c], z)
    return {"time": grid, "at_risk": at_risk, "events": events, "censored": censored, "cif": cif, "se": se,
            "lo": lo, "hi": hi, "event_free": event_free}  # fmt: skip


def _loglog_interval(cif: np.ndarray, se: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """F^exp(+-z se / (F |log F|)): the delta-method interval of log(-log F), mapped back (within (0, 1))."""
    inside = (cif > 0) & (cif < 1) & (se > 0)
    safe = np.where(inside, cif, 0.5)
    spread = np.exp(z * se / (safe * np.abs(np.log(safe))))
    return np.where(inside, safe**spread, np.nan), np.where(inside, safe ** (1 / spread), np.nan)


def _label(by: Sequence[str], values: tuple) -> str:
    """The group's value when grouped by one column, else `name=value` pairs (as the Kaplan-Meier table)."""
    if not by:
        return "all runs"
    if len(by) == 1:
        return str(values[0])
    return ", ".join(f"{name}={value}" for name, value in zip(by, values, strict=True))
