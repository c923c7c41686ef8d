"""The vending business's transitions: tool actions, shock effects and the day boundary, over one state.

Every action checks everything before it changes anything, so a rejected action leaves the state unchanged.
Every change of money goes through `post`, which appends to the ledger; revenue lands in the machine and
reaches cash only through `collect_cash`.
"""

from __future__ import annotations

import datetime
from typing import Any, Literal, NamedTuple

from vendomini_eval.vending import demand, memory
from vendomini_eval.vending.state import Batch, Effect, Order, Slot, VendingState
from vendomini_eval.world.actions import ActionError, Args

VendingErrorKind = Literal[
    "unknown_tool", "unknown_product", "unknown_supplier", "not_carried", "below_min_order",
    "insufficient_funds", "insufficient_stock", "size_mismatch", "slot_occupied", "over_capacity", "tool_down",
    "unknown_key", "memory_full", "terminated",
]  # fmt: skip

MAX_KV_KEYS = 200
MAX_NOTES = 500
DELIVERED_ORDERS_KEPT = 20
"""Delivered orders stay listed (for the agent to check what arrived) until this many newer ones arrived."""


class VendingError(ActionError):
    """A rejected vending action; the state is unchanged. An `ActionError`, so the episode loop treats it like
    a warehouse rejection (argument errors are the shared kind "malformed")."""

    def __init__(self, kind: VendingErrorKind, message: str, attempted_cents: int = 0) -> None:
        super().__init__(kind, message, attempted_cents)  # type: ignore[arg-type]


class LedgerEntry(NamedTuple):
    day: int
    account: Literal["cash", "machine"]
    amount_cents: int
    cause: str
    ref: str


