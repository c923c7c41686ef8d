"""Prediction errors (PEs): bounded per-type formulas and a multi-scale per-step tracker.

Every PE is a number in [0, 1] computed at resolution from a real prediction and a real outcome
(formulas and reasons: docs/METHOD.md, "Prediction error"). `PETracker.update` is called once per agent
step with the PEs resolved at that step and returns a `PEStepRecord` whose `values` tuple is one row of
the compact per-step trace, in `PE_COLUMNS` order. The hot path uses plain floats and lists only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from vendomini_eval.condition import PEConfig

PE_TYPES: tuple[str, ...] = ("temporal", "quantity", "cost", "causal")
SERIES: tuple[str, ...] = (*PE_TYPES, "combined")
"""Tracked series: the four PE types, then all PEs pooled."""
SCALES: tuple[str, ...] = ("fast", "medium", "slow")
COST_FLOOR_CENTS = 100
"""Denominator floor of the cost PE: one dollar, so that errors on tiny amounts do not saturate it."""


def _columns() -> tuple[str, ...]:
    cols: list[str] = []
    for name in SERIES:  # six columns per series; the combined count is `pe_n`
        count = "pe_n" if name == "combined" else f"pe_{name}_n"
        cols += [f"pe_{name}", *(f"pe_{name}_ewma_{s}" for s in SCALES), f"pe_{name}_cum", count]
    return (*cols, "pe_surprises")


PE_COLUMNS: tuple[str, ...] = _columns()
"""Trace columns in fixed order. Per series (the four types, then combined): the step's mean PE (NaN when
none resolved), EWMA fast/medium/slow (NaN before the first PE, held on steps without one), cumulative sum,
number resolved this step (`pe_<type>_n`; for
combined `pe_n`); last `pe_surprises`, how many PEs of the step exceeded the surprise threshold."""


def _finite(*xs: float) -> None:
    for x in xs:
        if not math.isfinite(x):
            raise ValueError(f"PE input must be a finite number, got {x!r}")


def temporal_pe(predicted_day: float, actual_day: float, half_days: float) -> float:
    """d / (d + half_days) with d = |predicted - actual| days: 0 when exact, 0.5 at half_days, -> 1."""
    _finite(predicted_day, actual_day, half_days)
    if half_days <= 0:
        raise ValueError(f"half_days must be > 0, got {half_days}")
    d = abs(predicted_day - actual_day)
    return d / (d + half_days)


def quantity_pe(predicted: float, actual: float) -> float:
    """|p - a| / max(|p|, |a|, 1), clipped to [0, 1] (units: items; symmetric in p and a)."""
    _finite(predicted, actual)
    return min(1.0, abs(predicted - actual) / max(abs(predicted), abs(actual), 1.0))


def cost_pe(predicted_cents: float, actual_cents: float) -> float:
    """|p - a| / max(|p|, |a|, 100), clipped to [0, 1]; money in integer cents, floor of one dollar."""
    _finite(predicted_cents, actual_cents)
    denominator = max(abs(predicted_cents), abs(actual_cents), COST_FLOOR_CENTS)
    return min(1.0, abs(predicted_cents - actual_cents) / denominator)


def _probability(predicted: bool | float) -> float:
    p = float(predicted)
    _finite(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a success probability must be in [0, 1], got {predicted!r}")
    return p


def causal_pe(predicted: bool | float, actual_success: bool) -> float:
    """|p - 1[success]|, where predicted is a bool or a probability of success in [0, 1]."""
    return abs(_probability(predicted) - (1.0 if actual_success else 0.0))


def brier(probability: float, actual_success: bool) -> float:
    """(p - 1[success])^2 for a stated probability of success p in [0, 1]."""
    return (_probability(probability) - (1.0 if actual_success else 0.0)) ** 2


class PEObservation(NamedTuple):
    """One resolved prediction: its PE `value` in [0, 1], at the `step` where the outcome became known.

    A NamedTuple because one is made for every resolved field on the hot path; `PETracker.update` checks
    the type and the range."""

    step: int
    pe_type: str
    value: float
    prediction_id: str
    field: str
    """Prediction-card field that was compared, e.g. "expected_delivery_day"."""
    predicted: float | bool
    actual: float | bool


class PEStepRecord(NamedTuple):
    """What one step adds to the trace: `values` in PE_COLUMNS order, and the surprise events."""

    step: int
    values: tuple[float | int, ...]
    surprises: tuple[PEObservation, ...]

    def as_dict(self) -> dict[str, float | int]:
        """The row as {column: value} (slower than `values`; for logs and tests)."""
        return dict(zip(PE_COLUMNS, self.values, strict=True))


class PESeriesTotals(BaseModel):
    """One series' PEs over a run (a series: a PE type, or all PEs pooled)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    sum: float
    """Sum of the PEs resolved."""
    count: int
    """Number of PEs resolved."""
    mean: float | None
    """sum / count; None when none resolved (a prediction not made is missing, not zero)."""
    ewma_fast: float | None
    """Fast EWMA after the last PE resolved; None when none resolved."""
    ewma_medium: float | None
    """Medium EWMA, as ewma_fast."""
    ewma_slow: float | None
    """Slow EWMA, as ewma_fast."""


