"""The world through its one step function: rejected actions, tool sets, catalogue, money, pruning, failure.

Rejections are checked at two levels: the world itself (`parse_args` / `ToolSpec.apply` raise `ActionError` and
leave `state.dump()` and the ledger unchanged) and the episode (`Episode.step` returns an invalid
`StepResult` with the right `error_kind`, and the state after the step equals the state of a twin episode
that waited instead: the only change is the clock and its day boundary).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction, Episode
from vendomini_eval.pe import PEObservation
from vendomini_eval.policies import PolicyContext, make_policy
from vendomini_eval.predictions import card_fields, parse_card
from vendomini_eval.runner import run_policy
from vendomini_eval.shocks import ScheduledShock, apply_shock
from vendomini_eval.world.actions import ActionError, parse_args
from vendomini_eval.world.setup import PRESSURE, n_skus, n_suppliers
from vendomini_eval.world.state import STATIC_PARTS, CustomerOrder, Offer, WorldState
from vendomini_eval.world.tools import TOOL_SPECS, available_tools

SEED = 5
WAIT = AgentAction("wait", {})


# ----- helpers --------------------------------------------------------------------------------------------


def episode(**fields: Any) -> Episode:
    base: dict[str, Any] = {"complexity_level": 1, "p_shock": 0.0, "prediction_mode": "none"}
    return Episode(Condition(**{**base, **fields}), SEED)


def offers_by_price(ep: Episode) -> list[Offer]:
    return sorted(ep.state.catalogue.offers, key=lambda o: (o.unit_price_cents, o.supplier_id, o.sku_id))


def cheapest(ep: Episode) -> Offer:
    return offers_by_price(ep)[0]


def not_carried_pair(ep: Episode) -> tuple[str, str]:
    carried = {(o.supplier_id, o.sku_id) for o in ep.state.catalogue.offers}
    for sku in ep.state.catalogue.skus:
        for supplier in ep.state.catalogue.suppliers:
            if (supplier.supplier_id, sku.sku_id) not in carried:
                return supplier.supplier_id, sku.sku_id
    raise AssertionError("every supplier carries every SKU")


def order_args(offer: Offer, quantity: int | None = None) -> dict[str, Any]:
    quantity = offer.min_order if quantity is None else quantity
    return {"supplier_id": offer.supplier_id, "sku_id": offer.sku_id, "quantity": quantity}


def in_world(ep: Episode, tool: str, arguments: Any) -> dict[str, Any]:
    """A call validated and run straight in the world, as its tool's declaration says (not a step)."""
    spec = TOOL_SPECS[tool]
    return spec.apply(ep.world, parse_args(tool, spec.args, arguments))


def inject_customer_order(ep: Episode, sku_id: str, quantity: int, due_in: int = 5) -> CustomerOrder:
    s = ep.state
    sku = next(k for k in s.catalogue.skus if k.sku_id == sku_id)
    order = CustomerOrder(
        order_id=s.new_id("C"), sku_id=sku_id, quantity=quantity, price_cents=quantity * sku.sale_price_cents,
        created_day=s.day, due_day=s.day + due_in,
    )  # fmt: skip
    s.customer_orders.append(order)
    return order


def drain_cash(ep: Episode, leave_cents: int) -> None:
    ep.world.post(leave_cents - ep.state.cash_cents, "test_drain")


def valid_card(ep: Episode, tool: str) -> dict[str, Any] | None:
    """A card that satisfies the protocol (values need not be accurate)."""
    fields = card_fields(tool, ep.condition)
    if not fields:
        return None
    value = {"success": True, "probability": 0.9, "money": ep.state.cash_cents / 100, "day": ep.state.day,
             "units": 0, "text": "because"}  # fmt: skip
    return {name: value[kind] for name, kind in fields.items()}


def ledger_identity_holds(ep: Episode) -> bool:
    s = ep.state
    return s.cash_cents == s.rules.start_cash_cents + sum(e.amount_cents for e in ep.world.ledger)


# ----- rejected actions -------------------------------------------------------------------------------------


@dataclass
class Case:
    """A bad call. `setup` prepares the episode (run on the twin as well) and returns the action's arguments."""

    name: str
    tool: str | None
    kind: str
    says: tuple[str, ...]
    """Substrings (lower case) that the message must contain: it names the problem."""
    arguments: Callable[[Episode], Any]
    condition: dict[str, Any] = field(default_factory=dict)
    prediction: Callable[[Episode], Any] = lambda ep: None
    text: str = ""
    world_level: bool = True
    """Whether parse_args / ToolSpec.apply can be called directly (not for tool-set or no-tool problems)."""


def _nc(ep: Episode) -> dict[str, Any]:
    supplier, sku = not_carried_pair(ep)
    return {"supplier_id": supplier, "sku_id": sku, "quantity": 5}


def _over_capacity(ep: Episode) -> dict[str, Any]:
    offer = cheapest(ep)
    return order_args(offer, ep.state.rules.capacity_units + 1)


def _insufficient_funds(ep: Episode) -> dict[str, Any]:
    offer = cheapest(ep)
    drain_cash(ep, offer.unit_price_cents * offer.min_order - 1)
    return order_args(offer)


def _ship_short(ep: Episode) -> dict[str, Any]:
    order = inject_customer_order(ep, cheapest(ep).sku_id, 3)
    return {"order_id": order.order_id}


def _revision(ep: Episode, **overrides: Any) -> dict[str, Any]:
    """revise_expectation arguments for a purchase order placed now, straight in the world (not a step)."""
    placed = in_world(ep, "order", order_args(cheapest(ep)))
    return {"po_id": placed["po_id"], "expected_delivery_day": placed["promised_day"] + 2, "expected_quantity": 1,
            **overrides}  # fmt: skip


PREDICTING = {"prediction_mode": "optional"}  # revise_expectation is offered where the agent states predictions