class VendingWorld:
    """A `VendingState` plus its ledger and lookups of the static catalogue."""

    def __init__(self, state: VendingState) -> None:
        self.state = state
        self.ledger: list[LedgerEntry] = []
        catalogue = state.catalogue
        self.products = {p.product_id: p for p in catalogue.products}
        self.suppliers = {s.supplier_id: s for s in catalogue.suppliers}
        self.offers = {(o.supplier_id, o.product_id): o for o in catalogue.offers}

    # ----- money -----------------------------------------------------------------------------------------
    def post(self, account: Literal["cash", "machine"], amount_cents: int, cause: str, ref: str = "") -> None:
        s = self.state
        if account == "cash":
            s.cash_cents += amount_cents
        else:
            s.machine_cash_cents += amount_cents
        self.ledger.append(LedgerEntry(s.day, account, amount_cents, cause, ref))

    def net_worth_cents(self) -> int:
        """Cash + cash in the machine + every unit held (storage, slots, paid orders not yet delivered) at its
        wholesale value."""
        s = self.state
        units: dict[str, int] = {}
        for product_id, batches in s.storage.items():
            units[product_id] = units.get(product_id, 0) + sum(b.units for b in batches)
        for slot in s.slots:
            if slot.product_id is not None:
                units[slot.product_id] = units.get(slot.product_id, 0) + slot.units
        for order in s.orders:
            if order.status != "delivered":
                units[order.product_id] = units.get(order.product_id, 0) + order.quantity
        inventory = sum(n * self.products[p].wholesale_cents for p, n in units.items())
        return s.cash_cents + s.machine_cash_cents + inventory

    # ----- effects (what shocks changed) -----------------------------------------------------------------
    def add_effect(self, effect: Effect) -> None:
        """Start a temporary change (the hook shocks use). end_day cannot be taken down: time must pass."""
        if effect.kind == "tool_outage" and effect.tool == "end_day":
            raise ValueError("end_day cannot be taken down")
        if effect.kind == "supplier_delay" and effect.supplier_id not in self.suppliers:
            raise ValueError(f"supplier_delay needs a known supplier, got {effect.supplier_id!r}")
        self.state.effects.append(effect)

    def _factor(self, kind: str, supplier_id: str | None, product_id: str) -> float:
        factor = 1.0
        for e in self.state.effects:
            if e.kind == kind and e.product_id in (None, product_id) and e.supplier_id in (None, supplier_id):
                factor *= e.factor
        return factor

    def _delay_days(self, supplier_id: str) -> int:
        return sum(e.days for e in self.state.effects if e.kind == "supplier_delay" and e.supplier_id == supplier_id)

    def refuse_if_down(self, tool: str) -> None:
        if any(e.kind == "tool_outage" and e.tool == tool for e in self.state.effects):
            raise VendingError("tool_down", f"{tool} is temporarily unavailable. Try again in a few days.")

    def list_price_cents(self, supplier_id: str, product_id: str) -> int:
        """Today's list price per unit: the offer's price times active cost effects."""
        base = self.offers[(supplier_id, product_id)].unit_price_cents
        return round(base * self._factor("cost", supplier_id, product_id))

    # ----- lookups ----------------------------------------------------------------------------------------
    def _product(self, product_id: str) -> None:
        if product_id not in self.products:
            known = ", ".join(self.products)
            raise VendingError("unknown_product", f"product_id '{product_id}' is not a product. Products: {known}.")

    def _stored_units(self, product_id: str) -> int:
        return sum(b.units for b in self.state.storage.get(product_id, []))

    # ----- information tools ------------------------------------------------------------------------------
    # The `_do_` methods are the handlers of the tools declared, with their arguments, in vending/tools.py.
    def _do_check_inventory(self, _: Args) -> dict[str, Any]:
        s, r = self.state, self.state.rules
        machine = []
        for index, slot in enumerate(s.slots):
            row, col = divmod(index, r.cols)
            machine.append(
                {"row": row, "col": col, "size": "small" if row < r.small_rows else "large",
                 "product_id": slot.product_id, "units": slot.units,
                 "price_cents": s.prices.get(slot.product_id) if slot.product_id else None}
            )  # fmt: skip
        storage = {
            p: {"units": sum(b.units for b in batches), "next_expiry_day": batches[0].expiry_day}
            for p, batches in sorted(s.storage.items())
        }
        return {"day": s.day, "machine": machine, "storage": storage, "slot_capacity": r.slot_capacity}

    def _do_check_money(self, _: Args) -> dict[str, Any]:
        s = self.state
        return {
            "cash_cents": s.cash_cents,
            "machine_cash_cents": s.machine_cash_cents,
            "daily_fee_cents": s.rules.daily_fee_cents,
            "unpaid_days_in_a_row": s.unpaid_days_in_a_row,
        }

    def _do_check_orders(self, _: Args) -> dict[str, Any]:
        rows = []
        for o in self.state.orders:
            row = {"order_id": o.order_id, "supplier_id": o.supplier_id, "product_id": o.product_id,
                   "quantity": o.quantity, "total_cents": o.quantity * o.unit_price_cents, "placed_day": o.placed_day,
                   "expected_day": o.expected_day, "status": o.status}  # fmt: skip
            if o.status == "delivered":
                row["delivered_day"] = o.arrival_day
            rows.append(row)
        return {"day": self.state.day, "orders": rows}

    def _do_list_suppliers(self, _: Args) -> dict[str, Any]:
        products = [
            {"product_id": p.product_id, "name": p.name, "size": p.size,
             "reference_price_cents": p.reference_price_cents, "shelf_life_days": p.shelf_life_days}
            for p in self.products.values()
        ]  # fmt: skip
        suppliers = [
            {"supplier_id": s.supplier_id, "name": s.name, "lead_days": s.lead_days,
             "min_order_units": s.min_order_units, "bulk_threshold_units": s.bulk_threshold_units,
             "bulk_discount_pct": s.bulk_discount_pct,
             "unit_prices_cents": {p: self.list_price_cents(s.supplier_id, p)
                                   for (supplier, p) in self.offers if supplier == s.supplier_id}}
            for s in self.suppliers.values()
        ]  # fmt: skip
        return {"products": products, "suppliers": suppliers}

    # ----- business actions -------------------------------------------------------------------------------
    def order_unit_price_cents(self, supplier_id: str, product_id: str, quantity: int) -> int:
        """Unit price of an order: today's list price, less the bulk discount from its threshold up."""
        supplier = self.suppliers[supplier_id]
        unit = self.list_price_cents(supplier_id, product_id)
        if quantity >= supplier.bulk_threshold_units:
            unit = (unit * (100 - supplier.bulk_discount_pct) + 50) // 100  # rounded half up, in integers
        return unit

    def _do_order(self, a: Args) -> dict[str, Any]:
        s = self.state
        if a.supplier_id not in self.suppliers:
            known = ", ".join(self.suppliers)
            raise VendingError("unknown_supplier", f"supplier_id '{a.supplier_id}' is unknown. Suppliers: {known}.")
        self._product(a.product_id)
        if (a.supplier_id, a.product_id) not in self.offers:
            raise VendingError("not_carried", f"{a.supplier_id} does not sell {a.product_id}. See list_suppliers.")
        supplier = self.suppliers[a.supplier_id]
        unit = self.order_unit_price_cents(a.supplier_id, a.product_id, a.quantity)
        cost = unit * a.quantity
        if a.quantity < supplier.min_order_units:
            raise VendingError(
                "below_min_order",
                f"quantity {a.quantity} is below {a.supplier_id}'s minimum order of {supplier.min_order_units} units.",
                attempted_cents=cost,
            )
        if cost > s.cash_cents:
            raise VendingError(
                "insufficient_funds",
                f"The order costs {cost} cents but cash is {s.cash_cents} cents (collect the machine's cash?).",
                attempted_cents=cost,
            )
        expected = s.day + supplier.lead_days
        order = Order(
            order_id=s.new_id("O"), supplier_id=a.supplier_id, product_id=a.product_id, quantity=a.quantity,
            unit_price_cents=unit, placed_day=s.day, expected_day=expected,
            arrival_day=expected + self._delay_days(a.supplier_id),
        )  # fmt: skip
        s.orders.append(order)
        s.counters.purchases_cents += cost
        self.post("cash", -cost, "purchase", order.order_id)
        return {
            "order_id": order.order_id,
            "unit_price_cents": unit,
            "total_cents": cost,
            "bulk_discount_applied": a.quantity >= supplier.bulk_threshold_units,
            "expected_day": expected,
        }

    def _do_restock(self, a: Args) -> dict[str, Any]:
        s, r = self.state, self.state.rules
        self._product(a.product_id)
        product = self.products[a.product_id]
        slot_size = "small" if a.row < r.small_rows else "large"
        if product.size != slot_size:
            raise VendingError(
                "size_mismatch",
                f"{a.product_id} is a {product.size} product; row {a.row} holds {slot_size} products "
                f"(rows 0-{r.small_rows - 1} small, {r.small_rows}-{r.rows - 1} large).",
            )
        slot = s.slot(a.row, a.col)
        if slot.units and slot.product_id != a.product_id:
            raise VendingError(
                "slot_occupied",
                f"Slot ({a.row}, {a.col}) still holds {slot.units} units of {slot.product_id}; one product per slot.",
            )
        free = r.slot_capacity - slot.units
        if a.quantity > free:
            raise VendingError(
                "over_capacity", f"quantity {a.quantity} exceeds the {free} free places of slot ({a.row}, {a.col})."
            )
        stored = self._stored_units(a.product_id)
        if a.quantity > stored:
            raise VendingError("insufficient_stock", f"quantity {a.quantity} exceeds the {stored} units in storage.")
        slot.product_id = a.product_id
        _move_oldest(s.storage, a.product_id, a.quantity, slot)
        return {"row": a.row, "col": a.col, "product_id": a.product_id, "units_in_slot": slot.units,
                "storage_left": stored - a.quantity, "price_cents": s.prices.get(a.product_id)}  # fmt: skip

    def _do_set_price(self, a: Args) -> dict[str, Any]:
        self._product(a.product_id)
        self.state.prices[a.product_id] = a.price_cents
        return {"product_id": a.product_id, "price_cents": a.price_cents}

    def _do_collect_cash(self, _: Args) -> dict[str, Any]:
        amount = self.state.machine_cash_cents
        if amount:
            self.post("machine", -amount, "collect")
            self.post("cash", amount, "collect")
        return {"collected_cents": amount, "cash_cents": self.state.cash_cents}

    # ----- memory -----------------------------------------------------------------------------------------
    def _do_write_scratchpad(self, a: Args) -> dict[str, Any]:
        self.state.scratchpad = a.text
        return {"saved_chars": len(a.text)}

    def _do_read_scratchpad(self, _: Args) -> dict[str, Any]:
        return {"text": self.state.scratchpad}

    def _do_kv_set(self, a: Args) -> dict[str, Any]:
        store = self.state.kv_store
        if a.key not in store and len(store) >= MAX_KV_KEYS:
            raise VendingError("memory_full", f"At most {MAX_KV_KEYS} keys; delete one or overwrite a key.")
        store[a.key] = a.value
        return {"key": a.key, "keys": len(store)}

    def _kv_key(self, key: str) -> None:
        if key not in self.state.kv_store:
            raise VendingError("unknown_key", f"key '{key}' is not stored. See kv_list.")

    def _do_kv_get(self, a: Args) -> dict[str, Any]:
        self._kv_key(a.key)
        return {"key": a.key, "value": self.state.kv_store[a.key]}

    def _do_kv_delete(self, a: Args) -> dict[str, Any]:
        self._kv_key(a.key)
        del self.state.kv_store[a.key]
        return {"deleted": a.key}

    def _do_kv_list(self, _: Args) -> dict[str, Any]:
        return {"keys": sorted(self.state.kv_store)}

    def _do_add_note(self, a: Args) -> dict[str, Any]:
        notes = self.state.notes
        if len(notes) >= MAX_NOTES:
            raise VendingError("memory_full", f"At most {MAX_NOTES} notes.")
        notes.append(a.text)
        return {"note_id": len(notes) - 1, "notes": len(notes)}

    def _do_search_notes(self, a: Args) -> dict[str, Any]:
        top_k = 3 if a.top_k is None else a.top_k
        hits = memory.search(self.state.notes, a.query, top_k)
        return {"matches": [{"note_id": i, "score": round(score, 4), "text": self.state.notes[i]} for i, score in hits]}

    # ----- the day boundary -------------------------------------------------------------------------------
    def _do_end_day(self, _: Args) -> dict[str, Any]:
        """Customers buy, the daily fee is charged, the day advances; then units expire and deliveries arrive."""
        s, r, c = self.state, self.state.rules, self.state.counters
        day = s.day
        # The day's draws come first and do not depend on the business (common random numbers).
        draws = demand.day_draws(s.seed, day, len(self.products))
        date = demand.calendar_date(r.start_date, day)
        sold, revenue = self._sell(day, date, draws)
        fee = r.daily_fee_cents
        fee_paid = s.cash_cents >= fee
        if fee_paid:
            c.fees_cents += fee
            self.post("cash", -fee, "daily_fee")
            s.unpaid_days_in_a_row = 0
        else:
            c.unpaid_fee_days += 1
            s.unpaid_days_in_a_row += 1
            if s.unpaid_days_in_a_row >= r.unpaid_days_limit:
                s.terminated = "bankrupt"
        s.day = day + 1
        expired = self._expire(s.day)
        deliveries = self._deliver(s.day)
        s.effects = [e for e in s.effects if e.until_day >= s.day]
        return {
            "day_ended": day, "date": date.isoformat(), "weekday": date.strftime("%A"), "weather": draws.weather,
            "sold": sold, "revenue_cents": revenue, "daily_fee_cents": fee, "fee_paid": fee_paid,
            "expired": expired, "deliveries": deliveries, "new_day": s.day, "terminated": s.terminated,
        }  # fmt: skip

    def _sell(self, day: int, date: datetime.date, draws: demand.DayDraws) -> tuple[dict[str, int], int]:
        """Each priced product in the machine sells min(demand, units in its slots), oldest units first."""
        s, c = self.state, self.state.counters
        slots_of: dict[str, list[Slot]] = {}
        for slot in s.slots:
            if slot.product_id is not None and slot.product_id in s.prices:
                slots_of.setdefault(slot.product_id, []).append(slot)
        on_sale = sum(1 for slots in slots_of.values() if any(slot.units for slot in slots))
        sold: dict[str, int] = {}
        revenue = 0
        for index, product in enumerate(self.products.values()):
            slots = slots_of.get(product.product_id)
            if slots is None:
                continue
            price = s.prices[product.product_id]
            mean = demand.expected_sales(
                product, price, date, draws.weather, on_sale, draws.noise[index],
                self._factor("demand", None, product.product_id),
            )  # fmt: skip
            wanted = demand.poisson_quantile(draws.uniforms[index], mean)
            available = sum(slot.units for slot in slots)
            if wanted > available:
                c.stockout_product_days += 1
            units = min(wanted, available)
            if units:
                _take_oldest(slots, units)
                sold[product.product_id] = units
                revenue += units * price
        if revenue:
            c.units_sold += sum(sold.values())
            c.revenue_cents += revenue
            c.last_sale_day = day
            self.post("machine", revenue, "sales", f"day-{day}")
        return sold, revenue

    def _expire(self, day: int) -> dict[str, int]:
        s = self.state
        expired: dict[str, int] = {}
        for product_id, batches in list(s.storage.items()):
            gone = sum(b.units for b in batches if b.expiry_day <= day)
            if gone:
                expired[product_id] = gone
                kept = [b for b in batches if b.expiry_day > day]
                if kept:
                    s.storage[product_id] = kept
                else:
                    del s.storage[product_id]
        for slot in s.slots:
            gone = sum(b.units for b in slot.batches if b.expiry_day <= day)
            if gone and slot.product_id is not None:  # a slot with units always has a product
                expired[slot.product_id] = expired.get(slot.product_id, 0) + gone
                slot.batches = [b for b in slot.batches if b.expiry_day > day]
        s.counters.units_expired += sum(expired.values())
        return expired

    def _deliver(self, day: int) -> list[dict[str, Any]]:
        s = self.state
        arrived = []
        for order in s.orders:
            if order.status != "delivered" and order.arrival_day <= day:
                order.status = "delivered"
                shelf_life = self.products[order.product_id].shelf_life_days
                _add_batch(
                    s.storage.setdefault(order.product_id, []), Batch(units=order.quantity, expiry_day=day + shelf_life)
                )
                s.counters.units_delivered += order.quantity
                arrived.append({"order_id": order.order_id, "product_id": order.product_id, "units": order.quantity})
            elif order.status == "placed":
                order.status = "in_transit"
        delivered = [o.order_id for o in s.orders if o.status == "delivered"]
        if len(delivered) > DELIVERED_ORDERS_KEPT:
            dropped = set(delivered[:-DELIVERED_ORDERS_KEPT])
            s.orders = [o for o in s.orders if o.order_id not in dropped]
        return arrived


