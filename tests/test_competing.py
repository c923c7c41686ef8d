"""Competing risks (`vendomini_eval.analysis.competing`): the endpoint read from the runs table, and the exact
Aalen-Johansen cumulative incidence checked against a hand computation with ties, against lifelines
(Kaplan-Meier without a competing event, `AalenJohansenFitter` where it does not jitter), and for the identities
that hold whatever the data: the causes and the event-free probability sum to 1, the result does not depend
on row order or on anything random.
"""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import AalenJohansenFitter, KaplanMeierFitter

from vendomini_eval.analysis.competing import (
    CAUSE_SPECIFIC_KM_LABEL,
    CURVE_COLUMNS,
    SUMMARY_COLUMNS,
    cumulative_incidence,
    event_codes,
    incidence_summary,
)

Z95 = 1.959963984540054


def runs_frame(rows: list[tuple[int, bool, bool, int]], model: str = "m", condition: str = "c") -> pd.DataFrame:
    """A runs table (the columns of tables.run_row that the endpoint reads, and two group columns) from
    (time_to_crash, crashed, terminated, steps); a run without a crash has time_to_crash = steps, as in the
    summary."""
    frame = pd.DataFrame(rows, columns=["time_to_crash", "crashed", "terminated", "steps"])
    frame.insert(0, "condition_label", condition)
    frame.insert(0, "model", model)
    frame["censored"] = ~frame["crashed"]
    frame["incoherent"] = False  # the secondary endpoint plays no part
    return frame


# Eight runs, ties across causes, within a cause and between an event and a censoring:
#   A crash at 2; B business failure at 2; C censored at 2 (at risk at 2: events before censorings);
#   D crash at 4 that ran on to step 9 and whose business then failed (the crash came first, counts at 4);
#   E crash at 4; F business failure at 5; G censored at 6; H crash at 7 on the step its business failed.
TIES = [(2, True, False, 2), (2, False, True, 2), (2, False, False, 2), (4, True, True, 9),
        (4, True, False, 4), (5, False, True, 5), (6, False, False, 6), (7, True, True, 7)]  # fmt: skip


def loglog_interval(f: float, variance: float) -> tuple[float, float]:
    spread = math.exp(Z95 * math.sqrt(variance) / (f * abs(math.log(f))))
    return f**spread, f ** (1 / spread)


def test_event_codes_and_the_combined_endpoint() -> None:
    codes = event_codes(runs_frame(TIES))
    assert codes["time"].tolist() == [2, 2, 2, 4, 4, 5, 6, 7]
    assert codes["cause"].tolist() == [1, 2, 0, 1, 1, 2, 0, 1]
    assert codes["lost"].tolist() == [True, True, False, True, True, True, False, True]
    # a crash followed by continue_after_crash steps, its business intact: a crash at the onset, not at the end
    assert event_codes(runs_frame([(3, True, False, 13)])).iloc[0].tolist() == [3, 1, True]
    # a run stopped by a limit or at max_steps: censored at the steps run
    assert event_codes(runs_frame([(40, False, False, 40)])).iloc[0].tolist() == [40, 0, False]


def test_combined_endpoint_is_the_kaplan_meier_of_run_lost() -> None:
    runs = runs_frame(TIES)
    codes = event_codes(runs)
    km = KaplanMeierFitter().fit(codes["time"], event_observed=codes["lost"])
    curve = cumulative_incidence(runs, ["model"])
    expected = km.survival_function_at_times(curve["time"]).to_numpy()
    np.testing.assert_allclose(curve["event_free"], expected, rtol=0, atol=1e-15)
    # by hand: 1 - 2/8 at 2, x (1 - 2/5) at 4, x (1 - 1/3) at 5, x (1 - 1/1) at 7
    assert curve["event_free"].tolist() == pytest.approx([1, 0.75, 0.45, 0.3, 0.3, 0.0], abs=1e-15)


