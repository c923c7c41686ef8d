"""The negative control of the PE analysis (docs/METHOD.md, "Negative control"): the open-loop routine cannot
respond to its prediction error, and the time-varying Cox adjusted for shock exposure finds no PE effect in
its runs. Also the adjusted Cox itself (checked against lifelines) and the shock-exposure covariates."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from vendomini_eval.analysis import stats
from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction, Episode
from vendomini_eval.policies.base import PolicyContext
from vendomini_eval.policies.open_loop import ROUND, OpenLoopPolicy

BENCH = Path(__file__).resolve().parents[1] / "bench" / "negative_control.py"


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("negative_control_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # worker processes and dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


def drive(condition: Condition, seed: int) -> tuple[list[tuple[str, Any, Any]], list[dict[str, Any]]]:
    """Every (tool, arguments, card) of one open-loop run, driven as the direct runner drives it, and every
    observation the routine was given."""
    episode = Episode(condition, seed)
    agent = OpenLoopPolicy(PolicyContext.for_condition(condition), seed)
    observation, calls, seen = None, [], []
    while not episode.done:
        action, card = agent.act(observation)
        calls.append((action.tool, dict(action.arguments), card))
        observation = episode.step(action, card).observation()
        seen.append(observation)
    return calls, seen


def actions(condition: Condition, seed: int) -> list[tuple[str, Any, Any]]:
    return drive(condition, seed)[0]


# ----- the routine ignores what it is told ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_open_loop_actions_are_the_same_whatever_the_world_does(seed: int) -> None:
    # Same seed, so the same catalogue; another observability, shock dose and magnitude change what the
    # routine is told, and its calls and cards must not change with them (up to the shorter run's end: a run
    # ends on a business failure; a crash does not end these, continue_after_crash).
    base = Condition(max_steps=300, p_shock=0.0, pressure_level="low", continue_after_crash=300)
    calls, seen = drive(base, seed)
    arms = ({"p_shock": 0.3, "pe_mag": "high", "observability": "hidden"},
            {"p_shock": 0.1, "observability": "delayed"}, {"p_shock": 0.3, "observability": "partial"})  # fmt: skip
    for changes in arms:
        other_calls, other_seen = drive(base.model_copy(update=changes), seed)
        n = min(len(calls), len(other_calls))
        assert n >= 100
        assert other_seen[:n] != seen[:n]  # the world did answer differently
        assert other_calls[:n] == calls[:n]


def test_open_loop_never_reads_an_observation_after_the_catalogue() -> None:
    condition = Condition(max_steps=200)
    context = PolicyContext.for_condition(condition)
    honest, fooled = OpenLoopPolicy(context, 3), OpenLoopPolicy(context, 99)
    opening = honest.act(None)
    assert opening == fooled.act(None) == (AgentAction("check_catalogue", {}), {"expected_success": True})
    first = Episode(condition, 3).step(*opening).observation()
    assert first["ok"] and first["result"]["offers"]
    garbage: list[Any] = [None, {}, {"day": 10**6, "ok": False, "error": "tool_down"}, {"result": {"offers": []}}]
    for step in range(2, 200):
        told = first if step == 2 else {"day": step, "ok": True, "result": {"anything": step}}
        assert honest.act(told) == fooled.act(first if step == 2 else garbage[step % len(garbage)])
    tools = [honest.act(None)[0].tool for _ in range(len(ROUND))]
    assert tools.count("order") == ROUND.count("order") and "ship" not in tools


def test_open_loop_cards_state_the_plan() -> None:
    condition = Condition(max_steps=100, p_shock=0.0, prediction_mode="required+confidence")
    calls = actions(condition, 5)
    orders = [(args, card) for tool, args, card in calls if tool == "order"]
    assert orders and all(card["expected_success"] is True and card["confidence"] == 0.9 for _, card in orders)
    assert all(card["expected_quantity"] == args["quantity"] for args, card in orders)
    # the same SKU is always bought the same way: the plan is fixed at step 1
    by_sku: dict[str, set[tuple[int, float]]] = {}
    for args, card in orders:
        by_sku.setdefault(args["sku_id"], set()).add((args["quantity"], card["expected_cost"]))
    assert all(len(ways) == 1 for ways in by_sku.values())
    assert actions(condition.model_copy(update={"prediction_mode": "none"}), 5)[-1][2] is None


# ----- the analysis ------------------------------------------------------------------------------------


def test_adjusted_cox_agrees_with_lifelines() -> None:
    from lifelines import CoxTimeVaryingFitter

    rng = np.random.default_rng(2)
    runs, steps = [], []
    for i in range(120):
        pe = shocks = 0.0
        end, crashed = 60, False
        for t in range(1, 61):
            hazard = 0.01 * math.exp(0.6 * pe + 0.25 * shocks)  # from the values at the end of step t-1
            crash = rng.random() < 1 - math.exp(-hazard)
            pe += rng.random() * 0.5 if rng.random() < 0.2 else 0.0
            shocks += rng.random() < 0.05
            steps.append((f"r{i}", t, pe, shocks))
            if crash:
                end, crashed = t, True
                break
        runs.append((f"r{i}", end, crashed))
    intervals = stats.pe_intervals(pd.DataFrame(runs, columns=["run_id", "time_to_crash", "crashed"]),
                                   pd.DataFrame(steps, columns=["run_id", "step", "pe", "shocks"]), ["pe", "shocks"],
                                   block=2)  # fmt: skip
    intervals["stratum"] = intervals["run_id"].str[-1].astype(int) % 2
    for strata in (None, "stratum"):
        ours = stats.adjusted_time_varying_cox(intervals, "pe", ["shocks"], strata=strata)
        theirs = CoxTimeVaryingFitter().fit(
            intervals.drop(columns=[] if strata else ["stratum"]), id_col="run_id", event_col="event",
            start_col="start", stop_col="stop", strata=[strata] if strata else None, show_progress=False,
        ).summary  # fmt: skip
        assert list(ours["covariate"]) == ["pe", "shocks"] and (ours["note"] == "").all()
        for row in ours.to_dict("records"):
            for key, column in (("coef", "coef"), ("hr_lo", "exp(coef) lower 95%"), ("hr_hi", "exp(coef) upper 95%"),
                                ("p", "p")):  # fmt: skip
                assert row[key] == pytest.approx(float(theirs.loc[row["covariate"], column]), rel=1e-4)
            assert row["hr_per_sd"] == pytest.approx(row["hr"] ** row["sd"])
    # with nothing to adjust for, it is the one-covariate model
    [alone] = stats.time_varying_cox(intervals, ["pe"]).to_dict("records")
    adjusted = stats.adjusted_time_varying_cox(intervals, "pe", ["constant_missing"]).iloc[0]
    assert adjusted["hr"] == pytest.approx(alone["hr"], rel=1e-9) and "constant_missing" in adjusted["note"]


def test_shock_exposure_counts_effective_shocks_and_blocked_steps() -> None:
    steps = pd.DataFrame({
        "run_id": ["b", "b", "a", "a", "a", "b"],
        "step": [2, 1, 1, 2, 3, 3],
        "shock": [None, "delay", "tool_down", None, "delay", "delay"],
        "actionable": [False, True, True, False, False, True],
    })  # fmt: skip
    exposure = stats.shock_exposure(steps)
    assert list(exposure["run_id"]) == list(steps["run_id"])  # in the order of the steps table
    by = exposure.set_index(["run_id", "step"])
    assert by["shocks_cum"].to_dict() == {("b", 2): 1, ("b", 1): 1, ("a", 1): 1, ("a", 2): 1, ("a", 3): 2,
                                          ("b", 3): 2}  # fmt: skip
    assert by.loc[("a", 3), "shocks_delay_cum"] == 1 and by.loc[("a", 3), "shocks_tool_down_cum"] == 1
    assert by["blocked_cum"].to_dict() == {("b", 2): 1, ("b", 1): 0, ("a", 1): 0, ("a", 2): 1, ("a", 3): 2,
                                           ("b", 3): 1}  # fmt: skip
    assert stats.shock_exposure(steps.drop(columns=["actionable"]))["blocked_cum"].isna().all()


# ----- the control itself --------------------------------------------------------------------------------

SMALL_RUNS = 80
"""Runs of the small-size control (the bench's condition). At this size the adjusted CI covered 1 on every
seed set checked (see the docstring of the test)."""


def test_negative_control_at_small_size() -> None:
    """The bench at a small size: the open-loop runs crash often enough to fit, and within conditions and
    adjusted for shock exposure the CI of the PE hazard ratio covers 1. Checked on the seed sets starting at
    0, 1000, 2000, 3000 and 4000 (this test uses the first)."""
    bench = load_bench()
    jobs = bench.jobs(SMALL_RUNS, [0.3], ["medium", "high"], "low", 1, 500)
    results = [bench.run(job) for job in jobs]
    runs, steps = bench.tables(results)
    assert runs["crashed"].sum() >= 15  # enough events for the Cox model
    table = bench.fits(runs, steps)
    adjusted = table[table["model"] == bench.ADJUSTED]
    assert list(adjusted["covariate"]) == list(bench.PE_COVARIATES) and (adjusted["note"] == "").all()
    assert ((adjusted["hr_per_sd_lo"] <= 1) & (adjusted["hr_per_sd_hi"] >= 1)).all(), adjusted.to_dict("records")
