"""Shocks on the vending world (vendomini_eval/vending/shocks.py) and what the episode needs of it: each variant
changes exactly what it says or is void, notices revise what the agent was told, short shipments refund, the
shock-made effects act and expire, the cost of an order before it is placed, actionability, progress, revisions,
and determinism under a shock schedule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from test_vending_world import RICH, end_days, ledger_identity_holds, long_life, new_world, rejected, source

from vendomini_eval.condition import Condition
from vendomini_eval.shocks import MAGNITUDES, ScheduledShock, ShockSchedule, apply_shock
from vendomini_eval.vending import runner
from vendomini_eval.vending.heuristic import heuristic_policy
from vendomini_eval.vending.shocks import VARIANT_EFFECTS
from vendomini_eval.vending.state import Effect, Order
from vendomini_eval.vending.tools import TOOLS, call
from vendomini_eval.vending.world import VendingWorld
from vendomini_eval.world.world import RECENT_SHOCKS_KEPT

MEDIUM = MAGNITUDES["medium"]  # shift 3 days, fraction 0.5, 15 days, rule factor 2
# Shock draws that select each variant (kind, variant_u, sign_u): see shocks.shock_variant.
DRAWS = {
    "delay": ("temporal", 0.1, 0.9),
    "early": ("temporal", 0.1, 0.1),
    "lead_time": ("temporal", 0.9, 0.9),
    "short_shipment": ("short_shipment", 0.5, 0.5),
    "demand_surge": ("demand_surge", 0.5, 0.5),
    "price_rise": ("cost", 0.5, 0.5),
    "drop_sku": ("causal", 0.1, 0.5),
    "tool_down": ("causal", 0.9, 0.5),
    "min_order": ("rule", 0.1, 0.5),
    "storage_fee": ("rule", 0.6, 0.5),
    "daily_fee": ("rule", 0.9, 0.5),
}


def shock(variant: str, target_u: float = 0.0, step: int = 1, notice_u: float = 0.0) -> ScheduledShock:
    kind, variant_u, sign_u = DRAWS[variant]
    scheduled = ScheduledShock(step, kind, variant_u, target_u, sign_u, notice_u)
    assert scheduled.variant == variant
    return scheduled


def condition(**fields: Any) -> Condition:
    return Condition(world="vending", **fields)


def order(world: VendingWorld, product_id: str, quantity: int | None = None) -> dict[str, Any]:
    supplier_id = source(world, product_id)
    minimum = world.min_order_units(supplier_id)
    arguments = {"supplier_id": supplier_id, "product_id": product_id, "quantity": quantity or minimum}
    return call(world, "order", arguments)


def placed(world: VendingWorld, po_id: str) -> Order:
    return next(o for o in world.state.orders if o.po_id == po_id)


def with_orders(seed: int = 0) -> tuple[VendingWorld, list[Order]]:
    """A rich business with three undelivered orders (seed 0: every lead time is at least 3 days)."""
    world = new_world(seed, RICH)
    po_ids = [order(world, product_id, 20)["po_id"] for product_id in ("P02", "P05", "P10")]
    end_days(world, 1)
    return world, [placed(world, po_id) for po_id in po_ids]


def expected_after(world: VendingWorld, change: dict[str, Any]) -> dict[str, Any]:
    """The state's dump with `change` applied: {"orders": {po_id: fields}} or {"effects": [new effect]}."""
    dump = world.state.model_dump()
    for row in dump["orders"]:
        row.update(change.get("orders", {}).get(row["po_id"], {}))
    dump["effects"] += [e.model_dump() for e in change.get("effects", [])]
    return dump


# ----- each variant changes exactly what it says ----------------------------------------------------------------
@pytest.mark.parametrize("target_u", [0.0, 0.99])
def test_delay_and_early_move_one_orders_arrival_and_revise_its_promised_day(target_u: float) -> None:
    for variant, shift in (("delay", MEDIUM.shift_days), ("early", -math.ceil(MEDIUM.shift_days / 2))):
        world, orders = with_orders()
        target = sorted(orders, key=lambda o: o.po_id)[-1 if target_u else 0]
        new_day = max(world.state.day + 1, target.arrival_day + shift)
        expected = expected_after(world, {"orders": {target.po_id: {"arrival_day": new_day}}})
        change = VARIANT_EFFECTS[variant](world, shock(variant, target_u), MEDIUM)
        assert world.state.model_dump() == expected
        assert change is not None and change.revision == {"po_id": target.po_id, "promised_day": new_day}
        assert f"day {new_day}" in change.full and target.po_id in change.vague


