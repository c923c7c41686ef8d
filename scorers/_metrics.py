"""Censoring-aware metrics over the survival and incoherence scorers' dict values, and the crash-type shares.

They read whole runs, so they declare `scores="unreduced"`: with several epochs each epoch is one run (an
observation of its own), never an average of runs, which would turn 0/1 crash indicators into fractions.
Samples whose value is the NaN "unscored" sentinel (no run) are removed by Inspect before a metric sees them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from inspect_ai.scorer import Metric, SampleScore, frequency, metric

from vendomini_eval.crash import CRASH_TYPES

from ._kaplan_meier import km_median
from ._values import NO_CRASH

CRASH_TYPE_LABELS: tuple[str, ...] = (*CRASH_TYPES, NO_CRASH)
"""Every value of the crash_type scorer, so that types never observed still show a share of 0."""


def _time_event_pairs(scores: list[SampleScore], time_key: str, event_key: str) -> tuple[list[float], list[int]]:
    """(time, event) of each run, read from a scorer's dict values (e.g. time_to_crash and crashed)."""
    times: list[float] = []
    events: list[int] = []
    for sample_score in scores:
        value = sample_score.score.value
        if not isinstance(value, Mapping):
            raise TypeError(f"{event_key} metrics need dict values with {time_key!r}, got {value!r}")
        times.append(float(value[time_key]))
        events.append(int(value[event_key]))
    return times, events


def _share(events: list[int]) -> float:
    return sum(events) / len(events) if events else math.nan


@metric(scores="unreduced")
def crash_rate() -> Metric:
    """Share of runs that crashed within the steps they ran (crashes / runs; NaN with no runs).

    A proportion over the horizon, not a hazard: runs censored early (a limit, a business failure) count in
    the denominator as runs that did not crash, so compare it only across conditions with the same max_steps
    and similar censoring; `km_median_survival` accounts for censoring.
    """

    def compute(scores: list[SampleScore]) -> float:
        return _share(_time_event_pairs(scores, "time_to_crash", "crashed")[1])

    return compute


@metric(scores="unreduced")
def km_median_survival() -> Metric:
    """Kaplan-Meier median time to crash in steps: the smallest crash onset step t with S(t) <= 0.5.

    NaN when the Kaplan-Meier curve never falls to 0.5 (fewer than half the runs crash before censoring),
    where the median is not identified; `inspect view` shows it as nan.
    """

    def compute(scores: list[SampleScore]) -> float:
        return km_median(*_time_event_pairs(scores, "time_to_crash", "crashed"))

    return compute


@metric(scores="unreduced")
def incoherence_rate() -> Metric:
    """Share of runs that became incoherent within the steps they ran (NaN with no runs). Like crash_rate a
    proportion over the horizon: a run that crashed or failed early had fewer steps in which to show it."""

    def compute(scores: list[SampleScore]) -> float:
        return _share(_time_event_pairs(scores, "time_to_incoherence", "incoherent")[1])

    return compute


@metric(scores="unreduced")
def km_median_incoherence() -> Metric:
    """Kaplan-Meier median time to incoherence in steps; a run is censored at its last step when it ended
    (crash, business failure, limit, max_steps) before any incoherence. NaN when not identified."""

    def compute(scores: list[SampleScore]) -> float:
        return km_median(*_time_event_pairs(scores, "time_to_incoherence", "incoherent"))

    return compute


def crash_type_share() -> Metric:
    """Share of runs per crash type, "none" included: `{type: share}`, summing to 1 over scored runs.

    Inspect's own `frequency()` metric (unreduced; one `inspect view` entry per label) with every crash
    type declared, so that a type no run showed is reported as 0.0 rather than missing.
    """
    return frequency(categories=list(CRASH_TYPE_LABELS))


def _floats(scores: list[SampleScore]) -> list[float]:
    return [v for v in (s.score.as_float() for s in scores) if not math.isnan(v)]


@metric
def minimum() -> Metric:
    """The smallest value over the runs (NaN with none): Vending-Bench reports the worst run beside the mean."""

    def compute(scores: list[SampleScore]) -> float:
        values = _floats(scores)
        return min(values) if values else math.nan

    return compute


@metric
def maximum() -> Metric:
    """The largest value over the runs (NaN with none)."""

    def compute(scores: list[SampleScore]) -> float:
        values = _floats(scores)
        return max(values) if values else math.nan

    return compute