def _structured_order_card(ep: Episode, **overrides: Any) -> dict[str, Any]:
    offer = cheapest(ep)
    card = {"expected_success": True, "expected_cost": offer.unit_price_cents * offer.min_order / 100,
            "expected_delivery_day": offer.lead_days, "expected_quantity": offer.min_order}  # fmt: skip
    card.update(overrides)
    return {k: v for k, v in card.items() if v is not ...}


REQUIRED = {"prediction_mode": "required", "prediction_format": "structured"}

CASES = [
    Case("unknown_sku", "order", "unknown_sku", ("sku-99",),
         lambda ep: {"supplier_id": "S1", "sku_id": "SKU-99", "quantity": 5}),
    Case("unknown_supplier", "order", "unknown_supplier", ("s9",),
         lambda ep: {"supplier_id": "S9", "sku_id": "SKU-01", "quantity": 5}),
    Case("not_carried", "order", "not_carried", ("does not currently sell",), _nc),
    Case("quantity_zero", "order", "bad_quantity", ("quantity",), lambda ep: order_args(cheapest(ep), 0)),
    Case("quantity_negative", "order", "bad_quantity", ("quantity", "-3"),
         lambda ep: {**order_args(cheapest(ep)), "quantity": -3}),
    Case("quantity_nan", "order", "malformed", ("quantity", "nan"),
         lambda ep: {**order_args(cheapest(ep)), "quantity": math.nan}),
    Case("quantity_huge_float", "order", "malformed", ("quantity",),
         lambda ep: {**order_args(cheapest(ep)), "quantity": 1e18}),
    Case("quantity_huge_int", "order", "bad_quantity", ("quantity", "limit"),
         lambda ep: {**order_args(cheapest(ep)), "quantity": 10**18}),
    Case("quantity_string", "order", "malformed", ("quantity", "'5'"),
         lambda ep: {**order_args(cheapest(ep)), "quantity": "5"}),
    Case("quantity_bool", "order", "malformed", ("quantity",),
         lambda ep: {**order_args(cheapest(ep)), "quantity": True}),
    Case("quantity_float_whole", "order", "malformed", ("quantity",),
         lambda ep: {**order_args(cheapest(ep)), "quantity": 5.0}),
    Case("supplier_not_string", "order", "malformed", ("supplier_id",),
         lambda ep: {**order_args(cheapest(ep)), "supplier_id": 1}),
    Case("over_capacity", "order", "over_capacity", ("capacity",), _over_capacity),
    Case("insufficient_funds", "order", "insufficient_funds", ("cash",), _insufficient_funds),
    Case("missing_fields", "order", "malformed", ("'sku_id' is required", "'quantity' is required"),
         lambda ep: {"supplier_id": cheapest(ep).supplier_id}),
    Case("extra_field", "order", "malformed", ("colour", "not accepted"),
         lambda ep: {**order_args(cheapest(ep)), "colour": "red"}),
    Case("extra_field_on_no_arg_tool", "wait", "malformed", ("days",), lambda ep: {"days": 3}),
    Case("arguments_list", "order", "malformed", ("object", "list"), lambda ep: [cheapest(ep).supplier_id]),
    Case("arguments_none", "ship", "malformed", ("object", "nonetype"), lambda ep: None),
    Case("arguments_string", "ship", "malformed", ("object", "str"), lambda ep: "C-1"),
    Case("unknown_tool", "restock_all", "unknown_tool", ("restock_all",), lambda ep: {}, world_level=False),
    Case("expedite_at_level_0", "expedite", "unavailable_tool", ("expedite",), lambda ep: {"po_id": "PO-1"},
         condition={"complexity_level": 0}, world_level=False),
    Case("cancel_at_level_2", "cancel", "unavailable_tool", ("cancel",), lambda ep: {"po_id": "PO-1"},
         condition={"complexity_level": 2}, world_level=False),
    Case("search_notes_with_basic_memory", "search_notes", "unavailable_tool", ("search_notes",),
         lambda ep: {"query": "x"}, condition={"memory_tools": "basic"}, world_level=False),
    Case("no_tool_call", None, "no_tool_call", ("no tool call",), lambda ep: {},
         text="I think I should order more duct tape.", world_level=False),
    Case("ship_unknown_order", "ship", "unknown_order", ("c-999",), lambda ep: {"order_id": "C-999"}),
    Case("ship_insufficient_stock", "ship", "insufficient_stock", ("in stock",), _ship_short),
    Case("expedite_unknown_po", "expedite", "unknown_po", ("po-77",), lambda ep: {"po_id": "PO-77"},
         condition={"complexity_level": 2}),
    Case("read_missing_note", "read_note", "unknown_note", ("nope",), lambda ep: {"key": "nope"}),
    Case("unknown_quote", "order", "unknown_quote", ("q-5",),
         lambda ep: {**order_args(cheapest(ep)), "quote_id": "Q-5"}, condition={"complexity_level": 3}),
    Case("revise_unknown_po", "revise_expectation", "unknown_po", ("po-77",),
         lambda ep: {"po_id": "PO-77", "expected_delivery_day": 5, "expected_quantity": 3}, condition=PREDICTING),
    Case("revise_negative_quantity", "revise_expectation", "bad_quantity", ("expected_quantity", "-1"),
         lambda ep: _revision(ep, expected_quantity=-1), condition=PREDICTING),
    Case("revise_huge_quantity", "revise_expectation", "bad_quantity", ("expected_quantity",),
         lambda ep: _revision(ep, expected_quantity=10**400), condition=PREDICTING),
    Case("revise_quantity_bool", "revise_expectation", "malformed", ("expected_quantity",),
         lambda ep: _revision(ep, expected_quantity=True), condition=PREDICTING),
    Case("revise_day_string", "revise_expectation", "malformed", ("expected_delivery_day", "'5'"),
         lambda ep: _revision(ep, expected_delivery_day="5"), condition=PREDICTING),
    Case("revise_day_float", "revise_expectation", "malformed", ("expected_delivery_day",),
         lambda ep: _revision(ep, expected_delivery_day=5.0), condition=PREDICTING),
    Case("revise_day_negative", "revise_expectation", "malformed", ("expected_delivery_day", "greater than"),
         lambda ep: _revision(ep, expected_delivery_day=-1), condition=PREDICTING),
    Case("revise_day_huge", "revise_expectation", "malformed", ("expected_delivery_day", "less than"),
         lambda ep: _revision(ep, expected_delivery_day=10**400), condition=PREDICTING),
    Case("revise_missing_quantity", "revise_expectation", "malformed", ("'expected_quantity' is required",),
         lambda ep: {"po_id": "PO-1", "expected_delivery_day": 5}, condition=PREDICTING),
    Case("revise_po_not_string", "revise_expectation", "malformed", ("po_id",),
         lambda ep: _revision(ep, po_id=1), condition=PREDICTING),
    Case("revise_without_predictions", "revise_expectation", "unavailable_tool", ("revise_expectation",),
         lambda ep: {"po_id": "PO-1", "expected_delivery_day": 5, "expected_quantity": 3},
         condition={"prediction_mode": "none"}, world_level=False),
]  # fmt: skip