def test_early_never_moves_a_delivery_before_tomorrow_nor_one_due_tomorrow() -> None:
    world, orders = with_orders()
    end_days(world, min(o.arrival_day for o in orders) - 2 - world.state.day)
    soon = min(orders, key=lambda o: o.arrival_day)
    assert soon.arrival_day == world.state.day + 2  # 2 days out: a shift of 2 would bring it to tomorrow at most
    VARIANT_EFFECTS["early"](world, shock("early"), MAGNITUDES["high"])  # high: 4 days earlier, floored
    assert min(o.arrival_day for o in orders) == world.state.day + 1
    only_tomorrow, tomorrow_orders = with_orders()
    for o in tomorrow_orders:
        o.arrival_day = only_tomorrow.state.day + 1  # test setup: everything is due tomorrow
    before = only_tomorrow.state.dump()
    assert VARIANT_EFFECTS["early"](only_tomorrow, shock("early"), MEDIUM) is None
    assert only_tomorrow.state.dump() == before


def test_short_shipment_lowers_one_orders_delivery_and_revises_its_promised_quantity() -> None:
    world, orders = with_orders()
    target = min(orders, key=lambda o: o.po_id)
    expected = expected_after(world, {"orders": {target.po_id: {"delivered_quantity": 10}}})
    change = VARIANT_EFFECTS["short_shipment"](world, shock("short_shipment"), MEDIUM)
    assert world.state.model_dump() == expected
    assert change is not None and change.revision == {"po_id": target.po_id, "promised_quantity": 10}
    # An order already shipping nothing is no target: high magnitude takes 20 -> 4 -> 0, then the shock is void.
    single = new_world(0, RICH)
    order(single, "P02", 20)
    high = MAGNITUDES["high"]
    assert [VARIANT_EFFECTS["short_shipment"](single, shock("short_shipment"), high) is None for _ in range(3)] == [
        False,
        False,
        True,
    ]
    assert single.state.orders[0].delivered_quantity == 0


@pytest.mark.parametrize("variant", ["delay", "early", "short_shipment"])
def test_order_variants_are_void_without_an_undelivered_order(variant: str) -> None:
    world = new_world(0, RICH)
    order(world, "P02")
    end_days(world, 6)  # delivered
    before = world.state.dump()
    assert VARIANT_EFFECTS[variant](world, shock(variant), MEDIUM) is None
    applied = apply_shock(world, shock(variant), condition(), effects=VARIANT_EFFECTS)
    assert applied.void and world.state.dump() == before  # no change, no notice, no record


def effect_of(world: VendingWorld, variant: str) -> Effect:
    """The effect a variant must add at target_u = 0 (the first target of each deterministic order)."""
    until = world.state.day + MEDIUM.duration_days
    first_supplier = sorted(world.suppliers)[0]
    first_offer = world.state.catalogue.offers[0]
    offer = {"supplier_id": first_offer.supplier_id, "product_id": first_offer.product_id}
    return {
        "lead_time": Effect(kind="supplier_delay", supplier_id=first_supplier, days=3, until_day=until),
        "demand_surge": Effect(kind="demand", product_id="P01", factor=3.0, until_day=until),
        "price_rise": Effect(kind="cost", **offer, factor=1.5, until_day=until),
        "drop_sku": Effect(kind="unavailable", **offer, until_day=until),
        "tool_down": Effect(kind="tool_outage", tool="order", until_day=until),
        "min_order": Effect(kind="min_order", supplier_id=first_supplier, factor=2.0, until_day=until),
        "storage_fee": Effect(kind="daily_fee", factor=2.0, until_day=until),
        "daily_fee": Effect(kind="daily_fee", factor=2.0, until_day=until),
    }[variant]


@pytest.mark.parametrize("variant", [v for v in DRAWS if v not in ("delay", "early", "short_shipment")])
def test_effect_variants_add_exactly_their_effect(variant: str) -> None:
    world, _ = with_orders()
    expected = expected_after(world, {"effects": [effect_of(world, variant)]})
    change = VARIANT_EFFECTS[variant](world, shock(variant), MEDIUM)
    assert world.state.model_dump() == expected
    assert change is not None and change.revision == {} and change.full and change.vague


