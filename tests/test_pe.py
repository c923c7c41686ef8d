"""PE formulas and the multi-scale tracker (vendomini_eval/pe.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vendomini_eval.condition import PEConfig
from vendomini_eval.pe import (
    PE_COLUMNS,
    PE_TYPES,
    PEObservation,
    PESummary,
    PETracker,
    brier,
    causal_pe,
    cost_pe,
    quantity_pe,
    temporal_pe,
)


def obs(step: int, pe_type: str, value: float, pid: str = "p") -> PEObservation:
    return PEObservation(step, pe_type, value, pid, "field", 0, 0)


# --- formulas -------------------------------------------------------------------------------------------


def test_temporal_pe_saturates_with_half_point() -> None:
    assert temporal_pe(5, 5, 3.0) == 0.0
    assert temporal_pe(5, 8, 3.0) == 0.5
    assert temporal_pe(8, 5, 3.0) == 0.5
    assert temporal_pe(0, 9, 3.0) == pytest.approx(0.75)
    assert 0.99 < temporal_pe(0, 1000, 3.0) < 1.0
    with pytest.raises(ValueError):
        temporal_pe(1, 2, 0.0)


def test_quantity_pe_hand_values() -> None:
    assert quantity_pe(10, 10) == 0.0
    assert quantity_pe(10, 5) == 0.5
    assert quantity_pe(5, 10) == 0.5
    assert quantity_pe(10, 0) == 1.0
    assert quantity_pe(0, 0) == 0.0
    assert quantity_pe(0.5, 0) == 0.5  # floor of one item
    assert quantity_pe(-10, 10) == 1.0  # |p - a| = 2 max, clipped


def test_cost_pe_dollar_floor() -> None:
    assert cost_pe(1000, 1000) == 0.0
    assert cost_pe(1000, 750) == 0.25
    assert cost_pe(750, 1000) == 0.25
    assert cost_pe(1, 3) == 0.02  # two cents off on a tiny amount: 2 / 100, not 2 / 3
    assert cost_pe(0, 100) == 1.0
    assert cost_pe(-500, 500) == 1.0


def test_causal_pe_and_brier() -> None:
    assert causal_pe(True, True) == 0.0
    assert causal_pe(True, False) == 1.0
    assert causal_pe(False, False) == 0.0
    assert causal_pe(0.8, True) == pytest.approx(0.2)
    assert causal_pe(0.8, False) == pytest.approx(0.8)
    assert brier(0.8, True) == pytest.approx(0.04)
    assert brier(0.8, False) == pytest.approx(0.64)
    assert brier(1.0, True) == 0.0
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError):
            causal_pe(bad, True)
        with pytest.raises(ValueError):
            brier(bad, True)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_inputs_rejected(bad: float) -> None:
    for call in (
        lambda: temporal_pe(bad, 1, 3.0),
        lambda: temporal_pe(1, 1, bad),
        lambda: quantity_pe(1, bad),
        lambda: cost_pe(bad, 1),
        lambda: causal_pe(bad, True),
        lambda: brier(bad, False),
    ):
        with pytest.raises(ValueError):
            call()


finite = st.floats(-1e9, 1e9, allow_nan=False)


@given(finite, finite, st.floats(0.01, 100))
def test_formulas_bounded_and_symmetric(p: float, a: float, half: float) -> None:
    for f in (quantity_pe, cost_pe, lambda x, y: temporal_pe(x, y, half)):
        v = f(p, a)
        assert 0.0 <= v <= 1.0
        assert v == f(a, p)
    assert quantity_pe(p, p) == cost_pe(p, p) == temporal_pe(p, p, half) == 0.0


def test_observation_is_validated_by_the_tracker() -> None:
    tracker = PETracker(PEConfig())
    with pytest.raises(ValueError):
        tracker.update(0, [obs(0, "mood", 0.1)])
    for bad in (1.2, -0.1, math.nan):
        with pytest.raises(ValueError):
            tracker.update(0, [obs(0, "cost", 0.2), obs(0, "cost", bad)])
    assert tracker.steps == 0  # rejected updates change nothing


# --- tracker --------------------------------------------------------------------------------------------


def reference_ewma(xs: np.ndarray, window: int) -> np.ndarray:
    """EWMA over the steps that have a value (NaN: missing, the EWMA holds), started at the first value."""
    alpha = 2.0 / (window + 1.0)
    out = np.empty_like(xs)
    e = math.nan
    for t, x in enumerate(xs):
        if not math.isnan(x):
            e = x if math.isnan(e) else (1 - alpha) * e + alpha * x
        out[t] = e
    return out


def column(records: list, name: str) -> np.ndarray:
    j = PE_COLUMNS.index(name)
    return np.array([r.values[j] for r in records], dtype=float)


def test_columns_fixed_and_unique() -> None:
    assert len(set(PE_COLUMNS)) == len(PE_COLUMNS)
    assert PE_COLUMNS[:6] == (
        "pe_temporal",
        "pe_temporal_ewma_fast",
        "pe_temporal_ewma_medium",
        "pe_temporal_ewma_slow",
        "pe_temporal_cum",
        "pe_temporal_n",
    )
    assert len(PE_COLUMNS) == 31
    assert PE_COLUMNS[24:] == (
        "pe_combined",
        "pe_combined_ewma_fast",
        "pe_combined_ewma_medium",
        "pe_combined_ewma_slow",
        "pe_combined_cum",
        "pe_n",
        "pe_surprises",
    )


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=300), st.integers(0, 2**32 - 1))
def test_ewma_matches_reference(values: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Scatter the values over steps and types, with empty steps in between.
    steps = np.sort(rng.integers(0, len(values) + 50, size=len(values)))
    types = rng.integers(0, len(PE_TYPES), size=len(values))
    n_steps = int(steps[-1]) + 1
    tracker = PETracker(PEConfig())
    per_step: list[list[PEObservation]] = [[] for _ in range(n_steps)]
    for v, s, k in zip(values, steps, types, strict=True):
        per_step[int(s)].append(obs(int(s), PE_TYPES[k], v))
    records = [tracker.update(t, per_step[t]) for t in range(n_steps)]

    for name in (*PE_TYPES, "combined"):
        xs = np.array(
            [np.mean([o.value for o in step_obs if name in ("combined", o.pe_type)] or [math.nan])
             for step_obs in per_step]
        )  # fmt: skip
        np.testing.assert_allclose(column(records, f"pe_{name}"), xs, atol=1e-12)
        for scale, window in zip(("fast", "medium", "slow"), PEConfig().ewma_windows, strict=True):
            got = column(records, f"pe_{name}_ewma_{scale}")
            np.testing.assert_allclose(got, reference_ewma(xs, window), atol=1e-9)
            seen = got[~np.isnan(got)]
            assert np.all((seen >= 0.0) & (seen <= 1.0))
        # The slow EWMA is a positive unit-mass smoothing of the fast one: never more total variation.
        tv = {s: np.abs(np.diff(np.nan_to_num(column(records, f"pe_{name}_ewma_{s}")))).sum() for s in ("fast", "slow")}
        assert tv["slow"] <= tv["fast"] + 1e-9
    assert column(records, "pe_combined_cum")[-1] == pytest.approx(sum(values))
    assert column(records, "pe_n").sum() == len(values)


def test_missing_predictions_are_missing_not_zero() -> None:
    tracker = PETracker(PEConfig(ewma_windows=(1, 3, 9)))
    r0 = tracker.update(0, [obs(0, "temporal", 0.8)]).as_dict()
    assert r0["pe_temporal"] == 0.8
    assert r0["pe_temporal_ewma_fast"] == r0["pe_temporal_ewma_medium"] == 0.8  # the first PE starts the EWMAs
    assert math.isnan(r0["pe_cost"]) and math.isnan(r0["pe_cost_ewma_slow"])  # no cost PE yet: no value at all
    r1 = tracker.update(1, []).as_dict()
    assert math.isnan(r1["pe_temporal"]) and r1["pe_n"] == 0 and r1["pe_temporal_n"] == 0
    assert r1["pe_temporal_ewma_fast"] == r1["pe_temporal_ewma_medium"] == 0.8  # silence holds, never decays
    assert r1["pe_temporal_cum"] == 0.8
    r2 = tracker.update(2, [obs(2, "temporal", 0.0)]).as_dict()
    assert r2["pe_temporal"] == 0.0 and r2["pe_temporal_n"] == 1 and r2["pe_n"] == 1
    assert r2["pe_temporal_ewma_medium"] == pytest.approx(0.4)  # only an accurate prediction lowers it
    assert tracker.summary().temporal.count == 2
    assert tracker.summary().cost.ewma_fast is None


def test_silence_cannot_lower_the_pe_level() -> None:
    """After 50 poor predictions, an agent that stops predicting keeps its PE level; one whose predictions
    become accurate lowers it. Under decay both would have fallen alike (silence read as accuracy)."""
    silent, accurate = PETracker(PEConfig()), PETracker(PEConfig())
    for t in range(250):
        poor = [obs(t, "temporal", 0.6)]
        a = silent.update(t, poor if t < 50 else []).as_dict()
        b = accurate.update(t, poor if t < 50 else [obs(t, "temporal", 0.0)]).as_dict()
        if t == 49:
            level = a["pe_temporal_ewma_slow"]
    for scale in ("fast", "medium", "slow"):
        assert a[f"pe_temporal_ewma_{scale}"] == pytest.approx(0.6)
        assert b[f"pe_temporal_ewma_{scale}"] < 0.6
    assert a["pe_temporal_ewma_slow"] == level


def test_step_mean_per_type_and_combined() -> None:
    tracker = PETracker(PEConfig())
    row = tracker.update(
        0, [obs(0, "cost", 0.2), obs(0, "cost", 0.4), obs(0, "causal", 1.0), obs(0, "quantity", 0.0)]
    ).as_dict()
    assert row["pe_cost"] == pytest.approx(0.3)
    assert row["pe_cost_n"] == 2
    assert row["pe_causal"] == 1.0
    assert row["pe_combined"] == pytest.approx(1.6 / 4)
    assert row["pe_n"] == 4
    summary = tracker.summary()
    assert summary.cost.model_dump() == {
        "sum": pytest.approx(0.6),
        "count": 2,
        "mean": pytest.approx(0.3),
        "ewma_fast": pytest.approx(0.3),
        "ewma_medium": pytest.approx(0.3),
        "ewma_slow": pytest.approx(0.3),
    }
    assert summary.temporal.mean is None


def test_surprises_above_threshold_only() -> None:
    tracker = PETracker(PEConfig(surprise_threshold=0.5))
    big = obs(0, "quantity", 0.9, "order-1")
    rec = tracker.update(0, [obs(0, "cost", 0.5), big])
    assert rec.surprises == (big,)
    assert rec.as_dict()["pe_surprises"] == 1
    tracker.update(1, [obs(1, "causal", 1.0, "ship-2")])
    assert [o.prediction_id for o in tracker.surprise_events] == ["order-1", "ship-2"]
    assert tracker.summary().surprise_count == 2


def test_brier_mean_and_summary_json() -> None:
    tracker = PETracker(PEConfig())
    tracker.update(0, [])
    assert tracker.summary().brier_mean is None
    tracker.update(1, [], [brier(0.8, True), brier(0.8, False)])
    assert tracker.brier_mean == pytest.approx((0.04 + 0.64) / 2)
    with pytest.raises(ValueError):
        tracker.update(2, [], [math.nan])
    stored = json.dumps(tracker.summary().model_dump(mode="json"), allow_nan=False)
    assert PESummary.model_validate(json.loads(stored)) == tracker.summary()


def test_step_misuse_raises() -> None:
    tracker = PETracker(PEConfig())
    with pytest.raises(ValueError):
        tracker.update(-1, [])
    tracker.update(5, [])  # the first call fixes the start
    for bad in (5, 4, 7):
        with pytest.raises(ValueError):
            tracker.update(bad, [])
    with pytest.raises(ValueError):
        tracker.update(6, [obs(3, "cost", 0.1)])  # resolved at another step
    tracker.update(6, [])
    assert tracker.steps == 2