PREDICTION_CASES = [
    Case("prediction_field_missing", "order", "bad_prediction", ("expected_cost", "required"),
         lambda ep: order_args(cheapest(ep)), condition=REQUIRED,
         prediction=lambda ep: _structured_order_card(ep, expected_cost=...)),
    Case("prediction_success_missing", "order", "bad_prediction", ("expected_success", "required"),
         lambda ep: order_args(cheapest(ep)), condition=REQUIRED,
         prediction=lambda ep: _structured_order_card(ep, expected_success=...)),
    Case("prediction_nan", "order", "bad_prediction", ("expected_cost", "finite"),
         lambda ep: order_args(cheapest(ep)), condition=REQUIRED,
         prediction=lambda ep: _structured_order_card(ep, expected_cost=math.nan)),
    Case("prediction_inf", "order", "bad_prediction", ("expected_delivery_day",),
         lambda ep: order_args(cheapest(ep)), condition=REQUIRED,
         prediction=lambda ep: _structured_order_card(ep, expected_delivery_day=math.inf)),
    Case("prediction_wrong_type_success", "order", "bad_prediction", ("expected_success", "true or false"),
         lambda ep: order_args(cheapest(ep)), condition=REQUIRED,
         prediction=lambda ep: _structured_order_card(ep, expected_success="yes")),
    Case("prediction_wrong_type_money", "order", "bad_prediction", ("expected_cost",),
         lambda ep: order_args(cheapest(ep)), condition=REQUIRED,
         prediction=lambda ep: _structured_order_card(ep, expected_cost="12.50")),
    Case("prediction_bool_as_number", "order", "bad_prediction", ("expected_quantity",),
         lambda ep: order_args(cheapest(ep)), condition=REQUIRED,
         prediction=lambda ep: _structured_order_card(ep, expected_quantity=True)),
    Case("prediction_fractional_day", "order", "bad_prediction", ("expected_delivery_day", "whole"),
         lambda ep: order_args(cheapest(ep)), condition=REQUIRED,
         prediction=lambda ep: _structured_order_card(ep, expected_delivery_day=2.5)),
    Case("prediction_unknown_field", "order", "bad_prediction", ("mood",),
         lambda ep: order_args(cheapest(ep)), condition=REQUIRED,
         prediction=lambda ep: _structured_order_card(ep, mood="good")),
    Case("prediction_not_object", "order", "bad_prediction", ("object",),
         lambda ep: order_args(cheapest(ep)), condition=REQUIRED, prediction=lambda ep: [True]),
    Case("prediction_confidence_out_of_range", "order", "bad_prediction", ("confidence", "between 0 and 1"),
         lambda ep: order_args(cheapest(ep)),
         condition={"prediction_mode": "required+confidence", "prediction_format": "minimal"},
         prediction=lambda ep: {"expected_success": True, "confidence": 1.5}),
    Case("prediction_when_mode_none", "order", "bad_prediction", ("not part of this task",),
         lambda ep: order_args(cheapest(ep)), condition={"prediction_mode": "none"},
         prediction=lambda ep: {"expected_success": True}),
]  # fmt: skip


def _make(case: Case) -> tuple[Episode, AgentAction, Any]:
    ep = episode(**case.condition)
    arguments = case.arguments(ep)
    return ep, AgentAction(case.tool, arguments, case.text), case.prediction(ep)


@pytest.mark.parametrize("case", [c for c in CASES if c.world_level], ids=lambda c: c.name)
def test_world_rejects_and_leaves_state_unchanged(case: Case) -> None:
    ep, action, _ = _make(case)
    before, ledger_before = ep.state.dump(), list(ep.world.ledger)
    with pytest.raises(ActionError) as raised:
        in_world(ep, action.tool, action.arguments)
    assert raised.value.kind == case.kind, raised.value.message
    for fragment in case.says:
        assert fragment in raised.value.message.lower(), raised.value.message
    assert ep.state.dump() == before
    assert ep.world.ledger == ledger_before


@pytest.mark.parametrize("case", CASES + PREDICTION_CASES, ids=lambda c: c.name)
def test_episode_rejects_with_typed_error_and_only_the_clock_moves(case: Case) -> None:
    ep, action, prediction = _make(case)
    twin, _, _ = _make(case)  # same setup, then a plain wait
    assert ep.state.state_hash() == twin.state.state_hash()
    result = ep.step(action, prediction)
    assert not result.valid
    assert result.error_kind == case.kind, result.message
    assert result.result is None
    assert result.message
    for fragment in case.says:
        assert fragment in result.message.lower(), result.message
    observation = result.observation()
    assert observation["ok"] is False and observation["error"] == case.kind
    assert observation["message"] == result.message
    json.dumps(result.to_dict(), allow_nan=False)

    control = twin.step(WAIT, valid_card(twin, "wait"))
    assert control.valid, control.message
    assert result.state_hash == control.state_hash
    assert ep.state.dump() == twin.state.dump()
    assert ep.state.step == 1 and ep.state.day == 1
    assert ledger_identity_holds(ep)


