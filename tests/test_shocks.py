"""Shocks: the schedule (common random numbers), what every variant does to the world, void shocks, caps,
expiry, observability and the revisions that notices carry."""

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
    DELIVERY_SHARE,
    DOWN_TOOLS,
    EARLY_SHARE,
    MAGNITUDES,
    PARTIAL_NOTICE_SHARE,
    SHOCK_KINDS,
    TYPE_MIXES,
    VARIANTS,
    AppliedShock,
    ScheduledShock,
    apply_shock,
    shock_variant,
)
from vendomini_eval.world.actions import NO_ARGS
from vendomini_eval.world.state import Effect, Offer, WorldState
from vendomini_eval.world.tools import TOOL_SPECS
from vendomini_eval.world.world import EFFECT_CAPS, Terms

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
    assert [step for step, _, _ in listings[1.0]] == list(range(1, 1001))
    ordered = [listings[p] for p in (0.0, 0.1, 0.3, 0.6, 1.0)]
    for low, high in itertools.pairwise(ordered):
        assert set(low) < set(high)  # same steps with the same kinds and variants, and strictly more of them
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
        ("quantity_only", {"short_shipment", "demand_surge"}),
        ("causal_only", {"causal", "rule"}),
    ],
)
def test_single_family_mixes(mix: str, allowed: set[str]) -> None:
    kinds = {kind for _, kind, _ in schedule(2, p_shock=1.0, max_steps=2000, pe_type_mix=mix).listing()}
    assert kinds == allowed


@pytest.mark.parametrize("mix", ["realistic", "uniform"])
def test_mix_frequencies_match_the_weights(mix: str) -> None:
    n = 20_000
    listing = schedule(2, p_shock=1.0, max_steps=n, pe_type_mix=mix).listing()
    counts = Counter(kind for _, kind, _ in listing)
    assert set(counts) == set(SHOCK_KINDS)
    weights = TYPE_MIXES[mix]
    assert math.isclose(sum(weights), 1.0)
    for kind, weight in zip(SHOCK_KINDS, weights, strict=True):
        assert abs(counts[kind] / n - weight) < 0.02, (kind, counts[kind] / n, weight)


def test_realistic_mix_keeps_the_studys_shape() -> None:
    temporal, short_shipment, demand_surge, cost, causal, rule = TYPE_MIXES["realistic"]
    assert temporal > short_shipment + demand_surge > causal >= rule > 0
    assert cost > 0  # cost shocks are part of the realistic mix
    assert short_shipment > demand_surge > 0  # the windfall is the smaller part of the quantity share
    assert all(math.isclose(sum(weights), 1.0) for weights in TYPE_MIXES.values())
    # quantity_only keeps the realistic split between the harmful and the windfall kind.
    assert math.isclose(TYPE_MIXES["quantity_only"][1] / TYPE_MIXES["quantity_only"][2], short_shipment / demand_surge)


def test_variants_are_drawn_from_the_shocks_own_uniforms() -> None:
    n = 20_000
    listing = schedule(4, p_shock=1.0, max_steps=n, pe_type_mix="uniform").listing()
    by_kind: dict[str, Counter[str]] = {kind: Counter() for kind in SHOCK_KINDS}
    for _, kind, variant in listing:
        by_kind[kind][variant] += 1
    for kind, counts in by_kind.items():
        assert set(counts) == set(VARIANTS[kind]), kind
    shares = {
        "temporal": {"delay": DELIVERY_SHARE * (1 - EARLY_SHARE), "early": DELIVERY_SHARE * EARLY_SHARE,
                     "lead_time": 1 - DELIVERY_SHARE},
        "causal": {"drop_sku": 0.6, "tool_down": 0.4},
        "rule": {"min_order": 0.5, "storage_fee": 0.25, "daily_fee": 0.25},
    }  # fmt: skip
    for kind, expected in shares.items():
        total = sum(by_kind[kind].values())
        for variant, share in expected.items():
            assert abs(by_kind[kind][variant] / total - share) < 0.03, (kind, variant)
    # The variant is a function of the draws alone.
    shock = schedule(4, p_shock=1.0, max_steps=10).at(3)
    assert shock is not None
    assert shock.variant == shock_variant(shock.kind, shock.variant_u, shock.sign_u)
    assert shock_variant("temporal", 0.1, 0.1) == "early" and shock_variant("temporal", 0.1, 0.9) == "delay"
    assert shock_variant("temporal", 0.9, 0.1) == "lead_time"


