"""A competent scripted agent: keeps its picture of the business up to date from tool results, ships what it
can, reorders what demand needs, and states honest predictions from that picture."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vendomini_eval.episode import AgentAction
from vendomini_eval.policies.base import PolicyContext, Prediction

ORDERS_EVERY = 4  # steps between check_orders
INVENTORY_EVERY = 20
BUDGET_EVERY = 25
CATALOGUE_EVERY = 60
SAFETY_STOCK = 3  # units per SKU kept on hand beyond open demand
BATCH = 4  # extra units per purchase, so that one order covers the next few customer orders
CASH_RESERVE = 40.0  # dollars kept back for fees
CONFIDENCE = 0.9
RETRY_REFUSED_OFFER_DAYS = 10  # an offer that refused an order is tried again after this, even unread


@dataclass
class Beliefs:
    """The agent's world model, built only from what its calls returned."""

    day: int = 0
    step: int = 0
    cash: float = 0.0
    stock: dict[str, int] = field(default_factory=dict)
    offers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    sale_price: dict[str, float] = field(default_factory=dict)
    customer_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    inbound: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_check: dict[str, int] = field(default_factory=dict)
    failed_offers: dict[tuple[str, str], int] = field(default_factory=dict)
    """Offers that refused an order, with the day of the refusal: avoided until the catalogue is re-read or
    `RETRY_REFUSED_OFFER_DAYS` have passed (the catalogue may be down)."""

    def refused(self, key: tuple[str, str]) -> bool:
        day = self.failed_offers.get(key)
        return day is not None and self.day - day < RETRY_REFUSED_OFFER_DAYS