def test_targets_follow_the_target_uniform_in_catalogue_order() -> None:
    world = new_world(0)
    offers = list(world.offers)
    for u in (0.0, 0.3, 0.99):
        VARIANT_EFFECTS["drop_sku"](world, shock("drop_sku", u), MEDIUM)
        VARIANT_EFFECTS["demand_surge"](world, shock("demand_surge", u), MEDIUM)
    dropped = [(e.supplier_id, e.product_id) for e in world.state.effects if e.kind == "unavailable"]
    surged = [e.product_id for e in world.state.effects if e.kind == "demand"]
    assert dropped == [offers[int(u * len(offers))] for u in (0.0, 0.3, 0.99)]
    assert surged == [list(world.products)[int(u * len(world.products))] for u in (0.0, 0.3, 0.99)]


# ----- notices ---------------------------------------------------------------------------------------------------
def expected_rows(world: VendingWorld) -> dict[str, tuple[int, int]]:
    return {r["po_id"]: (r["expected_day"], r["promised_quantity"]) for r in call(world, "check_orders", {})["orders"]}


def test_notices_carry_revisions_that_deliver_notice_applies() -> None:
    world, orders = with_orders()
    first = min(orders, key=lambda o: o.po_id)
    told = expected_rows(world)[first.po_id]
    apply_shock(world, shock("delay", step=4), condition(), effects=VARIANT_EFFECTS)
    apply_shock(world, shock("short_shipment", step=5), condition(), effects=VARIANT_EFFECTS)
    assert expected_rows(world)[first.po_id] == told  # the agent has not been told yet
    delay, short = world.state.pending_notices
    assert (delay.deliver_step, delay.po_id, delay.promised_day) == (4, first.po_id, told[0] + 3)
    assert (short.deliver_step, short.po_id, short.promised_quantity) == (5, first.po_id, 10)
    assert [world.deliver_notice(n) for n in (delay, short)] == [delay.text, short.text]
    assert expected_rows(world)[first.po_id] == (told[0] + 3, 10) == (first.arrival_day, first.delivered_quantity)
    assert [r.step for r in world.state.recent_shocks] == [4, 5]


def test_observability_decides_the_notice_and_a_vague_one_revises_nothing() -> None:
    world, _ = with_orders()
    apply_shock(world, shock("delay", step=3), condition(observability="delayed", notice_delay_steps=4),
                effects=VARIANT_EFFECTS)  # fmt: skip
    apply_shock(world, shock("delay", step=3), condition(observability="hidden"), effects=VARIANT_EFFECTS)
    apply_shock(world, shock("delay", step=3), condition(observability="partial"), effects=VARIANT_EFFECTS)
    delayed, vague = world.state.pending_notices
    assert delayed.deliver_step == 7 and delayed.promised_day is not None
    assert (vague.deliver_step, vague.po_id, vague.promised_day) == (3, None, None)
    assert len(world.state.recent_shocks) == 3  # every shock is recorded, told or not


def test_a_notice_about_a_delivered_order_changes_nothing() -> None:
    world, orders = with_orders()
    apply_shock(world, shock("delay"), condition(), effects=VARIANT_EFFECTS)
    (notice,) = world.state.pending_notices
    end_days(world, max(o.arrival_day for o in orders) - world.state.day)
    before = world.state.dump()
    assert world.deliver_notice(notice) == notice.text
    assert world.state.dump() == before


def test_recent_shocks_stay_bounded() -> None:
    world = new_world(0)
    for step in range(1, 9):
        apply_shock(world, shock("demand_surge", step=step), condition(), effects=VARIANT_EFFECTS)
    assert [r.step for r in world.state.recent_shocks] == list(range(9 - RECENT_SHOCKS_KEPT, 9))


# ----- short shipments refund -------------------------------------------------------------------------------------
def test_a_short_shipment_delivers_fewer_units_and_refunds_the_rest() -> None:
    world = new_world(0, RICH)
    product = long_life(world, "small")
    placed_order = order(world, product.product_id, 30)
    unit = placed_order["unit_price_cents"]
    VARIANT_EFFECTS["short_shipment"](world, shock("short_shipment"), MEDIUM)  # 30 -> 15
    assert world.last_deliveries == []
    summaries = end_days(world, placed_order["expected_day"] - 1)
    assert all(s["deliveries"] == [] for s in summaries) and world.last_deliveries == []
    cash, worth = world.state.cash_cents, world.net_worth_cents()
    arrival = call(world, "end_day", {})
    assert arrival["deliveries"] == [
        {"po_id": placed_order["po_id"], "product_id": product.product_id, "units": 15, "ordered": 30,
         "refund_cents": 15 * unit}
    ]  # fmt: skip
    assert [o.po_id for o in world.last_deliveries] == [placed_order["po_id"]]
    assert world.state.cash_cents == cash + 15 * unit - arrival["daily_fee_cents"]
    assert sum(b.units for b in world.state.storage[product.product_id]) == 15
    assert world.state.counters.refunds_cents == 15 * unit and world.state.counters.units_delivered == 15
    assert ("refund", 15 * unit, placed_order["po_id"]) in [(e.cause, e.amount_cents, e.ref) for e in world.ledger]
    assert world.net_worth_cents() == worth - arrival["daily_fee_cents"]  # the refund was counted as due
    assert ledger_identity_holds(world)
    assert call(world, "end_day", {})["deliveries"] == [] and world.last_deliveries == []


