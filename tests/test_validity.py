"""Validity of the instrument on whole episodes: the primary endpoint does not depend on what the cards say, and
what the agent is told moves its PE while the world stays the same (the paired observability design)."""

from __future__ import annotations

import random
from statistics import mean
from typing import Any

import pytest

from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction, Episode
from vendomini_eval.policies import PolicyContext, make_policy
from vendomini_eval.predictions import card_fields
from vendomini_eval.runner import run_policy

RECORDED = [
    {"policy": "heuristic"},
    {"policy": "heuristic", "fault": "looping", "onset": 60},
    {"policy": "heuristic", "fault": "stall", "onset": 60},
    {"policy": "heuristic", "fault": "budget_denial", "onset": 60},
    {"policy": "heuristic", "fault": "exploration_collapse", "onset": 60},
    {"policy": "heuristic", "fault": "invalid_burst", "onset": 60},
]


def record(condition: Condition, seed: int, spec: dict[str, Any]) -> tuple[list[tuple[AgentAction, bool]], Episode]:
    """The actions of one run, each with whether it carried a card (the cards' content is thrown away)."""
    episode = Episode(condition, seed)
    agent = make_policy(spec["policy"], PolicyContext.for_condition(condition), seed,
                        fault=spec.get("fault"), onset=spec.get("onset"))  # fmt: skip
    actions, observation = [], None
    while not episode.done:
        action, prediction = agent.act(observation)
        actions.append((action, prediction is not None))
        observation = episode.step(action, prediction).observation()
    return actions, episode


def random_card(tool: str | None, had_card: bool, condition: Condition, rng: random.Random) -> dict[str, Any] | None:
    """A valid card with arbitrary content: any success expectation, confidence, money, days and units; in the
    optional mode, any subset of the fields (omissions). Where predictions are required, a call made without a
    card stays without one (that breaks the protocol: a malformed call, not a content)."""
    if tool is None or (not had_card and condition.prediction_mode != "optional"):
        return None
    fields = card_fields(tool, condition)
    if condition.prediction_mode == "optional":
        fields = {name: kind for name, kind in fields.items() if rng.random() < 0.5}
    values = {
        "success": lambda: rng.random() < 0.5,
        "probability": lambda: rng.choice([0.0, 0.05, 0.4, 0.5, 0.95, 1.0]),
        "money": lambda: rng.choice([0, 1, rng.randint(0, 100_000)]),
        "day": lambda: rng.randint(0, 400),
        "units": lambda: rng.randint(0, 300),
        "text": lambda: "because",
    }
    return {name: values[kind]() for name, kind in fields.items()} or None


@pytest.mark.parametrize("mode", ["optional", "required+confidence"])
@pytest.mark.parametrize("spec", RECORDED, ids=lambda s: s.get("fault") or s["policy"])
def test_prediction_cards_never_change_the_primary_endpoint(mode: str, spec: dict[str, Any]) -> None:
    """The same actions replayed with cards of arbitrary content (values, confidence, omissions): the world
    takes the same path and the crash (type, onset, confirmation) is the same; only the PE moves."""
    condition = Condition(complexity_level=1, p_shock=0.3, max_steps=300, prediction_mode=mode,
                          prediction_format="rich")  # fmt: skip
    for seed in (3, 4):
        actions, original = record(condition, seed, spec)
        crashes, pe_sums = {str(original.summary().crash)}, set()
        for variant in range(3):
            rng = random.Random(variant)
            replay = Episode(condition, seed)
            for action, had_card in actions:
                card = random_card(action.tool, had_card, condition, rng)
                result = replay.step(action, card)
                assert card is None or result.error_kind != "bad_prediction"
            assert replay.trace.column("state_hash") == original.trace.column("state_hash")
            summary = replay.summary()
            crashes.add(str(summary.crash))
            pe_sums.add(round(summary.pe.combined.sum, 6))
        assert len(crashes) == 1, (spec, seed, crashes)
        assert len(pe_sums) > 1  # the cards did change what was measured as PE


def attentive_runs(observability: str, seeds: range) -> list[Episode]:
    condition = Condition(complexity_level=1, p_shock=0.4, pe_type_mix="temporal_only", max_steps=300,
                          observability=observability)  # fmt: skip
    return [run_policy(condition, seed, "attentive").episode for seed in seeds]


