"""Kaplan-Meier estimator for right-censored times to crash (pure numpy; no Inspect imports).

A run contributes (time, event): time is its time-to-crash (the crash's onset step) when it crashed
(event 1), else the number of steps it ran (event 0: right-censored at max_steps, a business failure, an
Inspect limit or a harness error).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _validate(times: Sequence[float], events: Sequence[int | bool]) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times, dtype=float)
    e = np.asarray(events, dtype=float)
    if t.ndim != 1 or e.ndim != 1 or t.shape != e.shape:
        raise ValueError(f"times and events must be 1-d and of equal length, got {t.shape} and {e.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("times must be finite and >= 0")
    if not np.all((e == 0) | (e == 1)):
        raise ValueError("events must be 0 (censored) or 1 (crashed)")
    return t, e.astype(bool)


def kaplan_meier(times: Sequence[float], events: Sequence[int | bool]) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan-Meier survival curve at each distinct crash time.

    S(t_j) = prod over crash times t_i <= t_j of (1 - d_i / n_i), with d_i the crashes at t_i and n_i the
    runs still at risk (time >= t_i). A run censored at t_i is still at risk at t_i (the usual convention:
    crashes come before censorings at tied times). S is 1 before the first crash time and constant between
    crash times.

    Returns:
        (crash_times, survival): the distinct crash times in increasing order and S just after each of them;
        both empty when no run crashed.
    """
    t, e = _validate(times, events)
    crash_times = np.unique(t[e])
    if crash_times.size == 0:
        return crash_times, np.empty(0)
    at_risk = (t[None, :] >= crash_times[:, None]).sum(axis=1)
    crashes = ((t[None, :] == crash_times[:, None]) & e[None, :]).sum(axis=1)
    return crash_times, np.cumprod(1.0 - crashes / at_risk)


def km_median(times: Sequence[float], events: Sequence[int | bool]) -> float:
    """Kaplan-Meier median time to crash: the smallest crash time t with S(t) <= 0.5.

    NaN when the curve never reaches 0.5 (too few crashes before the runs were censored, or no runs at all):
    the median is then not identified by the data, only bounded below by the last observed time. (R's
    `survfit` takes the midpoint to the next crash time when S is exactly 0.5 on an interval; this follows
    lifelines and reports the left end.)
    """
    crash_times, survival = kaplan_meier(times, events)
    reached = np.flatnonzero(survival <= 0.5)
    return float(crash_times[reached[0]]) if reached.size else math.nan