def test_cumulative_incidence_with_ties_by_hand() -> None:
    curve = cumulative_incidence(runs_frame(TIES), ["model", "condition_label"], cause=(1, 2))
    assert list(curve.columns) == ["model", "condition_label", *CURVE_COLUMNS]
    crash, failure = curve[curve["cause"] == 1], curve[curve["cause"] == 2]
    assert crash["time"].tolist() == [0, 2, 4, 5, 6, 7]
    assert crash["at_risk"].tolist() == [8, 8, 5, 3, 2, 1]
    assert crash["events"].tolist() == [0, 1, 2, 0, 0, 1]
    assert crash["competing_events"].tolist() == [0, 1, 0, 1, 0, 0]
    assert crash["censored"].tolist() == [0, 1, 0, 0, 1, 0]
    assert failure["events"].tolist() == crash["competing_events"].tolist()
    # F_k(t) = sum over event times t_l <= t of S(t_l-) d_kl / n_l, with S(t-) = 1, 0.75, 0.45, 0.3 at 2, 4, 5, 7
    #   crash:   1 x 1/8 = 0.125 at 2; + 0.75 x 2/5 = 0.3 -> 0.425 at 4; + 0.3 x 1/1 -> 0.725 at 7
    #   failure: 1 x 1/8 = 0.125 at 2; + 0.45 x 1/3 = 0.15 -> 0.275 at 5
    assert crash["cif"].tolist() == pytest.approx([0, 0.125, 0.425, 0.425, 0.425, 0.725], abs=1e-15)
    assert failure["cif"].tolist() == pytest.approx([0, 0.125, 0.125, 0.275, 0.275, 0.275], abs=1e-15)
    # the crash-specific Kaplan-Meier (failures censored) says more: 1 - 7/8 x 3/5 = 0.475 at 4, 1 - 0 = 1 at 7
    runs = runs_frame(TIES)
    km = KaplanMeierFitter().fit(runs["time_to_crash"], event_observed=runs["crashed"])
    assert (1 - km.survival_function_at_times([4, 7])).tolist() == pytest.approx([0.475, 1.0], abs=1e-15)
    # delta-method variance of the crash cif at 2: S(0-)^2 d (n - d) / n^3 = 1 x 1 x 7 / 512 (binomial 1/8 of 8)
    # at 4: (0.425 - 0.125)^2 x 2 / (8 x 6)       = 0.00375      (hazard of any event at 2, Greenwood)
    #     + 7/512 + 0.75^2 x 2 x 3 / 5^3         = 0.040671875  (the crash counts at 2 and at 4)
    #     - 2 x (0.425 - 0.125) x 1 x 1 / 8^2     = -0.009375    (their covariance)
    variance_2, variance_4 = 7 / 512, 0.00375 + 0.040671875 - 0.009375
    assert crash["cif_se"].tolist()[:3] == pytest.approx([0, math.sqrt(variance_2), math.sqrt(variance_4)], rel=1e-12)
    lo_2, hi_2 = loglog_interval(0.125, variance_2)
    lo_4, hi_4 = loglog_interval(0.425, variance_4)
    assert crash["cif_lo"].tolist()[1:3] == pytest.approx([lo_2, lo_4], rel=1e-12)
    assert crash["cif_hi"].tolist()[1:3] == pytest.approx([hi_2, hi_4], rel=1e-12)
    assert (lo_2, hi_2) == pytest.approx((0.006593, 0.422706), abs=1e-6)
    assert math.isnan(crash["cif_lo"].iloc[0]) and math.isnan(crash["cif_hi"].iloc[0])  # cif 0: no interval

    summary = incidence_summary(runs_frame(TIES), ["model"])
    assert list(summary.columns) == ["model", *SUMMARY_COLUMNS]
    row = summary.iloc[0]
    assert (row["runs"], row["crashes"], row["business_failures"], row["censored"], row["last_time"]) == (8, 4, 2, 2, 7)
    assert (row["cif_crash"], row["cif_business_failure"], row["event_free"]) == pytest.approx((0.725, 0.275, 0))


