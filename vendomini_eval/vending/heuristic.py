"""Scripted vending policies that decide only from what their tool calls return (never from the state).

`heuristic_policy`: a competent operator. On day 0 it reads the catalogue and picks the 4 small and 4 large
products with the best unit margin among those that keep at least a month; each day it checks inventory and
orders, collects the cash, prices new products at their reference price, fills every slot, reorders what will
run short before a delivery could arrive, and ends the day, learning each product's sales rate from the
day's summary. A day on which a check is refused, it acts on what it last read, moved by what its own calls
and the day summaries reported, starting from the empty business the task describes; after an order refused for
its terms (a raised minimum, a dropped product) it reads the catalogue again. `do_nothing_policy`: only ends days.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from vendomini_eval.vending.catalogue import default_rules, discounted
from vendomini_eval.vending.runner import Observation, Policy
from vendomini_eval.vending.state import Rules

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

    @classmethod
    def listed(cls, supplier: Observation, price_cents: int) -> Source:
        """One price of a supplier's row in list_suppliers, with the supplier's terms."""
        return cls(supplier["supplier_id"], price_cents, supplier["lead_days"], supplier["min_order_units"],
                   supplier["bulk_threshold_units"], supplier["bulk_discount_pct"])  # fmt: skip

    def unit_price(self, quantity: int) -> int:
        if quantity >= self.bulk_threshold_units:
            return discounted(self.unit_price_cents, self.bulk_discount_pct)
        return self.unit_price_cents


def next_rate(rate: float, sold: int, stocked: int) -> float:
    """The sales rate after a day that sold `sold` of `stocked` units: a sell-out hides demand, so it reads as at
    least the current rate."""
    observed = max(sold, rate) if sold >= stocked else sold
    return rate + SALES_SMOOTHING * (observed - rate)


def choose(catalogue: Observation) -> tuple[dict[str, dict[str, Any]], dict[str, Source]]:
    """The products to sell (by id) and where to buy each."""
    sources: dict[str, Source] = {}
    for s in catalogue["suppliers"]:
        for product_id, price in s["unit_prices_cents"].items():
            source = Source.listed(s, price)
            best = sources.get(product_id)
            if best is None or (price, source.lead_days) < (best.unit_price_cents, best.lead_days):
                sources[product_id] = source
    chosen: dict[str, dict[str, Any]] = {}
    for size in ("small", "large"):
        keep = [
            p
            for p in catalogue["products"]
            # A product no supplier sells today (a shock dropped its only offer) cannot be chosen.
            if p["size"] == size and p["shelf_life_days"] >= MIN_SHELF_LIFE_DAYS and p["product_id"] in sources
        ]
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


@dataclass
class Beliefs:
    """The inventory, orders and money as the policy last read them, moved by what its own calls and each day's
    summary reported: what it acts on on a day when a check is down (an outage hides the business, it does not
    change it)."""

    inventory: Observation
    orders: Observation
    money: Observation

    @classmethod
    def start(cls, rules: Rules) -> Beliefs:
        """The business as the task describes its start: an empty machine and storage, no orders, the start cash."""
        machine = [
            {"row": row, "col": col, "size": "small" if row < rules.small_rows else "large", "product_id": None,
             "units": 0, "price_cents": None}
            for row in range(rules.rows)
            for col in range(rules.cols)
        ]  # fmt: skip
        return cls(
            {"machine": machine, "storage": {}, "slot_capacity": rules.slot_capacity},
            {"orders": []},
            {"cash_cents": rules.start_cash_cents, "daily_fee_cents": rules.daily_fee_cents},
        )

    @classmethod
    def update(
        cls, known: Beliefs, inventory: Observation, orders: Observation, collected: Observation,
        money: Observation,
    ) -> Beliefs:  # fmt: skip
        """Today's reads where they succeeded, else what it knew. Copies: the beliefs change as the day goes on,
        the observations stay what they were."""
        inventory, orders, collected, money = copy.deepcopy((inventory, orders, collected, money))
        if "error" not in money:
            known.money = money
        elif "error" not in collected:
            known.money = {**known.money, "cash_cents": collected["cash_cents"]}
        return cls(
            inventory if "error" not in inventory else known.inventory,
            orders if "error" not in orders else known.orders,
            known.money,
        )

    def restocked(self, result: Observation) -> None:
        for slot in self.inventory["machine"]:
            if (slot["row"], slot["col"]) == (result["row"], result["col"]):
                slot.update(product_id=result["product_id"], units=result["units_in_slot"])
        stored = self.inventory["storage"].get(result["product_id"])
        if stored is not None:
            stored["units"] = result["storage_left"]

    def ordered(self, args: dict[str, Any], result: Observation) -> None:
        self.orders["orders"].append({**args, "po_id": result["po_id"], "status": "placed",
                                      "promised_quantity": args["quantity"]})  # fmt: skip
        self.money = {**self.money, "cash_cents": self.money["cash_cents"] - result["total_cents"]}

    def day_ended(self, summary: Observation) -> None:
        """Sales leave the product's slots, expired units leave storage first, deliveries arrive in storage."""
        storage = self.inventory["storage"]
        for product_id, units in summary["sold"].items():
            for slot in self.inventory["machine"]:
                if slot["product_id"] == product_id and units:
                    taken = min(units, slot["units"])
                    slot["units"] -= taken
                    units -= taken
        for product_id, units in summary["expired"].items():
            if product_id in storage:
                storage[product_id]["units"] = max(0, storage[product_id]["units"] - units)
        arrived = {d["po_id"] for d in summary["deliveries"]}
        for delivery in summary["deliveries"]:
            entry = storage.setdefault(delivery["product_id"], {"units": 0})
            entry["units"] += delivery["units"]
        for order in self.orders["orders"]:
            if order["po_id"] in arrived:
                order["status"] = "delivered"
        if summary["fee_paid"]:
            self.money = {**self.money, "cash_cents": self.money["cash_cents"] - summary["daily_fee_cents"]}