def test_schedule_is_identical_across_policies() -> None:
    """The drawn schedule is common to every policy; the trace records what took effect (the variant), which
    can differ only where a shock found no target (void)."""
    condition = Condition(complexity_level=1, p_shock=0.3, max_steps=300)
    episodes = [
        run_policy(condition, 21, "heuristic").episode,
        run_policy(condition, 21, "random").episode,
        run_policy(condition, 21, "heuristic", fault="stall", onset=5).episode,
    ]
    assert episodes[0].schedule.listing() == episodes[1].schedule.listing() == episodes[2].schedule.listing()
    for ep in episodes:
        column = ep.trace.column("shock")
        fired = [ep.schedule.at(step) for step in range(1, len(column) + 1)]
        assert all(v is None or (s is not None and v == s.variant) for v, s in zip(column, fired, strict=True))
        effective = sum(1 for v in column if v)
        assert effective >= 3
        assert effective + ep.shocks_void == sum(1 for s in fired if s is not None)


# ----- what each shock does -------------------------------------------------------------------------------


def shock_episode(**fields: Any) -> Episode:
    base: dict[str, Any] = dict(complexity_level=2, p_shock=0.0, prediction_mode="none", pe_mag="medium",
                                continue_after_crash=10**6)  # fmt: skip
    return Episode(Condition(**{**base, **fields}), SEED)


def fire(ep: Episode, kind: str, *, variant: float = 0.0, target: float = 0.0, sign: float = 0.9) -> Effect | None:
    """Apply a hand-made shock now (it must find its target); return the effect it added, if any."""
    before = len(ep.state.effects)
    applied = apply_shock(ep.world, ScheduledShock(ep.state.step, kind, variant, target, sign, 0.0), ep.condition)
    assert applied.kind == kind and not applied.void, applied
    assert ep.state.recent_shocks[-1].kind == kind
    assert ep.state.recent_shocks[-1].description == applied.description
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
    temporal = [o for o in pes if o.field == "expected_delivery_day"]
    assert len(temporal) == 1 and temporal[0].actual == placed["promised_day"] + shift
    assert temporal[0].value == pytest.approx(shift / (shift + ep.condition.pe.temporal_half_days))


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


def test_temporal_lead_time_variant_lengthens_lead_times_until_it_expires() -> None:
    ep = shock_episode()
    effect = fire(ep, "temporal", variant=0.9, target=0.0)
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


def test_short_shipment_short_ships_and_refunds_the_missing_units() -> None:
    ep = shock_episode()
    offer = long_lead(ep)
    quantity = max(offer.min_order, 7)
    place(ep, offer, quantity)
    po = ep.state.purchase_orders[0]
    assert fire(ep, "short_shipment") is None
    delivered = math.floor(quantity * (1 - MAGNITUDES["medium"].fraction))
    assert po.delivered_quantity == delivered < quantity
    wait_until_day(ep, po.arrival_day)
    assert ep.state.stock[offer.sku_id] == delivered
    refunds = [(e.amount_cents, e.ref) for e in ep.world.ledger if e.cause == "short_shipment_refund"]
    assert refunds == [((quantity - delivered) * offer.unit_price_cents, po.po_id)]
    assert ep.state.cash_cents == ep.state.rules.start_cash_cents + sum(e.amount_cents for e in ep.world.ledger)