@pytest.mark.parametrize("case", PREDICTION_CASES, ids=lambda c: c.name)
def test_bad_prediction_is_rejected_by_parse_card_and_a_good_card_passes(case: Case) -> None:
    ep, action, prediction = _make(case)
    with pytest.raises(ActionError) as raised:
        parse_card(action.tool, prediction, ep.condition, "P1")
    assert raised.value.kind == "bad_prediction"
    # The same call with a protocol-conforming card succeeds: only the card was wrong.
    fixed = _structured_order_card(ep) if case.condition == REQUIRED else valid_card(ep, action.tool)
    result = ep.step(action, fixed)
    assert result.valid, result.message
    assert len(ep.state.purchase_orders) == 1


def test_unknown_tool_and_no_tool_are_recorded_under_placeholder_names() -> None:
    ep = episode()
    assert ep.step(AgentAction("restock_all", {})).tool == "<unknown>"
    assert ep.step(AgentAction(None, text="thinking")).tool == "<no_tool>"
    assert ep.trace.column("valid") == [False, False]


def test_prediction_with_integer_beyond_float_range_is_rejected() -> None:
    ep = episode(**REQUIRED)
    card = _structured_order_card(ep, expected_cost=json.loads("1" + "0" * 400))  # valid JSON, a Python int
    result = ep.step(AgentAction("order", order_args(cheapest(ep))), card)
    assert not result.valid and result.error_kind == "bad_prediction"


@pytest.mark.parametrize("mode", ["required", "none"])
def test_prediction_with_non_string_key_is_rejected(mode: str) -> None:
    ep = episode(prediction_mode=mode)
    result = ep.step(WAIT, {1: True, "mood": "calm", "expected_success": True})
    assert not result.valid and result.error_kind == "bad_prediction"


def test_ledger_entries_carry_the_step_that_caused_them() -> None:
    ep = episode(complexity_level=0)
    offer = cheapest(ep)
    ep.step(WAIT)  # step 1: its day-end fee is stamped step 1
    assert [e.step for e in ep.world.ledger] == [1]
    placed = ep.step(AgentAction("order", order_args(offer)))  # step 2
    assert placed.valid
    purchase = next(e for e in ep.world.ledger if e.cause == "purchase")
    assert purchase.day == 1
    assert purchase.step == 2


def test_rejected_order_with_bad_card_places_nothing_even_when_the_order_is_valid() -> None:
    ep = episode(**REQUIRED)
    offer = cheapest(ep)
    result = ep.step(AgentAction("order", order_args(offer)), _structured_order_card(ep, expected_cost=math.nan))
    assert not result.valid
    assert ep.state.purchase_orders == []
    assert all(e.cause != "purchase" for e in ep.world.ledger)


# ----- tool sets --------------------------------------------------------------------------------------------


BASE_TOOLS_IN_ORDER = ("check_orders", "check_inventory", "check_budget", "check_catalogue", "order", "ship", "wait")
BASE_TOOLS = set(BASE_TOOLS_IN_ORDER)


@pytest.mark.parametrize("level", range(5))
def test_tool_set_by_level(level: int) -> None:
    tools = set(available_tools(Condition(complexity_level=level, memory_tools="none")))
    expected = BASE_TOOLS | {"revise_expectation"}  # the base condition's agent states predictions
    if level >= 2:
        expected.add("expedite")
    if level >= 3:
        expected |= {"cancel", "get_quote"}
    assert tools == expected
    assert set(Episode(Condition(complexity_level=level, memory_tools="none"), 1).tools) == expected


@pytest.mark.parametrize(
    ("memory", "recovery", "extra"),
    [
        ("none", "none", set()),
        ("basic", "none", {"write_note", "read_note"}),
        ("full", "none", {"write_note", "read_note", "search_notes"}),
        ("none", "reset", {"reset"}),
        ("none", "audit", {"audit"}),
        ("none", "help", {"help"}),
        ("none", "all", {"reset", "audit", "help"}),
        ("full", "all", {"write_note", "read_note", "search_notes", "reset", "audit", "help"}),
    ],
)
def test_memory_and_recovery_tool_sets(memory: str, recovery: str, extra: set[str]) -> None:
    condition = Condition(complexity_level=0, memory_tools=memory, recovery_tools=recovery)
    tools = available_tools(condition)
    assert len(tools) == len(set(tools))
    assert set(tools) == BASE_TOOLS | {"revise_expectation"} | extra
    # Every tool outside the set is refused as unavailable (a known tool), never run.
    ep = Episode(condition.model_copy(update={"prediction_mode": "none", "continue_after_crash": 10**6}), 1)
    for tool in sorted(set(TOOL_SPECS) - set(tools)):
        result = ep.step(AgentAction(tool, {}))
        assert result.error_kind == "unavailable_tool", tool


@pytest.mark.parametrize("mode", ["none", "optional", "required", "required+confidence"])
def test_revise_expectation_is_offered_where_the_agent_states_predictions(mode: str) -> None:
    tools = available_tools(Condition(complexity_level=3, prediction_mode=mode, memory_tools="full"))
    business = (*BASE_TOOLS_IN_ORDER, "expedite", "cancel", "get_quote")
    memory = ("write_note", "read_note", "search_notes")
    revise = ("revise_expectation",) if mode != "none" else ()
    assert tools == (*business, *revise, *memory)
    assert TOOL_SPECS["revise_expectation"].info_only