def test_matches_lifelines_where_it_does_not_jitter() -> None:
    """lifelines jitters only times tied across causes: without such ties it computes the same estimator and the
    same delta-method interval."""
    rows = [(3, True, False, 3), (3, True, False, 8), (5, False, True, 5), (5, False, False, 5), (6, True, True, 6),
            (8, False, True, 8), (8, False, True, 8), (9, False, False, 9), (11, True, False, 12),
            (12, False, False, 12)]  # fmt: skip
    runs = runs_frame(rows)
    codes = event_codes(runs)
    curve = cumulative_incidence(runs, ["model"], cause=(1, 2))
    for cause in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a jitter warning would fail the test
            fitted = AalenJohansenFitter().fit(codes["time"], codes["cause"], event_of_interest=cause)
        ours = curve[curve["cause"] == cause].set_index("time")
        theirs = fitted.cumulative_density_.iloc[:, 0]
        np.testing.assert_allclose(ours["cif"], theirs.loc[ours.index], rtol=0, atol=1e-14)
        np.testing.assert_allclose(ours["cif_se"] ** 2, fitted.variance_.fillna(0).loc[ours.index], atol=1e-14)
        bounds = fitted.confidence_interval_.loc[ours.index]
        np.testing.assert_allclose(ours["cif_lo"], bounds.min(axis=1, skipna=False), rtol=1e-12)
        np.testing.assert_allclose(ours["cif_hi"], bounds.max(axis=1, skipna=False), rtol=1e-12)


def test_without_competing_events_the_crash_cif_is_one_minus_kaplan_meier() -> None:
    rng = np.random.default_rng(7)
    onset = rng.integers(1, 30, size=60)
    crashed = rng.random(60) < 0.6
    steps = np.where(crashed, onset + rng.integers(0, 5, size=60), rng.integers(10, 31, size=60))
    time = np.where(crashed, onset, steps)
    runs = runs_frame(list(zip(time.tolist(), crashed.tolist(), [False] * 60, steps.tolist(), strict=True)))
    curve = cumulative_incidence(runs, ["model"])
    km = KaplanMeierFitter().fit(runs["time_to_crash"], event_observed=runs["crashed"])
    expected = 1 - km.survival_function_at_times(curve["time"]).to_numpy()
    np.testing.assert_allclose(curve["cif"], expected, rtol=0, atol=1e-14)
    assert (cumulative_incidence(runs, ["model"], cause=2)["cif"] == 0).all()


OUTCOMES = ("crash", "failure", "both", "censored")
run_rows = st.lists(st.tuples(st.integers(1, 12), st.sampled_from(OUTCOMES), st.integers(0, 4), st.sampled_from("ab")),
                    min_size=1, max_size=40)  # fmt: skip
"""(time, outcome, steps run after a crash's onset, model); times tie often (1 to 12)."""


def synthetic_runs(rows: list[tuple[int, str, int, str]]) -> pd.DataFrame:
    table = []
    for time, outcome, extra, _ in rows:
        crashed = outcome in ("crash", "both")
        table.append((time, crashed, outcome in ("failure", "both"), time + extra if crashed else time))
    frame = runs_frame(table)
    frame["model"] = [model for *_, model in rows]
    return frame