def test_demand_surge_raises_demand_until_it_expires() -> None:
    ep, twin = shock_episode(pe_mag="high"), shock_episode(pe_mag="high")
    effect = fire(ep, "demand_surge", target=0.5)
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
    # Every variant, on a world with two purchase orders inbound.
    draws = [("temporal", 0.1, 0.9), ("temporal", 0.1, 0.1), ("temporal", 0.9, 0.5), ("short_shipment", 0.0, 0.5),
             ("demand_surge", 0.0, 0.5), ("cost", 0.0, 0.5), ("causal", 0.1, 0.5), ("causal", 0.9, 0.5),
             ("rule", 0.1, 0.5), ("rule", 0.6, 0.5), ("rule", 0.9, 0.5)]  # fmt: skip
    assert {shock_variant(*d) for d in draws} == {v for names in VARIANTS.values() for v in names}
    for kind, variant, sign in draws:
        a, b = shock_episode(), shock_episode()
        for e in (a, b):
            offer = long_lead(e)
            place(e, offer)
            place(e, offer)
        before = a.state.dump()
        fire(a, kind, variant=variant, target=0.37, sign=sign)
        fire(b, kind, variant=variant, target=0.37, sign=sign)
        assert a.state.dump() == b.state.dump(), kind
        assert a.state.model_dump(exclude={"recent_shocks", "pending_notices"}) != WorldState.load(before).model_dump(
            exclude={"recent_shocks", "pending_notices"}
        ), (kind, variant)  # every variant changes the world


# ----- void shocks: the kind and variant never depend on the state ---------------------------------------


def tick(ep: Episode, *shocks: ScheduledShock | None) -> tuple[list[AppliedShock], list[str]]:
    """One step of the world as the episode runs it after the action: the shocks, the day end, then the notices
    due, delivered with `World.deliver_notice`. Returns the applied shocks and the delivered notices' texts."""
    world, s = ep.world, ep.state
    s.step += 1
    applied = [apply_shock(world, shock, ep.condition) for shock in shocks if shock is not None]
    if s.step % s.rules.steps_per_day == 0:
        world.end_day()
    due = [n for n in s.pending_notices if n.deliver_step <= s.step]
    s.pending_notices = [n for n in s.pending_notices if n.deliver_step > s.step]
    return applied, [world.deliver_notice(n) for n in due]


PO_VARIANTS = {"delay", "early", "short_shipment"}


def run_world(ep: Episode, steps: int, keep_inbound: bool) -> list[AppliedShock]:
    """Steps 1..steps of the seed's schedule on a world whose agent either keeps a purchase order inbound (orders
    whenever nothing is on its way) or never orders."""
    offer = long_lead(ep)
    applied: list[AppliedShock] = []
    while ep.state.step < steps:
        if keep_inbound and not ep.state.purchase_orders:
            order = TOOL_SPECS["order"]
            order.apply(ep.world, order.args(supplier_id=offer.supplier_id, sku_id=offer.sku_id,
                                             quantity=offer.min_order))  # fmt: skip
        applied += tick(ep, ep.schedule.at(ep.state.step + 1))[0]
    return applied


def test_kind_and_variant_do_not_depend_on_the_agents_state_and_void_shocks_are_recorded() -> None:
    fields = dict(p_shock=0.5, steps_per_day=4, max_steps=200)
    idle = run_world(shock_episode(**fields), 200, keep_inbound=False)
    busy_ep = shock_episode(**fields)
    busy = run_world(busy_ep, 200, keep_inbound=True)
    drawn = [(kind, variant) for _, kind, variant in busy_ep.schedule.listing()]
    assert [(a.kind, a.variant) for a in idle] == [(a.kind, a.variant) for a in busy] == drawn
    assert len(drawn) > 60 and {v for _, v in drawn} > PO_VARIANTS
    # Nothing is ever inbound for the idle agent: exactly its purchase-order shocks are void.
    assert [a.void for a in idle] == [a.variant in PO_VARIANTS for a in idle]
    assert all(a.description.startswith("void") for a in idle if a.void)
    # The busy agent gives most of them a target; the rest of the schedule never depends on one.
    assert sum(a.void for a in busy) < sum(a.void for a in idle) / 2
    assert not any(a.void for a in busy if a.variant not in PO_VARIANTS)


@pytest.mark.parametrize(("kind", "variant_u", "sign_u"), [("temporal", 0.1, 0.9), ("temporal", 0.1, 0.1),
                                                          ("short_shipment", 0.5, 0.5)])  # fmt: skip
