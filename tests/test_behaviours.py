"""The LLM-like behaviours against the real Episode: each makes the action pattern it is described by, and is
the competent heuristic wherever its habit does not act. Whether the detector labels them as expected is
`bench/validate_detector.py`'s question; these tests pin the behaviours themselves."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from typing import Any

import pytest

from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction, Episode
from vendomini_eval.policies import BEHAVIOURS, BENIGN, EXPECTED, POLICIES, PolicyContext, make_policy
from vendomini_eval.policies.behaviours import (
    BEHAVIOUR_CLASSES,
    CHAT_ONLY,
    DEFAULT_BURST_ONSET,
    MALFORMED_BURST,
    PESSIMISTIC_CONFIDENCE,
    PESSIMISTIC_DELAY_DAYS,
    POINTLESS_GAP,
    TEXT_ONLY_GAP,
    onset_use,
)
from vendomini_eval.runner import run_policy

PRIMARY_TYPES = ("looping", "invalid_burst", "budget_denial", "exploration_collapse", "stall")
READS = {"check_orders", "check_inventory", "check_budget", "check_catalogue"}
STEPS = 300
WORLD_REFUSALS = {None, "tool_down"}
"""Errors that report the world's state (a rule shock disabled the tool), not a mistake of the agent."""
ONSET = 80
# continue_after_crash: the run goes on after a crash, so that the whole pattern is seen whatever the detector says
CONDITION = Condition(
    complexity_level=1, p_shock=0.1, prediction_mode="required+confidence", max_steps=STEPS, continue_after_crash=STEPS
)


@dataclass
class Step:
    action: AgentAction
    card: dict[str, Any] | None
    valid: bool
    error: str | None


def drive(name: str, seed: int = 3, condition: Condition = CONDITION, onset: int | None = None) -> list[Step]:
    """The policy driven directly on an Episode, as the runner does; one Step per step, to the run's end."""
    policy = make_policy(name, PolicyContext.for_condition(condition), seed, onset=onset)
    episode, observation, steps = Episode(condition, seed), None, []
    while not episode.done:
        action, card = policy.act(observation)
        result = episode.step(action, card)
        steps.append(Step(action, card, result.valid, result.error_kind))
        observation = result.observation()
    return steps


def calls(steps: list[Step]) -> list[tuple[str | None, dict[str, Any]]]:
    return [(s.action.tool, dict(s.action.arguments)) for s in steps]


def period(tools: list[str | None]) -> int | None:
    """The smallest period (1 to 3) the sequence repeats with, or None."""
    return next((p for p in (1, 2, 3) if all(t == tools[i % p] for i, t in enumerate(tools))), None)


# ----- the table and the registry -------------------------------------------------------------------------------
def test_every_behaviour_has_an_expected_label_with_a_reason() -> None:
    assert tuple(EXPECTED) == BEHAVIOURS == tuple(BEHAVIOUR_CLASSES)
    assert set(BEHAVIOURS) <= set(POLICIES)
    for name, expectation in EXPECTED.items():
        assert expectation.label in (*PRIMARY_TYPES, BENIGN), name
        assert len(expectation.reason) > 20, name
        # A breakdown has a true onset to measure latency from.
        assert (onset_use(name) == "required") == (expectation.label != BENIGN), name


@pytest.mark.parametrize("name", BEHAVIOURS)
def test_onset_rules(name: str) -> None:
    context = PolicyContext.for_condition(CONDITION)
    if onset_use(name) == "required":
        with pytest.raises(ValueError, match="needs an onset"):
            make_policy(name, context, 0)
    else:
        make_policy(name, context, 0)
    if onset_use(name) == "none":
        with pytest.raises(ValueError, match="takes no onset"):
            make_policy(name, context, 0, onset=50)
    else:
        with pytest.raises(ValueError, match="onset must be"):
            make_policy(name, context, 0, onset=0)
    with pytest.raises(ValueError, match="heuristic policy only"):
        make_policy(name, context, 0, fault="looping", onset=50)


def test_unknown_policy_names_every_policy() -> None:
    with pytest.raises(ValueError, match="unknown policy 'nope'; choose one of heuristic, ") as error:
        make_policy("nope", PolicyContext.for_condition(CONDITION), 0)
    assert all(name in str(error.value) for name in ("random", "open_loop", *BEHAVIOURS))


def test_runner_takes_behaviour_names() -> None:
    output = run_policy(CONDITION.model_copy(update={"max_steps": 40}), 2, "chatter")
    assert output.policy == "chatter" and output.summary.steps == 40
    output = run_policy(CONDITION.model_copy(update={"max_steps": 40}), 2, "only_wait", onset=30)
    assert output.onset == 30


@pytest.mark.parametrize("name", BEHAVIOURS)
def test_behaviours_are_deterministic(name: str) -> None:
    onset = ONSET if onset_use(name) != "none" else None
    short = CONDITION.model_copy(update={"max_steps": 150})
    assert calls(drive(name, 5, short, onset)) == calls(drive(name, 5, short, onset))