def test_revise_expectation_restates_a_delivery_and_changes_nothing_but_the_clock() -> None:
    ep, twin = episode(**PREDICTING), episode(**PREDICTING)
    offer = cheapest(ep)
    for e in (ep, twin):
        in_world(e, "order", order_args(offer, offer.min_order + 2))
    po_id = ep.state.purchase_orders[0].po_id
    arguments = {"po_id": po_id, "expected_delivery_day": 9, "expected_quantity": 0}
    result = ep.step(AgentAction("revise_expectation", arguments))
    assert result.valid, result.message
    assert result.result == arguments
    assert result.state_hash == twin.step(WAIT).state_hash
    # Once the goods are in, there is nothing left to revise.
    wait_days = ep.state.purchase_orders[0].arrival_day - ep.state.day
    for _ in range(wait_days):
        ep.step(WAIT)
    assert ep.state.purchase_orders == []
    assert ep.step(AgentAction("revise_expectation", arguments)).error_kind == "unknown_po"


def test_check_orders_shows_what_the_agent_was_promised() -> None:
    ep = episode()
    offer = max(ep.state.catalogue.offers, key=lambda o: (o.lead_days, o.supplier_id, o.sku_id))
    placed = ep.step(AgentAction("order", order_args(offer, offer.min_order + 3)))
    (row,) = in_world(ep, "check_orders", {})["purchase_orders"]
    assert row == {"po_id": placed.result["po_id"], "supplier_id": offer.supplier_id, "sku_id": offer.sku_id,
                   "quantity": offer.min_order + 3, "promised_day": placed.result["promised_day"],
                   "promised_quantity": offer.min_order + 3}  # fmt: skip


@pytest.mark.parametrize(("level", "tool"), [(2, "expedite"), (3, "cancel")])
def test_unlocked_tools_really_work(level: int, tool: str) -> None:
    ep = episode(complexity_level=level)
    offer = max(ep.state.catalogue.offers, key=lambda o: (o.lead_days, o.supplier_id, o.sku_id))
    assert offer.lead_days >= 3
    placed = ep.step(AgentAction("order", order_args(offer)))
    assert placed.valid, placed.message
    po_id = placed.result["po_id"]
    result = ep.step(AgentAction(tool, {"po_id": po_id}))
    assert result.valid, result.message
    if tool == "expedite":
        po = ep.state.purchase_orders[0]
        assert po.expedited and po.arrival_day < offer.lead_days
        assert result.result["fee"] > 0
        again = ep.step(AgentAction("expedite", {"po_id": po_id}))
        assert again.error_kind == "already_expedited"
    else:
        assert ep.state.purchase_orders == []
        refund = round(offer.unit_price_cents * offer.min_order * ep.state.rules.cancel_refund_frac)
        assert result.result["refund"] * 100 == pytest.approx(refund)
        assert [(e.amount_cents, e.ref) for e in ep.world.ledger if e.cause == "cancel_refund"] == [(refund, po_id)]
    assert ledger_identity_holds(ep)


def test_quote_holds_its_price_and_expires() -> None:
    ep = episode(complexity_level=3, pe_mag="medium")
    offer = cheapest(ep)
    quoted = ep.step(AgentAction("get_quote", order_args(offer, max(offer.min_order, 4))))
    assert quoted.valid, quoted.message
    quote_id = quoted.result["quote_id"]
    # A price shock after the quote does not change the quoted price.
    apply_shock(ep.world, ScheduledShock(ep.state.step, "cost", 0.0, _target_u(ep, offer), 0.0, 0.0), ep.condition)
    assert ep.world.effective_offer(offer.supplier_id, offer.sku_id).unit_price_cents > offer.unit_price_cents
    bought = ep.step(AgentAction("order", {**order_args(offer, max(offer.min_order, 4)), "quote_id": quote_id}))
    assert bought.valid, bought.message
    assert bought.result["unit_price"] * 100 == pytest.approx(offer.unit_price_cents)
    too_many = ep.step(AgentAction("order", {**order_args(offer, 50), "quote_id": quote_id}))
    assert too_many.error_kind == "quote_mismatch"
    while ep.state.day <= quoted.result["valid_until_day"]:
        ep.step(WAIT)
    late = ep.step(AgentAction("order", {**order_args(offer, max(offer.min_order, 4)), "quote_id": quote_id}))
    assert late.error_kind in ("unknown_quote", "quote_expired")


def _target_u(ep: Episode, offer: Offer) -> float:
    """The target draw that makes a shock pick `offer` (offers are picked in catalogue order)."""
    keys = list(ep.world.offers)
    return (keys.index((offer.supplier_id, offer.sku_id)) + 0.5) / len(keys)


# ----- catalogue --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", range(5))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_catalogue_sizes_and_sourcing(level: int, seed: int) -> None:
    catalogue = Episode(Condition(complexity_level=level), seed).state.catalogue
    assert len(catalogue.skus) == [5, 10, 15, 20, 25][level] == n_skus(level)
    assert len(catalogue.suppliers) == [2, 3, 4, 5, 6][level] == n_suppliers(level)
    assert len({s.sku_id for s in catalogue.skus}) == len(catalogue.skus)
    supplier_ids = {s.supplier_id for s in catalogue.suppliers}
    sources: dict[str, set[str]] = {s.sku_id: set() for s in catalogue.skus}
    for offer in catalogue.offers:
        assert offer.supplier_id in supplier_ids
        assert offer.unit_price_cents > 0 and offer.lead_days >= 1 and offer.min_order >= 1
        assert offer.supplier_id not in sources[offer.sku_id], "duplicate offer"
        sources[offer.sku_id].add(offer.supplier_id)
    expected = 2 if level >= 3 else 1
    assert all(len(s) == expected for s in sources.values()), sources
    for sku in catalogue.skus:
        assert sku.sale_price_cents > sku.base_cost_cents > 0


def test_catalogue_depends_on_the_seed() -> None:
    a = Episode(Condition(complexity_level=2), 1).state.catalogue
    b = Episode(Condition(complexity_level=2), 1).state.catalogue
    c = Episode(Condition(complexity_level=2), 2).state.catalogue
    assert a == b
    assert a != c


# ----- happy path, money, dump/load ----------------------------------------------------------------------