def test_a_void_shock_changes_nothing_and_sends_no_notice(kind: str, variant_u: float, sign_u: float) -> None:
    ep = shock_episode(observability="full")
    before = ep.state.dump()
    applied = apply_shock(ep.world, ScheduledShock(1, kind, variant_u, 0.5, sign_u, 0.0), ep.condition)
    assert applied == AppliedShock(kind, shock_variant(kind, variant_u, sign_u), True, applied.description)
    assert ep.state.dump() == before  # no effect, no record for audit, no notice


def test_an_early_shock_needs_a_delivery_that_can_come_earlier() -> None:
    ep = shock_episode()
    offer = min(ep.state.catalogue.offers, key=lambda o: (o.lead_days, o.supplier_id, o.sku_id))
    assert offer.lead_days == 1
    place(ep, offer)  # placed on day 0, arrives tomorrow: it cannot come any earlier
    before = ep.state.dump()
    assert apply_shock(ep.world, ScheduledShock(1, "temporal", 0.1, 0.5, 0.1, 0.0), ep.condition).void
    assert ep.state.dump() == before


def test_a_short_shipment_needs_units_left_to_lose() -> None:
    ep = shock_episode(pe_mag="high")
    offer = long_lead(ep)
    place(ep, offer, offer.min_order)  # few enough units that one high short shipment takes them all
    shocks = [apply_shock(ep.world, ScheduledShock(1, "short_shipment", 0.5, 0.5, 0.5, 0.0), ep.condition)
              for _ in range(2)]  # fmt: skip
    assert ep.state.purchase_orders[0].delivered_quantity == 0
    assert [s.void for s in shocks] == [False, True]


def test_same_seed_same_shocks_and_same_world() -> None:
    runs = []
    for _ in range(2):
        ep = shock_episode(p_shock=0.6, observability="delayed", notice_delay_steps=3, pe_mag="high")
        runs.append((run_world(ep, 150, keep_inbound=True), ep.state.dump()))
    assert runs[0] == runs[1]
    assert any(a.void for a in runs[0][0]) and not all(a.void for a in runs[0][0])


# ----- caps on stacked effects ------------------------------------------------------------------------------


def test_stacked_effects_multiply_up_to_their_cap() -> None:
    ep = shock_episode(pe_mag="high")
    world = ep.world
    offer = ep.state.catalogue.offers[0]
    supplier, sku = offer.supplier_id, offer.sku_id
    base_budget = TOOL_SPECS["check_budget"].apply(world, NO_ARGS)
    fire(ep, "rule", variant=0.9)  # daily fee x3: at the cap
    assert world.fee_factor("daily_fee") == 3.0 == EFFECT_CAPS["daily_fee"]
    fire(ep, "rule", variant=0.9)
    assert world.fee_factor("daily_fee") == EFFECT_CAPS["daily_fee"]
    assert TOOL_SPECS["check_budget"].apply(world, NO_ARGS)["daily_fee"] == pytest.approx(3 * base_budget["daily_fee"])
    target = target_of(ep, (supplier, sku))
    fire(ep, "cost", target=target)  # price x1.8
    assert world.effective_offer(supplier, sku).unit_price_cents == round(offer.unit_price_cents * 1.8)
    fire(ep, "cost", target=target)  # x1.8 again: 3.24, capped at 2
    assert world.effective_offer(supplier, sku).unit_price_cents == round(offer.unit_price_cents * EFFECT_CAPS["price"])
    supplier_u = (sorted(world.supplier_ids).index(supplier) + 0.5) / len(world.supplier_ids)
    for _ in range(3):  # 7 days each: 21, capped at 14
        fire(ep, "temporal", variant=0.9, target=supplier_u)
    assert world.effective_offer(supplier, sku).lead_days == offer.lead_days + EFFECT_CAPS["lead_time"]
    sku_u = (world.sku_order.index(sku) + 0.5) / len(world.sku_order)
    for _ in range(2):  # 4.2 each: 17.64, capped at 5
        fire(ep, "demand_surge", target=sku_u)
    assert world.demand_factor(sku) == EFFECT_CAPS["demand"]


