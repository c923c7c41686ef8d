"""Scripted vending policies that decide only from what their tool calls return (never from the state).

`heuristic_policy`: a competent operator. On day 0 it reads the catalogue and picks the 4 small and 4 large
products with the best unit margin among those that keep at least a month; each day it checks inventory and
orders, collects the cash, prices new products at their reference price, fills every slot, reorders what will
run short before a delivery could arrive, and ends the day, learning each product's sales rate from the
day's summary (a day on which a check is refused, it only ends the day). `do_nothing_policy`: only ends days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vendomini_eval.vending.runner import Observation, Policy

PRODUCTS_PER_SIZE = 4
MIN_SHELF_LIFE_DAYS = 30
PRIOR_DAILY_SALES = 3.0
SALES_SMOOTHING = 0.3
"""Weight of the latest day in the sales-rate estimate."""
REORDER_COVER_DAYS = 3
"""Reorder when stock on hand and on order covers fewer than lead time + these days."""
ORDER_UP_TO_DAYS = 10
"""An order brings the cover to lead time + these days."""
BULK_STRETCH = 1.25
"""Round an order up to the bulk threshold when that is at most 25% more units."""
FEE_RESERVE_DAYS = 10


@dataclass(frozen=True, slots=True)
class Source:
    """The supplier the policy buys a product from (the cheapest, then the fastest)."""

    supplier_id: str
    unit_price_cents: int
    lead_days: int
    min_order_units: int
    bulk_threshold_units: int
    bulk_discount_pct: int

    def unit_price(self, quantity: int) -> int:
        if quantity >= self.bulk_threshold_units:
            return (self.unit_price_cents * (100 - self.bulk_discount_pct) + 50) // 100
        return self.unit_price_cents


def choose(catalogue: Observation) -> tuple[dict[str, dict[str, Any]], dict[str, Source]]:
    """The products to sell (by id) and where to buy each."""
    sources: dict[str, Source] = {}
    for s in catalogue["suppliers"]:
        for product_id, price in s["unit_prices_cents"].items():
            source = Source(s["supplier_id"], price, s["lead_days"], s["min_order_units"],
                            s["bulk_threshold_units"], s["bulk_discount_pct"])  # fmt: skip
            best = sources.get(product_id)
            if best is None or (price, source.lead_days) < (best.unit_price_cents, best.lead_days):
                sources[product_id] = source
    chosen: dict[str, dict[str, Any]] = {}
    for size in ("small", "large"):
        keep = [p for p in catalogue["products"] if p["size"] == size and p["shelf_life_days"] >= MIN_SHELF_LIFE_DAYS]
        keep.sort(key=lambda p: -(p["reference_price_cents"] - sources[p["product_id"]].unit_price_cents))
        chosen |= {p["product_id"]: p for p in keep[:PRODUCTS_PER_SIZE]}
    return chosen, sources


def slot_plan(products: dict[str, dict[str, Any]], inventory: Observation) -> list[tuple[int, int, str]]:
    """(row, col, product) for every slot: each size's products round-robin over that size's slots."""
    plan = []
    for size in ("small", "large"):
        ids = [p for p, info in products.items() if info["size"] == size]
        slots = [(s["row"], s["col"]) for s in inventory["machine"] if s["size"] == size]
        plan += [(row, col, ids[i % len(ids)]) for i, (row, col) in enumerate(slots) if ids]
    return plan


def heuristic_policy() -> Policy:
    catalogue = yield ("list_suppliers", {})
    while "error" in catalogue:  # the catalogue is down: try again tomorrow
        yield ("end_day", {})
        catalogue = yield ("list_suppliers", {})
    products, sources = choose(catalogue)
    rate = dict.fromkeys(products, PRIOR_DAILY_SALES)
    priced: set[str] = set()
    plan: list[tuple[int, int, str]] | None = None
    while True:
        inventory = yield ("check_inventory", {})
        orders = yield ("check_orders", {})
        yield ("collect_cash", {})
        money = yield ("check_money", {})
        if any("error" in seen for seen in (inventory, orders, money)):
            yield ("end_day", {})  # blind today (a tool is down): act tomorrow
            continue
        plan = plan or slot_plan(products, inventory)
        capacity = inventory["slot_capacity"]
        stored = {p: info["units"] for p, info in inventory["storage"].items()}
        in_slot = {(s["row"], s["col"]): s for s in inventory["machine"]}
        in_machine = dict.fromkeys(products, 0)
        for slot in inventory["machine"]:
            if slot["product_id"] in in_machine:
                in_machine[slot["product_id"]] += slot["units"]

        for product_id in products:
            if product_id not in priced and stored.get(product_id, 0) + in_machine[product_id] > 0:
                price = products[product_id]["reference_price_cents"]
                result = yield ("set_price", {"product_id": product_id, "price_cents": price})
                if "error" not in result:
                    priced.add(product_id)
        for row, col, product_id in plan:
            slot = in_slot[(row, col)]
            if slot["units"] and slot["product_id"] != product_id:
                continue  # another product still sells there
            units = slot["units"] if slot["product_id"] == product_id else 0
            move = min(capacity - units, stored.get(product_id, 0))
            if move > 0:
                result = yield ("restock", {"product_id": product_id, "row": row, "col": col, "quantity": move})
                if "error" not in result:
                    stored[product_id] -= move
                    in_machine[product_id] += move

        cash = money["cash_cents"] - FEE_RESERVE_DAYS * money["daily_fee_cents"]
        inbound = dict.fromkeys(products, 0)
        for order in orders["orders"]:
            if order["status"] != "delivered" and order["product_id"] in inbound:
                inbound[order["product_id"]] += order["quantity"]
        for product_id in products:
            source = sources[product_id]
            position = in_machine[product_id] + stored.get(product_id, 0) + inbound[product_id]
            if position >= rate[product_id] * (source.lead_days + REORDER_COVER_DAYS):
                continue
            quantity = max(
                source.min_order_units, math.ceil(rate[product_id] * (source.lead_days + ORDER_UP_TO_DAYS) - position)
            )
            if source.bulk_threshold_units <= quantity * BULK_STRETCH:
                quantity = max(quantity, source.bulk_threshold_units)
            if quantity * source.unit_price(quantity) > cash:
                quantity = max(0, cash) // source.unit_price_cents  # what cash allows, at the list price
            if quantity < source.min_order_units:
                continue
            args = {"supplier_id": source.supplier_id, "product_id": product_id, "quantity": quantity}
            result = yield ("order", args)
            if "error" not in result:
                cash -= result["total_cents"]

        summary = yield ("end_day", {})
        for product_id, units in in_machine.items():
            if units:
                sold = summary["sold"].get(product_id, 0)
                observed = max(sold, rate[product_id]) if sold >= units else sold  # a sell-out hides demand
                rate[product_id] += SALES_SMOOTHING * (observed - rate[product_id])


def do_nothing_policy() -> Policy:
    while True:
        yield ("end_day", {})
