"""Inference helpers of the analysis (`vendomini_eval.analysis.inference`): the run-level bootstrap of the
time-varying Cox hazard ratio per SD against a known truth, its determinism and its notes; Schoenfeld's events
and BH q-values against hand computations.

Synthetic truth: a covariate that grows along each run at a run-specific rate, x = rate * block * 2 / blocks,
known at the start of each block; a crash hazard h0 * exp(beta * x) constant within a block, so the time of
a crash is exact (piecewise exponential, no ties) and the Cox model holds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vendomini_eval.analysis.inference import (
    _percentile_bounds,
    _refit,
    _run_sampler,
    benjamini_hochberg,
    bootstrap_hazard_ratio,
    minimum_detectable_hr,
    runs_needed,
    schoenfeld_events,
)
from vendomini_eval.analysis.stats import adjusted_time_varying_cox

BETA = 0.6
"""Log hazard ratio per unit of the simulated covariate."""


def simulate_intervals(seed: int, runs: int = 150, blocks: int = 40, beta: float = BETA, h0: float = 0.01
                       ) -> pd.DataFrame:  # fmt: skip
    """The (start, stop] table of `runs` runs of `blocks` unit blocks: each run at risk until its crash (the
    interval that ends at the crash time carries the event) or censored at the horizon."""
    rng = np.random.default_rng(seed)
    rate = rng.lognormal(0.0, 0.5, runs)
    x = rate[:, None] * np.arange(blocks)[None, :] * (2.0 / blocks)
    hazard = h0 * np.exp(beta * x)
    cumulative = np.cumsum(hazard, axis=1)
    threshold = rng.exponential(size=runs)  # a crash when the cumulative hazard reaches it
    crashed = cumulative[:, -1] >= threshold
    last = np.where(crashed, (cumulative < threshold[:, None]).sum(axis=1), blocks - 1)  # last block at risk
    run = np.repeat(np.arange(runs), last + 1)
    start = np.arange(len(run)) - np.repeat(np.cumsum(last + 1) - (last + 1), last + 1)
    stop = (start + 1).astype(float)
    ends = np.cumsum(last + 1) - 1
    before = np.where(last > 0, cumulative[np.arange(runs), last - 1], 0.0)
    stop[ends] = np.where(crashed, last + (threshold - before) / hazard[np.arange(runs), last], blocks)
    event = np.zeros(len(run), bool)
    event[ends] = crashed
    return pd.DataFrame({"run_id": run, "start": start.astype(float), "stop": stop, "event": event,
                         "pe": x[run, start]})  # fmt: skip


def true_hr_per_sd(beta: float = BETA) -> float:
    """exp(beta x SD), the SD of the covariate over the intervals at risk in a large population of runs (the
    quantity the per-SD hazard ratio of `stats` estimates; it depends on beta through who stays at risk)."""
    return math.exp(beta * float(simulate_intervals(10_000, runs=40_000, beta=beta)["pe"].std()))


def test_bootstrap_interval_covers_the_true_hazard_ratio() -> None:
    truth_per_sd = true_hr_per_sd()
    covered_per_sd = covered_per_unit = 0
    datasets = 50
    for seed in range(datasets):
        result = bootstrap_hazard_ratio(simulate_intervals(seed), "pe", replicates=100, seed=seed)
        assert result.fitted == result.replicates, result.note
        covered_per_sd += result.hr_per_sd_lo <= truth_per_sd <= result.hr_per_sd_hi
        covered_per_unit += result.hr_lo <= math.exp(BETA) <= result.hr_hi
    coverage = f"per SD {covered_per_sd}/{datasets}, per unit {covered_per_unit}/{datasets}"
    assert covered_per_sd >= 0.9 * datasets, f"coverage of HR per SD {truth_per_sd:.3f}: {coverage}"
    assert covered_per_unit >= 0.9 * datasets, f"coverage of HR per unit {math.exp(BETA):.3f}: {coverage}"


def test_bootstrap_reports_the_fit_of_stats_as_its_estimate() -> None:
    intervals = simulate_intervals(0)
    result = bootstrap_hazard_ratio(intervals, "pe", replicates=40)
    row = adjusted_time_varying_cox(intervals, "pe", ()).iloc[0]
    assert result.hr_per_sd == pytest.approx(row["hr_per_sd"])
    assert result.hr == pytest.approx(row["hr"])
    assert result.sd == pytest.approx(row["sd"])
    assert (result.wald_hr_per_sd_lo, result.wald_hr_per_sd_hi) == pytest.approx((row["hr_per_sd_lo"],
                                                                                   row["hr_per_sd_hi"]))  # fmt: skip
    assert result.hr_per_sd_lo < result.hr_per_sd < result.hr_per_sd_hi
    assert (result.runs, result.crashes, result.note) == (150, int(intervals["event"].sum()), "")


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    intervals = simulate_intervals(3)
    first = bootstrap_hazard_ratio(intervals, "pe", replicates=40, seed=7)
    again = bootstrap_hazard_ratio(intervals, "pe", replicates=40, seed=7)
    other = bootstrap_hazard_ratio(intervals, "pe", replicates=40, seed=8)
    assert first == again
    assert (other.hr_per_sd_lo, other.hr_per_sd_hi) != (first.hr_per_sd_lo, first.hr_per_sd_hi)
    assert other.hr_per_sd == first.hr_per_sd  # the estimate is the fit on the data, whatever the seed


def test_bootstrap_within_strata_with_an_adjustment_keeps_the_terms_of_the_fit() -> None:
    intervals = simulate_intervals(2)
    intervals["condition"] = intervals["run_id"] % 3
    intervals["exposure"] = intervals["start"] * 0.05 + (intervals["run_id"] % 4)
    intervals["constant"] = 1.0
    result = bootstrap_hazard_ratio(intervals, "pe", adjust=("exposure", "constant"), strata="condition",
                                    replicates=40)  # fmt: skip
    row = adjusted_time_varying_cox(intervals, "pe", ("exposure", "constant"), strata="condition").iloc[0]
    assert (result.adjusted_for, result.strata, result.fitted) == ("exposure", "condition", 40)
    assert result.hr_per_sd == pytest.approx(row["hr_per_sd"])
    assert result.note == row["note"] == "not used (missing or constant): constant"
    assert result.hr_per_sd_lo < result.hr_per_sd < result.hr_per_sd_hi


def test_a_resample_draws_whole_runs_and_a_run_drawn_twice_enters_twice() -> None:
    intervals = pd.DataFrame({"run_id": ["a", "a", "a", "b", "c", "c"], "stratum": ["x", "x", "x", "x", "y", "y"]})
    draw = _run_sampler(intervals["run_id"].to_numpy(), None)
    rng = np.random.default_rng(0)
    for _ in range(20):
        rows, runs = draw(rng)
        drawn = [intervals["run_id"].to_numpy()[rows[runs == r]] for r in np.unique(runs)]
        assert len(drawn) == 3  # as many runs as the data has
        assert all(len(set(run)) == 1 and len(run) == {"a": 3, "b": 1, "c": 2}[run[0]] for run in drawn)
        assert all((np.diff(rows[runs == r]) == 1).all() for r in np.unique(runs))  # its intervals in order
    # a resample that draws run a twice holds its three intervals twice, under two distinct ids
    rows, runs = next((rows, runs) for rows, runs in (draw(rng) for _ in range(100)) if (rows == 0).sum() == 2)
    assert sorted(rows[np.isin(rows, [0, 1, 2])]) == [0, 0, 1, 1, 2, 2]
    assert len(set(runs[rows == 0])) == 2 and set(runs[rows == 0]) == set(runs[rows == 2])
    stratified = _run_sampler(intervals["run_id"].to_numpy(), intervals["stratum"].to_numpy())
    for _ in range(20):  # one run of stratum y and two of x, always
        rows, runs = stratified(rng)
        first = [intervals["stratum"].to_numpy()[rows[runs == r][0]] for r in np.unique(runs)]
        assert sorted(first) == ["x", "x", "y"]


def test_a_resample_is_fitted_as_adjusted_time_varying_cox_fits_it() -> None:
    intervals = simulate_intervals(5)
    intervals["condition"] = intervals["run_id"] % 3
    intervals["exposure"] = intervals["start"] * 0.05 + (intervals["run_id"] % 4)
    draw = _run_sampler(intervals["run_id"].to_numpy(), intervals["condition"].to_numpy())
    rows, runs = draw(np.random.default_rng(1))
    resample = intervals.iloc[rows].assign(run_id=runs)
    for adjust in ((), ("exposure",)):
        terms = ["pe", *adjust]
        coef, sd = _refit(resample["start"].to_numpy(float), resample["stop"].to_numpy(float),
                          resample["event"].to_numpy(bool), resample[terms].to_numpy(float),
                          resample["condition"].to_numpy(), terms)  # type: ignore[misc]  # fmt: skip
        row = adjusted_time_varying_cox(resample, "pe", adjust, strata="condition").iloc[0]
        assert (row["note"], row["runs"]) == ("", 150)  # distinct ids: a run drawn twice counts twice
        assert coef == pytest.approx(row["coef"], rel=1e-6)
        assert math.exp(coef * sd) == pytest.approx(row["hr_per_sd"], rel=1e-6)


def test_too_few_resamples_fitted_is_said_in_words() -> None:
    intervals = simulate_intervals(0, runs=16, h0=0.005)
    crashes = int(intervals["event"].sum())
    assert 5 <= crashes <= 8  # enough for the fit on the data, too few in many resamples
    result = bootstrap_hazard_ratio(intervals, "pe", replicates=50)
    assert math.isfinite(result.hr_per_sd)
    assert result.fitted < result.replicates
    assert math.isnan(result.hr_per_sd_lo) and math.isnan(result.hr_per_sd_hi)
    assert "too few resamples fitted" in result.note and "fewer than 5 crashes" in result.note, result.note


def test_a_few_resamples_not_fitted_widen_the_interval_and_are_named() -> None:
    intervals = simulate_intervals(0, runs=40, h0=0.005)  # 11 crashes: 2 of 200 resamples have fewer than 5
    result = bootstrap_hazard_ratio(intervals, "pe", replicates=200)
    assert result.fitted == 198, result.note
    assert result.hr_per_sd_lo < result.hr_per_sd < result.hr_per_sd_hi
    assert result.note.startswith("2 of 200 resamples not fitted (most often: fewer than 5 crashes)"), result.note


def test_percentile_bounds_put_unfitted_resamples_beyond_either_bound() -> None:
    estimates = np.random.default_rng(0).normal(size=198)
    lo, hi = _percentile_bounds(estimates, 0, 0.95)
    np.testing.assert_allclose([lo, hi], np.quantile(estimates, [0.025, 0.975], method="weibull"))
    lo2, hi2 = _percentile_bounds(estimates, 2, 0.95)  # as if two more lay at -inf for lo and +inf for hi
    assert lo2 == pytest.approx(np.quantile(np.r_[estimates, -1e9, -1e9], 0.025, method="weibull"))
    assert hi2 == pytest.approx(np.quantile(np.r_[estimates, 1e9, 1e9], 0.975, method="weibull"))
    assert lo2 < lo and hi2 > hi
    assert all(map(math.isnan, _percentile_bounds(estimates[:195], 5, 0.95)))  # rank 5.025 falls on one


def test_a_model_the_data_cannot_support_is_not_resampled() -> None:
    intervals = simulate_intervals(0, runs=6, h0=0.01)
    result = bootstrap_hazard_ratio(intervals, "pe", replicates=40)
    assert result.fitted == 0 and math.isnan(result.hr_per_sd) and math.isnan(result.hr_per_sd_lo)
    assert "crashes" in result.note and "no resampling" in result.note, result.note


def test_bootstrap_rejects_a_meaningless_request() -> None:
    intervals = simulate_intervals(0, runs=20)
    with pytest.raises(ValueError, match="replicates"):
        bootstrap_hazard_ratio(intervals, "pe", replicates=1)
    with pytest.raises(ValueError, match="level"):
        bootstrap_hazard_ratio(intervals, "pe", level=95)


# ---------------------------------------------------------------------------------------------------------
# Schoenfeld

Z975, Z80, Z90 = 1.959963984540054, 0.8416212335729143, 1.2815515655446004  # standard normal quantiles


def test_schoenfeld_events_by_hand() -> None:
    # HR 1.5 per SD, 80% power, two-sided 5%: (1.95996 + 0.84162)^2 / log(1.5)^2 = 7.84888 / 0.16440 = 47.74
    assert schoenfeld_events(1.5) == pytest.approx((Z975 + Z80) ** 2 / math.log(1.5) ** 2)
    assert schoenfeld_events(1.5) == pytest.approx(47.742, abs=1e-3)
    assert schoenfeld_events(1.5, power=0.9) == pytest.approx(63.913, abs=1e-3)  # (1.95996 + 1.28155)^2 / 0.16440
    assert schoenfeld_events(1 / 1.5) == pytest.approx(schoenfeld_events(1.5))  # symmetric in log HR
    assert schoenfeld_events(1.5, sd_variance=0.25) == pytest.approx(4 * 47.742, abs=4e-3)
    assert schoenfeld_events(2.0) == pytest.approx(16.336, abs=1e-3)  # 7.84888 / 0.48045
    assert schoenfeld_events(1.0) == math.inf


def test_minimum_detectable_hr_inverts_the_events() -> None:
    assert minimum_detectable_hr(schoenfeld_events(1.5)) == pytest.approx(1.5)
    assert minimum_detectable_hr(100) == pytest.approx(math.exp((Z975 + Z80) / 10))  # exp(0.28016)
    assert minimum_detectable_hr(100) == pytest.approx(1.3233, abs=1e-4)
    assert minimum_detectable_hr(100, power=0.9, alpha=0.01) > minimum_detectable_hr(100)


def test_runs_needed_divides_by_the_crash_share() -> None:
    assert runs_needed(1.5, event_rate=0.4) == pytest.approx(47.742 / 0.4, abs=1e-2)  # 119.36 runs
    assert runs_needed(1.5, event_rate=1.0) == pytest.approx(schoenfeld_events(1.5))
    for bad in ({"event_rate": 0.0}, {"event_rate": 1.2}):
        with pytest.raises(ValueError, match="event_rate"):
            runs_needed(1.5, **bad)
    with pytest.raises(ValueError, match="power"):
        schoenfeld_events(1.5, power=80)
    with pytest.raises(ValueError, match="positive"):
        schoenfeld_events(-1.5)


# ---------------------------------------------------------------------------------------------------------
# Benjamini-Hochberg


def test_benjamini_hochberg_by_hand_with_a_nan() -> None:
    # m = 5 (the NaN does not count); sorted 0.005 0.01 0.03 0.04 0.5 -> m p / rank: 0.025 0.025 0.05 0.05 0.5,
    # already non-decreasing, so these are the q-values
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.005, math.nan, 0.5])
    np.testing.assert_allclose(q, [0.025, 0.05, 0.05, 0.025, math.nan, 0.5])
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.02, 0.03]), [0.03, 0.03, 0.03])  # m p / rank, all 0.03
    # the step-up minimum: m p / rank = 0.04 0.08 0.06 0.05, and the 0.05 of rank 4 pulls 0.08 and 0.06 down
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.04, 0.045, 0.05]), [0.04, 0.05, 0.05, 0.05])
    # capped at 1: 0.9 x 2 = 1.8 -> min(1.8, 0.95) = 0.95
    np.testing.assert_allclose(benjamini_hochberg([0.9, 0.95]), [0.95, 0.95])


def test_benjamini_hochberg_keeps_order_shape_and_missing_values() -> None:
    p = np.random.default_rng(0).uniform(size=200) ** 3
    q = benjamini_hochberg(p)
    order = np.argsort(p)
    assert (np.diff(q[order]) >= 0).all()  # monotone in p
    assert (q >= p).all() and (q <= 1).all()
    assert benjamini_hochberg(p.reshape(20, 10)).shape == (20, 10)
    np.testing.assert_allclose(benjamini_hochberg(p.reshape(20, 10)).ravel(), q)
    assert np.isnan(benjamini_hochberg([math.nan, math.nan])).all()
    assert benjamini_hochberg([]).shape == (0,)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg([0.5, 1.5])