@pytest.mark.parametrize("mix", ["causal_only", "temporal_only", "uniform"])
def test_stacked_effects_never_exceed_their_caps(mix: str) -> None:
    """p_shock 1 at high magnitude for 1,000 steps: every parameter reaches its cap and never passes it."""
    ep = shock_episode(complexity_level=3, p_shock=1.0, pe_mag="high", pe_type_mix=mix, max_steps=1000)
    world, rules = ep.world, ep.state.rules
    largest: dict[str, float] = dict.fromkeys(EFFECT_CAPS, 0.0)
    while ep.state.step < 1000:
        tick(ep, ep.schedule.at(ep.state.step + 1))
        budget = TOOL_SPECS["check_budget"].apply(world, NO_ARGS)
        largest["daily_fee"] = max(largest["daily_fee"], budget["daily_fee"] * 100 / rules.daily_fee_cents)
        storage = budget["storage_fee_per_unit_day"] * 100 / rules.storage_fee_cents
        largest["storage_fee"] = max(largest["storage_fee"], storage)
        for offer in ep.state.catalogue.offers:
            terms = world.effective_offer(offer.supplier_id, offer.sku_id)
            if terms is None:
                continue  # dropped for now
            largest["price"] = max(largest["price"], terms.unit_price_cents / offer.unit_price_cents)
            largest["lead_time"] = max(largest["lead_time"], terms.lead_days - offer.lead_days)
            largest["min_order"] = max(largest["min_order"], terms.min_order / offer.min_order)
        largest["demand"] = max(largest["demand"], *(world.demand_factor(sku) for sku in world.sku_order))
    for name, cap in EFFECT_CAPS.items():
        # Rounding to whole cents or units can land a hair above the factor (e.g. 3 x 1 unit rounds exactly).
        assert largest[name] <= cap + 0.01, (name, largest[name], cap)
    reached = {"causal_only": ("daily_fee", "storage_fee", "min_order"), "temporal_only": ("lead_time",),
               "uniform": ("price", "demand")}[mix]  # fmt: skip
    for name in reached:
        assert largest[name] >= EFFECT_CAPS[name] - 0.01, (name, largest[name])


# ----- notices revise what the agent was promised -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "delayed", "partial", "hidden"])
def test_a_notice_revises_what_check_orders_shows_when_it_reaches_the_agent(mode: str) -> None:
    delay = 4
    ep = shock_episode(observability=mode, notice_delay_steps=delay, steps_per_day=20)  # no day ends in between
    offer = long_lead(ep)
    quantity = max(offer.min_order, 8)
    placed = place(ep, offer, quantity)
    po = ep.state.purchase_orders[0]
    original = (placed["promised_day"], quantity)
    step = ep.state.step + 1
    delay_shock = ScheduledShock(step, "temporal", 0.1, 0.0, 0.9, 0.0)
    short_shock = ScheduledShock(step, "short_shipment", 0.0, 0.0, 0.5, 0.0)  # notice draw 0: announced if partial
    shown, texts = [], []
    for i in range(delay + 2):
        _, delivered = tick(ep, *((delay_shock, short_shock) if i == 0 else ()))
        texts.append(delivered)
        (row,) = TOOL_SPECS["check_orders"].apply(ep.world, NO_ARGS)["purchase_orders"]
        shown.append((row["promised_day"], row["promised_quantity"]))
        assert row["quantity"] == quantity  # the ordered quantity stays as ordered
    truth = (po.arrival_day, po.delivered_quantity)
    assert truth[0] == original[0] + MAGNITUDES["medium"].shift_days and truth[1] < quantity
    if mode == "full":
        assert shown == [truth] * (delay + 2)
    elif mode == "delayed":
        assert shown == [original] * delay + [truth] * 2
        assert [len(t) for t in texts] == [0] * delay + [2, 0]
    else:
        assert shown == [original] * (delay + 2)  # a vague notice, or none, revises nothing
        assert sum(len(t) for t in texts) == (2 if mode == "partial" else 0)
    assert (po.promised_day, po.promised_quantity) == shown[-1]


