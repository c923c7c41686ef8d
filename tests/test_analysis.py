"""The analysis (`vendomini_eval.analysis`, `vendomini analyze`): statistics checked against known truth on
synthetic data, then the whole path from real Inspect logs of the scripted models to the HTML report.

Synthetic truths: a time-varying PE covariate with a known hazard ratio (piecewise-constant hazard
h(t) = h0 * exp(beta * x(t)), x known before each step), exponential survival with a known median, censored
runs that must never count as crashes, and a Wilson interval computed by hand.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vendomini_eval.analysis import (
    AnalysisInputError,
    ThresholdsError,
    analyze,
    load_runs,
    load_thresholds,
    resolve_thresholds,
    runs_table,
    stats,
    steps_table,
    write_report,
)
from vendomini_eval.analysis.load import LoadedLogs, LogHeader, RunRecord
from vendomini_eval.analysis.report import POOLED, incoherence_by_model, non_starters, survival_statistics
from vendomini_eval.analysis.tables import business_metrics
from vendomini_eval.cli import main
from vendomini_eval.condition import Condition
from vendomini_eval.results import EpisodeSummary
from vendomini_eval.runner import run_policy

# ----- synthetic data with known truth --------------------------------------------------------------------


def simulate_pe_hazard(seed: int, runs: int = 300, horizon: int = 100, h0: float = 0.01, beta: float = 0.8
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Runs whose crash hazard in step t is h0 * exp(beta * x), x the cumulative PE at the end of step t-1.

    The PE accumulator grows as in a run: most steps resolve nothing, some add a PE in [0, 0.5]. A run is
    censored at `horizon`. Returns the runs table and the steps table the analysis builds from logs."""
    rng = np.random.default_rng(seed)
    run_rows, step_rows = [], []
    for i in range(runs):
        run_id, x, crashed, end = f"run{i}", 0.0, False, horizon
        for t in range(1, horizon + 1):
            crash_now = rng.random() < 1 - math.exp(-h0 * math.exp(beta * x))  # hazard of step t uses x(t-1)
            x += rng.random() * 0.5 if rng.random() < 0.1 else 0.0
            step_rows.append((run_id, t, x))
            if crash_now:
                crashed, end = True, t
                break
        run_rows.append((run_id, end, crashed))
    return (pd.DataFrame(run_rows, columns=["run_id", "time_to_crash", "crashed"]),
            pd.DataFrame(step_rows, columns=["run_id", "step", "pe_combined_cum"]))  # fmt: skip


def test_time_varying_cox_recovers_a_known_hazard_ratio() -> None:
    beta = 0.8
    runs, steps = simulate_pe_hazard(seed=0, beta=beta)
    intervals = stats.pe_intervals(runs, steps, ["pe_combined_cum"])
    [row] = stats.time_varying_cox(intervals, ["pe_combined_cum"]).to_dict("records")
    assert row["note"] == ""
    assert row["crashes"] == int(runs["crashed"].sum())
    assert row["hr_lo"] <= math.exp(beta) <= row["hr_hi"], row
    assert row["hr_lo"] > 1  # and the effect is found, not just covered by a wide interval


def test_stratified_time_varying_cox_recovers_the_hazard_ratio_across_baselines() -> None:
    # two conditions with a fourfold difference in baseline hazard, the same PE effect in both
    beta = 0.8
    low_runs, low_steps = simulate_pe_hazard(seed=2, runs=150, h0=0.005, beta=beta)
    high_runs, high_steps = simulate_pe_hazard(seed=3, runs=150, h0=0.02, beta=beta)
    for frame in (high_runs, high_steps):
        frame["run_id"] = "high-" + frame["run_id"]
    runs = pd.concat([low_runs.assign(group="low"), high_runs.assign(group="high")], ignore_index=True)
    steps = pd.concat([low_steps, high_steps], ignore_index=True)
    intervals = stats.pe_intervals(runs, steps, ["pe_combined_cum"]).merge(runs[["run_id", "group"]], on="run_id")
    [row] = stats.time_varying_cox(intervals, ["pe_combined_cum"], strata="group").to_dict("records")
    assert row["strata"] == "group" and row["note"] == ""
    assert row["hr_lo"] <= math.exp(beta) <= row["hr_hi"], row


def test_the_sweep_lock_is_expected_beside_the_logs() -> None:
    from vendomini_eval.analysis.load import INSPECT_BOOKKEEPING
    from vendomini_eval.sweep.run import LOCK_FILE

    assert LOCK_FILE in INSPECT_BOOKKEEPING