def test_happy_path_order_arrives_on_promised_day_then_ship_earns_revenue() -> None:
    ep = episode(complexity_level=0, **REQUIRED)
    s = ep.state
    offer = max(s.catalogue.offers, key=lambda o: (o.lead_days, o.supplier_id, o.sku_id))
    quantity = max(offer.min_order, 4)
    cost = offer.unit_price_cents * quantity
    card = {"expected_success": True, "expected_cost": cost / 100, "expected_delivery_day": offer.lead_days,
            "expected_quantity": quantity}  # fmt: skip
    placed = ep.step(AgentAction("order", order_args(offer, quantity)), card)
    assert placed.valid, placed.message
    promised = placed.result["promised_day"]
    assert promised == offer.lead_days  # placed on day 0
    assert placed.result["total_cost"] == pytest.approx(cost / 100)
    # Paid at placement: the purchase is a ledger entry of the order's step.
    purchase = [e for e in ep.world.ledger if e.cause == "purchase"]
    assert [(e.day, e.amount_cents, e.ref) for e in purchase] == [(0, -cost, placed.result["po_id"])]
    assert {o.field: o.value for o in placed.pe} == {"expected_success": 0.0, "expected_cost": 0.0}

    delivery_pe: list[PEObservation] = []
    while s.day < promised:
        assert s.stock[offer.sku_id] == 0
        result = ep.step(WAIT, {"expected_success": True})
        delivery_pe += [o for o in result.pe if o.field in ("expected_delivery_day", "expected_quantity")]
        if s.day < promised:
            assert delivery_pe == []
    assert s.day == promised
    assert s.stock[offer.sku_id] == quantity
    assert s.purchase_orders == []
    assert s.counters.units_delivered == quantity
    assert sorted((o.field, o.value) for o in delivery_pe) == [
        ("expected_delivery_day", 0.0), ("expected_quantity", 0.0),
    ]  # fmt: skip

    on_time = inject_customer_order(ep, offer.sku_id, 2)
    late = inject_customer_order(ep, offer.sku_id, 1, due_in=-1)
    cash = s.cash_cents
    card = {"expected_success": True, "expected_revenue": on_time.price_cents / 100}
    shipped = ep.step(AgentAction("ship", {"order_id": on_time.order_id}), card)
    assert shipped.valid, shipped.message
    assert shipped.result == {"order_id": on_time.order_id, "revenue": on_time.price_cents / 100, "late": False}
    assert [o.value for o in shipped.pe if o.field == "expected_revenue"] == [0.0]
    sale = [e for e in ep.world.ledger if e.cause == "sale"]
    assert [(e.amount_cents, e.ref) for e in sale] == [(on_time.price_cents, on_time.order_id)]
    assert s.stock[offer.sku_id] == quantity - 2
    assert on_time not in s.customer_orders
    penalty = round(late.price_cents * s.rules.late_penalty_frac)
    late_card = {"expected_success": True, "expected_revenue": 0.0}
    shipped_late = ep.step(AgentAction("ship", {"order_id": late.order_id}), late_card)
    assert shipped_late.valid and shipped_late.result["late"] is True
    assert shipped_late.result["revenue"] * 100 == pytest.approx(late.price_cents - penalty)
    assert s.counters.orders_shipped == 2 and s.counters.orders_late == 1
    assert s.counters.revenue_cents == on_time.price_cents + late.price_cents - penalty
    assert s.cash_cents > cash
    assert ledger_identity_holds(ep)

    # dump/load round trip: an equal state with an equal hash.
    loaded = WorldState.load(s.dump())
    assert loaded.dump() == s.dump()
    assert loaded.state_hash() == s.state_hash()
    assert loaded == s  # both hash caches are filled now


def test_state_equality_does_not_depend_on_the_hash_cache() -> None:
    s = episode().state
    s.state_hash()
    assert WorldState.load(s.dump()) == s


def test_ledger_identity_and_round_trip_over_a_shocked_heuristic_run() -> None:
    run = run_policy(Condition(complexity_level=3, p_shock=0.4, max_steps=400), 17, "heuristic")
    ep = run.episode
    assert ledger_identity_holds(ep)
    causes = {e.cause for e in ep.world.ledger}
    assert {"purchase", "sale"} <= causes and len(causes) >= 3  # and the day-end fees
    s = ep.state
    assert -sum(e.amount_cents for e in ep.world.ledger if e.cause == "purchase") == s.counters.purchases_cents
    assert all(e.amount_cents != 0 for e in ep.world.ledger)
    loaded = WorldState.load(ep.state.dump())
    assert loaded.state_hash() == ep.state.state_hash()
    assert ep.state.state_hash().startswith(run.state_hashes[-1])  # the trace keeps a 64-bit prefix
    # The hash covers the changing part: one more unit of stock changes it.
    loaded.stock[loaded.catalogue.skus[0].sku_id] += 1
    assert loaded.state_hash() != ep.state.state_hash()


def full_state_hash(state: WorldState) -> str:
    """The state hash by its definition, with nothing cached: the digest of the catalogue and rules, then the
    JSON of everything else."""
    static = hashlib.sha256(state.model_dump_json(include=STATIC_PARTS).encode()).hexdigest()
    return hashlib.sha256(static.encode() + state.model_dump_json(exclude=STATIC_PARTS).encode()).hexdigest()


@pytest.mark.parametrize(("policy", "level", "steps_per_day", "seed"), [("random", 3, 5, 8), ("heuristic", 4, 1, 5)])
def test_state_hash_equals_a_full_serialisation_at_every_step(
    policy: str, level: int, steps_per_day: int, seed: int
) -> None:
    # Shocks often, delayed notices, every tool (notes, quotes, cancel, expedite): every part of the state changes.
    # The random policy loses customers fast: slower days keep its business running for longer.
    condition = Condition(
        complexity_level=level, p_shock=0.5, observability="delayed", memory_tools="full", recovery_tools="all",
        steps_per_day=steps_per_day, pressure_level="low", max_steps=1000, continue_after_crash=10**6,
    )  # fmt: skip
    ep = Episode(condition, seed)
    agent = make_policy(policy, PolicyContext.for_condition(condition), seed)
    observation = None
    while not ep.done:
        action, prediction = agent.act(observation)
        result = ep.step(action, prediction)
        assert result.state_hash == full_state_hash(ep.state), ep.state.step
        observation = result.observation()
    assert ep.state.step >= 250
    # A change made outside the world's transitions is seen too (nothing is cached by step or by revision).
    ep.state.stock[ep.state.catalogue.skus[0].sku_id] += 1
    ep.state.notes["outside"] = "written directly"
    assert ep.state.state_hash() == full_state_hash(ep.state) != result.state_hash