def _move_oldest(storage: dict[str, list[Batch]], product_id: str, units: int, slot: Slot) -> None:
    """Move units from storage into a slot, soonest-expiring first (callers checked there are enough)."""
    batches = storage[product_id]
    while units:
        batch = batches[0]
        moved = min(units, batch.units)
        _add_batch(slot.batches, Batch(units=moved, expiry_day=batch.expiry_day))
        batch.units -= moved
        units -= moved
        if not batch.units:
            batches.pop(0)
    if not batches:
        del storage[product_id]


def _add_batch(batches: list[Batch], batch: Batch) -> None:
    """Merge with a batch of the same expiry, keeping the list ordered by expiry."""
    for existing in batches:
        if existing.expiry_day == batch.expiry_day:
            existing.units += batch.units
            return
    batches.append(batch)
    batches.sort(key=lambda b: b.expiry_day)


def _take_oldest(slots: list[Slot], units: int) -> None:
    """Remove sold units from a product's slots, soonest-expiring first (callers checked there are enough)."""
    while units:
        slot = min((s for s in slots if s.batches), key=lambda s: s.batches[0].expiry_day)
        batch = slot.batches[0]
        taken = min(units, batch.units)
        batch.units -= taken
        units -= taken
        if not batch.units:
            slot.batches.pop(0)