def two_models(beta: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model `pe-driven`: crash hazard h0 * exp(beta * x). Model `pe-blind`: a fivefold baseline hazard and four
    times the PE, but no PE effect at all. Pooled without the model, its PE and crashes look like an effect."""
    driven_runs, driven_steps = simulate_pe_hazard(seed=20, runs=200, h0=0.005, beta=beta)
    blind_runs, blind_steps = simulate_pe_hazard(seed=21, runs=200, h0=0.025, beta=0.0)
    blind_steps["pe_combined_cum"] *= 4.0  # beta 0: the crash times do not depend on it
    for frame in (blind_runs, blind_steps):
        frame["run_id"] = "blind-" + frame["run_id"]
    common = {"experiment": "synthetic", "condition_label": "base"}
    runs = pd.concat([driven_runs.assign(model="pe-driven", group="pe-driven", **common),
                      blind_runs.assign(model="pe-blind", group="pe-blind", **common)], ignore_index=True)  # fmt: skip
    return runs, pd.concat([driven_steps, blind_steps], ignore_index=True)


def test_the_pe_effect_is_estimated_per_model_and_pooling_needs_asking() -> None:
    beta = 0.8
    runs, steps = two_models(beta)
    tables = survival_statistics(runs, steps, [])
    rows = tables["tv_cox"].set_index(["model", "covariate"])
    driven, blind = rows.loc[("pe-driven", "pe_combined_cum")], rows.loc[("pe-blind", "pe_combined_cum")]
    assert driven["note"] == "" and driven["hr_lo"] <= math.exp(beta) <= driven["hr_hi"] and driven["hr_lo"] > 1
    assert blind["note"] == "" and blind["hr_lo"] <= 1.0 <= blind["hr_hi"], blind
    assert set(tables["tv_cox"]["model"]) == {"pe-driven", "pe-blind"}  # nothing pooled unless asked
    # What a model-blind fit would report: an effect in neither model's range.
    intervals = stats.pe_intervals(runs, steps, ["pe_combined_cum"])
    [blind_pool] = stats.time_varying_cox(intervals, ["pe_combined_cum"]).to_dict("records")
    assert not blind_pool["hr_lo"] <= 1.0 <= blind_pool["hr_hi"] and blind_pool["hr"] < driven["hr_lo"], blind_pool
    # Asked for, the pooled rows keep the model as a stratum; none pools without it.
    pooled = survival_statistics(runs, steps, [], pool_models=True)["tv_cox"]
    assert set(pooled.loc[pooled["model"] == POOLED, "strata"]) == {"model", "group"}
    by_model = pooled[(pooled["model"] == POOLED) & (pooled["strata"] == "model")].set_index("covariate")
    assert by_model.loc["pe_combined_cum", "hr"] != blind_pool["hr"]


def test_missing_cards_read_as_zero_pe_do_not_make_the_headline_effect() -> None:
    """One model, two conditions, no PE effect in either: with cards (PE accumulates) at a low hazard, and
    without cards (the PE sum stays 0: nothing was predicted) at a fivefold hazard. Across the conditions, low
    PE goes with crashing: a protective 'effect' of PE made by the prediction protocol alone. The headline reads
    the fit within conditions, which the silent condition cannot move."""
    from vendomini_eval.analysis.report import HEADLINE_COVARIATE, headline_pe_fit

    cards_runs, cards_steps = simulate_pe_hazard(seed=30, runs=200, h0=0.005, beta=0.0)
    silent_runs, silent_steps = simulate_pe_hazard(seed=31, runs=200, h0=0.025, beta=0.0)
    silent_steps["pe_combined_cum"] = 0.0  # no card stated: no PE ever resolved
    for frame in (silent_runs, silent_steps):
        frame["run_id"] = "silent-" + frame["run_id"]
    common = {"experiment": "synthetic", "model": "m"}
    arms = [
        cards_runs.assign(condition_label="cards", group="cards", **common),
        silent_runs.assign(condition_label="silent", group="silent", **common),
    ]
    runs = pd.concat(arms, ignore_index=True)
    tv = survival_statistics(runs, pd.concat([cards_steps, silent_steps], ignore_index=True), [])["tv_cox"]
    across = tv[(tv["covariate"] == HEADLINE_COVARIATE) & (tv["strata"] == "")].iloc[0]
    assert across["hr_hi"] < 1.0, across  # the artefact exists across conditions
    [shown] = headline_pe_fit(tv, "m").to_dict("records")
    assert shown["strata"] == "group" and shown["note"] == ""
    assert shown["hr_lo"] <= 1.0 <= shown["hr_hi"], shown


def test_non_starters_stay_out_of_the_pe_models() -> None:
    """A model with no PE effect, plus runs that never functioned: from step 1 they repeat a call with a wrong
    expectation (a PE each step) and crash at steps 5-12, before any productive action. In the PE models they
    would make a strong 'effect' out of the failure to start; marked as non-starters they stay out of them,
    and the headline counts them."""
    runs, steps = simulate_pe_hazard(seed=5, runs=200, h0=0.01, beta=0.0)
    rng = np.random.default_rng(6)
    onsets = rng.integers(5, 13, size=80)
    stuck = pd.DataFrame({"run_id": [f"stuck{i}" for i in range(80)], "time_to_crash": onsets, "crashed": True})
    rows = [(f"stuck{i}", t, 0.5 * t) for i, onset in enumerate(onsets) for t in range(1, onset + 1)]
    stuck_steps = pd.DataFrame(rows, columns=["run_id", "step", "pe_combined_cum"])
    runs = pd.concat([runs.assign(non_starter=False), stuck.assign(non_starter=True)], ignore_index=True)
    runs = runs.assign(model="m", group="m", experiment="synthetic", condition_label="base")
    steps = pd.concat([steps, stuck_steps], ignore_index=True)
    [naive] = stats.time_varying_cox(stats.pe_intervals(runs, steps, ["pe_combined_cum"]),
                                     ["pe_combined_cum"]).to_dict("records")  # fmt: skip
    assert naive["hr_lo"] > 1.0, naive  # the artefact
    tables = survival_statistics(runs, steps, [])
    assert not tables["intervals"]["run_id"].str.startswith("stuck").any()
    [row] = tables["tv_cox"][tables["tv_cox"]["covariate"] == "pe_combined_cum"].to_dict("records")
    assert row["hr_lo"] <= 1.0 <= row["hr_hi"], row
    assert non_starters(runs).sum() == 80 and not non_starters(runs.drop(columns="non_starter")).any()


def test_time_varying_cox_finds_no_effect_when_there_is_none() -> None:
    runs, steps = simulate_pe_hazard(seed=1, beta=0.0, h0=0.02)
    [row] = stats.time_varying_cox(stats.pe_intervals(runs, steps, ["pe_combined_cum"]),
                                   ["pe_combined_cum"]).to_dict("records")  # fmt: skip
    assert row["hr_lo"] <= 1.0 <= row["hr_hi"], row


def test_pe_intervals_lag_the_covariate_and_stop_at_the_onset() -> None:
    runs = pd.DataFrame({"run_id": ["a", "b"], "time_to_crash": [3, 2], "crashed": [True, False]})
    # run a goes on 2 steps past its crash onset (continue_after_crash): no longer at risk there
    steps = pd.DataFrame({"run_id": ["a"] * 5 + ["b"] * 2, "step": [1, 2, 3, 4, 5, 1, 2],
                          "pe_combined_cum": [0.1, 0.3, 0.6, 0.9, 1.0, 0.2, 0.4]})  # fmt: skip
    intervals = stats.pe_intervals(runs, steps, ["pe_combined_cum"])
    assert intervals.to_dict("list") == {
        "run_id": ["a", "a", "a", "b", "b"],
        "start": [0, 1, 2, 0, 1],
        "stop": [1, 2, 3, 1, 2],
        "event": [False, False, True, False, False],
        "pe_combined_cum": [0.0, 0.1, 0.3, 0.0, 0.2],
    }
    blocks = stats.pe_intervals(runs, steps, ["pe_combined_cum"], block=2)
    assert blocks[["start", "stop", "event", "pe_combined_cum"]].values.tolist() == [
        [0, 2, False, 0.0], [2, 3, True, 0.3], [0, 2, False, 0.0]]  # fmt: skip


def test_a_pe_level_is_missing_before_the_first_prediction_never_zero() -> None:
    """A sum is 0 before anything is summed; a level (EWMA) has no value until the run's first prediction, and
    those blocks leave the Cox risk set instead of counting as perfect predictions."""
    runs = pd.DataFrame({"run_id": ["a"], "time_to_crash": [4], "crashed": [True]})
    steps = pd.DataFrame({"run_id": ["a"] * 4, "step": [1, 2, 3, 4],
                          "pe_combined_cum": [0.0, 0.0, 0.5, 0.7],
                          "pe_combined_ewma_fast": [math.nan, math.nan, 0.5, 0.3]})  # fmt: skip
    intervals = stats.pe_intervals(runs, steps, ["pe_combined_cum", "pe_combined_ewma_fast"])
    assert intervals["pe_combined_cum"].tolist() == [0.0, 0.0, 0.0, 0.5]
    ewma = intervals["pe_combined_ewma_fast"].tolist()
    assert all(math.isnan(v) for v in ewma[:3]) and ewma[3] == 0.5


def test_aligned_trajectories_put_the_onset_at_zero() -> None:
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "time_to_crash": [3, 4, 2], "crashed": [True, True, False]})
    steps = pd.DataFrame({"run_id": ["a"] * 5 + ["b"] * 4 + ["c"] * 2, "step": [1, 2, 3, 4, 5, 1, 2, 3, 4, 1, 2],
                          "pe_combined_ewma_fast": [0.1, 0.2, 0.5, 9, 9, 0.0, 0.1, 0.2, 0.3, 0.0, 0.1]})  # fmt: skip
    table = stats.aligned_trajectories(runs, steps, window=2).set_index(["runs_kind", "relative_step"])
    assert table.loc[("crashed", 0), "mean"] == pytest.approx(0.4)  # a at its onset 3 (0.5), b at 4 (0.3)
    assert table.loc[("crashed", -1), "mean"] == pytest.approx(0.2)
    assert table.loc[("censored", 0), "mean"] == pytest.approx(0.1) and table.loc[("censored", 0), "runs"] == 1
    assert len(table) == 4  # the window; steps after the onset are not shown


def test_kaplan_meier_median_of_exponential_survival() -> None:
    rate = 0.05
    rng = np.random.default_rng(7)
    crash_times = rng.exponential(1 / rate, size=400)
    censor_times = np.minimum(rng.exponential(1 / 0.01, size=400), 60.0)  # dropout, then the horizon
    runs = pd.DataFrame({"group": "g", "time_to_crash": np.minimum(crash_times, censor_times),
                         "crashed": crash_times <= censor_times})  # fmt: skip
    table, fits = stats.kaplan_meier(runs, ["group"])
    [row] = table.to_dict("records")
    true_median = math.log(2) / rate
    assert row["median_lo"] <= true_median <= row["median_hi"], row
    assert row["median_lo"] < row["median"] < row["median_hi"]
    assert set(fits) == {"g"}


def test_censored_runs_never_count_as_crashes() -> None:
    runs = pd.DataFrame({
        "group": ["mixed"] * 8 + ["censored"] * 3,
        "time_to_crash": [5, 10, 15, 2, 3, 50, 60, 60, 10, 20, 60],
        "crashed": [True, True, True, False, False, False, False, False, False, False, False],
    })  # fmt: skip
    rates = stats.crash_rates(runs, ["group"]).set_index("group")
    assert rates.loc["mixed", ["runs", "crashes"]].tolist() == [8, 3]
    assert rates.loc["censored", ["runs", "crashes", "crash_rate"]].tolist() == [3, 0, 0.0]
    table, fits = stats.kaplan_meier(runs, ["group"])
    mixed, censored = fits["mixed"], fits["censored"]
    assert int(mixed.event_table["observed"].sum()) == 3
    assert float(mixed.predict(4.0)) == 1.0  # runs censored at 2 and 3 leave S at 1
    assert float(mixed.predict(5.0)) == pytest.approx(1 - 1 / 6)  # 6 at risk at step 5, one crash
    assert int(censored.event_table["observed"].sum()) == 0
    assert (censored.survival_function_.to_numpy() == 1.0).all()
    row = table.set_index("group").loc["censored"]
    assert math.isnan(row["median"]) and "not reached" in row["note"]


def test_wilson_interval_by_hand() -> None:
    # 3 crashes in 10 runs, z = 1.96: centre (0.3 + 1.96^2/20) / (1 + 1.96^2/10) = 0.355509...,
    # half-width 1.96 * sqrt(0.3*0.7/10 + 1.96^2/400) / 1.38416 = 0.247727...
    p, lo, hi = stats.wilson_interval(3, 10, z=1.96)
    assert p == 0.3
    assert lo == pytest.approx(0.107789, abs=1e-5)
    assert hi == pytest.approx(0.603236, abs=1e-5)
    assert stats.wilson_interval(0, 20)[1] == 0.0 and stats.wilson_interval(0, 20)[2] > 0
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))
    for runs in range(1, 60):  # every run crashed: the upper bound is 1, never a rounding below the estimate
        assert stats.wilson_interval(runs, runs)[1:] <= (1.0, 1.0) and stats.wilson_interval(runs, runs)[2] == 1.0


def dose_runs(seed: int, hr_per_unit: float, per_dose: int = 250) -> pd.DataFrame:
    """Exponential times to crash with log-hazard linear in p_shock (baseline 0.01 per step), censored at 100."""
    rng = np.random.default_rng(seed)
    doses = np.repeat([0.0, 0.1, 0.3, 0.5], per_dose)
    crash = rng.exponential(1 / (0.01 * hr_per_unit**doses))
    return pd.DataFrame({"p_shock": doses, "model": "m", "time_to_crash": np.minimum(crash, 100.0),
                         "crashed": crash <= 100.0})  # fmt: skip


def test_dose_response_trend_covers_the_true_hazard_ratio() -> None:
    # A 95% interval misses in 1 of 20 samples on average: check its coverage over 20 samples rather than
    # one lucky seed (fewer than 16 covers would happen with probability < 0.001 for a correct interval).
    true_hr_per_unit = 8.0
    covered = 0
    for seed in range(20):
        rates, trend = stats.dose_response(dose_runs(seed, true_hr_per_unit))
        [row] = trend.to_dict("records")
        assert row["covariate"] == "p_shock" and row["p"] < 0.001
        covered += row["hr_lo"] <= true_hr_per_unit <= row["hr_hi"]
    assert rates["runs"].tolist() == [250] * 4
    assert rates["crash_rate"].is_monotonic_increasing
    assert covered >= 16, covered


def test_cox_on_condition_factors_with_ph_test() -> None:
    runs = dose_runs(1, 8.0)
    cox, ph = stats.cox_conditions(runs, ["p_shock"])
    assert len(cox) == 3 and (cox["note"] == "").all()  # three levels against the reference p_shock=0.0
    assert cox["hr"].is_monotonic_increasing and (cox["hr"] > 1).all()
    assert set(ph["covariate"]) == set(cox["covariate"]) and ph["p"].between(0, 1).all()


def test_statistics_say_when_there_are_too_few_runs() -> None:
    runs = pd.DataFrame({"p_shock": [0.0, 0.3], "model": "m", "time_to_crash": [5, 9], "crashed": [True, False]})
    table, _ = stats.kaplan_meier(runs, ["p_shock"])
    assert table["median"].isna().all() and table["note"].str.startswith("too few runs").all()
    cox, _ = stats.cox_conditions(runs, ["p_shock"])
    assert math.isnan(cox["hr"].iloc[0]) and cox["note"].iloc[0].startswith("too few crashes")
    [row] = stats.logrank_by_factor(runs, ["p_shock"]).to_dict("records")
    assert math.isnan(row["p"]) and row["note"].startswith("too few crashes")


# ----- why a Cox model is not estimable, in words -------------------------------------------------------------

BARE_CLASS_NAME = re.compile(r"not estimable: \w+(Error|Exception)$")


def assert_not_estimable(table: pd.DataFrame, *words: str) -> None:
    """Every row of a Cox table NaN, with a note holding `words` and never a bare exception name."""
    assert table["coef"].isna().all() and table["hr"].isna().all(), table
    for note in table["note"]:
        assert all(w in note for w in words) and not BARE_CLASS_NAME.match(note), note


def two_level_runs(per_level: int = 10, crash_level: str = "b") -> pd.DataFrame:
    """Runs of factor f at levels a and b: every run of `crash_level` crashes (steps 5 to 5 + per_level - 1), no
    run of the other does (censored at 100)."""
    crashed = np.repeat(["a", "b"], per_level) == crash_level
    steps = np.where(crashed, 5 + np.arange(2 * per_level) % per_level, 100)
    return pd.DataFrame({"f": np.repeat(["a", "b"], per_level), "p_shock": np.repeat([0.0, 0.5], per_level),
                         "model": "m", "time_to_crash": steps, "crashed": crashed})  # fmt: skip


def tv_intervals(values: list[float], crash_at: list[int | None], horizon: int = 20) -> pd.DataFrame:
    """The (start, stop] table of runs whose pe_combined_cum is `values[i]` from step 1 on, crashing at step
    `crash_at[i]` (None: censored at `horizon`)."""
    runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(len(values))],
                         "time_to_crash": [horizon if t is None else t for t in crash_at],
                         "crashed": [t is not None for t in crash_at]})  # fmt: skip
    steps = pd.DataFrame([(f"r{i}", t, v) for i, v in enumerate(values) for t in range(1, horizon + 1)],
                         columns=["run_id", "step", "pe_combined_cum"])  # fmt: skip
    return stats.pe_intervals(runs, steps, ["pe_combined_cum"])


def test_no_crashes_and_too_few_crashes_are_named() -> None:
    runs = two_level_runs()
    calm = runs.assign(crashed=False, time_to_crash=100)
    assert_not_estimable(stats.cox_conditions(calm, ["f"])[0], "no crashes (a Cox model needs at least 5)")
    assert_not_estimable(stats.dose_response(calm)[1], "no crashes")
    few = runs.assign(crashed=runs["crashed"] & (runs["time_to_crash"] < 8))
    assert_not_estimable(stats.cox_conditions(few, ["f"])[0], "too few crashes (3 < 5)")
    intervals = tv_intervals([1.0, 2.0, 3.0, 4.0], [None, None, None, None])
    assert_not_estimable(stats.time_varying_cox(intervals, ["pe_combined_cum"]), "no crashes")


def test_no_variation_in_the_covariate_is_named() -> None:
    values = [float(i % 3) for i in range(12)]
    crash_at = [3 + i if i % 2 else None for i in range(12)]
    constant = tv_intervals([2.0] * 12, crash_at).assign(pe_combined_cum=2.0)
    assert_not_estimable(stats.time_varying_cox(constant, ["pe_combined_cum"]), "no variation in the covariate")
    # it varies only between strata: each run its own stratum leaves no risk set with two values in it
    by_run = stats.time_varying_cox(tv_intervals(values, crash_at), ["pe_combined_cum"], strata="run_id")
    assert_not_estimable(by_run, "no variation in the covariate among the runs at risk at any crash")


def test_complete_separation_is_named_with_its_side() -> None:
    # every run at level b crashes, none at a: the hazard ratio of b grows without bound
    cox, ph = stats.cox_conditions(two_level_runs(), ["f"])
    assert_not_estimable(cox, "complete separation (every crash while a run with f=b was at risk came from such a run)",
                         "grows without bound")  # fmt: skip
    assert ph["note"].tolist() == ["not run: the Cox model is not estimable"]
    cox, _ = stats.cox_conditions(two_level_runs(crash_level="a"), ["f"])
    assert_not_estimable(cox, "no run with f=b crashed while a run without it was at risk", "falls to 0")
    assert_not_estimable(stats.dose_response(two_level_runs())[1], "the highest p_shock at risk")
    # a time-varying covariate: the runs above 1 crash, highest first; none below does
    values = [3.0, 2.5, 2.0, 1.6, 1.3, 1.1, 0.9, 0.7, 0.5, 0.3, 0.2, 0.1]
    intervals = tv_intervals(values, [3, 4, 5, 6, 7, 8] + [None] * 6)
    row = stats.time_varying_cox(intervals, ["pe_combined_cum"])
    assert_not_estimable(row, "complete separation (at every crash the crashing run had the highest "
                         "pe_combined_cum at risk)", "|coef| x SD reached")  # fmt: skip
    columns = [intervals[c].to_numpy(t) for c, t in (("start", float), ("stop", float), ("event", bool),
                                                       ("pe_combined_cum", float))]  # fmt: skip
    with pytest.raises(stats.Diverging), np.errstate(all="ignore"):  # a ValueError still, as before
        stats.efron_time_varying_cox(*columns)
    assert issubclass(stats.Diverging, ValueError)


def test_a_diverging_estimate_with_an_ordinary_looking_se_is_not_reported() -> None:
    """On separated data lifelines stops with a large coefficient but a standard error that passes the SE bound:
    the bound on |coef| x SD catches it."""
    from lifelines import CoxPHFitter

    dose = np.random.default_rng(3).random(200)
    crashed = dose > 0.5
    runs = pd.DataFrame({"p_shock": dose, "model": "m", "crashed": crashed,
                         "time_to_crash": np.where(crashed, (100 - 90 * dose).astype(int), 100)})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' ConvergenceWarning: the point of the test
        theirs = CoxPHFitter().fit(runs[["p_shock", "time_to_crash", "crashed"]], "time_to_crash", "crashed")
    coef, se = theirs.summary.loc["p_shock", ["coef", "se(coef)"]]
    sd = runs["p_shock"].std()
    assert se * sd < stats.MAX_SE_PER_SD and abs(coef) * sd > stats.MAX_COEF_PER_SD  # the SE alone lets it through
    trend = stats.dose_response(runs)[1]
    # runs crashing in the same step at different doses: near-separation, not complete
    assert_not_estimable(trend, f"diverging estimate (|coef| x SD {abs(coef) * sd:.3g} > 5): separation")


def test_too_few_runs_is_named() -> None:
    # more terms than runs: two factors with a level per run
    runs = pd.DataFrame({"a": list("uvwxyz"), "b": list("UVWXYZ"), "model": "m", "time_to_crash": [3, 5, 7, 9, 11, 13],
                         "crashed": [True] * 5 + [False]})  # fmt: skip
    assert_not_estimable(stats.cox_conditions(runs, ["a", "b"])[0], "too few runs (6 for 10 terms")
    # one run per level: each ratio rests on whether that one run crashed
    runs = pd.DataFrame({"a": list("stuvwxyz"), "model": "m", "time_to_crash": np.arange(3, 11),
                         "crashed": [True] * 6 + [False] * 2})  # fmt: skip
    cox, _ = stats.cox_conditions(runs, ["a"])
    assert_not_estimable(cox, "too few runs with a=")
    assert cox["note"].iloc[0].startswith("not estimable: too few runs with a=t (1 < 2; ")


def test_a_singular_design_names_the_collinear_terms() -> None:
    # each model ran one dose: the dose and the model cannot be told apart
    runs = dose_runs(0, 8.0, per_dose=30)
    runs["model"] = np.where(runs["p_shock"] >= 0.3, "big", "small")
    runs["p_shock"] = np.where(runs["p_shock"] >= 0.3, 0.5, 0.1)
    assert_not_estimable(stats.dose_response(runs)[1], "singular design: model=small is collinear with p_shock")
    runs["f"] = np.where(runs["model"] == "big", "on", "off")
    assert_not_estimable(stats.cox_conditions(runs, ["f"])[0], "singular design: model=small is collinear with f=on")
    # an adjustment covariate that is a linear function of the PE covariate
    sim_runs, steps = simulate_pe_hazard(seed=0, runs=100)
    intervals = stats.pe_intervals(sim_runs, steps, ["pe_combined_cum"])
    intervals["shocks_cum"] = 2 * intervals["pe_combined_cum"] + 1
    adjusted = stats.adjusted_time_varying_cox(intervals, "pe_combined_cum", ["shocks_cum"])
    assert_not_estimable(adjusted, "singular design: shocks_cum is collinear with pe_combined_cum")


def test_an_unforeseen_failure_gives_its_message_never_its_class_name_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from lifelines import CoxPHFitter

    def fails(message: str) -> object:
        def fit(*args: object, **kwargs: object) -> None:
            raise ArithmeticError(message)

        return fit

    sim_runs, steps = simulate_pe_hazard(seed=0, runs=100)
    intervals = stats.pe_intervals(sim_runs, steps, ["pe_combined_cum"])
    monkeypatch.setattr(stats, "efron_time_varying_cox", fails("the solver ran out of memory"))
    [note] = stats.time_varying_cox(intervals, ["pe_combined_cum"])["note"]
    assert note == "not estimable: the solver ran out of memory"
    monkeypatch.setattr(stats, "efron_time_varying_cox", fails(""))
    [note] = stats.time_varying_cox(intervals, ["pe_combined_cum"])["note"]
    assert note == "not estimable: ArithmeticError without a message"
    monkeypatch.setattr(CoxPHFitter, "fit", fails("delta contains nan value(s)\n  Convergence halted."))
    [note] = stats.dose_response(dose_runs(0, 8.0, per_dose=30))[1]["note"]  # no separation in these runs
    assert note == "not estimable: delta contains nan value(s) Convergence halted."


# ----- real logs of the scripted models ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny phase-1 grid: the heuristic at p_shock 0 and 0.3, and stall and looping faults from step 20 (at
    p_shock 0), 2 runs each."""
    from inspect_ai import eval

    from vendomini_eval.tasks.phase1 import phase1

    root = tmp_path_factory.mktemp("logs")
    logs = eval([phase1(max_steps=60, replications=2, p_shock=p) for p in (0.0, 0.3)], model="vendomini/heuristic",
                log_dir=str(root / "heuristic"), display="none")  # fmt: skip
    for fault, log_dir in (("stall", "shard-0-of-1"), ("looping", "looping")):
        logs += eval(
            phase1(max_steps=60, replications=2, p_shock=0.0),
            model="vendomini/heuristic",
            model_args={"fault": fault, "onset": 20},
            log_dir=str(root / log_dir),
            display="none",
        )
    assert all(log.status == "success" for log in logs)
    return root


def test_runs_table_from_real_logs(sweep_logs: Path) -> None:
    loaded = load_runs(sweep_logs)
    assert loaded.skipped == []
    runs = runs_table(loaded).set_index("run_id")
    assert len(runs) == 8
    heuristic = runs[runs["model"] == "vendomini/heuristic"]
    assert len(heuristic) == 4
    for fault_type in ("stall", "looping"):  # each fault model shows its own crash type
        fault = runs[runs["model"] == f"vendomini/heuristic[fault={fault_type},onset=20]"]
        assert len(fault) == 2 and fault["crashed"].all() and (fault["crash_type"] == fault_type).all()
        assert (fault["time_to_crash"] < 60).all() and not fault["censored"].any()
    calm = heuristic[heuristic["p_shock"] == 0.0]
    assert len(calm) == 2 and not calm["crashed"].any() and calm["censored"].all()
    assert (calm["crash_type"] == "none").all() and (calm["time_to_crash"] == 60).all()
    for column in ("experiment", "condition_label", "seed", "replication", "pe_mag", "prediction_mode",
                   "max_steps", "outcome", "net_worth", "pe_combined_sum", "brier_mean", "incoherent",
                   "time_to_incoherence", "predictions_made", "actions_without_card", "shocks_void"):  # fmt: skip
        assert column in runs, column
    assert set(runs["experiment"]) == {"phase1"} and set(runs["replication"]) == {0, 1}

    steps = steps_table(loaded)
    assert set(steps["run_id"]) == set(runs.index)
    per_run = steps.groupby("run_id")["step"].max()
    assert (per_run.loc[calm.index] == 60).all()
    assert {"tool", "valid", "pe_combined_cum", "pe_quantity_ewma_slow", "actionable", "predictions"} <= set(steps)
    assert "state_hash" not in steps


def test_analyze_command_writes_the_report(sweep_logs: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "report"
    assert main(["analyze", str(sweep_logs), "--out", str(out)]) == 0
    assert "8 runs from 4 logs" in capsys.readouterr().out
    for name in ("runs.csv", "runs.parquet", "steps.csv", "steps.parquet", "summary.csv", "index.html"):
        assert (out / name).is_file(), name
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.count("src='data:image/png;base64,") >= 2  # KM curves and the crash-type mix at least
    assert "<img alt='Kaplan-Meier" in page and "Time-varying Cox" in page and "too few crashes" in page
    assert "stall" in page and "looping" in page
    for figure in ("km", "crash_types", "pe_aligned"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 0
        assert (out / "figures" / f"{figure}.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 8 and runs["crashed"].dtype == bool
    summary = pd.read_csv(out / "summary.csv")
    assert summary["runs"].sum() == 8 and summary["crashes"].sum() == 4


def test_the_report_opens_with_a_row_per_model(sweep_logs: Path) -> None:
    from vendomini_eval.analysis.report import headline

    analysis = analyze(sweep_logs)
    table = headline(analysis).set_index("model")
    runs = analysis.runs
    assert sorted(table.index) == sorted(runs["model"].unique())
    for model, part in runs.groupby("model"):
        assert table.loc[model, "runs"] == len(part) and table.loc[model, "crashes"] == part["crashed"].sum()
    looping = table.loc["vendomini/heuristic[fault=looping,onset=20]"]
    assert looping["cif_crash"] == 1.0  # both runs crashed, nothing competes
    # each model's PE estimate stands alone or says why it cannot (2 runs cannot support a Cox model)
    assert all(isinstance(note, str) and note for note in table["pe_note"]), table["pe_note"]
    # and so does its estimate adjusted for the shocks and the business so far, within conditions
    adjusted = analysis.pe_adjusted.set_index("model")
    assert sorted(adjusted.index) == sorted(table.index)
    for terms in adjusted["adjusted_for"]:  # a term constant in a model's runs (no shock at p_shock 0) is left out
        assert set(terms.split(",")) <= {"shocks_cum", "blocked_cum", "cash", "goods_value"}, terms
    assert all(note for note in table["pe_adjusted_note"]), table["pe_adjusted_note"]


def test_the_heatmap_is_drawn_per_model_and_long_tables_are_linked(sweep_logs: Path, tmp_path: Path) -> None:
    from vendomini_eval.analysis.report import MAX_PAGE_ROWS, _long_table

    analysis = analyze(sweep_logs)
    analysis.factors = ["p_shock", "prediction_mode"]  # as if both had varied
    write_report(analysis, tmp_path / "report")
    assert (tmp_path / "report" / "figures" / "heatmap.png").stat().st_size > 1000
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Crash rate over the two main factors per model" in page
    body = page.split("</style>", 1)[1]  # every text placeholder is filled (the style sheet has braces of its own)
    assert "accumulated PE (<code>pe_combined_cum</code>)" in body and not re.search(r"\{[A-Za-z_.]+\}", body)
    long = pd.DataFrame({"group": [f"g{i}" for i in range(MAX_PAGE_ROWS + 1)]})
    assert _long_table(long, "summary").count("<tr") == 0 and "href='summary.csv'" in _long_table(long, "summary")
    assert _long_table(long.iloc[:MAX_PAGE_ROWS], "summary").count("<tr") == MAX_PAGE_ROWS + 1


def test_token_columns_are_the_sums_of_the_logs_usage_and_an_unknown_price_stays_empty(sweep_logs: Path) -> None:
    from inspect_ai.log import list_eval_logs, read_eval_log_sample_summaries

    from vendomini_eval.analysis.report import known_sum

    runs = runs_table(load_runs(sweep_logs))
    expected = {}
    for info in list_eval_logs(str(sweep_logs)):
        for summary in read_eval_log_sample_summaries(info.name):
            usages = list(summary.model_usage.values())
            assert usages, "a scripted model reports usage"
            expected[str(summary.id), sum(u.input_tokens for u in usages)] = (
                sum(u.output_tokens for u in usages),
                sum(u.total_tokens for u in usages),
                summary.working_time,
            )
    assert len(expected) == len(runs) == 8
    for row in runs.itertuples():
        output, total, working = expected[str(row.sample_id), row.input_tokens]
        assert (row.output_tokens, row.total_tokens, row.working_time) == (output, total, working)
        assert row.total_tokens > 0
    assert runs["cost_usd"].isna().all()  # no price known for the scripted models: empty, never 0
    assert math.isnan(known_sum(runs["cost_usd"])) and known_sum(runs["total_tokens"]) == runs["total_tokens"].sum()
    assert math.isnan(known_sum(pd.Series([1.0, math.nan])))  # a total with an unknown part is unknown


def test_plan_power_from_a_pilots_logs(sweep_logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vendomini_eval.analysis.inference import minimum_detectable_hr

    assert main(["plan", "phase1", "--power", "1.5", "--from-logs", str(sweep_logs)]) == 0
    out = capsys.readouterr().out
    assert "220 runs per model in this plan" in out  # phase 1: 44 conditions x 5 replications
    power = out[out.index("power from the pilot") :]
    looping = next(line for line in power.splitlines() if "fault=looping" in line).split()
    # 2 of 2 pilot runs crashed: 220 expected crashes, and the ratio they can detect
    assert looping[-3:] == ["220", "220.0", f"{minimum_detectable_hr(220):.6f}"]


def mixed_logs(sweep_logs: Path, tmp_path: Path) -> Path:
    """The sweep's logs with a skip of every kind beside them, and a newer retry of one log."""
    from inspect_ai.log import EvalError, read_eval_log, write_eval_log

    logs = tmp_path / "logs"
    shutil.copytree(sweep_logs, logs)
    (logs / "notes.txt").write_text("not a log", encoding="utf-8")
    (logs / "broken.eval").write_bytes(b"not a zip file")
    source = next((logs / "heuristic").glob("*.eval"))
    original = read_eval_log(str(source))
    for status in ("error", "cancelled", "started"):
        failed = original.model_copy(deep=True)
        failed.status = status
        write_eval_log(failed, str(logs / "failed" / f"{status}.eval"))
    # a retry of the same task, newer: its rep0 replaces the old one; its rep1 errored, so the old one stays
    retry = original.model_copy(deep=True)
    retry.eval.created = "2099-01-01T00:00:00+00:00"
    assert retry.samples is not None
    retry.samples[0].store["EpisodeRecord:summary"]["net_worth"] = 12345.0
    retry.samples[1].error = EvalError(message="boom", traceback="", traceback_ansi="")
    write_eval_log(retry, str(logs / "retry" / "retry.eval"))
    return logs


def test_skips_are_counted_and_retries_deduplicated(sweep_logs: Path, tmp_path: Path) -> None:
    logs = mixed_logs(sweep_logs, tmp_path)
    loaded = load_runs(logs)
    assert len(loaded.runs) == 8
    counts = loaded.skip_counts()
    assert counts == {"not a log": 1, "unreadable": 1, "log error": 1, "log cancelled": 1, "log started": 1,
                      "sample error": 1, "duplicate": 1}  # fmt: skip
    runs = runs_table(loaded).set_index("sample_id")
    replaced = runs[(runs["log"] == str(logs / "retry" / "retry.eval"))]
    assert replaced["net_worth"].tolist() == [12345.0]

    out = tmp_path / "report"
    assert main(["analyze", str(logs), "--out", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "7 skipped" in page and "broken.eval" in page and "notes.txt" in page


@pytest.mark.parametrize("cores", [2, 3])
def test_logs_read_at_once_load_as_read_one_by_one(sweep_logs: Path, tmp_path: Path, cores: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # a process per core reads the logs: the runs, the logs and every skip (the duplicate among them) come out
    # as from one process, in the same order
    from vendomini_eval.analysis import load

    logs = mixed_logs(sweep_logs, tmp_path)
    monkeypatch.setattr(load, "_cores", lambda: 1)
    alone = load_runs(logs)
    monkeypatch.setattr(load, "_cores", lambda: cores)
    at_once = load_runs(logs)
    assert at_once.skipped == alone.skipped and at_once.logs == alone.logs and len(alone.skipped) == 7
    assert [run.run_id for run in at_once.runs] == [run.run_id for run in alone.runs]
    pd.testing.assert_frame_equal(runs_table(at_once), runs_table(alone))
    pd.testing.assert_frame_equal(steps_table(at_once), steps_table(alone))


def test_a_summary_that_does_not_validate_is_skipped(sweep_logs: Path, tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log, write_eval_log

    log = read_eval_log(str(next((sweep_logs / "heuristic").glob("*.eval"))))
    assert log.samples is not None
    log.samples[0].store["EpisodeRecord:summary"]["steps"] = "many"
    write_eval_log(log, str(tmp_path / "logs" / "bad.eval"))
    loaded = load_runs(tmp_path / "logs")
    assert len(loaded.runs) == len(log.samples) - 1
    [skip] = loaded.skipped
    assert skip.reason.startswith("unreadable summary: steps: Input should be a valid integer")


def test_missing_or_empty_log_dir_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AnalysisInputError, match="no such directory"):
        load_runs(tmp_path / "absent")
    with pytest.raises(AnalysisInputError, match=r"no \.eval logs"):
        analyze(tmp_path)
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no .eval logs" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path / "out"), "--block", "0"]) == 2
    assert "--block 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_directory_of_failed_logs_reports_why_it_is_empty(sweep_logs: Path, tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log, write_eval_log

    log = read_eval_log(str(next((sweep_logs / "heuristic").glob("*.eval"))))
    log.status = "cancelled"
    write_eval_log(log, str(tmp_path / "logs" / "cancelled.eval"))
    analysis = analyze(tmp_path / "logs")
    assert analysis.runs.empty
    page = write_report(analysis, tmp_path / "out").read_text(encoding="utf-8")
    assert "No usable run" in page and "log cancelled" in page


def write_bad_logs(sweep_logs: Path, directory: Path) -> dict[Path, str]:
    """A log cut off in its first 3,000 bytes, 5,000 random bytes and an empty file, each as an `.eval` log, with
    the words its skip reason must hold."""
    directory.mkdir(parents=True, exist_ok=True)
    good = next((sweep_logs / "heuristic").glob("*.eval")).read_bytes()
    bad = {directory / "truncated.eval": (good[:3000], "truncated zip archive"),
           directory / "random.eval": (np.random.default_rng(0).bytes(5000), "not a zip archive"),
           directory / "empty.eval": (b"", "empty file")}  # fmt: skip
    for path, (content, _) in bad.items():
        path.write_bytes(content)
    return {path: words for path, (_, words) in bad.items()}


def test_a_directory_of_unreadable_logs_is_an_error_that_names_each_file_once(
    sweep_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_bad_logs(sweep_logs, tmp_path / "logs")
    out = tmp_path / "report"
    assert main(["analyze", str(tmp_path / "logs"), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    for path, words in bad.items():
        assert captured.err.count(str(path)) == 1, path
        [line] = [line for line in captured.err.splitlines() if str(path) in line]
        assert line.startswith(f"skipped {path}: unreadable: {words}"), line
    last = captured.err.splitlines()[-1]
    assert last.startswith("vendomini analyze: error: no run could be read") and "no report written" in last
    assert "unreadable 3" in last
    assert captured.out == "" and not out.exists()


def test_a_mixed_directory_reports_and_names_each_bad_file_once(
    sweep_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zipfile_zstd  # noqa: F401  -- zipfile reads and writes the log's zstd members

    logs = tmp_path / "logs"
    bad = write_bad_logs(sweep_logs, logs)
    good = next((sweep_logs / "heuristic").glob("*.eval"))
    shutil.copy(good, logs)
    # a finished header over missing samples: Inspect's own message names the file, the line must not again
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(logs / "no-samples.eval", "w") as dst:
        for info in src.infolist():
            if not info.filename.startswith("samples/"):
                dst.writestr(info, src.read(info))
    bad[logs / "no-samples.eval"] = "the samples cannot be read"
    (logs / "notes.txt").write_text("not a log", encoding="utf-8")
    bad[logs / "notes.txt"] = "not a .eval file"
    out = tmp_path / "report"
    assert main(["analyze", str(logs), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 runs from 2 logs; skipped: not a log 1, unreadable 4" in captured.out
    page = (out / "index.html").read_text(encoding="utf-8")
    for path, words in bad.items():
        assert captured.err.count(str(path)) == 1 and page.count(html.escape(str(path))) == 1, path
        [line] = [line for line in captured.err.splitlines() if str(path) in line]
        assert line.startswith(f"skipped {path}: ") and words in line, line
    assert len(captured.err.splitlines()) == len(bad) and str(good.name) not in captured.err


def test_skipped_samples_are_one_line_per_file() -> None:
    from vendomini_eval.analysis import Skipped
    from vendomini_eval.analysis.load import skip_lines

    skipped = [Skipped("a.eval", "sample error: boom", f"rep{i}/e1") for i in range(7)]
    skipped += [Skipped("b.eval", "unreadable: empty file (0 bytes)"),
                Skipped("a.eval", "duplicate: newer copy in c.eval", "rep9/e1")]  # fmt: skip
    assert skip_lines(skipped) == [
        "skipped a.eval: 8 samples: sample error: boom (rep0/e1, rep1/e1, rep2/e1, rep3/e1, rep4/e1, +2 more); "
        "duplicate: newer copy in c.eval (rep9/e1)",
        "skipped b.eval: unreadable: empty file (0 bytes)",
    ]


# ----- business measures ------------------------------------------------------------------------------------


def test_business_metrics_from_a_trace() -> None:
    # one step per day: the trace's day is the day after the step, so step 4's own day is 3
    columns = {"step": [1, 2, 3, 4, 5, 6], "day": [1, 2, 3, 4, 5, 6],
               "tool": ["order", "ship", "ship", "ship", "wait", "ship"],
               "valid": [True, True, False, True, True, False],
               "net_worth_cents": [70000, 69000, 68950, 71000, 70900, 70800]}  # fmt: skip
    metrics = business_metrics(columns)
    assert metrics == {"min_net_worth": 689.5, "days_until_sales_stop": 4}  # last valid ship: step 4, day 3
    # two steps per day: the sale in step 4 ended day 1 (days 0 and 1 run: 2 days)
    two_per_day = {**columns, "day": [0, 1, 1, 2, 2, 3]}
    assert business_metrics(two_per_day)["days_until_sales_stop"] == 2
    never_sold = {**columns, "valid": [True, False, False, False, True, False]}
    assert business_metrics(never_sold)["days_until_sales_stop"] == 0
    old_log = {name: values for name, values in columns.items() if name != "net_worth_cents"}
    assert math.isnan(business_metrics(old_log)["min_net_worth"])
    assert math.isnan(business_metrics({})["days_until_sales_stop"])


def test_business_measures_in_the_runs_table_and_report(sweep_logs: Path, tmp_path: Path) -> None:
    analysis = analyze(sweep_logs)
    runs = analysis.runs
    assert (runs["min_net_worth"] <= runs["net_worth"]).all()
    assert runs["days_until_sales_stop"].between(0, runs["days"] + 1).all()
    calm = runs[(runs["model"] == "vendomini/heuristic") & (runs["p_shock"] == 0.0)]
    assert (calm["days_until_sales_stop"] > 0).all()  # the competent heuristic ships orders
    assert {"mean_min_net_worth", "mean_days_until_sales_stop"} <= set(analysis.summary.columns)
    page = write_report(analysis, tmp_path / "out").read_text(encoding="utf-8")
    assert "<h2>Business</h2>" in page and "mean_days_until_sales_stop" in page


# ----- secondary endpoint and what older logs lack ------------------------------------------------------------


CENSORED_RUN = run_policy(Condition(max_steps=50, p_shock=0.0), 0).summary.model_dump(mode="json")
"""The stored summary of a real run censored at step 50."""
ADDED_WITH_THE_SECONDARY_ENDPOINT = ("incoherent", "incoherence_type", "time_to_incoherence", "incoherence",
                                     "shocks_void", "predictions_made", "actions_without_card")  # fmt: skip
OLD_RUN = {key: value for key, value in CENSORED_RUN.items() if key not in ADDED_WITH_THE_SECONDARY_ENDPOINT}
"""The same run as a log written before the secondary endpoint holds it."""


def synthetic_run(sample_id: str, summary: dict, columns: dict | None = None, model: str = "m") -> RunRecord:
    log = LogHeader(path="x.eval", task="phase1_base", model=model, model_args={}, status="success", created="",
                    metadata={})  # fmt: skip
    record = {"outcome": "censored", "trace": {"columns": columns or {}}}
    return RunRecord(log=log, sample_id=sample_id, epoch=1, metadata={}, summary=EpisodeSummary.model_validate(summary),
                     record=record, completed_at="")  # fmt: skip


SECONDARY = ["incoherent", "incoherence_type", "time_to_incoherence", "predictions_made", "actions_without_card",
             "shocks_void"]  # fmt: skip


def test_runs_table_reads_the_secondary_endpoint_and_leaves_unrecorded_values_missing() -> None:
    incoherent = {"incoherent": True, "incoherence_type": "decoupling", "time_to_incoherence": 12,
                  "predictions_made": 80, "actions_without_card": 0, "shocks_void": 2}  # fmt: skip
    coherent = {**incoherent, "incoherent": False, "incoherence_type": None, "time_to_incoherence": 50}
    loaded = LoadedLogs("logs", runs=[synthetic_run("a", CENSORED_RUN | incoherent),
                                      synthetic_run("b", CENSORED_RUN | coherent),
                                      synthetic_run("old", OLD_RUN, model="other")])  # fmt: skip
    runs = runs_table(loaded).set_index("sample_id")
    assert runs.loc["a", SECONDARY].tolist() == [True, "decoupling", 12, 80, 0, 2]
    assert runs.loc["b", SECONDARY].tolist() == [False, "none", 50, 80, 0, 2]
    assert runs.loc["old", SECONDARY].isna().all()  # not recorded: missing, never 0 or False

    [row] = incoherence_by_model(runs.reset_index()).to_dict("records")  # the old log's model has no row
    assert (row["model"], row["runs"], row["incoherent"], row["types"]) == ("m", 2, 1, "decoupling 1")
    assert row["incoherence_rate"] == 0.5 and row["incoherence_rate_lo"] < 0.5 < row["incoherence_rate_hi"]


def test_steps_table_carries_new_trace_columns_and_leaves_them_missing_in_older_traces() -> None:
    new = {"step": [1, 2], "tool": ["wait", "ship"], "actionable": [True, False], "predictions": [2, 0]}
    old = {"step": [1], "tool": ["wait"]}
    runs = [synthetic_run("a", CENSORED_RUN, new), synthetic_run("old", OLD_RUN, old)]
    steps = steps_table(LoadedLogs("logs", runs=runs))
    assert steps["actionable"].tolist() == [True, False, None]
    assert steps["predictions"].tolist()[:2] == [2, 0] and pd.isna(steps["predictions"].iloc[2])


def test_report_shows_the_secondary_endpoint(sweep_logs: Path, tmp_path: Path) -> None:
    analysis = analyze(sweep_logs)
    assert analysis.incoherence["runs"].sum() == 8
    assert set(analysis.incoherence["model"]) == set(analysis.runs["model"])
    page = write_report(analysis, tmp_path / "out").read_text(encoding="utf-8")
    assert "<h2>Secondary endpoint: incoherence</h2>" in page and "incoherence_rate" in page
    assert (tmp_path / "out" / "incoherence.csv").is_file()


# ----- thresholds ----------------------------------------------------------------------------------------------


def write_thresholds(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


HEURISTIC_CALM = """
  - name: no false crashes of the heuristic without shocks
    model: vendomini/heuristic
    where: {p_shock: 0.0}
    min_runs: 2
    max_crash_rate: 0.0
"""
FAULT_CRASHES = """
  - name: fault policies crash
    model: vendomini/heuristic[fault=*
    min_crash_rate: 1.0
"""


def analyze_with(sweep_logs: Path, tmp_path: Path, thresholds: str, *extra: str) -> int:
    path = write_thresholds(tmp_path / "thresholds.yaml", thresholds)
    return main(["analyze", str(sweep_logs), "--out", str(tmp_path / "report"), "--thresholds", str(path), *extra])


def test_thresholds_ok(sweep_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "checks:\n  - name: enough runs\n    min_runs: 8\n" + HEURISTIC_CALM + FAULT_CRASHES
    assert analyze_with(sweep_logs, tmp_path, text, "--strict") == 0
    assert "thresholds OK: 3 checks met" in capsys.readouterr().out
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "<h2>Thresholds: OK</h2>" in page
    table = pd.read_csv(tmp_path / "report" / "thresholds.csv")
    assert table["status"].tolist() == ["OK"] * 3 and table["runs"].tolist() == [8, 2, 4]


def test_thresholds_warn_and_strict(sweep_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a missed warn-level limit, and a check that selects no run: both warn; only --strict makes them fail
    text = ("checks:\n  - name: many runs\n    level: warn\n    min_runs: 100\n  - name: random model rarely"
            " crashes\n    model: vendomini/random\n    max_crash_rate: 0.5\n")  # fmt: skip
    assert analyze_with(sweep_logs, tmp_path, text) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("thresholds "))
    assert line.startswith("thresholds WARN: ")
    assert "WARN many runs: 8 runs < 100" in line and "no run of model vendomini/random" in line
    assert analyze_with(sweep_logs, tmp_path, text, "--strict") == 1
    assert "<h2>Thresholds: WARN</h2>" in (tmp_path / "report" / "index.html").read_text(encoding="utf-8")


def test_thresholds_fail(sweep_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the faults crash every run: a heuristic check that takes in the fault runs sees crashes
    text = ("checks:\n  - name: heuristic and its faults never crash\n    model: vendomini/heuristic*\n"
            "    max_crash_rate: 0.0\n  - name: nothing skipped\n    max_skipped: 0\n")  # fmt: skip
    assert analyze_with(sweep_logs, tmp_path, text) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("thresholds "))
    assert line.startswith("thresholds FAIL: FAIL heuristic and its faults never crash: crash rate 0.5 (4/8) > 0.0")
    assert "nothing skipped" not in line  # met checks are not listed
    assert (tmp_path / "report" / "index.html").is_file()  # the report is written whatever the result


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checks:\n  - name: x\n    max_crash_rat: 0.1\n", "checks[0].max_crash_rat: Extra inputs are not permitted"),
        ("checks: []\nminimum: 3\n", "minimum: Extra inputs are not permitted"),
        ("checks:\n  - name: x\n    level: error\n    min_runs: 1\n", "checks[0].level: Input should be 'fail' or"),
        ("checks:\n  - name: x\n    max_crash_rate: 1.5\n", "checks[0].max_crash_rate: Input should be less than"),
        ("checks:\n  - name: x\n    model: m\n", "checks[0]: Value error, a check needs a limit"),
        ("checks: [unclosed\n", "while parsing"),
    ],
)
def test_a_bad_thresholds_file_names_the_file_and_key(
    sweep_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = write_thresholds(tmp_path / "bad.yaml", text)
    with pytest.raises(ThresholdsError, match=re.escape(message)):
        load_thresholds(path)
    assert main(["analyze", str(sweep_logs), "--out", str(tmp_path / "out"), "--thresholds", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: " in err and message in err
    assert not (tmp_path / "out").exists()  # checked before the analysis


def test_strict_needs_thresholds_and_a_missing_file_is_an_error(
    sweep_logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(sweep_logs), "--out", str(tmp_path / "out"), "--strict"]) == 2
    assert "--strict needs --thresholds" in capsys.readouterr().err
    assert main(["analyze", str(sweep_logs), "--out", str(tmp_path / "out"), "--thresholds", "absent.yaml"]) == 2
    assert "absent.yaml: no such file" in capsys.readouterr().err


def test_the_shipped_thresholds_example_judges_scripted_runs(sweep_logs: Path, tmp_path: Path) -> None:
    path = resolve_thresholds("thresholds")
    assert path.name == "thresholds.yaml" and path.parent.name == "configs"
    assert main(["analyze", str(sweep_logs), "--out", str(tmp_path / "out"), "--thresholds", "thresholds"]) == 1
    table = pd.read_csv(tmp_path / "out" / "thresholds.csv").set_index("name")
    assert table.loc["enough runs to analyse", "status"] == "FAIL"  # 8 runs: a tiny sweep, not a study
    assert table.loc["no false crashes of the heuristic without shocks", "status"] == "OK"
    assert table.loc["fault policies are detected", ["status", "observed"]].tolist() == ["OK", "4/4 crashed"]


# ----- the report in a browser ------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW_WIDTH = 1280
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(img => {
    const box = img.getBoundingClientRect();
    return {alt: img.alt, complete: img.complete, natural: [img.naturalWidth, img.naturalHeight],
            box: [box.left + scrollX, box.top + scrollY, box.width, box.height]};
  });
  const root = document.documentElement;
  document.documentElement.dataset.probe = JSON.stringify({images, height: root.scrollHeight,
                                                          width: root.scrollWidth});
});
</script>"""
"""Added to a copy of the report (which has no script of its own): records each image's decoded size and
place on the page in an attribute of <html>, which --dump-dom prints. It changes no layout."""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on a local page of ours; stderr carries the console lines. No sandbox: Chromium refuses
    to start as root with one, and containers often lack the user namespaces it needs otherwise."""
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; CI installs it (.ci/run)")
        pytest.skip("chromium is not installed")
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--force-device-scale-factor=1", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_a_missing_chromium_skips_locally_and_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(globals(), "CHROMIUM", None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        chromium("--version", profile=tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        chromium("--version", profile=tmp_path)


def test_console_capture_sees_page_errors(tmp_path: Path) -> None:
    # the check below is only as good as its capture: a page that throws must be caught
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body><script>null.x;</script></body></html>", encoding="utf-8")
    lines = console_lines(chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stderr)
    assert any("Uncaught TypeError" in line for line in lines), lines


def test_report_renders_in_headless_chromium_with_its_figures(sweep_logs: Path, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    out = tmp_path / "report"
    assert main(["analyze", str(sweep_logs), "--out", str(out)]) == 0
    index = out / "index.html"
    probe_page = out / "probe.html"
    probe_page.write_text(index.read_text(encoding="utf-8").replace("</body>", IMAGE_PROBE + "</body>"), "utf-8")
    window = f"--window-size={WINDOW_WIDTH},1000"
    dom = chromium(window, "--virtual-time-budget=5000", "--dump-dom", probe_page.as_uri(), profile=tmp_path / "p1")
    attribute = re.search(r'data-probe="([^"]*)"', dom.stdout)
    assert attribute, "the probe did not run"
    probe = json.loads(html.unescape(attribute.group(1)))
    images = probe["images"]
    assert probe["width"] <= WINDOW_WIDTH, f"the page scrolls sideways: {probe['width']} px wide"
    assert [image["alt"] for image in images] == [
        "Cumulative incidence by model",
        "Crash rate by p_shock per model",
        "PE trajectories aligned to the crash onset",
        "Kaplan-Meier curves by condition (crash-specific)",
        "Crash-type mix by condition",
    ]
    for image in images:  # every embedded PNG decoded, at a size on the page
        assert image["complete"] and min(image["natural"]) > 100 and min(image["box"][2:]) > 100, image

    # the report itself, whole: no console message at all (it has no script), and the figures on screen
    shot = tmp_path / "report.png"
    run = chromium(f"--window-size={WINDOW_WIDTH},{probe['height']}", f"--screenshot={shot}", index.as_uri(),
                   profile=tmp_path / "p2")  # fmt: skip
    assert console_lines(run.stderr) == []
    pixels = plt.imread(shot)[..., :3]
    assert pixels.shape[:2] == (probe["height"], WINDOW_WIDTH)
    for image in images:
        left, top, width, height = (round(v) for v in image["box"])
        region = pixels[top : top + height, left : left + width]
        drawn = (region < 0.95).any(axis=2).mean()  # share of pixels that are not (near) white
        colours = len(np.unique((region * 255).astype(np.uint8).reshape(-1, 3), axis=0))
        assert drawn > 0.02 and colours > 20, (image["alt"], drawn, colours)


def test_time_varying_cox_agrees_with_lifelines() -> None:
    # blocks of 3 steps make many tied event times (Efron's ties); three strata, then none
    from lifelines import CoxTimeVaryingFitter

    runs, steps = simulate_pe_hazard(seed=4, runs=120, beta=0.8)
    intervals = stats.pe_intervals(runs, steps, ["pe_combined_cum"], block=3)
    intervals["stratum"] = intervals["run_id"].str[-1].astype(int) % 3
    for strata in (None, "stratum"):
        ours = stats.efron_time_varying_cox(
            intervals["start"].to_numpy(float), intervals["stop"].to_numpy(float), intervals["event"].to_numpy(bool),
            intervals["pe_combined_cum"].to_numpy(float), intervals[strata].to_numpy() if strata else None,
        )  # fmt: skip
        theirs = CoxTimeVaryingFitter().fit(
            intervals.drop(columns=[] if strata else ["stratum"]), id_col="run_id", event_col="event",
            start_col="start", stop_col="stop", strata=[strata] if strata else None, show_progress=False,
        ).summary.loc["pe_combined_cum"]  # fmt: skip
        for key, value in ours.items():
            assert value == pytest.approx(float(theirs[key]), rel=1e-4), (strata, key)


def test_samples_read_up_to_their_store_in_any_chunks(sweep_logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the store is parsed from the start of each sample's JSON, chunk by chunk: tiny chunks cut keys, strings and
    # numbers anywhere, and must give the same runs as reading whole samples through Inspect
    from inspect_ai.log import read_eval_log_samples

    from vendomini_eval.analysis import load

    monkeypatch.setattr(load, "HEAD_CHUNK", 7)
    monkeypatch.setattr(load, "_cores", lambda: 1)  # read here, where the chunk size is patched
    loaded = load_runs(sweep_logs)
    for path in sorted(sweep_logs.rglob("*.eval")):
        for sample in read_eval_log_samples(str(path)):
            [run] = [r for r in loaded.runs if r.log.path == str(path) and r.sample_id == sample.id]
            assert run.metadata == sample.metadata
            stored = {k.split(":", 1)[1]: v for k, v in sample.store.items() if k.startswith("EpisodeRecord:")}
            assert run.summary == EpisodeSummary.model_validate(stored.pop("summary"))
            trace, stored_trace = run.record.get("trace") or {}, stored.get("trace") or {}
            columns = trace.get("columns") or {}  # read as numpy arrays: compared value by value, NaN equal to NaN
            assert list(columns) == list(stored_trace.get("columns") or {})
            for name, values in columns.items():
                np.testing.assert_array_equal(values, np.asarray(stored_trace["columns"][name]))
            without = {"trace": {**trace, "columns": None}}
            assert {**run.record, **without} == {**stored, "trace": {**stored_trace, "columns": None}}


def test_a_log_cut_off_while_running_is_skipped(sweep_logs: Path, tmp_path: Path) -> None:
    # A killed eval leaves its journal and finished samples but no header.json or summaries.json: its log reads
    # as `started`. Rebuilt here from a finished log by dropping those members.
    import zipfile_zstd  # noqa: F401  -- zipfile reads and writes the log's zstd members

    source = next((sweep_logs / "heuristic").glob("*.eval"))
    cut = tmp_path / "logs" / "killed.eval"
    cut.parent.mkdir()
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(cut, "w") as dst:
        for info in src.infolist():
            if info.filename not in ("header.json", "summaries.json", "reductions.json"):
                dst.writestr(info, src.read(info))
    shutil.copy(next((sweep_logs / "looping").glob("*.eval")), tmp_path / "logs")
    loaded = load_runs(tmp_path / "logs")
    assert len(loaded.runs) == 2 and loaded.skip_counts() == {"log started": 1}


def test_a_finished_log_with_damaged_samples_is_skipped(sweep_logs: Path, tmp_path: Path) -> None:
    import zipfile_zstd  # noqa: F401  -- zipfile reads and writes the log's zstd members

    source = next((sweep_logs / "heuristic").glob("*.eval"))
    (tmp_path / "logs").mkdir()
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(tmp_path / "logs" / "damaged.eval", "w") as dst:
        for info in src.infolist():
            if not info.filename.startswith("samples/"):  # the header says success; the samples are gone
                dst.writestr(info, src.read(info))
    loaded = load_runs(tmp_path / "logs")
    assert loaded.runs == [] and loaded.skip_counts() == {"unreadable": 1}