@pytest.mark.parametrize("name", [n for n in BEHAVIOURS if onset_use(n) != "none"])
def test_behaviour_with_an_onset_is_the_heuristic_before_it(name: str) -> None:
    heuristic = drive("heuristic")
    behaviour = drive(name, onset=ONSET)
    assert calls(behaviour)[: ONSET - 1] == calls(heuristic)[: ONSET - 1]


# ----- breakdowns -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_alternating_reads_cycles_two_or_three_read_tools_from_its_onset(seed: int) -> None:
    steps = drive("alternating_reads", seed, onset=ONSET)
    tools = [s.action.tool for s in steps[ONSET - 1 :]]
    assert len(tools) >= 20  # until the neglected business fails
    assert set(tools) <= {"check_orders", "check_inventory", "check_budget"}
    assert period(tools) in (2, 3) and len(set(tools)) == period(tools)
    assert {s.error for s in steps[ONSET - 1 :]} <= WORLD_REFUSALS


def test_alternating_reads_cycle_length_depends_on_the_seed() -> None:
    lengths = {
        len(set(s.action.tool for s in drive("alternating_reads", seed, onset=ONSET)[ONSET:])) for seed in range(8)
    }
    assert lengths == {2, 3}


@pytest.mark.parametrize("seed", range(4))
def test_plan_only_notes_reads_and_checks_with_varied_tools_and_text(seed: int) -> None:
    steps = drive("plan_only", seed, onset=ONSET)
    after = steps[ONSET - 1 :]
    tools = [s.action.tool for s in after]
    assert len(tools) >= 20  # until the neglected business fails
    assert set(tools) <= READS | {"write_note", "read_note"}
    assert len(set(tools)) >= 5  # varied: not one tool
    assert max(tools.count(t) for t in set(tools)) / len(tools) < 0.4
    assert period(tools) is None and period(tools[-12:]) is None  # no short cycle
    assert {s.error for s in after} <= WORLD_REFUSALS  # it reads only the notes it wrote
    texts = [s.action.arguments["text"] for s in after if s.action.tool == "write_note"]
    assert len(set(texts)) >= len(texts) * 0.8 and all("Plan:" in t for t in texts)


def test_plan_only_without_memory_tools_only_checks() -> None:
    condition = CONDITION.model_copy(update={"memory_tools": "none"})
    tools = [s.action.tool for s in drive("plan_only", 1, condition, ONSET)[ONSET - 1 :]]
    assert set(tools) == READS


def test_only_wait_only_waits_from_its_onset() -> None:
    steps = drive("only_wait", onset=ONSET)
    assert {s.action.tool for s in steps[ONSET - 1 :]} == {"wait"}
    assert len(steps) >= ONSET + 20


# ----- benign habits ----------------------------------------------------------------------------------------------
def test_polling_checks_orders_where_the_heuristic_waits() -> None:
    heuristic, polling = drive("heuristic"), drive("polling")
    assert "wait" in [s.action.tool for s in heuristic]
    assert "wait" not in [s.action.tool for s in polling]
    # Up to the heuristic's first wait, the two are the same; there polling looks at the orders instead.
    first_wait = next(i for i, s in enumerate(heuristic) if s.action.tool == "wait")
    assert calls(polling)[:first_wait] == calls(heuristic)[:first_wait]
    assert polling[first_wait].action.tool == "check_orders"
    assert {s.action.tool for s in polling} >= {"order", "ship"}


@pytest.mark.parametrize("seed", range(3))
def test_chatter_talks_in_every_reply_and_about_one_in_ten_replies_is_text_only(seed: int) -> None:
    steps = drive("chatter", seed)
    text_only = [i for i, s in enumerate(steps) if s.action.tool is None]
    assert all(s.action.text for s in steps)
    assert 0.05 <= len(text_only) / len(steps) <= 0.15
    assert all(b - a >= TEXT_ONLY_GAP[0] for a, b in itertools.pairwise(text_only))
    assert all(steps[i].action.text in CHAT_ONLY and steps[i].error == "no_tool_call" for i in text_only)
    assert all(steps[i].card is None for i in text_only)
    assert {s.action.tool for s in steps} >= {"order", "ship"}  # it runs the business


@pytest.mark.parametrize("seed", range(4))
def test_malformed_burst_makes_exactly_its_burst_then_recovers(seed: int) -> None:
    onset = ONSET + 7 * seed
    steps = drive("malformed_burst", seed, onset=onset)
    heuristic = drive("heuristic", seed)
    assert calls(steps)[: onset - 1] == calls(heuristic)[: onset - 1]
    burst = steps[onset - 1 : onset - 1 + MALFORMED_BURST]
    assert not any(s.valid for s in burst)
    assert all(s.card is None for s in burst)
    assert {s.error for s in burst} <= {"unknown_tool", "malformed", "bad_prediction", "unknown_order"}
    after = steps[onset - 1 + MALFORMED_BURST :]
    assert after[0].valid
    assert not {s.error for s in after} & {"unknown_tool", "malformed", "bad_prediction"}
    assert {s.action.tool for s in after} >= {"order", "ship"}


