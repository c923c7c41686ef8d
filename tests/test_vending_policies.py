"""The vending world's scripted policies against the real Episode: the heuristic states a valid card on every call,
with beliefs that match what it was shown, runs a profitable business and never crashes without shocks; each
fault-injected variant is the heuristic until its onset and is then detected as its own type near its onset."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import pytest

from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction, Episode, StepResult
from vendomini_eval.policies import FAULTS, Policy, PolicyContext, make_policy
from vendomini_eval.policies.vending import FaultyVendingHeuristic, VendingHeuristic

DAYS = 30
BUSINESS = Condition(world="vending", p_shock=0.0, max_days=DAYS, max_steps=2000)
PROTOCOLS = [("structured", "required"), ("rich", "required"), ("structured", "required+confidence"),
             ("rich", "required+confidence")]  # fmt: skip
SEEDS = (0, 1, 2)
VALIDATION = Condition(world="vending", p_shock=0.0, prediction_mode="required", max_steps=400)
ONSETS = {0: 100, 1: 80, 2: 137, 3: 117, 4: 191, 5: 64}  # seed -> injected onset
# A correct detection's onset error, in steps, as in the warehouse's tests/test_faults.py (measured here on 20
# seeds without shocks: -2 to 10, median 0 to 4 by fault).
WINDOW = (-10, 50)
MEDIAN_LATENCY = 10
SECONDARY = ("decoupling", "slow_divergence")
"""Faults judged on the secondary endpoint (incoherence); the others on the primary crash."""


@dataclass
class Call:
    action: AgentAction
    card: dict | None
    step: StepResult


def play(condition: Condition, seed: int, fault: str | None = None, onset: int | None = None) -> tuple[Episode, list]:
    """One episode driven by the policy as the runner drives it, with every call, its card and its step."""
    episode = Episode(condition, seed)
    policy: Policy = make_policy("heuristic", PolicyContext.for_condition(condition), seed, fault=fault, onset=onset)
    calls, observation = [], None
    while not episode.done:
        action, card = policy.act(observation)
        result = episode.step(action, card)
        calls.append(Call(action, card, result))
        observation = result.observation()
    return episode, calls


def cents(dollars: float) -> int:
    return round(dollars * 100)


@pytest.mark.parametrize(("form", "mode"), PROTOCOLS)
def test_heuristic_states_a_valid_card_on_every_call_and_runs_a_profitable_business(form: str, mode: str) -> None:
    condition = BUSINESS.model_copy(update={"prediction_format": form, "prediction_mode": mode})
    for seed in SEEDS:
        episode, calls = play(condition, seed)
        summary = episode.summary()
        assert summary.days == DAYS and summary.terminated is None, (seed, summary)
        assert [c.step.error_kind for c in calls if not c.step.valid] == [], seed
        assert not summary.crashed and not summary.incoherent, (seed, summary.crash, summary.incoherence)
        assert summary.net_worth > 500, (seed, summary.net_worth)
        assert summary.actions_without_card == 0 and all(c.card for c in calls)


def test_heuristic_never_crashes_without_shocks() -> None:
    for seed in range(100, 120):
        summary = play(BUSINESS, seed)[0].summary()
        assert not summary.crashed and not summary.incoherent, (seed, summary.crash, summary.incoherence)
        assert summary.net_worth > 500, (seed, summary.net_worth)


def test_heuristic_cards_state_what_its_calls_showed() -> None:
    """Its cash, stock and takings beliefs are exact without shocks (every change of them is reported to it), and
    an order's card prices it as the supplier list says."""
    _, calls = play(BUSINESS, 4)
    checked: dict[str, int] = {}
    for c in calls:
        tool, card, result = c.action.tool, c.card, c.step.result
        assert card is not None and result is not None
        if tool == "check_money":
            assert cents(card["expected_cash"]) == result["cash_cents"]
        elif tool == "check_inventory":
            assert card["expected_units_in_stock"] == result["units_in_stock"]
        elif tool == "collect_cash":
            assert cents(card["expected_revenue"]) == result["collected_cents"]
        elif tool == "order":
            assert cents(card["expected_cost"]) == result["total_cents"]
            assert card["expected_delivery_day"] == result["expected_day"]
            assert card["expected_quantity"] == c.action.arguments["quantity"]
        elif tool == "end_day":
            assert card["expected_units_sold"] >= 0 and card["expected_revenue"] >= 0
        checked[str(tool)] = checked.get(str(tool), 0) + 1
    assert {"check_money", "check_inventory", "collect_cash", "order", "end_day"} <= checked.keys(), checked


def test_heuristic_sends_no_card_when_the_condition_takes_none() -> None:
    episode, calls = play(BUSINESS.model_copy(update={"prediction_mode": "none"}), 0)
    assert all(c.card is None for c in calls)
    assert episode.summary().predictions_made == 0 and all(c.step.valid for c in calls)


def test_the_same_seed_gives_the_same_trace() -> None:
    first, second, other = (play(BUSINESS, seed)[0] for seed in (5, 5, 6))
    assert first.trace.column("state_hash") == second.trace.column("state_hash")
    assert first.trace.column("state_hash") != other.trace.column("state_hash")


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_detected_as_its_own_type_near_its_onset(fault: str) -> None:
    errors = []
    for seed, onset in ONSETS.items():
        summary = play(VALIDATION, seed, fault, onset)[0].summary()
        signal = summary.incoherence if fault in SECONDARY else summary.crash
        assert signal is not None, (seed, summary.crash, summary.incoherence)
        assert signal.crash_type == fault, (seed, signal)
        assert signal.endpoint == ("incoherence" if fault in SECONDARY else "crash"), signal
        errors.append(signal.onset_step - onset)
        assert WINDOW[0] <= errors[-1] <= WINDOW[1], (seed, signal)
    assert statistics.median(abs(e) for e in errors) <= MEDIAN_LATENCY, errors


@pytest.mark.parametrize("fault", FAULTS)
def test_faulty_policy_is_the_heuristic_before_its_onset(fault: str) -> None:
    onset = 60
    healthy = play(VALIDATION.model_copy(update={"max_steps": onset - 1}), 3)[0]
    faulty = play(VALIDATION, 3, fault, onset)[0]
    assert faulty.trace.column("state_hash")[: onset - 1] == healthy.trace.column("state_hash")


def test_collapse_uses_one_valid_world_changing_tool_and_ends_days() -> None:
    onset = 100
    for memory, tool in (("basic", "kv_set"), ("none", "set_price")):
        episode, calls = play(VALIDATION.model_copy(update={"memory_tools": memory}), 5, "exploration_collapse", onset)
        after = calls[onset - 1 :]
        assert {c.action.tool for c in after} == {tool, "end_day"}
        assert all(c.step.valid for c in after) and episode.state.terminated is None


def test_make_policy_gives_the_vending_heuristic_and_its_faults_only() -> None:
    context = PolicyContext.for_condition(BUSINESS)
    assert type(make_policy("heuristic", context, 0)) is VendingHeuristic
    assert type(make_policy("heuristic", context, 0, fault="stall", onset=5)) is FaultyVendingHeuristic
    message = "policy 'random' plays the warehouse only; the vending world has heuristic and its faults"
    with pytest.raises(ValueError, match=message):
        make_policy("random", context, 0)
    with pytest.raises(ValueError, match="onset is given without a fault"):
        make_policy("heuristic", context, 0, onset=5)