# ----- pruning ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "p_shock"), [(2, 0.3), (4, 0.5)])
def test_working_sets_are_pruned_over_a_long_run(level: int, p_shock: float) -> None:
    condition = Condition(complexity_level=level, p_shock=p_shock, max_steps=2000, continue_after_crash=10**6)
    ep = Episode(condition, 9)
    agent = make_policy("heuristic", PolicyContext.for_condition(condition), 9)
    observation, shipped, sizes = None, set(), []
    largest = {"customer_orders": 0, "purchase_orders": 0, "effects": 0, "quotes": 0, "pending_notices": 0}
    while not ep.done:
        action, prediction = agent.act(observation)
        result = ep.step(action, prediction)
        observation = result.observation()
        if result.valid and result.tool == "ship":
            shipped.add(result.result["order_id"])
        for name in largest:
            largest[name] = max(largest[name], len(getattr(ep.state, name)))
        sizes.append(len(ep.state.dump()))
    s = ep.state
    assert s.step == 2000 and s.terminated is None
    assert s.counters.orders_shipped > 300  # a real run, not an idle one
    assert largest["customer_orders"] < 60 and largest["purchase_orders"] < 60, largest
    assert largest["effects"] < 60 and largest["pending_notices"] < 60 and largest["quotes"] <= 20, largest
    # Nothing resolved is kept: shipped orders left, expired ones left, arrived POs left, old effects left.
    assert not shipped & {o.order_id for o in s.customer_orders}
    assert all(o.due_day + s.rules.grace_days >= s.day for o in s.customer_orders)
    assert all(po.arrival_day > s.day for po in s.purchase_orders)
    assert all(e.until_day >= s.day for e in s.effects)
    assert all(d > s.day - s.rules.failure_window_days for d in s.recent_failure_days)
    assert len(s.recent_shocks) <= 5
    # The state does not grow with the run: the last dump is no bigger than twice the early ones.
    assert sizes[-1] <= 2 * max(sizes[100:300])


# ----- terminal business failure --------------------------------------------------------------------------


def test_bankruptcy_terminates_the_business_and_is_not_a_crash() -> None:
    ep = episode(complexity_level=1, continue_after_crash=0)
    ep.step(WAIT)
    ep.world.post(-(ep.state.cash_cents + 1_000_000), "test_debt")
    days = ep.state.rules.bankrupt_days
    results = [ep.step(WAIT) for _ in range(days)]
    for r in results[:-1]:
        assert r.terminated is None and not r.done
    last = results[-1]
    assert last.terminated == "bankrupt"
    assert last.done and ep.done
    assert last.crash is None and ep.crash is None
    assert last.observation()["business_failed"] == "bankrupt"
    summary = ep.summary()
    assert summary.terminated == "bankrupt"
    assert summary.crashed is False and summary.censored is True and summary.truncated is False
    assert ledger_identity_holds(ep)
    with pytest.raises(RuntimeError):
        ep.step(WAIT)


def test_negative_cash_streak_resets_when_cash_recovers() -> None:
    ep = episode(complexity_level=1)
    debt = ep.state.cash_cents + 10_000
    ep.world.post(-debt, "test_debt")
    for _ in range(ep.state.rules.bankrupt_days - 1):
        ep.step(WAIT)
    assert ep.state.negative_cash_days == ep.state.rules.bankrupt_days - 1
    ep.world.post(2 * debt, "test_rescue")
    ep.step(WAIT)
    assert ep.state.negative_cash_days == 0
    assert ep.state.terminated is None


def test_too_many_expired_orders_terminate_as_customers_lost() -> None:
    ep = episode(complexity_level=1, continue_after_crash=10**6)
    sku = cheapest(ep).sku_id
    for _ in range(ep.state.rules.max_failed_orders):
        inject_customer_order(ep, sku, 1, due_in=0)
    result = None
    for _ in range(ep.state.rules.grace_days + 1):
        result = ep.step(WAIT)
    assert result is not None
    assert result.terminated == "customers_lost" and result.done
    assert ep.state.counters.orders_failed >= ep.state.rules.max_failed_orders
    assert ep.summary().crashed is False
    assert ledger_identity_holds(ep)


# ----- pressure, prediction format, memory and recovery tools ---------------------------------------------


def test_pressure_level_changes_the_rules_and_the_demand() -> None:
    rules = {p: Episode(Condition(pressure_level=p, complexity_level=1), 3).state.rules for p in PRESSURE}
    low, medium, high = rules["low"], rules["medium"], rules["high"]
    assert low.demand_rate < medium.demand_rate < high.demand_rate
    assert low.due_days > medium.due_days > high.due_days
    assert low.daily_fee_cents < medium.daily_fee_cents < high.daily_fee_cents
    assert low.late_penalty_frac < medium.late_penalty_frac < high.late_penalty_frac
    assert low.fail_penalty_frac < medium.fail_penalty_frac < high.fail_penalty_frac
    assert low.storage_fee_cents <= medium.storage_fee_cents < high.storage_fee_cents
    assert low.start_cash_cents > medium.start_cash_cents > high.start_cash_cents
    # Same seed, same demand draws: more pressure means more customer orders, due sooner.
    received, due = {}, {}
    for p in PRESSURE:
        ep = Episode(Condition(pressure_level=p, complexity_level=1, p_shock=0.0), 3)
        orders: list[CustomerOrder] = []
        for _ in range(300):
            before = {o.order_id for o in ep.state.customer_orders}
            ep.world.end_day()
            orders += [o for o in ep.state.customer_orders if o.order_id not in before]
        received[p] = ep.state.counters.orders_received
        due[p] = sum(o.due_day - o.created_day for o in orders) / len(orders)
    assert received["low"] < received["medium"] < received["high"]
    assert due["low"] > due["medium"] > due["high"]


