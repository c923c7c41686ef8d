"""Shocks: the schedule (common random numbers), what every kind does to the world, expiry, observability."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import Counter
from typing import Any

import pytest

from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction, Episode
from vendomini_eval.policies import PolicyContext, make_policy
from vendomini_eval.runner import run_policy
from vendomini_eval.shocks import (
    DOWN_TOOLS,
    MAGNITUDES,
    PARTIAL_NOTICE_SHARE,
    SHOCK_KINDS,
    TYPE_MIXES,
    ScheduledShock,
    apply_shock,
)
from vendomini_eval.world.state import Effect, Offer
from vendomini_eval.world.world import Terms

SEED = 5
WAIT = AgentAction("wait", {})


def schedule(seed: int = SEED, **fields: Any):
    return Episode(Condition(**fields), seed).schedule


# ----- the schedule ---------------------------------------------------------------------------------------


def test_same_seed_same_schedule_different_seed_different_schedule() -> None:
    fields = dict(p_shock=0.3, max_steps=400)
    a, b, c = schedule(7, **fields), schedule(7, **fields), schedule(8, **fields)
    assert a.listing() == b.listing()
    assert len(a.listing()) > 50
    assert a.listing() != c.listing()
    assert [a.at(s) for s in range(1, 401)] == [b.at(s) for s in range(1, 401)]


def test_schedule_does_not_depend_on_fields_other_than_dose_and_mix() -> None:
    """Conditions compared in one analysis (observability, complexity, prediction protocol, pressure) see the
    same luck on the same seed."""
    base = schedule(3, p_shock=0.3, max_steps=300).listing()
    for fields in (
        dict(observability="hidden"),
        dict(observability="delayed", notice_delay_steps=7),
        dict(complexity_level=4),
        dict(prediction_mode="none", prediction_format="rich"),
        dict(pressure_level="high", memory_tools="full", recovery_tools="all"),
        dict(pe_mag="high", crash_threshold="strict"),
    ):
        assert schedule(3, p_shock=0.3, max_steps=300, **fields).listing() == base, fields


def test_schedule_is_nested_across_p_shock() -> None:
    listings = {p: schedule(11, p_shock=p, max_steps=1000).listing() for p in (0.0, 0.1, 0.3, 0.6, 1.0)}
    assert listings[0.0] == []
    assert [step for step, _ in listings[1.0]] == list(range(1, 1001))
    ordered = [listings[p] for p in (0.0, 0.1, 0.3, 0.6, 1.0)]
    for low, high in itertools.pairwise(ordered):
        assert set(low) < set(high)  # same steps with the same kinds, and strictly more of them
    n = {p: len(v) for p, v in listings.items()}
    assert 60 < n[0.1] < 140 and 240 < n[0.3] < 360 and 540 < n[0.6] < 660


def test_shock_draws_are_nested_too() -> None:
    """Not only the kind: a shock present at both doses is the same shock (target, variant, notice draws)."""
    low, high = schedule(11, p_shock=0.1, max_steps=500), schedule(11, p_shock=0.3, max_steps=500)
    for step in low.steps():
        assert low.at(step) == high.at(step)


@pytest.mark.parametrize(
    ("mix", "allowed"),
    [
        ("temporal_only", {"temporal"}),
        ("quantity_only", {"quantity"}),
        ("causal_only", {"causal", "rule"}),
    ],
)
def test_single_family_mixes(mix: str, allowed: set[str]) -> None:
    kinds = {kind for _, kind in schedule(2, p_shock=1.0, max_steps=2000, pe_type_mix=mix).listing()}
    assert kinds == allowed


@pytest.mark.parametrize("mix", ["realistic", "uniform"])
def test_mix_frequencies_match_the_weights(mix: str) -> None:
    n = 20_000
    listing = schedule(2, p_shock=1.0, max_steps=n, pe_type_mix=mix).listing()
    counts = Counter(kind for _, kind in listing)
    assert set(counts) == set(SHOCK_KINDS)
    weights = TYPE_MIXES[mix]
    assert math.isclose(sum(weights), 1.0)
    for kind, weight in zip(SHOCK_KINDS, weights, strict=True):
        assert abs(counts[kind] / n - weight) < 0.02, (kind, counts[kind] / n, weight)


def test_realistic_mix_keeps_the_studys_shape() -> None:
    temporal, quantity, cost, causal, rule = TYPE_MIXES["realistic"]
    assert temporal > quantity > causal >= rule > 0
    assert cost > 0  # cost shocks are part of the realistic mix


def test_schedule_is_identical_across_policies() -> None:
    condition = Condition(complexity_level=1, p_shock=0.3, max_steps=300)
    heuristic = run_policy(condition, 21, "heuristic").episode
    random = run_policy(condition, 21, "random").episode
    fault = run_policy(condition, 21, "heuristic", fault="stall", onset=5).episode
    columns = [ep.trace.column("shock") for ep in (heuristic, random, fault)]
    common = min(len(c) for c in columns)
    assert common >= 20
    assert columns[0][:common] == columns[1][:common] == columns[2][:common]
    assert sum(1 for k in columns[0][:common] if k) >= 3
    expected = [(s.kind if (s := heuristic.schedule.at(step)) else None) for step in range(1, len(columns[0]) + 1)]
    assert columns[0] == expected


# ----- what each shock does -------------------------------------------------------------------------------


def shock_episode(**fields: Any) -> Episode:
    base: dict[str, Any] = dict(complexity_level=2, p_shock=0.0, prediction_mode="none", pe_mag="medium",
                                continue_after_crash=10**6)  # fmt: skip
    return Episode(Condition(**{**base, **fields}), SEED)


def fire(ep: Episode, kind: str, *, variant: float = 0.0, target: float = 0.0, sign: float = 0.9) -> Effect | None:
    """Apply a hand-made shock now; return the effect it added, if any."""
    before = len(ep.state.effects)
    apply_shock(ep.world, ScheduledShock(ep.state.step, kind, variant, target, sign, 0.0), ep.condition)
    assert ep.state.recent_shocks[-1].kind == kind
    return ep.state.effects[-1] if len(ep.state.effects) > before else None


def long_lead(ep: Episode) -> Offer:
    offer = max(ep.state.catalogue.offers, key=lambda o: (o.lead_days, o.supplier_id, o.sku_id))
    assert offer.lead_days >= 4
    return offer


def target_of(ep: Episode, key: tuple[str, str]) -> float:
    keys = list(ep.world.offers)
    return (keys.index(key) + 0.5) / len(keys)


def place(ep: Episode, offer: Offer, quantity: int | None = None, card: dict | None = None) -> dict[str, Any]:
    quantity = quantity or max(offer.min_order, 6)
    result = ep.step(AgentAction("order", {"supplier_id": offer.supplier_id, "sku_id": offer.sku_id,
                                           "quantity": quantity}), card)  # fmt: skip
    assert result.valid, result.message
    return result.result


def order(ep: Episode, supplier_id: str, sku_id: str, quantity: int):
    return ep.step(AgentAction("order", {"supplier_id": supplier_id, "sku_id": sku_id, "quantity": quantity}))


def wait_until_day(ep: Episode, day: int) -> None:
    while ep.state.day < day:
        ep.step(WAIT, {"expected_success": True} if ep.condition.prediction_mode != "none" else None)


def wait_past(ep: Episode, effect: Effect) -> None:
    """Wait until the effect's last day, check it is still active, then one day more: it is gone."""
    wait_until_day(ep, effect.until_day)
    assert effect in ep.state.effects
    wait_until_day(ep, effect.until_day + 1)
    assert all(e.effect_id != effect.effect_id for e in ep.state.effects)