def heuristic_policy(rules: Rules | None = None) -> Policy:
    """`rules`: the business as the task states it (the machine's layout, start cash, fee); default: the paper's."""
    catalogue = yield ("list_suppliers", {})
    while "error" in catalogue:  # the catalogue is down: try again tomorrow
        yield ("end_day", {})
        catalogue = yield ("list_suppliers", {})
    products, sources = choose(catalogue)
    rate = dict.fromkeys(products, PRIOR_DAILY_SALES)
    priced: set[str] = set()
    plan: list[tuple[int, int, str]] | None = None
    known = Beliefs.start(rules or default_rules())  # what it knows, moved by what its calls and day ends reported
    stale = False  # an order was refused for terms it read earlier: read the catalogue again
    while True:
        if stale:
            catalogue = yield ("list_suppliers", {})
            if "error" not in catalogue:
                sources = choose(catalogue)[1]  # today's offers; a product no one sells is left out
                stale = False
        inventory = yield ("check_inventory", {})
        orders = yield ("check_orders", {})
        collected = yield ("collect_cash", {})
        money = yield ("check_money", {})
        known = Beliefs.update(known, inventory, orders, collected, money)
        inventory, orders, money = known.inventory, known.orders, known.money
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
                    known.restocked(result)

        cash = money["cash_cents"] - FEE_RESERVE_DAYS * money["daily_fee_cents"]
        inbound = dict.fromkeys(products, 0)
        for order in orders["orders"]:
            if order["status"] != "delivered" and order["product_id"] in inbound:
                inbound[order["product_id"]] += order["promised_quantity"]
        for product_id in products:
            source = sources.get(product_id)
            if source is None:
                continue  # no supplier sells it today
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
                known.ordered(args, result)
            elif result["error"] in ("below_min_order", "not_carried"):
                stale = True

        summary = yield ("end_day", {})
        known.day_ended(summary)
        for product_id, units in in_machine.items():
            if units:
                sold = summary["sold"].get(product_id, 0)
                rate[product_id] = next_rate(rate[product_id], sold, units)


def do_nothing_policy() -> Policy:
    while True:
        yield ("end_day", {})