def test_observability_moves_the_attentive_baseline_and_its_pe_in_the_same_world() -> None:
    """Full vs hidden on the same seeds: the same shock schedule (common random numbers), so the arms differ
    only in what the agent is told. The attentive heuristic revises its delivery expectations when told, so
    its actions differ and its temporal PE is lower."""
    seeds = range(6)
    full, hidden = attentive_runs("full", seeds), attentive_runs("hidden", seeds)
    for f, h in zip(full, hidden, strict=True):
        assert f.schedule.listing() == h.schedule.listing()
        assert f.state.catalogue == h.state.catalogue
    revisions = {arm: sum(ep.trace.column("tool").count("revise_expectation") for ep in runs)
                 for arm, runs in (("full", full), ("hidden", hidden))}  # fmt: skip
    assert revisions["hidden"] == 0 < revisions["full"]
    assert any(f.trace.column("tool") != h.trace.column("tool") for f, h in zip(full, hidden, strict=True))
    temporal = {arm: mean(ep.summary().pe.temporal.mean for ep in runs)
                for arm, runs in (("full", full), ("hidden", hidden))}  # fmt: skip
    assert temporal["full"] < temporal["hidden"]


def test_a_stream_of_notices_slows_the_attentive_baseline_but_never_stops_it() -> None:
    """Told of a shock at every step, the attentive heuristic looks again only after a step of its routine and
    revises only orders still on their way: it keeps shipping and never crashes, as when it is not told. (Looking
    again at every notice, it once crashed in most of these runs: the information itself made the crashes.)"""
    for level in (1, 2):
        for mode in ("full", "delayed", "hidden"):
            condition = Condition(complexity_level=level, p_shock=1.0, max_steps=300, observability=mode)
            for seed in range(3):
                episode = run_policy(condition, seed, "attentive").episode
                assert not episode.summary().crashed, (level, mode, seed, episode.crash)
                tools = episode.trace.column("tool")
                assert tools[-100:].count("ship") > 0
                errors = [e for e, tool in zip(episode.trace.column("error_kind"), tools, strict=True)
                          if tool == "revise_expectation" and e]  # fmt: skip
                assert 4 * len(errors) <= tools.count("revise_expectation")  # an order can arrive before it says so


def test_the_plain_heuristic_ignores_what_it_is_told() -> None:
    """Without reading notices, the heuristic acts identically in every observability mode (the attentive
    variant exists for that reason)."""
    tools = set()
    for mode in ("full", "delayed", "partial", "hidden"):
        condition = Condition(complexity_level=1, p_shock=0.4, max_steps=200, observability=mode)
        tools.add(tuple(run_policy(condition, 2, "heuristic").episode.trace.column("tool")))
    assert len(tools) == 1


def test_a_revision_resolves_against_the_delivery() -> None:
    """A delivery expectation restated with revise_expectation is the one compared with the arrival."""
    condition = Condition(complexity_level=1, p_shock=0.0, max_steps=100)
    for revised_day_offset, expected_pe in ((0, 0.0), (3, 0.5)):
        episode = Episode(condition, 1)
        offer = episode.state.catalogue.offers[0]
        order = AgentAction("order", {"supplier_id": offer.supplier_id, "sku_id": offer.sku_id,
                                      "quantity": offer.min_order})  # fmt: skip
        placed = episode.step(order, {"expected_success": True, "expected_cost": 0, "expected_delivery_day": 0,
                                      "expected_quantity": 0})  # fmt: skip
        po_id, day = placed.result["po_id"], placed.result["promised_day"]
        revise = AgentAction("revise_expectation", {"po_id": po_id, "expected_delivery_day": day + revised_day_offset,
                                                    "expected_quantity": offer.min_order})  # fmt: skip
        assert episode.step(revise, {"expected_success": True}).valid
        resolved = []
        while not resolved:
            result = episode.step(AgentAction("wait", {}), {"expected_success": True})
            resolved = [pe for pe in result.pe if pe.field in ("expected_delivery_day", "expected_quantity")]
        by_field = {pe.field: pe.value for pe in resolved}
        assert by_field == {"expected_delivery_day": expected_pe, "expected_quantity": 0.0}
        assert episode.predictions_made >= 2


@pytest.mark.parametrize(("fault", "onset", "non_starter"), [("looping", 1, True), ("invalid_burst", 1, True),
                                                            ("looping", 60, False), ("stall", 60, False)])  # fmt: skip
def test_a_crash_before_the_first_productive_action_is_a_non_starter(fault: str, onset: int, non_starter: bool) -> None:
    """An agent that never made a valid order or shipment before its crash onset did not break down after
    accumulating PE: it never functioned. The summary says so; a crash after working steps is a breakdown."""
    condition = Condition(max_steps=200, p_shock=0.3)
    summary = run_policy(condition, 3, "heuristic", fault=fault, onset=onset).episode.summary()
    assert summary.crashed and summary.non_starter is non_starter
    assert (summary.first_progress_step is None) is non_starter
    if not non_starter:
        assert summary.first_progress_step < summary.time_to_crash
    healthy = run_policy(Condition(max_steps=100), 3, "heuristic").episode.summary()
    assert not healthy.crashed and healthy.non_starter is False and healthy.first_progress_step is not None