def test_temporal_shock_delays_an_inbound_delivery_and_the_delivery_pe_sees_it() -> None:
    ep = shock_episode(prediction_mode="required", prediction_format="structured")
    offer = long_lead(ep)
    quantity = max(offer.min_order, 6)
    card = {"expected_success": True, "expected_cost": offer.unit_price_cents * quantity / 100,
            "expected_delivery_day": offer.lead_days, "expected_quantity": quantity}  # fmt: skip
    placed = place(ep, offer, quantity, card)
    po = ep.state.purchase_orders[0]
    assert fire(ep, "temporal", sign=0.9) is None
    shift = MAGNITUDES["medium"].shift_days
    assert po.arrival_day == placed["promised_day"] + shift
    assert po.promised_day == placed["promised_day"]
    pes = []
    while ep.state.day < po.arrival_day:
        assert ep.state.stock[offer.sku_id] == 0
        pes += ep.step(WAIT, {"expected_success": True}).pe
    assert ep.state.stock[offer.sku_id] == quantity
    temporal = [o for o in pes if o["field"] == "expected_delivery_day"]
    assert len(temporal) == 1 and temporal[0]["actual"] == placed["promised_day"] + shift
    assert temporal[0]["value"] == pytest.approx(shift / (shift + ep.condition.pe.temporal_half_days))