class HeuristicPolicy:
    """Reorder-and-ship. Deterministic given its seed (the seed only breaks ties)."""

    def __init__(self, context: PolicyContext, seed: int = 0) -> None:
        self.context = context
        self.rng = np.random.default_rng(seed)
        self.beliefs = Beliefs(cash=context.start_cash)  # the task states the starting cash; stock starts empty
        self._last: tuple[str, dict[str, Any]] | None = None

    # ----- reading observations ---------------------------------------------------------------------------
    def observe(self, observation: dict[str, Any] | None) -> None:
        b = self.beliefs
        if observation is None:
            return
        b.step += 1
        days_passed = observation["day"] - b.day
        b.day = observation["day"]
        if days_passed > 0:
            units = sum(b.stock.values())
            b.cash -= days_passed * (self.context.daily_fee + units * self.context.storage_fee)
        if self._last is None:
            return
        tool, args = self._last
        if not observation["ok"]:
            self._on_error(tool, args, observation.get("error"))
            return
        result = observation["result"]
        getattr(self, f"_seen_{tool}", lambda *_: None)(result, args)

    def _on_error(self, tool: str, args: dict[str, Any], error: str | None) -> None:
        b = self.beliefs
        if tool == "order" and error in ("not_carried", "below_min_order", "tool_down"):
            b.failed_offers[(args.get("supplier_id"), args.get("sku_id"))] = b.day
            b.last_check.pop("check_catalogue", None)
        elif tool == "order" and error == "insufficient_funds":
            b.last_check.pop("check_budget", None)
        elif tool == "order" and error == "over_capacity":
            b.last_check.pop("check_inventory", None)
        elif tool == "ship":
            if error == "unknown_order":
                b.customer_orders.pop(args.get("order_id"), None)
            elif error == "insufficient_stock" and args.get("order_id") in b.customer_orders:
                # Not enough of that SKU, whatever it believed: restock it (even if the inventory check is down).
                b.stock[b.customer_orders[args["order_id"]]["sku_id"]] = 0
            b.last_check.pop("check_inventory", None)

    def _seen_check_orders(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        b = self.beliefs
        b.customer_orders = {o["order_id"]: o for o in result["customer_orders"]}
        still_inbound = {p["po_id"]: p for p in result["purchase_orders"]}
        for po_id, po in b.inbound.items():
            if po_id not in still_inbound:  # arrived since the last look
                b.stock[po["sku_id"]] = b.stock.get(po["sku_id"], 0) + po["quantity"]
        b.inbound = still_inbound

    def _seen_check_inventory(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        self.beliefs.stock = dict(result["stock"])

    def _seen_check_budget(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        self.beliefs.cash = result["cash"]

    def _seen_check_catalogue(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        b = self.beliefs
        b.offers = {(o["supplier_id"], o["sku_id"]): o for o in result["offers"]}
        b.sale_price = {s["sku_id"]: s["sale_price"] for s in result["skus"]}
        b.failed_offers.clear()

    def _seen_order(self, result: dict[str, Any], args: dict[str, Any]) -> None:
        b = self.beliefs
        b.inbound[result["po_id"]] = {"sku_id": args["sku_id"], "quantity": args["quantity"],
                                      "promised_day": result["promised_day"]}  # fmt: skip
        b.cash -= result["total_cost"]

    def _seen_ship(self, result: dict[str, Any], args: dict[str, Any]) -> None:
        b = self.beliefs
        order = b.customer_orders.pop(args["order_id"], None)
        if order is not None:
            b.stock[order["sku_id"]] = b.stock.get(order["sku_id"], 0) - order["quantity"]
        b.cash += result["revenue"]

    # ----- deciding ---------------------------------------------------------------------------------------
    def act(self, observation: dict[str, Any] | None) -> tuple[AgentAction, Prediction]:
        self.observe(observation)
        tool, args, expected = self.decide()
        self._last = (tool, args)
        return AgentAction(tool, args), self.card(tool, expected)

    def _stale(self, tool: str, every: int) -> bool:
        last = self.beliefs.last_check.get(tool)
        return last is None or self.beliefs.step - last >= every

    def _check(self, tool: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        self.beliefs.last_check[tool] = self.beliefs.step
        b = self.beliefs
        expected: dict[str, Any] = {"success": True}
        if tool == "check_budget":
            expected["expected_cash"] = round(b.cash, 2)
        if tool == "check_inventory":
            expected["expected_units_in_stock"] = sum(b.stock.values())
        return tool, {}, expected

    def decide(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        b = self.beliefs
        for tool, every in (("check_catalogue", CATALOGUE_EVERY), ("check_budget", BUDGET_EVERY),
                            ("check_inventory", INVENTORY_EVERY), ("check_orders", ORDERS_EVERY)):  # fmt: skip
            if self._stale(tool, every):
                return self._check(tool)
        shippable = sorted(
            (o for o in b.customer_orders.values() if b.stock.get(o["sku_id"], 0) >= o["quantity"]),
            key=lambda o: (o["due_day"], o["order_id"]),
        )
        if shippable:
            o = shippable[0]
            late = b.day > o["due_day"]
            revenue = o["price"] * (1 - self.context.late_penalty_frac) if late else o["price"]
            return (
                "ship",
                {"order_id": o["order_id"]},
                {"success": True, "expected_revenue": round(revenue, 2)},
            )
        purchase = self._purchase()
        if purchase is not None:
            return purchase
        return "wait", {}, {"success": True}

    def _purchase(self) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        """Order for open customer demand first (the SKU with the largest shortfall: open demand - stock -
        inbound), then safety stock, which is bought only while cash stays above half the starting cash."""
        b = self.beliefs
        if not b.offers:
            return None
        demand: dict[str, int] = {}
        for o in b.customer_orders.values():
            demand[o["sku_id"]] = demand.get(o["sku_id"], 0) + o["quantity"]
        inbound: dict[str, int] = {}
        for po in b.inbound.values():
            inbound[po["sku_id"]] = inbound.get(po["sku_id"], 0) + po["quantity"]

        def shortfalls(target: dict[str, int]) -> list[tuple[int, str]]:
            gaps = ((need - b.stock.get(sku, 0) - inbound.get(sku, 0), sku) for sku, need in target.items())
            return sorted((gap for gap in gaps if gap[0] > 0), key=lambda item: (-item[0], item[1]))

        safety = {sku: demand.get(sku, 0) + SAFETY_STOCK for sku in b.sale_price}
        for gaps, reserve in ((shortfalls(demand), CASH_RESERVE), (shortfalls(safety), self.context.start_cash / 2)):
            for shortfall, sku in gaps:
                order = self._order_for(sku, shortfall, reserve)
                if order is not None:
                    return order
        return None

    def _order_for(self, sku: str, shortfall: int, reserve: float) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        """An order covering `shortfall` (plus a batch) from the cheapest offer, if it leaves `reserve` in cash."""
        b = self.beliefs
        offers = [o for key, o in b.offers.items() if key[1] == sku and not b.refused(key)]
        if not offers:
            return None
        offer = min(offers, key=lambda o: (o["unit_price"], o["lead_days"], o["supplier_id"]))
        quantity = max(shortfall + BATCH, offer["min_order"])
        cost = round(offer["unit_price"] * quantity, 2)
        if cost > b.cash - reserve:
            return None
        args = {"supplier_id": offer["supplier_id"], "sku_id": sku, "quantity": quantity}
        expected = {
            "success": True,
            "expected_cost": cost,
            "expected_delivery_day": b.day + offer["lead_days"],
            "expected_quantity": quantity,
        }
        return "order", args, expected

    # ----- predictions ------------------------------------------------------------------------------------
    def card(self, tool: str, expected: dict[str, Any]) -> Prediction:
        """The prediction card for the call, with the fields this condition's protocol takes."""
        fields = self.context.prediction_fields(tool)
        if not fields:
            return None
        success = expected.get("success", True)
        card: dict[str, Any] = {"expected_success": success}
        if "confidence" in fields:
            card["confidence"] = CONFIDENCE if success else 1 - CONFIDENCE
        for name, value in expected.items():
            if name in fields:
                card[name] = value
        if "expected_cash_after" in fields:
            change = -expected.get("expected_cost", 0.0) + expected.get("expected_revenue", 0.0)
            card["expected_cash_after"] = round(self.beliefs.cash + change, 2)
        if "rationale" in fields:
            card["rationale"] = f"{tool} per the reorder-and-ship routine"
        return card