def test_a_notice_about_a_delivered_order_changes_nothing() -> None:
    ep = shock_episode(observability="delayed", notice_delay_steps=30)
    offer = long_lead(ep)
    place(ep, offer)
    fire(ep, "temporal", variant=0.1, sign=0.9)
    (notice,) = ep.state.pending_notices
    assert notice.po_id == ep.state.purchase_orders[0].po_id and notice.promised_quantity is None
    wait_until_day(ep, ep.state.purchase_orders[0].arrival_day)
    assert ep.state.purchase_orders == []
    before = ep.state.dump()
    assert ep.world.deliver_notice(notice) == notice.text
    assert ep.state.dump() == before


# ----- observability ---------------------------------------------------------------------------------------


# The business, without what the agent was told: queued notices and the promises that notices revise.
TOLD = {"pending_notices": True, "purchase_orders": {"__all__": {"promised_day", "promised_quantity"}}}


def world_digest(ep: Episode) -> str:
    return hashlib.sha256(ep.state.model_dump_json(exclude=TOLD).encode()).hexdigest()


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

    # full: a shock every step (p_shock = 1), each announced the same step with the full description, except
    # the void ones (a purchase-order shock with no order to change).
    described = [r.description for r in full_ep.state.recent_shocks]
    assert all(len(n) <= 1 for n in full)
    silent = [step for step in range(1, 41) if not full[step - 1]]
    assert 0 < len(silent) < 20
    assert all(full_ep.schedule.at(step).variant in PO_VARIANTS for step in silent)
    assert [n[0] for n in full if n][-len(described) :] == described
    assert any(ch.isdigit() for n in full for ch in n[0])

    # delayed: exactly notice_delay_steps later, same text.
    _, delayed, _ = runs["delayed"]
    assert delayed[:delay] == [[]] * delay
    assert delayed[delay:] == full[:-delay]

    # partial: only the shocks whose notice draw is below the share, same step, vague text without magnitudes.
    partial_ep, partial, _ = runs["partial"]
    announced = [i for i, n in enumerate(partial) if n]
    expected = [i for i in range(40) if full[i] and partial_ep.schedule.at(i + 1).notice_u < PARTIAL_NOTICE_SHARE]
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
    _, full, _ = run_mode("full", steps=10)
    assert notices == [[]] * 6 + full[:4]
    waiting = [step + 6 for step in range(5, 11) if full[step - 1]]
    assert sorted(n.deliver_step for n in ep.state.pending_notices) == waiting


@pytest.mark.parametrize("mode", ["full", "delayed", "partial", "hidden"])
def test_check_orders_shows_a_revision_only_once_a_full_notice_reaches_the_agent(mode: str) -> None:
    """A delay shock on a purchase order: what check_orders shows moves when (and only if) the agent is told."""
    delay = 3
    condition = Condition(complexity_level=2, p_shock=0.0, prediction_mode="none", pe_mag="medium",
                          observability=mode, notice_delay_steps=delay, steps_per_day=20,
                          continue_after_crash=10**6)  # fmt: skip
    ep = Episode(condition, SEED)
    offer = max(ep.state.catalogue.offers, key=lambda o: (o.lead_days, o.supplier_id, o.sku_id))
    placed = ep.step(AgentAction("order", {"supplier_id": offer.supplier_id, "sku_id": offer.sku_id,
                                           "quantity": max(offer.min_order, 6)}))  # fmt: skip
    assert placed.valid
    # A delay at step 2 (notice draw 0: under partial observability a vague notice is sent).
    ep.schedule.at = lambda step: ScheduledShock(step, "temporal", 0.1, 0.0, 0.9, 0.0) if step == 2 else None
    shown = [ep.step(AgentAction("check_orders", {})).result["purchase_orders"][0]["promised_day"]
             for _ in range(delay + 2)]  # fmt: skip
    original, revised = placed.result["promised_day"], placed.result["promised_day"] + MAGNITUDES["medium"].shift_days
    # check_orders at step k shows what the agent was told by the end of step k - 1.
    expected = {"full": [original] + [revised] * (delay + 1),
                "delayed": [original] * (delay + 1) + [revised],
                "partial": [original] * (delay + 2), "hidden": [original] * (delay + 2)}[mode]  # fmt: skip
    assert shown == expected