def test_temporal_shock_can_bring_a_delivery_forward() -> None:
    ep = shock_episode(pe_mag="high")
    offer = long_lead(ep)
    place(ep, offer)
    po = ep.state.purchase_orders[0]
    old = po.arrival_day
    fire(ep, "temporal", sign=0.1)
    assert po.arrival_day == max(ep.state.day + 1, old - math.ceil(MAGNITUDES["high"].shift_days / 2))
    assert po.arrival_day < old
    wait_until_day(ep, po.arrival_day)
    assert ep.state.stock[offer.sku_id] == po.quantity


def test_temporal_shock_without_inbound_lengthens_lead_times_until_it_expires() -> None:
    ep = shock_episode()
    effect = fire(ep, "temporal", target=0.0)
    assert effect is not None and effect.kind == "lead_time"
    supplier = effect.supplier_id
    base = {o.sku_id: o for o in ep.state.catalogue.offers if o.supplier_id == supplier}
    assert base
    for sku_id, offer in base.items():
        assert ep.world.effective_offer(supplier, sku_id).lead_days == offer.lead_days + MAGNITUDES["medium"].shift_days
    sku_id, offer = sorted(base.items())[0]
    result = order(ep, supplier, sku_id, offer.min_order)
    assert result.result["promised_day"] == 0 + offer.lead_days + MAGNITUDES["medium"].shift_days
    wait_past(ep, effect)
    assert ep.world.effective_offer(supplier, sku_id).lead_days == offer.lead_days


def test_quantity_shock_short_ships_and_refunds_the_missing_units() -> None:
    ep = shock_episode()
    offer = long_lead(ep)
    quantity = max(offer.min_order, 7)
    place(ep, offer, quantity)
    po = ep.state.purchase_orders[0]
    assert fire(ep, "quantity") is None
    delivered = math.floor(quantity * (1 - MAGNITUDES["medium"].fraction))
    assert po.delivered_quantity == delivered < quantity
    wait_until_day(ep, po.arrival_day)
    assert ep.state.stock[offer.sku_id] == delivered
    refunds = [(e.amount_cents, e.ref) for e in ep.world.ledger if e.cause == "short_shipment_refund"]
    assert refunds == [((quantity - delivered) * offer.unit_price_cents, po.po_id)]
    assert ep.state.cash_cents == ep.state.rules.start_cash_cents + sum(e.amount_cents for e in ep.world.ledger)


def test_quantity_shock_without_inbound_raises_demand_until_it_expires() -> None:
    ep, twin = shock_episode(pe_mag="high"), shock_episode(pe_mag="high")
    effect = fire(ep, "quantity", target=0.5)
    assert effect is not None and effect.kind == "demand"
    sku = effect.sku_id
    factor = 1 + 4 * MAGNITUDES["high"].fraction
    assert ep.world.demand_factor(sku) == pytest.approx(factor)
    assert twin.world.demand_factor(sku) == 1.0
    seen: dict[str, set[tuple[int, int, int]]] = {"shocked": set(), "plain": set()}
    while ep.state.day < effect.until_day:
        for name, e in (("shocked", ep), ("plain", twin)):
            e.step(WAIT)
            seen[name] |= {(o.created_day, o.quantity, o.due_day) for o in e.state.customer_orders if o.sku_id == sku}
    # Common random numbers: every order of the plain run also arrives in the shocked one, and more besides.
    assert seen["plain"] < seen["shocked"]
    wait_past(ep, effect)
    assert ep.world.demand_factor(sku) == 1.0


def test_cost_shock_raises_the_price_until_it_expires() -> None:
    ep = shock_episode()
    offer = sorted(ep.state.catalogue.offers, key=lambda o: (o.unit_price_cents, o.sku_id))[0]
    effect = fire(ep, "cost", target=target_of(ep, (offer.supplier_id, offer.sku_id)))
    assert effect is not None and effect.kind == "price"
    assert (effect.supplier_id, effect.sku_id) == (offer.supplier_id, offer.sku_id)
    raised = round(offer.unit_price_cents * (1 + MAGNITUDES["medium"].fraction))
    assert ep.world.effective_offer(offer.supplier_id, offer.sku_id) == Terms(raised, offer.lead_days, offer.min_order)
    catalogue = ep.step(AgentAction("check_catalogue", {})).result["offers"]
    row = next(r for r in catalogue if (r["supplier_id"], r["sku_id"]) == (offer.supplier_id, offer.sku_id))
    assert row["unit_price"] * 100 == pytest.approx(raised)
    bought = order(ep, offer.supplier_id, offer.sku_id, offer.min_order)
    assert bought.result["total_cost"] * 100 == pytest.approx(raised * offer.min_order)
    wait_past(ep, effect)
    assert ep.world.effective_offer(offer.supplier_id, offer.sku_id).unit_price_cents == offer.unit_price_cents