def test_an_order_that_delivers_nothing_adds_no_empty_batch() -> None:
    world = new_world(0, RICH)
    placed_order = order(world, "P02", 20)
    for _ in range(2):
        VARIANT_EFFECTS["short_shipment"](world, shock("short_shipment"), MAGNITUDES["high"])  # 20 -> 4 -> 0
    end_days(world, placed_order["expected_day"])
    assert "P02" not in world.state.storage
    assert world.state.counters.refunds_cents == placed_order["total_cents"] and ledger_identity_holds(world)


# ----- the effects shocks add act and expire ---------------------------------------------------------------------
def test_an_unavailable_offer_cannot_be_ordered_nor_is_listed_until_it_ends() -> None:
    world = new_world(0, RICH)
    supplier_id, product_id = next(iter(world.offers))
    world.add_effect(Effect(kind="unavailable", supplier_id=supplier_id, product_id=product_id, until_day=1))

    def listed() -> bool:
        suppliers = call(world, "list_suppliers", {})["suppliers"]
        return product_id in next(s for s in suppliers if s["supplier_id"] == supplier_id)["unit_prices_cents"]

    arguments = {"supplier_id": supplier_id, "product_id": product_id, "quantity": 100}
    assert not listed() and rejected(world, "order", arguments).kind == "not_carried"
    assert world.commitment_cents("order", TOOLS["order"].args.model_validate(arguments)) == 0
    end_days(world, 1)
    assert not listed()  # active through the end of its last day
    end_days(world, 1)
    assert listed() and call(world, "order", arguments)["total_cents"] > 0


def test_a_raised_minimum_order_is_listed_checked_and_ends() -> None:
    world = new_world(0, RICH)
    supplier = world.suppliers["S2"]  # minimum 10
    product_id = next(p for s, p in world.offers if s == "S2")
    world.add_effect(Effect(kind="min_order", supplier_id="S2", factor=1.1, until_day=0))
    raised = 11  # 10 x 1.1 rounded up, not the 12 that the float product 11.000000000000002 would give
    listing = {s["supplier_id"]: s for s in call(world, "list_suppliers", {})["suppliers"]}
    assert (listing["S2"]["min_order_units"], listing["S1"]["min_order_units"]) == (raised, 20)
    arguments = {"supplier_id": "S2", "product_id": product_id, "quantity": supplier.min_order_units}
    error = rejected(world, "order", arguments)
    assert error.kind == "below_min_order" and f"{raised} units" in error.message
    call(world, "order", {**arguments, "quantity": raised})
    end_days(world, 1)
    call(world, "order", arguments)


def test_a_raised_daily_fee_is_shown_charged_and_ends() -> None:
    world = new_world(0)
    world.add_effect(Effect(kind="daily_fee", factor=2.0, until_day=1))
    assert call(world, "check_money", {})["daily_fee_cents"] == 400
    assert [d["daily_fee_cents"] for d in end_days(world, 3)] == [400, 400, 200]
    assert world.state.counters.fees_cents == 1_000 and world.state.cash_cents == 50_000 - 1_000
    assert call(world, "check_money", {})["daily_fee_cents"] == 200


def test_stacked_effects_are_capped() -> None:
    world = new_world(0)
    for _ in range(3):
        world.add_effect(Effect(kind="daily_fee", factor=2.0, until_day=5))
        world.add_effect(Effect(kind="min_order", supplier_id="S1", factor=2.0, until_day=5))
    assert world.daily_fee_cents() == 600 and world.min_order_units("S1") == 60


def test_a_lead_time_shock_delays_orders_placed_while_it_lasts() -> None:
    world = new_world(0, RICH)
    VARIANT_EFFECTS["lead_time"](world, shock("lead_time"), MEDIUM)  # S1: 3 days later
    late = order(world, next(p for s, p in world.offers if s == "S1"))
    assert placed(world, late["po_id"]).arrival_day == late["expected_day"] + MEDIUM.shift_days