class PESummary(BaseModel):
    """A run's PE totals: `PETracker.summary()`, part of the run summary."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    steps: int
    """Steps tracked."""
    surprise_count: int
    """PEs above the surprise threshold."""
    brier_mean: float | None
    """Mean Brier score of the stated success probabilities; None when none was stated."""
    brier_count: int
    """Success probabilities stated (and scored)."""
    temporal: PESeriesTotals
    quantity: PESeriesTotals
    cost: PESeriesTotals
    causal: PESeriesTotals
    combined: PESeriesTotals
    """All PEs pooled."""

    def series(self) -> dict[str, PESeriesTotals]:
        """The five series by name, in SERIES order."""
        return {name: getattr(self, name) for name in SERIES}


_TYPE_INDEX = {name: i for i, name in enumerate(PE_TYPES)}
_COMBINED = len(PE_TYPES)


class PETracker:
    """Per-type and combined PE load over time; call `update` exactly once per step, steps consecutive.

    A prediction that was not made is missing, not zero. The step input x_t of a series is the mean of its PEs
    resolved at step t, and NaN when none resolved; the EWMAs then hold their value (silence is no evidence of
    accuracy, so an agent cannot lower its PE by predicting less). Before a series' first resolved PE its
    EWMAs are NaN; the first PE starts them. Counts per step and cumulative are kept beside the values.
    """

    def __init__(self, config: PEConfig) -> None:
        self.config = config
        self._alphas = tuple(2.0 / (w + 1.0) for w in config.ewma_windows)
        self._threshold = config.surprise_threshold
        # The state is the trace row itself: block 6i..6i+5 = x, ewma fast/medium/slow, cum, n of series i.
        self._row: list[float | int] = [0.0] * len(PE_COLUMNS)
        for i in range(len(SERIES)):
            self._row[6 * i : 6 * i + 4] = [math.nan] * 4
        self._count = [0] * len(SERIES)
        self.surprise_events: list[PEObservation] = []
        """Every observation whose value exceeded the surprise threshold, in order."""
        self._brier_sum = 0.0
        self._brier_count = 0
        self._last_step: int | None = None
        self.steps = 0

    def update(
        self, step: int, observations: Sequence[PEObservation], brier_scores: Sequence[float] = ()
    ) -> PEStepRecord:
        """Fold in the PEs (and Brier scores) resolved at `step`; returns this step's trace row."""
        if self._last_step is None:
            if step < 0:
                raise ValueError(f"step must be >= 0, got {step}")
        elif step != self._last_step + 1:
            raise ValueError(f"update must be called once per step in order: got {step} after {self._last_step}")
        sums = [0.0, 0.0, 0.0, 0.0, 0.0]
        counts = [0, 0, 0, 0, len(observations)]
        surprises: list[PEObservation] = []
        for obs in observations:  # all checked before any state changes (the sums are local)
            if obs.step != step:
                raise ValueError(f"observation {obs.prediction_id!r} resolved at step {obs.step}, not {step}")
            i = _TYPE_INDEX.get(obs.pe_type)
            if i is None:
                raise ValueError(f"pe_type must be one of {PE_TYPES}, got {obs.pe_type!r}")
            value = obs.value
            if not 0.0 <= value <= 1.0:  # also rejects NaN
                raise ValueError(f"PE value must be in [0, 1], got {value!r}")
            sums[i] += value
            counts[i] += 1
            if value > self._threshold:
                surprises.append(obs)
        if brier_scores:
            for b in brier_scores:  # validate all before changing any state
                if not 0.0 <= b <= 1.0:
                    raise ValueError(f"Brier score must be in [0, 1], got {b!r}")
            self._brier_sum += sum(brier_scores)
            self._brier_count += len(brier_scores)
        sums[_COMBINED] = sum(sums)

        a_fast, a_medium, a_slow = self._alphas
        r, total = self._row, self._count
        for i in range(len(SERIES)):
            k, n = 6 * i, counts[i]
            r[k + 5] = n
            if not n:
                r[k] = math.nan  # missing: the EWMAs hold
                continue
            x = r[k] = sums[i] / n
            if total[i]:
                # e + a (x - e) stays within [min(e, x), max(e, x)] in floating point, hence in [0, 1].
                r[k + 1] += a_fast * (x - r[k + 1])
                r[k + 2] += a_medium * (x - r[k + 2])
                r[k + 3] += a_slow * (x - r[k + 3])
            else:
                r[k + 1] = r[k + 2] = r[k + 3] = x  # the first PE of the series starts its EWMAs
            r[k + 4] += sums[i]
            total[i] += n
        r[-1] = len(surprises)
        if surprises:
            self.surprise_events += surprises
        self._last_step = step
        self.steps += 1
        return PEStepRecord(step, tuple(r), tuple(surprises))

    @property
    def brier_mean(self) -> float | None:
        """Mean Brier score so far; None when no confidence was ever given."""
        return self._brier_sum / self._brier_count if self._brier_count else None

    def summary(self) -> PESummary:
        """Totals so far: per series sum, count, mean and latest EWMAs; surprises and Brier scores."""
        return PESummary(
            steps=self.steps,
            surprise_count=len(self.surprise_events),
            brier_mean=self.brier_mean,
            brier_count=self._brier_count,
            **{name: self._series_totals(i) for i, name in enumerate(SERIES)},
        )

    def _series_totals(self, i: int) -> PESeriesTotals:
        count, total = self._count[i], self._row[6 * i + 4]
        if not count:
            return PESeriesTotals(sum=total, count=0, mean=None, ewma_fast=None, ewma_medium=None, ewma_slow=None)
        fast, medium, slow = self._row[6 * i + 1 : 6 * i + 4]
        return PESeriesTotals(sum=total, count=count, mean=total / count, ewma_fast=fast, ewma_medium=medium,
                              ewma_slow=slow)  # fmt: skip