def test_causal_shock_drops_a_sku_so_orders_fail_until_it_expires() -> None:
    ep = shock_episode(pe_mag="low")
    offer = ep.state.catalogue.offers[3]
    assert order(ep, offer.supplier_id, offer.sku_id, offer.min_order).valid
    effect = fire(ep, "causal", variant=0.1, target=target_of(ep, (offer.supplier_id, offer.sku_id)))
    assert effect is not None and effect.kind == "drop_sku"
    assert (effect.supplier_id, effect.sku_id) == (offer.supplier_id, offer.sku_id)
    refused = order(ep, offer.supplier_id, offer.sku_id, offer.min_order)
    assert refused.error_kind == "not_carried"
    catalogue = ep.step(AgentAction("check_catalogue", {})).result["offers"]
    assert (offer.supplier_id, offer.sku_id) not in {(r["supplier_id"], r["sku_id"]) for r in catalogue}
    wait_past(ep, effect)
    assert order(ep, offer.supplier_id, offer.sku_id, offer.min_order).valid


@pytest.mark.parametrize(("target", "tool"), [(0.1, DOWN_TOOLS[0]), (0.5, DOWN_TOOLS[1]), (0.9, DOWN_TOOLS[2])])
def test_causal_shock_takes_a_tool_down_until_it_expires(target: float, tool: str) -> None:
    ep = shock_episode(pe_mag="low")
    offer = ep.state.catalogue.offers[0]
    args = {"supplier_id": offer.supplier_id, "sku_id": offer.sku_id, "quantity": offer.min_order}
    call = AgentAction(tool, args if tool == "order" else {})
    effect = fire(ep, "causal", variant=0.8, target=target)
    assert effect is not None and effect.kind == "tool_down" and effect.tool == tool
    down = ep.step(call)
    assert down.error_kind == "tool_down"
    assert tool in down.message
    assert ep.step(AgentAction("check_budget", {})).valid  # other tools still work
    wait_past(ep, effect)
    assert ep.step(call).valid


def test_rule_shock_raises_minimum_orders_until_it_expires() -> None:
    ep = shock_episode(pe_mag="medium")
    effect = fire(ep, "rule", variant=0.2, target=0.0)
    assert effect is not None and effect.kind == "min_order"
    offer = next(o for o in ep.state.catalogue.offers if o.supplier_id == effect.supplier_id)
    raised = max(1, round(offer.min_order * MAGNITUDES["medium"].rule_factor))
    assert raised > offer.min_order
    assert ep.world.effective_offer(offer.supplier_id, offer.sku_id).min_order == raised
    assert order(ep, offer.supplier_id, offer.sku_id, offer.min_order).error_kind == "below_min_order"
    wait_past(ep, effect)
    assert order(ep, offer.supplier_id, offer.sku_id, offer.min_order).valid


@pytest.mark.parametrize(("variant", "kind"), [(0.6, "storage_fee"), (0.9, "daily_fee")])
def test_rule_shock_raises_a_fee_until_it_expires(variant: float, kind: str) -> None:
    ep, twin = shock_episode(pe_mag="low"), shock_episode(pe_mag="low")
    for e in (ep, twin):
        e.state.stock[e.state.catalogue.skus[0].sku_id] = 10  # something to pay storage on
    effect = fire(ep, "rule", variant=variant)
    assert effect is not None and effect.kind == kind
    factor = MAGNITUDES["low"].rule_factor
    assert ep.world.fee_factor(kind) == factor
    budget = ep.step(AgentAction("check_budget", {})).result
    twin.step(WAIT)
    day_one = (ep.state.counters.fees_cents, twin.state.counters.fees_cents)
    key = "storage_fee_per_unit_day" if kind == "storage_fee" else "daily_fee"
    rules = ep.state.rules
    base_cents = rules.storage_fee_cents if kind == "storage_fee" else rules.daily_fee_cents
    assert budget[key] * 100 == pytest.approx(round(base_cents * factor))
    assert twin.step(AgentAction("check_budget", {})).result[key] * 100 == pytest.approx(base_cents)

    # Day-end fees (counters.fees_cents) of day 1: the shocked run pays the raised fee.
    units = 10 if kind == "storage_fee" else 1
    extra = round(units * base_cents * factor) - units * base_cents
    assert day_one[0] - day_one[1] == extra > 0
    wait_past(ep, effect)
    # The charge at the boundary that ends until_day still carries the factor (it is that day's fee); from
    # the next one on, both runs pay the same.
    wait_until_day(ep, effect.until_day + 2)
    wait_until_day(twin, ep.state.day)
    gap = ep.state.counters.fees_cents - twin.state.counters.fees_cents
    ep.step(WAIT)
    twin.step(WAIT)
    assert ep.state.counters.fees_cents - twin.state.counters.fees_cents == gap