# ----- what an order commits ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("quantity", [20, 99, 100, 140])
def test_commitment_is_what_the_order_then_charges(quantity: int) -> None:
    world = new_world(0, RICH)
    supplier_id, product_id = "S1", next(p for s, p in world.offers if s == "S1")  # bulk discount from 100 units
    world.add_effect(Effect(kind="cost", product_id=product_id, factor=1.37, until_day=3))
    arguments = {"supplier_id": supplier_id, "product_id": product_id, "quantity": quantity}
    committed = world.commitment_cents("order", TOOLS["order"].args.model_validate(arguments))
    cash = world.state.cash_cents
    assert call(world, "order", arguments)["total_cents"] == committed == cash - world.state.cash_cents
    # Refused while the tool is down, the order reports what it would have cost.
    world.add_effect(Effect(kind="tool_outage", tool="order", until_day=3))
    error = rejected(world, "order", arguments)
    assert (error.kind, error.attempted_cents) == ("tool_down", committed)


def test_only_an_order_commits_money() -> None:
    world = new_world(0)
    args = TOOLS["set_price"].args.model_validate({"product_id": "P01", "price_cents": 100})
    assert world.commitment_cents("set_price", args) == 0
    unknown = TOOLS["order"].args.model_validate({"supplier_id": "S9", "product_id": "P01", "quantity": 50})
    assert world.commitment_cents("order", unknown) == 0


# ----- actionability -------------------------------------------------------------------------------------------------
def order_down(world: VendingWorld) -> VendingWorld:
    world.add_effect(Effect(kind="tool_outage", tool="order", until_day=100))
    return world


def cheapest_minimum_order_cents(world: VendingWorld) -> int:
    return min(
        world.order_unit_price_cents(s, p, world.min_order_units(s)) * world.min_order_units(s) for s, p in world.offers
    )


def test_an_empty_machine_with_cash_for_a_minimum_order_is_actionable() -> None:
    world = new_world(0)
    assert world.productive_action_available()
    assert not order_down(new_world(0)).productive_action_available()  # nothing else can be done
    cheapest = cheapest_minimum_order_cents(world)
    assert new_world(0, cheapest).productive_action_available()
    assert not new_world(0, cheapest - 1).productive_action_available()  # cash covers no minimum order


def test_goods_on_their_way_answer_the_empty_slots_of_their_size() -> None:
    world = new_world(0, RICH)
    order(world, long_life(world, "small").product_id)
    assert world.productive_action_available()  # the large slots are still empty with nothing coming
    order(world, long_life(world, "large").product_id)
    assert not world.productive_action_available()


def test_restockable_storage_and_unpriced_stock_are_actionable() -> None:
    world = new_world(0, RICH)
    product = long_life(world, "small")
    placed_order = order(world, product.product_id, 20)
    end_days(world, placed_order["expected_day"])
    order_down(world)  # from here, only what is in hand can move the business
    assert world.productive_action_available()  # storage holds units a slot can take
    world.add_effect(Effect(kind="tool_outage", tool="restock", until_day=world.state.day))
    assert not world.productive_action_available()  # ... but restock is down
    end_days(world, 1)
    for col in (0, 1):
        call(world, "restock", {"product_id": product.product_id, "row": 0, "col": col, "quantity": 10})
    assert not world.state.storage and world.state.machine_cash_cents == 0
    assert world.productive_action_available()  # units in slots without a price
    call(world, "set_price", {"product_id": product.product_id, "price_cents": product.reference_price_cents})
    assert world.productive_action_available()  # priced units: ending the day sells them
    for col in (0, 1):
        world.state.slot(0, col).batches.clear()  # test setup: the machine sold out
    assert not world.productive_action_available()


def test_uncollected_cash_is_actionable() -> None:
    world = order_down(new_world(0))
    world.post("machine", 300, "sales")  # test setup: takings waiting in the machine
    assert world.productive_action_available()
    call(world, "collect_cash", {})
    assert not world.productive_action_available()


def test_a_failed_business_offers_nothing() -> None:
    world = new_world(0)
    world.state.terminated = "bankrupt"
    assert not world.productive_action_available()