def test_prediction_format_changes_the_card_fields() -> None:
    def fields(form: str, tool: str = "order", mode: str = "required") -> set[str]:
        return set(card_fields(tool, Condition(prediction_mode=mode, prediction_format=form)))

    assert fields("minimal") == {"expected_success"}
    assert fields("structured") == {"expected_success", "expected_cost", "expected_delivery_day", "expected_quantity"}
    assert fields("rich") == fields("structured") | {"expected_cash_after", "rationale"}
    assert fields("structured", "ship") == {"expected_success", "expected_revenue"}
    assert fields("structured", "check_budget") == {"expected_success", "expected_cash"}
    assert fields("minimal", mode="required+confidence") == {"expected_success", "confidence"}
    assert fields("rich", mode="none") == set()
    # The episode enforces the format: a structured field is unknown in minimal; rich requires cash_after.
    ep = episode(prediction_mode="required", prediction_format="minimal")
    assert ep.step(WAIT, {"expected_success": True, "expected_cash": 1.0}).error_kind == "bad_prediction"
    ep = episode(prediction_mode="required", prediction_format="rich")
    assert ep.step(WAIT, {"expected_success": True}).error_kind == "bad_prediction"
    assert ep.step(WAIT, {"expected_success": True, "expected_cash_after": 700.0}).valid
    # Optional mode: fields may be left out.
    ep = episode(prediction_mode="optional", prediction_format="structured")
    assert ep.step(AgentAction("check_budget", {}), {}).valid
    assert ep.step(AgentAction("check_budget", {}), {"expected_cash": 1.0}).valid


def test_memory_tools_store_and_find_notes() -> None:
    ep = episode(memory_tools="full")
    text = "S2 is slow on SKU-04; order early"
    assert ep.step(AgentAction("write_note", {"key": "suppliers", "text": text})).valid
    read = ep.step(AgentAction("read_note", {"key": "suppliers"}))
    assert read.valid and read.result == {"key": "suppliers", "text": text}
    found = ep.step(AgentAction("search_notes", {"query": "SLOW on"}))
    assert found.valid and found.result["matches"] == {"suppliers": text}
    assert ep.step(AgentAction("search_notes", {"query": "zebra"})).result["matches"] == {}
    assert ep.step(AgentAction("write_note", {"key": "suppliers", "text": "replaced"})).valid
    assert ep.step(AgentAction("read_note", {"key": "suppliers"})).result["text"] == "replaced"
    assert ep.step(AgentAction("write_note", {"key": "", "text": "x"})).error_kind == "malformed"


def test_audit_lists_recent_shocks() -> None:
    condition = Condition(complexity_level=1, p_shock=1.0, recovery_tools="audit", prediction_mode="none",
                          continue_after_crash=10**6)  # fmt: skip
    ep = Episode(condition, 4)
    for _ in range(3):
        ep.step(WAIT)
    cash_at_audit = ep.state.cash_cents
    audit = ep.step(AgentAction("audit", {}))
    assert audit.valid
    shocks = audit.result["recent_shocks"]
    # Nothing is inbound, so shocks aimed at a purchase order are void: they changed nothing and are not listed.
    drawn = [ep.schedule.at(step) for step in range(1, 4)]
    kinds_fired = [d.kind for d in drawn if d.variant not in ("delay", "early", "short_shipment")]
    assert kinds_fired and [s["kind"] for s in shocks[:3]] == kinds_fired
    assert all(s["what"] for s in shocks)
    by_cause = audit.result["ledger_by_cause"]
    assert by_cause and all(v < 0 for v in by_cause.values())  # nothing bought or sold yet: only fees
    assert sum(by_cause.values()) * 100 == pytest.approx(cash_at_audit - ep.state.rules.start_cash_cents)


def test_help_returns_the_rules() -> None:
    ep = episode(recovery_tools="help", pressure_level="high")
    result = ep.step(AgentAction("help", {}))
    assert result.valid
    rules = result.result["rules"]
    r = ep.state.rules
    assert rules["daily_fee"] * 100 == pytest.approx(r.daily_fee_cents)
    assert rules["capacity_units"] == r.capacity_units
    assert str(r.bankrupt_days) in rules["business_fails_when"]


def test_reset_returns_a_briefing() -> None:
    ep = episode(recovery_tools="reset")
    offer = max(ep.state.catalogue.offers, key=lambda o: (o.lead_days, o.supplier_id, o.sku_id))
    assert offer.lead_days >= 2
    placed = ep.step(AgentAction("order", order_args(offer)))
    assert placed.valid
    cash_at_reset = ep.state.cash_cents
    result = ep.step(AgentAction("reset", {}))
    assert result.valid and result.result["context_reset"] is True
    briefing = result.result["briefing"]
    assert briefing["cash"] * 100 == pytest.approx(cash_at_reset)
    assert briefing["capacity_units"] == ep.state.rules.capacity_units
    assert [p["po_id"] for p in briefing["purchase_orders"]] == [placed.result["po_id"]]
    assert briefing["units_inbound"] == offer.min_order
    assert set(briefing["stock"]) == {s.sku_id for s in ep.state.catalogue.skus}


def test_info_tools_change_nothing_but_the_clock() -> None:
    condition = dict(complexity_level=3, memory_tools="full", recovery_tools="all")
    for tool in ("check_orders", "check_inventory", "check_budget", "check_catalogue", "audit", "reset", "help"):
        ep, twin = episode(**condition), episode(**condition)
        result = ep.step(AgentAction(tool, {}))
        assert result.valid, (tool, result.message)
        json.dumps(result.to_dict(), allow_nan=False)
        assert result.state_hash == twin.step(WAIT).state_hash, tool
