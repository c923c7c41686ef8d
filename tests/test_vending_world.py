"""The Vending-Bench world (vendomini_eval/vending): determinism and common random numbers, invariants under
random actions, the economics, the effects shocks will use, memory tools, and the scripted policies."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vendomini_eval.vending import demand
from vendomini_eval.vending.catalogue import new_state
from vendomini_eval.vending.heuristic import do_nothing_policy, heuristic_policy
from vendomini_eval.vending.runner import Policy, run_policy
from vendomini_eval.vending.state import Effect, Product
from vendomini_eval.vending.tools import TOOLS, call
from vendomini_eval.vending.world import VendingWorld
from vendomini_eval.world.actions import ActionError

RICH = 1_000_000  # start cash (cents) for tests that buy a lot


def new_world(seed: int = 0, start_cash_cents: int | None = None) -> VendingWorld:
    return VendingWorld(new_state(seed, start_cash_cents))


def end_days(world: VendingWorld, days: int) -> list[dict[str, Any]]:
    return [call(world, "end_day", {}) for _ in range(days)]


def rejected(world: VendingWorld, tool: str, arguments: dict[str, Any]) -> ActionError:
    """The error of a call the world must reject, checking that the state did not change."""
    before = world.state.dump()
    with pytest.raises(ActionError) as caught:
        call(world, tool, arguments)
    assert world.state.dump() == before
    return caught.value


def source(world: VendingWorld, product_id: str) -> str:
    """A supplier that sells the product."""
    return next(s for s, p in world.offers if p == product_id)


def long_life(world: VendingWorld, size: str) -> Product:
    return next(p for p in world.products.values() if p.size == size and p.shelf_life_days >= 60)


def stock_storage(world: VendingWorld, product: Product, quantity: int) -> None:
    """Buy units of a product and end days until they are in storage."""
    order = call(world, "order", {"supplier_id": source(world, product.product_id), "product_id": product.product_id,
                                  "quantity": quantity})  # fmt: skip
    end_days(world, order["expected_day"] - world.state.day)
    assert sum(b.units for b in world.state.storage[product.product_id]) == quantity


def ledger_identity_holds(world: VendingWorld) -> bool:
    s, c = world.state, world.state.counters
    balances = {"cash": s.cash_cents, "machine": s.machine_cash_cents}
    by_account = {account: sum(e.amount_cents for e in world.ledger if e.account == account) for account in balances}
    return (
        s.cash_cents + s.machine_cash_cents
        == s.rules.start_cash_cents + c.revenue_cents - c.purchases_cents - c.fees_cents + c.refunds_cents
        and by_account["cash"] == s.cash_cents - s.rules.start_cash_cents
        and by_account["machine"] == s.machine_cash_cents
    )


def recording(policy: Policy, summaries: list[dict[str, Any]]) -> Policy:
    """The policy unchanged, with every end_day summary appended to `summaries`."""
    tool, arguments = next(policy)
    while True:
        observation = yield tool, arguments
        if tool == "end_day":
            summaries.append(observation)
        tool, arguments = policy.send(observation)


def chatty(policy: Policy) -> Policy:
    """The policy with extra calls before each of its own: memory writes, reads, and a rejected order. They change
    nothing the customers see, so sales must not change either."""
    tool, arguments = next(policy)
    turn = 0
    while True:
        turn += 1
        yield "kv_set", {"key": f"k{turn % 7}", "value": "note"}
        yield "add_note", {"text": f"turn {turn}"}
        yield "order", {"supplier_id": "S9", "product_id": "P01", "quantity": 5}
        yield "check_money", {}
        observation = yield tool, arguments
        tool, arguments = policy.send(observation)


# ----- determinism and common random numbers ------------------------------------------------------------------
def test_same_seed_gives_identical_state_and_ledger_after_a_heuristic_run() -> None:
    first, second = (run_policy(heuristic_policy(), 7, 20) for _ in range(2))
    assert first.world.state.dump() == second.world.state.dump()
    assert first.world.ledger == second.world.ledger
    assert first.world.state.state_hash() != run_policy(heuristic_policy(), 8, 20).world.state.state_hash()


def test_a_loaded_state_continues_exactly_like_the_original() -> None:
    world = new_world(2, RICH)
    product = long_life(world, "small")
    stock_storage(world, product, 60)
    call(world, "set_price", {"product_id": product.product_id, "price_cents": product.reference_price_cents})
    copy = VendingWorld(type(world.state).load(world.state.dump()))
    for w in (world, copy):
        for _ in range(5):
            call(w, "restock", {"product_id": product.product_id, "row": 0, "col": 0,
                                "quantity": min(10 - w.state.slot(0, 0).units, 5)})  # fmt: skip
            call(w, "end_day", {})
    assert world.state.dump() == copy.state.dump()


def test_policies_see_the_same_weather_and_demand_draws() -> None:
    busy, idle, noisy = [], [], []
    run_policy(recording(heuristic_policy(), busy), 11, 25)
    run_policy(recording(do_nothing_policy(), idle), 11, 25)
    assert [d["weather"] for d in busy] == [d["weather"] for d in idle]
    assert len({d["weather"] for d in busy}) > 1
    # Extra calls in between (memory, rejected orders) leave every day's sales exactly as they were.
    run_policy(recording(chatty(heuristic_policy()), noisy), 11, 25)
    assert [d["sold"] for d in noisy] == [d["sold"] for d in busy]


# ----- invariants under random actions -------------------------------------------------------------------------
PRODUCT_IDS = st.sampled_from([f"P{i:02d}" for i in range(1, 18)])
ACTIONS = st.one_of(
    st.tuples(st.just("order"), st.fixed_dictionaries(
        {"supplier_id": st.sampled_from(["S1", "S2", "S3", "S4"]), "product_id": PRODUCT_IDS,
         "quantity": st.integers(-2, 120)})),
    st.tuples(st.just("restock"), st.fixed_dictionaries(
        {"product_id": PRODUCT_IDS, "row": st.integers(-1, 4), "col": st.integers(0, 3),
         "quantity": st.integers(0, 12)})),
    st.tuples(st.just("restock"), st.fixed_dictionaries(
        {"product_id": PRODUCT_IDS, "row": st.integers(0, 3), "col": st.integers(0, 2),
         "quantity": st.integers(1, 10)})),
    st.tuples(st.just("set_price"), st.fixed_dictionaries(
        {"product_id": PRODUCT_IDS, "price_cents": st.integers(0, 800)})),
    st.tuples(st.sampled_from(["end_day", "end_day", "collect_cash", "check_inventory", "kv_list"]), st.just({})),
    st.tuples(st.just("kv_delete"), st.fixed_dictionaries({"key": st.sampled_from(["a", "b"])})),
    st.tuples(st.just("kv_set"), st.fixed_dictionaries(
        {"key": st.sampled_from(["a", "b"]), "value": st.text(max_size=5)})),
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 30), actions=st.lists(ACTIONS, min_size=10, max_size=60))
def test_invariants_hold_and_rejections_change_nothing(seed: int, actions: list[tuple[str, dict[str, Any]]]) -> None:
    world = new_world(seed, RICH)
    for product in world.products.values():  # every product priced and in storage: restocks and sales can happen
        supplier = world.suppliers[source(world, product.product_id)]
        call(world, "order", {"supplier_id": supplier.supplier_id, "product_id": product.product_id,
                              "quantity": supplier.min_order_units})  # fmt: skip
        call(world, "set_price", {"product_id": product.product_id, "price_cents": product.reference_price_cents})
    end_days(world, 5)
    capacity, rules = world.state.rules.slot_capacity, world.state.rules
    for index in range(len(world.state.slots)):  # a stocked machine: the random end_days sell
        row, col = divmod(index, rules.cols)
        size = "small" if row < rules.small_rows else "large"
        fitting = [p for p in world.products.values() if p.size == size and world.state.storage.get(p.product_id)]
        if fitting:
            product = fitting[index % len(fitting)]
            stored = sum(b.units for b in world.state.storage[product.product_id])
            call(world, "restock", {"product_id": product.product_id, "row": row, "col": col,
                                    "quantity": min(stored, capacity)})  # fmt: skip
    for tool, arguments in actions:
        before = world.state.dump()
        try:
            call(world, tool, arguments)
        except ActionError:
            assert world.state.dump() == before
        s = world.state
        assert ledger_identity_holds(world)
        for index, slot in enumerate(s.slots):
            assert 0 <= slot.units <= capacity
            assert all(b.units > 0 for b in slot.batches)
            if slot.units:
                expected_size = "small" if index // s.rules.cols < s.rules.small_rows else "large"
                assert world.products[slot.product_id].size == expected_size
        assert all(b.units > 0 for batches in s.storage.values() for b in batches)
        assert s.counters.units_sold >= 0 and s.cash_cents >= 0 and s.machine_cash_cents >= 0


def test_information_tools_change_nothing() -> None:
    world = run_policy(heuristic_policy(), 4, 6).world
    call(world, "kv_set", {"key": "k", "value": "v"})
    call(world, "add_note", {"text": "cola sells well"})
    supplier = world.suppliers[source(world, "P01")]
    po_id = call(world, "order", {"supplier_id": supplier.supplier_id, "product_id": "P01",
                                  "quantity": supplier.min_order_units})["po_id"]  # fmt: skip
    arguments = {
        "kv_get": {"key": "k"},
        "search_notes": {"query": "cola"},
        "revise_expectation": {"po_id": po_id, "expected_delivery_day": 9, "expected_quantity": 1},
    }
    before = world.state.dump()
    for name, tool in TOOLS.items():
        if tool.info_only:
            call(world, name, arguments.get(name, {}))
    assert world.state.dump() == before


@pytest.mark.parametrize(
    ("tool", "arguments", "argument"),
    [
        ("restock", {"product_id": "P01", "row": 4, "col": 0, "quantity": 1}, "row"),
        ("restock", {"product_id": "P01", "row": 0, "col": 0, "quantity": "5"}, "quantity"),
        ("restock", {"row": 0, "col": 0, "quantity": 5}, "product_id"),
        ("order", {"supplier_id": "S1", "product_id": "P01", "quantity": 0}, "quantity"),
        ("order", {"supplier_id": "S1", "product_id": "P01", "quantity": 5, "rush": 1}, "rush"),
        ("set_price", {"product_id": "P01", "price_cents": 1.5}, "price_cents"),
        ("set_price", {"product_id": "P01", "price_cents": True}, "price_cents"),
        ("search_notes", {"query": "x", "top_k": 11}, "top_k"),
    ],
)
def test_bad_arguments_get_a_typed_error_naming_the_argument(
    tool: str, arguments: dict[str, Any], argument: str
) -> None:
    error = rejected(new_world(), tool, arguments)
    assert error.kind == "malformed"
    assert f"'{argument}'" in error.message


def test_business_rules_reject_with_their_own_kinds() -> None:
    world = new_world(0, RICH)
    small, large = long_life(world, "small"), long_life(world, "large")
    supplier = world.suppliers[source(world, small.product_id)]
    assert rejected(world, "nope", {}).kind == "unknown_tool"
    unknown = rejected(world, "set_price", {"product_id": "P99", "price_cents": 100})
    assert unknown.kind == "unknown_product" and "product_id 'P99'" in unknown.message
    order = {"supplier_id": supplier.supplier_id, "product_id": small.product_id}
    assert rejected(world, "order", {**order, "supplier_id": "S9", "quantity": 50}).kind == "unknown_supplier"
    not_sold = next(p for p in world.products if (supplier.supplier_id, p) not in world.offers)
    assert rejected(world, "order", {**order, "product_id": not_sold, "quantity": 50}).kind == "not_carried"
    assert rejected(world, "order", {**order, "quantity": supplier.min_order_units - 1}).kind == "below_min_order"
    poor = new_world(0, 100)
    assert rejected(poor, "order", {**order, "quantity": 50}).kind == "insufficient_funds"
    restock = {"product_id": small.product_id, "row": 0, "col": 0, "quantity": 8}
    assert rejected(world, "restock", restock).kind == "insufficient_stock"
    stock_storage(world, small, 50)
    stock_storage(world, large, 50)
    assert rejected(world, "restock", {**restock, "row": 2}).kind == "size_mismatch"
    call(world, "restock", restock)
    assert rejected(world, "restock", {**restock, "quantity": 3}).kind == "over_capacity"
    other_small = next(p for p in world.products.values() if p.size == "small" and p != small)
    assert rejected(world, "restock", {**restock, "product_id": other_small.product_id}).kind == "slot_occupied"
    call(world, "restock", {**restock, "quantity": 2})
    assert world.state.slot(0, 0).units == 10
    assert rejected(world, "kv_get", {"key": "missing"}).kind == "unknown_key"


# ----- economics -------------------------------------------------------------------------------------------------
def daily_sales(seed: int, price_factor: float, days: int = 20) -> list[int]:
    """Units sold per day of one product kept full in one slot, priced at its reference price x price_factor."""
    world = new_world(seed, RICH)
    product = long_life(world, "small")
    stock_storage(world, product, 10 * days + 10)
    price = round(product.reference_price_cents * price_factor)
    call(world, "set_price", {"product_id": product.product_id, "price_cents": price})
    sold = []
    for _ in range(days):
        free = 10 - world.state.slot(0, 0).units
        if free:
            call(world, "restock", {"product_id": product.product_id, "row": 0, "col": 0, "quantity": free})
        sold.append(call(world, "end_day", {})["sold"].get(product.product_id, 0))
    return sold


@pytest.mark.parametrize("seed", [0, 5])
def test_a_higher_price_sells_less_on_the_same_seed(seed: int) -> None:
    cheap, dear = daily_sales(seed, 1.0), daily_sales(seed, 1.5)
    assert all(d <= c for c, d in zip(cheap, dear, strict=True))  # the same uniform each day: monotone
    assert sum(dear) < sum(cheap)


def test_weekday_month_and_weather_multipliers_apply() -> None:
    product = new_state(0).catalogue.products[0]

    def mean(date: datetime.date, weather: str = "cloudy") -> float:
        return demand.expected_sales(product, product.reference_price_cents, date, weather, 4, 1.0, 1.0)

    wednesday, saturday = datetime.date(2025, 4, 9), datetime.date(2025, 4, 12)
    assert mean(wednesday) == pytest.approx(product.base_sales)  # April, a Wednesday, cloudy: all factors 1
    assert mean(saturday) / mean(wednesday) == pytest.approx(1.3)
    assert mean(datetime.date(2025, 7, 9)) / mean(datetime.date(2025, 1, 8)) == pytest.approx(1.2 / 0.85)
    assert mean(wednesday, "rainy") / mean(wednesday, "sunny") == pytest.approx(0.8 / 1.15)
    # The machine's calendar: day 0 is Monday 7 April 2025, so day 5 is a Saturday.
    summaries = end_days(new_world(), 6)
    assert (summaries[5]["date"], summaries[5]["weekday"]) == ("2025-04-12", "Saturday")


def test_choice_overload_lowers_each_products_demand() -> None:
    assert demand.variety_factor(1) == demand.variety_factor(8) == 1.0
    assert demand.variety_factor(12) == pytest.approx(1 - 4 * 0.06)


def test_bulk_discount_applies_exactly_from_its_threshold() -> None:
    world = new_world(1, RICH)
    supplier_id, product_id = next(iter(world.offers))
    supplier = world.suppliers[supplier_id]
    listed = world.offers[(supplier_id, product_id)].unit_price_cents
    below = call(world, "order", {"supplier_id": supplier_id, "product_id": product_id,
                                  "quantity": supplier.bulk_threshold_units - 1})  # fmt: skip
    at = call(world, "order", {"supplier_id": supplier_id, "product_id": product_id,
                               "quantity": supplier.bulk_threshold_units})  # fmt: skip
    assert (below["unit_price_cents"], below["bulk_discount_applied"]) == (listed, False)
    assert at["unit_price_cents"] == round(listed * (100 - supplier.bulk_discount_pct) / 100 + 1e-9)
    assert at["bulk_discount_applied"] and at["total_cents"] == at["unit_price_cents"] * supplier.bulk_threshold_units


def test_expired_units_leave_storage_and_slots() -> None:
    world = new_world(0, RICH)
    perishable = min(world.products.values(), key=lambda p: p.shelf_life_days)
    assert perishable.size == "large" and perishable.shelf_life_days <= 7
    stock_storage(world, perishable, 30)
    call(world, "restock", {"product_id": perishable.product_id, "row": 2, "col": 0, "quantity": 10})  # unpriced
    worth = world.net_worth_cents()
    summaries = end_days(world, perishable.shelf_life_days)
    assert summaries[-1]["expired"] == {perishable.product_id: 30}
    assert perishable.product_id not in world.state.storage and world.state.slot(2, 0).units == 0
    assert world.state.counters.units_expired == 30
    assert world.net_worth_cents() == worth - 30 * perishable.wholesale_cents - perishable.shelf_life_days * 200


def test_sales_wait_in_the_machine_until_collected() -> None:
    world = run_policy(heuristic_policy(), 3, 10).world
    end_days(world, 1)
    in_machine, cash = world.state.machine_cash_cents, world.state.cash_cents
    assert in_machine > 0
    assert call(world, "collect_cash", {}) == {"collected_cents": in_machine, "cash_cents": cash + in_machine}
    assert world.state.machine_cash_cents == 0 and ledger_identity_holds(world)


def test_net_worth_counts_goods_in_transit_at_wholesale_value() -> None:
    world = new_world(0, RICH)
    product = long_life(world, "small")
    supplier_id = max((s for s, p in world.offers if p == product.product_id),
                      key=lambda s: world.offers[(s, product.product_id)].unit_price_cents)  # fmt: skip
    result = call(world, "order", {"supplier_id": supplier_id, "product_id": product.product_id, "quantity": 20})
    assert world.net_worth_cents() == RICH - result["total_cents"] + 20 * product.wholesale_cents


@pytest.mark.parametrize("seed", range(10))
def test_buying_never_raises_net_worth_even_at_the_bulk_discount(seed: int) -> None:
    """Inventory is valued at the lowest price any supplier asks after its bulk discount, so no purchase (the
    cheapest bulk order included) shows as profit: only sales raise net worth."""
    world = new_world(seed, RICH)
    for (supplier_id, product_id), _ in sorted(world.offers.items()):
        threshold = world.suppliers[supplier_id].bulk_threshold_units
        for quantity in (world.suppliers[supplier_id].min_order_units, threshold):
            before = world.net_worth_cents()
            call(world, "order", {"supplier_id": supplier_id, "product_id": product_id, "quantity": quantity})
            assert world.net_worth_cents() <= before, (supplier_id, product_id, quantity)


# ----- effects: the hooks of shocks -------------------------------------------------------------------------------
def test_supplier_delay_makes_orders_arrive_after_the_expected_day() -> None:
    world = new_world(0, RICH)
    product = long_life(world, "small")
    supplier_id = source(world, product.product_id)
    world.add_effect(Effect(kind="supplier_delay", supplier_id=supplier_id, days=3, until_day=0))
    order = {"supplier_id": supplier_id, "product_id": product.product_id, "quantity": 20}
    late = call(world, "order", order)
    end_days(world, late["expected_day"])
    assert call(world, "check_orders", {})["orders"][0]["status"] == "in_transit"  # due today, not here
    on_time = call(world, "order", order)  # the delay has ended
    end_days(world, max(3, on_time["expected_day"] - world.state.day))
    rows = {o["po_id"]: o for o in call(world, "check_orders", {})["orders"]}
    assert rows[late["po_id"]]["delivered_day"] == late["expected_day"] + 3
    assert rows[on_time["po_id"]]["delivered_day"] == on_time["expected_day"]


def test_cost_and_demand_multipliers_apply_until_their_end_day() -> None:
    world = new_world(0, RICH)
    supplier_id, product_id = next(iter(world.offers))
    listed = world.offers[(supplier_id, product_id)].unit_price_cents
    world.add_effect(Effect(kind="cost", product_id=product_id, factor=1.5, until_day=1))
    order = {"supplier_id": supplier_id, "product_id": product_id, "quantity": 20}
    assert call(world, "order", order)["unit_price_cents"] == round(listed * 1.5)
    end_days(world, 2)
    assert call(world, "order", order)["unit_price_cents"] == listed

    def sold_with(factor: float) -> int:
        w = new_world(5, RICH)
        product = long_life(w, "small")
        stock_storage(w, product, 40)
        call(w, "set_price", {"product_id": product.product_id, "price_cents": product.reference_price_cents})
        call(w, "restock", {"product_id": product.product_id, "row": 0, "col": 0, "quantity": 10})
        w.add_effect(Effect(kind="demand", factor=factor, until_day=w.state.day + 5))
        return sum(sum(d["sold"].values()) for d in end_days(w, 3))

    assert sold_with(0.0) == 0 < sold_with(1.0)


def test_a_tool_outage_refuses_calls_but_never_end_day() -> None:
    world = new_world()
    world.add_effect(Effect(kind="tool_outage", tool="check_money", until_day=0))
    assert rejected(world, "check_money", {}).kind == "tool_down"
    end_days(world, 1)
    assert call(world, "check_money", {})["cash_cents"] == 50_000 - 200
    with pytest.raises(ValueError, match="end_day"):
        world.add_effect(Effect(kind="tool_outage", tool="end_day", until_day=5))


# ----- memory tools -----------------------------------------------------------------------------------------------
def test_scratchpad_and_key_value_store() -> None:
    world = new_world()
    call(world, "write_scratchpad", {"text": "day 0: ordered cola"})
    assert call(world, "read_scratchpad", {}) == {"text": "day 0: ordered cola"}
    call(world, "kv_set", {"key": "best seller", "value": "cola"})
    assert call(world, "kv_get", {"key": "best seller"})["value"] == "cola"
    assert call(world, "kv_list", {}) == {"keys": ["best seller"]}
    call(world, "kv_delete", {"key": "best seller"})
    assert call(world, "kv_list", {}) == {"keys": []}


def test_note_search_ranks_by_meaning_of_the_words() -> None:
    world = new_world()
    notes = [
        "Supplier S2 delivered the bottled water two days late.",
        "Restocked cola into slot row 2 col 1; it sells out on weekends.",
        "Raised the price of chocolate bars to 175 cents.",
    ]
    for text in notes:
        call(world, "add_note", {"text": text})
    matches = call(world, "search_notes", {"query": "when do we restock the colas", "top_k": 2})["matches"]
    assert matches[0]["note_id"] == 1 and len(matches) <= 2
    assert call(world, "search_notes", {"query": "late delivery"})["matches"][0]["note_id"] == 0
    assert call(world, "search_notes", {"query": "chocolate price"})["matches"][0]["note_id"] == 2
    assert call(world, "search_notes", {"query": "zzz"})["matches"] == []


# ----- policies and the fee rule ----------------------------------------------------------------------------------
def test_the_heuristic_is_profitable_at_day_30() -> None:
    outcomes = [run_policy(heuristic_policy(), seed, 30) for seed in range(20)]
    assert all(o.net_worth_cents > 50_000 for o in outcomes), [o.net_worth_cents for o in outcomes]
    assert all(o.world.state.day == 30 and o.world.state.terminated is None for o in outcomes)
    assert all(ledger_identity_holds(o.world) for o in outcomes)
    assert all(o.world.state.counters.last_sale_day == 29 for o in outcomes)


def test_the_heuristic_rides_out_an_outage_and_late_suppliers() -> None:
    shocks = [
        Effect(kind="tool_outage", tool="list_suppliers", until_day=1),
        Effect(kind="tool_outage", tool="check_inventory", until_day=4),
        *(Effect(kind="supplier_delay", supplier_id=f"S{i}", days=4, until_day=10) for i in (1, 2, 3)),
    ]
    outcome = run_policy(heuristic_policy(), 2, 30, effects=shocks)
    calm = run_policy(heuristic_policy(), 2, 30)
    assert 50_000 < outcome.net_worth_cents < calm.net_worth_cents


def test_doing_nothing_loses_the_fee_every_day_and_fails_once_cash_runs_out() -> None:
    at_30 = run_policy(do_nothing_policy(), 0, 30)
    assert at_30.net_worth_cents == 50_000 - 30 * 200 and at_30.world.state.terminated is None
    # $500 pays 250 daily fees; the 10th unpaid day after that ends the business.
    failed = run_policy(do_nothing_policy(), 0, 400).world.state
    assert (failed.terminated, failed.day, failed.counters.unpaid_fee_days) == ("bankrupt", 260, 10)
    assert failed.counters.fees_cents == 50_000 and failed.counters.last_sale_day is None


def test_a_paid_fee_resets_the_unpaid_streak() -> None:
    world = new_world(0, 1_000)  # $10: five fees
    end_days(world, 8)
    assert (world.state.cash_cents, world.state.unpaid_days_in_a_row) == (0, 3)
    world.state.cash_cents += 200  # test setup: one more fee's worth of cash
    end_days(world, 1)
    assert world.state.unpaid_days_in_a_row == 0
    end_days(world, 9)
    assert world.state.terminated is None
    end_days(world, 1)
    assert world.state.terminated == "bankrupt"
    assert rejected(world, "check_money", {}).kind == "terminated"


def test_runner_stops_a_policy_that_never_ends_the_day() -> None:
    def stuck() -> Policy:
        while True:
            yield "check_money", {}

    with pytest.raises(RuntimeError, match="calls on day 0"):
        run_policy(stuck(), 0, 1)
