"""The vending business's transitions: tool actions, shock effects, notices and the day boundary, over one state.

Every action checks everything before it changes anything, so a rejected action leaves the state unchanged.
Every change of money goes through `post`, which appends to the ledger; revenue lands in the machine and
reaches cash only through `collect_cash`.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, Literal, NamedTuple

from vendomini_eval.vending import demand, memory
from vendomini_eval.vending.catalogue import discounted
from vendomini_eval.vending.state import Batch, Effect, Order, Size, Slot, VendingState
from vendomini_eval.world.actions import ActionError, Args
from vendomini_eval.world.state import Notice

VendingErrorKind = Literal[
    "unknown_tool", "unknown_product", "unknown_supplier", "not_carried", "below_min_order",
    "insufficient_funds", "insufficient_stock", "size_mismatch", "slot_occupied", "over_capacity", "tool_down",
    "unknown_key", "memory_full", "terminated", "unknown_po", "bad_quantity",
]  # fmt: skip

MAX_KV_KEYS = 200
MAX_NOTES = 500
DELIVERED_ORDERS_KEPT = 20
"""Delivered orders stay listed (for the agent to check what arrived) until this many newer ones arrived."""
# The most that stacked effects can change each parameter, as in the warehouse (world/world.py): effects of one
# kind multiply (delays add) up to the cap, so overlapping shocks leave a business that can still be run.
EFFECT_CAPS: dict[str, float] = {"cost": 2.0, "demand": 5.0, "min_order": 3.0, "daily_fee": 3.0, "supplier_delay": 14}


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
        self.last_deliveries: list[Order] = []
        """The orders delivered by the latest end_day (for resolving delivery predictions)."""
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
        wholesale value + the refunds due for units a supplier will not deliver."""
        s = self.state
        refunds_due = 0
        units: dict[str, int] = {}
        for product_id, batches in s.storage.items():
            units[product_id] = units.get(product_id, 0) + sum(b.units for b in batches)
        for slot in s.slots:
            if slot.product_id is not None:
                units[slot.product_id] = units.get(slot.product_id, 0) + slot.units
        for order in s.orders:
            if order.status != "delivered":
                units[order.product_id] = units.get(order.product_id, 0) + order.delivered_quantity
                refunds_due += (order.quantity - order.delivered_quantity) * order.unit_price_cents
        inventory = sum(n * self.products[p].wholesale_cents for p, n in units.items())
        return s.cash_cents + s.machine_cash_cents + inventory + refunds_due

    # ----- effects (what shocks changed) -----------------------------------------------------------------
    def add_effect(self, effect: Effect) -> None:
        """Start a temporary change (the hook shocks use). end_day cannot be taken down: time must pass."""
        if effect.kind == "tool_outage" and effect.tool == "end_day":
            raise ValueError("end_day cannot be taken down")
        if effect.kind in ("supplier_delay", "min_order") and effect.supplier_id not in self.suppliers:
            raise ValueError(f"{effect.kind} needs a known supplier, got {effect.supplier_id!r}")
        if effect.kind == "unavailable" and (effect.supplier_id, effect.product_id) not in self.offers:
            raise ValueError(f"unavailable needs an offer, got {(effect.supplier_id, effect.product_id)!r}")
        self.state.effects.append(effect)

    def _factor(self, kind: str, supplier_id: str | None = None, product_id: str | None = None) -> float:
        """The product of the active effects of a kind that reach this supplier and product, within its cap."""
        factor = 1.0
        for e in self.state.effects:
            if e.kind == kind and e.product_id in (None, product_id) and e.supplier_id in (None, supplier_id):
                factor *= e.factor
        return min(factor, EFFECT_CAPS[kind])

    def _delay_days(self, supplier_id: str) -> int:
        days = sum(e.days for e in self.state.effects if e.kind == "supplier_delay" and e.supplier_id == supplier_id)
        return min(days, int(EFFECT_CAPS["supplier_delay"]))

    def tool_is_down(self, tool: str) -> bool:
        return any(e.kind == "tool_outage" and e.tool == tool for e in self.state.effects)

    def refuse_if_down(self, tool: str, args: Args | None = None) -> None:
        """Raise `VendingError` if a shock has taken the tool down: every call is checked before its handler runs
        (`ToolSpec.apply`). A refused order reports what it would have cost."""
        if self.tool_is_down(tool):
            raise VendingError(
                "tool_down",
                f"{tool} is temporarily unavailable. Try again in a few days.",
                attempted_cents=self.commitment_cents(tool, args) if args is not None else 0,
            )

    def sells(self, supplier_id: str, product_id: str) -> bool:
        """The supplier sells the product today: it has an offer that no shock has made unavailable."""
        return (supplier_id, product_id) in self.offers and not any(
            e.kind == "unavailable" and e.supplier_id == supplier_id and e.product_id == product_id
            for e in self.state.effects
        )

    def list_price_cents(self, supplier_id: str, product_id: str) -> int:
        """Today's list price per unit: the offer's price times active cost effects."""
        base = self.offers[(supplier_id, product_id)].unit_price_cents
        return round(base * self._factor("cost", supplier_id, product_id))

    def min_order_units(self, supplier_id: str) -> int:
        """Today's minimum order of a supplier: its stated minimum times active min_order effects, rounded up."""
        units = self.suppliers[supplier_id].min_order_units * self._factor("min_order", supplier_id)
        return math.ceil(round(units, 6))  # rounded first: 10 x 1.1 is 11.000000000000002 in floats

    def daily_fee_cents(self) -> int:
        """Today's daily fee: the rule's fee times active daily_fee effects."""
        return round(self.state.rules.daily_fee_cents * self._factor("daily_fee"))

    # ----- lookups ----------------------------------------------------------------------------------------
    def _product(self, product_id: str) -> None:
        if product_id not in self.products:
            known = ", ".join(self.products)
            raise VendingError("unknown_product", f"product_id '{product_id}' is not a product. Products: {known}.")

    def slot_size(self, row: int) -> Size:
        return "small" if row < self.state.rules.small_rows else "large"

    def units_in_stock(self) -> int:
        """Units in the machine's slots and in storage."""
        return sum(slot.units for slot in self.state.slots) + sum(map(self._stored_units, self.state.storage))

    def _stored_units(self, product_id: str) -> int:
        return sum(b.units for b in self.state.storage.get(product_id, []))

    def _check_offer(self, supplier_id: str, product_id: str) -> None:
        if supplier_id not in self.suppliers:
            known = ", ".join(self.suppliers)
            raise VendingError("unknown_supplier", f"supplier_id '{supplier_id}' is unknown. Suppliers: {known}.")
        self._product(product_id)
        if not self.sells(supplier_id, product_id):
            raise VendingError("not_carried", f"{supplier_id} does not sell {product_id} now. See list_suppliers.")

    def _undelivered(self, po_id: str) -> Order:
        for order in self.state.orders:
            if order.po_id == po_id and order.status != "delivered":
                return order
        raise VendingError("unknown_po", f"No undelivered order '{po_id}'. See check_orders.")

    # ----- information tools ------------------------------------------------------------------------------
    # The `_do_` methods are the handlers of the tools declared, with their arguments, in vending/tools.py.
    def _do_check_inventory(self, _: Args) -> dict[str, Any]:
        s, r = self.state, self.state.rules
        machine = []
        for index, slot in enumerate(s.slots):
            row, col = divmod(index, r.cols)
            machine.append(
                {"row": row, "col": col, "size": self.slot_size(row),
                 "product_id": slot.product_id, "units": slot.units,
                 "price_cents": s.prices.get(slot.product_id) if slot.product_id else None}
            )  # fmt: skip
        storage = {
            p: {"units": sum(b.units for b in batches), "next_expiry_day": batches[0].expiry_day}
            for p, batches in sorted(s.storage.items())
        }
        return {"day": s.day, "machine": machine, "storage": storage, "units_in_stock": self.units_in_stock(),
                "slot_capacity": r.slot_capacity}  # fmt: skip

    def _do_check_money(self, _: Args) -> dict[str, Any]:
        s = self.state
        return {
            "cash_cents": s.cash_cents,
            "machine_cash_cents": s.machine_cash_cents,
            "daily_fee_cents": self.daily_fee_cents(),
            "unpaid_days_in_a_row": s.unpaid_days_in_a_row,
        }

    def _do_check_orders(self, _: Args) -> dict[str, Any]:
        """Undelivered orders show what the agent was told (expected day and units); delivered ones what came."""
        rows = []
        for o in self.state.orders:
            row = {"po_id": o.po_id, "supplier_id": o.supplier_id, "product_id": o.product_id,
                   "quantity": o.quantity, "total_cents": o.quantity * o.unit_price_cents, "placed_day": o.placed_day,
                   "status": o.status}  # fmt: skip
            if o.status == "delivered":
                row |= {"delivered_day": o.arrival_day, "delivered_quantity": o.delivered_quantity}
            else:
                row |= {"expected_day": o.expected_day, "promised_quantity": o.promised_quantity}
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
             "min_order_units": self.min_order_units(s.supplier_id), "bulk_threshold_units": s.bulk_threshold_units,
             "bulk_discount_pct": s.bulk_discount_pct,
             "unit_prices_cents": {p: self.list_price_cents(s.supplier_id, p)
                                   for (supplier, p) in self.offers
                                   if supplier == s.supplier_id and self.sells(supplier, p)}}
            for s in self.suppliers.values()
        ]  # fmt: skip
        return {"products": products, "suppliers": suppliers}

    # ----- business actions -------------------------------------------------------------------------------
    def order_unit_price_cents(self, supplier_id: str, product_id: str, quantity: int) -> int:
        """Unit price of an order: today's list price, less the bulk discount from its threshold up."""
        supplier = self.suppliers[supplier_id]
        unit = self.list_price_cents(supplier_id, product_id)
        if quantity >= supplier.bulk_threshold_units:
            unit = discounted(unit, supplier.bulk_discount_pct)
        return unit

    def commitment_cents(self, tool: str, a: Args) -> int:
        """What the call would charge now, as its handler prices it: for `order`, today's unit price (cost effects,
        bulk discount) times the quantity; 0 for any other tool, and for an order the world rejects before it can
        be priced (unknown supplier or product, an offer not sold today)."""
        if tool != "order":
            return 0
        try:
            self._check_offer(a.supplier_id, a.product_id)
        except VendingError:
            return 0
        return self.order_unit_price_cents(a.supplier_id, a.product_id, a.quantity) * a.quantity

    def _do_order(self, a: Args) -> dict[str, Any]:
        s = self.state
        self._check_offer(a.supplier_id, a.product_id)
        supplier = self.suppliers[a.supplier_id]
        unit = self.order_unit_price_cents(a.supplier_id, a.product_id, a.quantity)
        cost = unit * a.quantity
        minimum = self.min_order_units(a.supplier_id)
        if a.quantity < minimum:
            raise VendingError(
                "below_min_order",
                f"quantity {a.quantity} is below {a.supplier_id}'s minimum order of {minimum} units.",
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
            po_id=s.new_id("PO"), supplier_id=a.supplier_id, product_id=a.product_id, quantity=a.quantity,
            unit_price_cents=unit, placed_day=s.day, expected_day=expected, promised_quantity=a.quantity,
            arrival_day=expected + self._delay_days(a.supplier_id), delivered_quantity=a.quantity,
        )  # fmt: skip
        s.orders.append(order)
        s.counters.purchases_cents += cost
        self.post("cash", -cost, "purchase", order.po_id)
        return {
            "po_id": order.po_id,
            "unit_price_cents": unit,
            "total_cents": cost,
            "bulk_discount_applied": a.quantity >= supplier.bulk_threshold_units,
            "expected_day": expected,
        }

    def _do_restock(self, a: Args) -> dict[str, Any]:
        s, r = self.state, self.state.rules
        self._product(a.product_id)
        product = self.products[a.product_id]
        slot_size = self.slot_size(a.row)
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
        previous = self.state.prices.get(a.product_id)
        self.state.prices[a.product_id] = a.price_cents
        return {"product_id": a.product_id, "price_cents": a.price_cents, "previous_price_cents": previous}

    def _do_collect_cash(self, _: Args) -> dict[str, Any]:
        amount = self.state.machine_cash_cents
        if amount:
            self.post("machine", -amount, "collect")
            self.post("cash", amount, "collect")
        return {"collected_cents": amount, "cash_cents": self.state.cash_cents}

    def _do_revise_expectation(self, a: Args) -> dict[str, Any]:
        """The agent restates when an undelivered order will arrive and with how many units; the business is
        unchanged (the episode resolves the delivery's prediction against these values)."""
        order = self._undelivered(a.po_id)
        if not 0 <= a.expected_quantity <= order.quantity:
            raise VendingError(
                "bad_quantity",
                f"expected_quantity must be from 0 to the {order.quantity} units ordered, got {a.expected_quantity}.",
            )
        return {"po_id": order.po_id, "expected_delivery_day": a.expected_delivery_day,
                "expected_quantity": a.expected_quantity}  # fmt: skip

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

    # ----- notices --------------------------------------------------------------------------------------------
    def deliver_notice(self, notice: Notice) -> str:
        """The notice reaches the agent: a revision it carries becomes what the agent was told (what check_orders
        shows), if the order is still undelivered. Returns the notice's text."""
        if notice.po_id is not None:
            order = next((o for o in self.state.orders if o.po_id == notice.po_id and o.status != "delivered"), None)
            if order is not None:
                if notice.promised_day is not None:
                    order.expected_day = notice.promised_day
                if notice.promised_quantity is not None:
                    order.promised_quantity = notice.promised_quantity
        return notice.text

    # ----- what the agent can do (for the detectors of inaction) ----------------------------------------------
    def productive_action_available(self) -> bool:
        """Whether the agent could move the business right now, by one of:

        - collect_cash: the machine holds uncollected cash;
        - restock: storage holds units of a product that some slot can take (an empty slot of its size, or a slot
          of that product with free room);
        - set_price: a slot holds units of a product that has no price, so it cannot sell;
        - end_day: a slot holds priced units, which customers buy only when the day ends (an agent that never
          ends its day keeps its customers away as surely as one that never restocks);
        - order: some slot is empty, no product of that slot's size has units in storage or on order (goods on
          their way are already the answer to it), and cash covers today's minimum order of some product of that
          size that some supplier sells today, and list_suppliers is up (while the catalogue is down, an agent that
          has not read it cannot know what to buy: counting the order would make the outage, not the agent, stall).

        Each needs its tool up, and none is available once the business has failed. Inaction while none is
        available is the world's doing (a tool down, nothing to buy, no money, goods on their way), not a
        breakdown.
        """
        s, capacity = self.state, self.state.rules.slot_capacity
        if s.terminated is not None:
            return False
        if s.machine_cash_cents and not self.tool_is_down("collect_cash"):
            return True
        sized_slots = [(self.slot_size(index // s.rules.cols), slot) for index, slot in enumerate(s.slots)]
        if not self.tool_is_down("restock"):
            for product_id in s.storage:
                size = self.products[product_id].size
                takes = (
                    not slot.units or (slot.product_id == product_id and slot.units < capacity)
                    for slot_size, slot in sized_slots
                    if slot_size == size
                )
                if any(takes):
                    return True
        unpriced = any(slot.units and slot.product_id not in s.prices for slot in s.slots)
        if unpriced and not self.tool_is_down("set_price"):
            return True
        if any(slot.units and slot.product_id in s.prices for slot in s.slots):
            return True
        if self.tool_is_down("order") or self.tool_is_down("list_suppliers"):
            return False  # without today's offers, what to buy is guesswork (an agent new to the business)
        coming = {self.products[p].size for p in s.storage}
        coming |= {self.products[o.product_id].size for o in s.orders if o.status != "delivered"}
        empty = {slot_size for slot_size, slot in sized_slots if not slot.units} - coming
        for supplier_id, product_id in self.offers:
            if self.products[product_id].size in empty and self.sells(supplier_id, product_id):
                minimum = self.min_order_units(supplier_id)
                if self.order_unit_price_cents(supplier_id, product_id, minimum) * minimum <= s.cash_cents:
                    return True
        return False

    def is_progress(self, tool: str, result: dict[str, Any]) -> bool:
        """Whether a valid call (with its result) moved the business: an order, a restock, a collection of more
        than nothing, a price that changed. Reads, memory, revisions and end_day (time passing) do not."""
        if tool in ("order", "restock"):
            return True
        if tool == "collect_cash":
            return result["collected_cents"] > 0
        if tool == "set_price":
            return result["previous_price_cents"] != result["price_cents"]
        return False

    # ----- the day boundary -------------------------------------------------------------------------------
    def _do_end_day(self, _: Args) -> dict[str, Any]:
        """Customers buy, the daily fee is charged, the day advances; then units expire and deliveries arrive."""
        s, r, c = self.state, self.state.rules, self.state.counters
        day = s.day
        # The day's draws come first and do not depend on the business (common random numbers).
        draws = demand.day_draws(s.seed, day, len(self.products))
        date = demand.calendar_date(r.start_date, day)
        sold, revenue = self._sell(day, date, draws)
        fee = self.daily_fee_cents()  # the fee of the day that ends: its effects still apply
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
        self.last_deliveries = self._deliver(s.day)
        s.effects = [e for e in s.effects if e.until_day >= s.day]
        deliveries = [
            {"po_id": o.po_id, "product_id": o.product_id, "units": o.delivered_quantity, "ordered": o.quantity,
             "refund_cents": (o.quantity - o.delivered_quantity) * o.unit_price_cents}
            for o in self.last_deliveries
        ]  # fmt: skip
        return {
            "day_ended": day, "date": date.isoformat(), "weekday": date.strftime("%A"), "weather": draws.weather,
            "sold": sold, "units_sold": sum(sold.values()), "revenue_cents": revenue, "daily_fee_cents": fee,
            "fee_paid": fee_paid, "expired": expired, "deliveries": deliveries, "new_day": s.day,
            "terminated": s.terminated,
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

    def _deliver(self, day: int) -> list[Order]:
        """Orders due by `day` arrive: the units delivered go to storage, the missing ones are refunded."""
        s, c = self.state, self.state.counters
        arrived = []
        for order in s.orders:
            if order.status != "delivered" and order.arrival_day <= day:
                order.status = "delivered"
                if order.delivered_quantity:
                    shelf_life = self.products[order.product_id].shelf_life_days
                    batch = Batch(units=order.delivered_quantity, expiry_day=day + shelf_life)
                    _add_batch(s.storage.setdefault(order.product_id, []), batch)
                c.units_delivered += order.delivered_quantity
                refund = (order.quantity - order.delivered_quantity) * order.unit_price_cents
                if refund:
                    c.refunds_cents += refund
                    self.post("cash", refund, "refund", order.po_id)
                arrived.append(order)
            elif order.status == "placed":
                order.status = "in_transit"
        delivered = [o.po_id for o in s.orders if o.status == "delivered"]
        if len(delivered) > DELIVERED_ORDERS_KEPT:
            dropped = set(delivered[:-DELIVERED_ORDERS_KEPT])
            s.orders = [o for o in s.orders if o.po_id not in dropped]
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