def test_shock_targets_are_resolved_deterministically_from_the_state() -> None:
    for kind, variant in (("temporal", 0.0), ("quantity", 0.0), ("cost", 0.0), ("causal", 0.1), ("causal", 0.9),
                          ("rule", 0.1), ("rule", 0.6), ("rule", 0.9)):  # fmt: skip
        a, b = shock_episode(), shock_episode()
        fire(a, kind, variant=variant, target=0.37)
        fire(b, kind, variant=variant, target=0.37)
        assert a.state.dump() == b.state.dump(), kind
        assert a.state.effects, kind  # with nothing inbound, every kind leaves an effect


# ----- observability ---------------------------------------------------------------------------------------


def world_digest(ep: Episode) -> str:
    return hashlib.sha256(ep.state.model_dump_json(exclude={"pending_notices"}).encode()).hexdigest()


def run_mode(mode: str, steps: int = 40, delay: int = 4) -> tuple[Episode, list[list[str]], list[str]]:
    condition = Condition(complexity_level=2, p_shock=1.0, observability=mode, notice_delay_steps=delay,
                          max_steps=steps, continue_after_crash=10**6)  # fmt: skip
    ep = Episode(condition, 31)
    agent = make_policy("heuristic", PolicyContext.for_condition(condition), 31)
    notices, digests, observation = [], [], None
    while not ep.done:
        action, prediction = agent.act(observation)
        result = ep.step(action, prediction)
        observation = result.observation()
        notices.append(result.notices)
        digests.append(world_digest(ep))
        assert ("notices" in observation) == bool(result.notices)
    return ep, notices, digests


VAGUE_FORBIDDEN = ("until day", "instead of day", "%", "x higher", "x normal", "will deliver", "days longer")


def test_observability_modes_differ_only_in_notices() -> None:
    delay = 4
    runs = {mode: run_mode(mode, delay=delay) for mode in ("full", "delayed", "partial", "hidden")}
    full_ep, full, digests = runs["full"]
    assert len(full) == 40
    for mode, (_, _, other) in runs.items():
        assert other == digests, f"the world differs under {mode}"

    # full: one notice per step (p_shock = 1), delivered the same step, with the full description.
    described = [r.description for r in full_ep.state.recent_shocks]
    assert all(len(n) == 1 for n in full)
    assert [n[0] for n in full[-len(described) :]] == described
    assert any(ch.isdigit() for n in full for ch in n[0])

    # delayed: exactly notice_delay_steps later, same text.
    _, delayed, _ = runs["delayed"]
    assert delayed[:delay] == [[]] * delay
    assert delayed[delay:] == full[:-delay]

    # partial: only the shocks whose notice draw is below the share, same step, vague text without magnitudes.
    partial_ep, partial, _ = runs["partial"]
    announced = [i for i, n in enumerate(partial) if n]
    expected = [step - 1 for step in range(1, 41) if partial_ep.schedule.at(step).notice_u < PARTIAL_NOTICE_SHARE]
    assert announced == expected
    assert 0 < len(announced) < 40
    for i in announced:
        (text,) = partial[i]
        assert text != full[i][0]
        lowered = text.lower()
        assert not any(f in lowered for f in VAGUE_FORBIDDEN), text
        for number in ("day " + str(d) for d in range(1, 100)):
            assert number not in lowered, text

    # hidden: never a notice, nothing queued.
    hidden_ep, hidden, _ = runs["hidden"]
    assert hidden == [[]] * 40
    assert hidden_ep.state.pending_notices == []
    # ... but the shocks happened all the same (audit still records them).
    assert [r.kind for r in hidden_ep.state.recent_shocks] == [r.kind for r in full_ep.state.recent_shocks]


def test_delayed_notices_wait_in_the_state() -> None:
    ep, notices, _ = run_mode("delayed", steps=10, delay=6)
    assert sum(len(n) for n in notices) == 10 - 6
    assert sorted(n.deliver_step for n in ep.state.pending_notices) == [11, 12, 13, 14, 15, 16]