# ----- progress -------------------------------------------------------------------------------------------------------
def test_progress_is_an_order_a_restock_a_collection_or_a_price_change() -> None:
    world = new_world(0, RICH)
    product = long_life(world, "small")
    placed_order = order(world, product.product_id, 20)
    assert world.is_progress("order", placed_order)
    assert not world.is_progress("collect_cash", call(world, "collect_cash", {}))  # nothing to collect
    price = {"product_id": product.product_id, "price_cents": product.reference_price_cents}
    assert world.is_progress("set_price", call(world, "set_price", price))
    assert not world.is_progress("set_price", call(world, "set_price", price))  # the same price again
    assert world.is_progress("set_price", call(world, "set_price", {**price, "price_cents": 99}))
    end_days(world, placed_order["expected_day"])
    restock = call(world, "restock", {"product_id": product.product_id, "row": 0, "col": 0, "quantity": 10})
    assert world.is_progress("restock", restock)
    assert not world.is_progress("end_day", call(world, "end_day", {}))
    collected = call(world, "collect_cash", {})
    assert collected["collected_cents"] > 0 and world.is_progress("collect_cash", collected)
    for tool in ("check_money", "check_inventory", "list_suppliers", "kv_list"):
        assert not world.is_progress(tool, call(world, tool, {}))


# ----- revise_expectation -----------------------------------------------------------------------------------------
def test_revise_expectation_echoes_the_revision_and_refuses_what_it_cannot_revise() -> None:
    world, orders = with_orders()
    target = orders[0]
    arguments = {"po_id": target.po_id, "expected_delivery_day": 9, "expected_quantity": 20}
    before = world.state.dump()
    assert call(world, "revise_expectation", arguments) == arguments
    assert call(world, "revise_expectation", {**arguments, "expected_quantity": 0})["expected_quantity"] == 0
    assert world.state.dump() == before
    assert rejected(world, "revise_expectation", {**arguments, "po_id": "PO-99"}).kind == "unknown_po"
    assert rejected(world, "revise_expectation", {**arguments, "expected_quantity": -1}).kind == "bad_quantity"
    assert rejected(world, "revise_expectation", {**arguments, "expected_quantity": 21}).kind == "bad_quantity"
    assert rejected(world, "revise_expectation", {**arguments, "expected_delivery_day": -1}).kind == "malformed"
    end_days(world, target.arrival_day - world.state.day)
    assert rejected(world, "revise_expectation", arguments).kind == "unknown_po"  # delivered


def test_tool_outcomes_resolve_against_keys_of_their_results() -> None:
    world, _ = with_orders()
    results = {
        "check_inventory": call(world, "check_inventory", {}),
        "check_money": call(world, "check_money", {}),
        "collect_cash": call(world, "collect_cash", {}),
        "order": order(world, "P02"),
        "end_day": call(world, "end_day", {}),
    }
    for tool, result in results.items():
        keys = {key for key in TOOLS[tool].outcomes.values() if key != "on_delivery"}
        assert keys <= set(result) and all(isinstance(result[key], int) for key in keys), tool
    assert results["order"]["po_id"].startswith("PO-")


# ----- determinism under shocks ------------------------------------------------------------------------------------
def shocked_run(seed: int, steps: int = 300) -> tuple[list[str], VendingWorld]:
    """The state hash after every call of the heuristic under a dense shock schedule (notices delivered on time),
    and the world at the end."""
    shocked = condition(p_shock=0.3, max_steps=steps, pe_mag="high", pe_type_mix="uniform")
    schedule = ShockSchedule(shocked, np.random.default_rng(seed))
    world, policy = new_world(seed), heuristic_policy()
    hashes = []
    tool, arguments = next(policy)
    for n in range(1, steps + 1):
        observation = runner.step(world, tool, arguments)
        scheduled = schedule.at(n)
        if scheduled is not None:
            apply_shock(world, scheduled, shocked, effects=VARIANT_EFFECTS)
        for notice in [p for p in world.state.pending_notices if p.deliver_step <= n]:
            world.deliver_notice(notice)
        world.state.pending_notices = [p for p in world.state.pending_notices if p.deliver_step > n]
        assert ledger_identity_holds(world)
        hashes.append(world.state.state_hash())
        tool, arguments = policy.send(observation)
    return hashes, world


def test_the_same_seed_and_shocks_give_the_same_state_at_every_step() -> None:
    hashes, world = shocked_run(1)
    assert world.state.counters.refunds_cents > 0 and world.state.day >= 20  # order shocks hit, days passed
    assert len(world.state.recent_shocks) == RECENT_SHOCKS_KEPT
    assert hashes == shocked_run(1)[0]
    assert hashes[-1] != shocked_run(2)[0][-1]