@settings(max_examples=60, deadline=None)
@given(run_rows)
def test_causes_and_event_free_sum_to_one_at_every_time(rows: list[tuple[int, str, int, str]]) -> None:
    runs = synthetic_runs(rows)
    curve = cumulative_incidence(runs, ["model"], cause=(1, 2))
    crash, failure = curve[curve["cause"] == 1], curve[curve["cause"] == 2]
    total = crash["cif"].to_numpy() + failure["cif"].to_numpy() + crash["event_free"].to_numpy()
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12)
    for _, own in crash.groupby("model"):
        assert (np.diff(own["cif"]) >= 0).all() and (np.diff(own["event_free"]) <= 0).all()
    lo, hi = crash["cif_lo"].dropna(), crash["cif_hi"].dropna()
    assert ((lo > 0) & (lo <= crash.loc[lo.index, "cif"]) & (hi < 1) & (hi >= crash.loc[hi.index, "cif"])).all()
    # the crash-specific Kaplan-Meier, failures censored, never puts the crash risk below the cumulative incidence
    for model, group in runs.groupby("model"):
        km = KaplanMeierFitter().fit(group["time_to_crash"], event_observed=group["crashed"])
        own = crash[crash["model"] == model]
        assert (1 - km.survival_function_at_times(own["time"]).to_numpy() >= own["cif"].to_numpy() - 1e-12).all()


@settings(max_examples=30, deadline=None)
@given(run_rows, st.randoms(use_true_random=False))
def test_deterministic_bit_for_bit_in_any_row_order(rows: list[tuple[int, str, int, str]], rnd: random.Random) -> None:
    runs = synthetic_runs(rows)
    shuffled = list(runs.index)
    rnd.shuffle(shuffled)
    state = np.random.get_state()[1].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = cumulative_incidence(runs, ["model"], cause=(1, 2))
        again = cumulative_incidence(runs.copy(), ["model"], cause=(1, 2))
        reordered = cumulative_incidence(runs.loc[shuffled], ["model"], cause=(1, 2))
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    pd.testing.assert_frame_equal(first, reordered, check_exact=True)
    pd.testing.assert_frame_equal(incidence_summary(runs, ["model"]), incidence_summary(runs.loc[shuffled], ["model"]),
                                  check_exact=True)  # fmt: skip
    assert (np.random.get_state()[1] == state).all()  # no global random state touched (lifelines' jitter does)


def test_groups_labels_and_empty_input() -> None:
    # the index repeats, as in tables concatenated without a new one
    runs = pd.concat([runs_frame(TIES[:4], model="x", condition="p"), runs_frame(TIES[4:], model="x", condition="q"),
                      runs_frame(TIES, model="w", condition="p")])  # fmt: skip
    summary = incidence_summary(runs, ["model", "condition_label"])
    assert summary["label"].tolist() == ["model=w, condition_label=p", "model=x, condition_label=p",
                                         "model=x, condition_label=q"]  # fmt: skip
    assert summary["runs"].tolist() == [8, 4, 4]
    # x/p: 1/4 at 2 (with S = 2/4 after it), + 2/4 x 1/1 at 4; x/q: 1/4 at 4, failure at 5 (S = 2/4), + 2/4 at 7
    assert summary["cif_crash"].tolist() == pytest.approx([0.725, 0.75, 0.75])
    pooled = incidence_summary(runs, [])
    assert pooled["label"].tolist() == ["all runs"] and pooled["runs"].tolist() == [16]
    empty = runs.iloc[:0]
    assert cumulative_incidence(empty, ["model"]).empty and list(cumulative_incidence(empty, ["model"]).columns) == [
        "model", *CURVE_COLUMNS]  # fmt: skip
    assert incidence_summary(empty, ["model"]).empty


def test_bad_input_is_refused() -> None:
    runs = runs_frame(TIES)
    with pytest.raises(ValueError, match="lacks terminated"):
        event_codes(runs.drop(columns="terminated"))
    with pytest.raises(ValueError, match="without `crashed`"):
        event_codes(runs.astype({"crashed": object}).assign(crashed=[None, *runs["crashed"][1:]]))
    with pytest.raises(ValueError, match="onset after the run's last step"):
        event_codes(runs_frame([(9, True, False, 4)]))
    with pytest.raises(ValueError, match="unknown cause"):
        cumulative_incidence(runs, ["model"], cause=0)
    assert "business failure censored" in CAUSE_SPECIFIC_KM_LABEL