def test_malformed_burst_starts_at_its_default_onset_without_one() -> None:
    steps = drive("malformed_burst", 1)
    assert steps[DEFAULT_BURST_ONSET - 2].valid and not steps[DEFAULT_BURST_ONSET - 1].valid


def test_calibrated_confidence_is_the_smoothed_running_success_rate_per_tool() -> None:
    steps = drive("calibrated", 4, CONDITION.model_copy(update={"p_shock": 0.5}))
    seen: dict[str, list[bool]] = {}
    rates = []
    for s in steps:
        outcomes = seen.setdefault(s.action.tool, [])
        rate = (sum(outcomes) + 1) / (len(outcomes) + 2)
        assert s.card is not None
        assert s.card["confidence"] == round(rate, 3)
        assert s.card["expected_success"] == (rate >= 0.5)
        rates.append(rate)
        outcomes.append(s.valid)
    assert steps[0].card["confidence"] == 0.5
    assert len(set(rates)) > 10
    assert calls(steps) == calls(drive("heuristic", 4, CONDITION.model_copy(update={"p_shock": 0.5})))


NUMBER_FIELDS = ("expected_cost", "expected_revenue", "expected_cash", "expected_units_in_stock",
                 "expected_quantity", "expected_delivery_day")  # fmt: skip


def paired_cards(name: str, seed: int = 6) -> tuple[list[Step], list[tuple[str, float, float]]]:
    """The behaviour's steps, and (field, heuristic's value, behaviour's value) for every number it stated."""
    steps, heuristic = drive(name, seed), drive("heuristic", seed)
    assert calls(steps) == calls(heuristic)  # a card habit never changes what the agent does
    pairs = []
    for mine, honest in zip(steps, heuristic, strict=True):
        assert mine.card is not None and honest.card is not None
        assert set(mine.card) == set(honest.card)
        pairs += [(k, honest.card[k], mine.card[k]) for k in NUMBER_FIELDS if k in mine.card]
    return steps, pairs


def test_noisy_beliefs_states_unbiased_noise_and_acts_like_the_heuristic() -> None:
    _, pairs = paired_cards("noisy_beliefs")
    ratios = [mine / honest for name, honest, mine in pairs if name != "expected_delivery_day" and honest > 20]
    assert len(ratios) > 50
    assert all(0.79 <= r <= 1.21 for r in ratios)
    assert abs(statistics.mean(ratios) - 1) < 0.03 and statistics.pstdev(ratios) > 0.05
    shifts = [mine - honest for name, honest, mine in pairs if name == "expected_delivery_day"]
    assert set(shifts) <= {-1, 0, 1} and len(set(shifts)) == 3


def test_pessimistic_cards_expect_less_later_and_costlier_but_success() -> None:
    steps, pairs = paired_cards("pessimistic")
    assert all(s.card["expected_success"] is True and s.card["confidence"] == PESSIMISTIC_CONFIDENCE for s in steps)
    by_field: dict[str, list[tuple[float, float]]] = {}
    for name, honest, mine in pairs:
        by_field.setdefault(name, []).append((honest, mine))
    assert set(by_field) >= {"expected_cost", "expected_revenue", "expected_quantity", "expected_delivery_day"}
    assert all(mine > honest for honest, mine in by_field["expected_cost"] if honest > 0)
    assert all(mine < honest for honest, mine in by_field["expected_revenue"] if honest > 0)
    assert all(mine < honest for honest, mine in by_field["expected_quantity"])
    assert all(mine == honest + PESSIMISTIC_DELAY_DAYS for honest, mine in by_field["expected_delivery_day"])


def test_pointless_orders_buy_unrequested_skus_every_15_steps_or_so() -> None:
    condition = CONDITION.model_copy(update={"p_shock": 0.0})
    policy = make_policy("pointless_orders", PolicyContext.for_condition(condition), 2)
    episode, observation, pointless = Episode(condition, 2), None, []
    while not episode.done:
        action, card = policy.act(observation)
        result = episode.step(action, card)
        if policy.pointless_steps and policy.pointless_steps[-1] == result.step:
            requested = {o["sku_id"] for o in policy.beliefs.customer_orders.values()}
            assert action.tool == "order" and action.arguments["sku_id"] not in requested
            offer = policy.beliefs.offers[action.arguments["supplier_id"], action.arguments["sku_id"]]
            assert action.arguments["quantity"] == offer["min_order"]
            pointless.append(result.valid)
        observation = result.observation()
    assert len(pointless) >= STEPS // POINTLESS_GAP[1] - 1 and all(pointless)
    assert all(POINTLESS_GAP[0] <= b - a for a, b in itertools.pairwise(policy.pointless_steps))
