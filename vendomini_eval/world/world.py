"""The world's transitions: tool actions, shock effects and the day boundary, over one `WorldState`.

Every action validates everything first and mutates only after the last check, so a rejected action leaves
the state byte-for-byte unchanged. Every change of cash goes through `post`, which appends to the ledger.
Working sets (open customer orders, inbound purchase orders, effects, quotes) are pruned as they resolve, so
the cost of a step does not grow with the length of the run.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from vendomini_eval.world.actions import ActionError, Args
from vendomini_eval.world.state import CustomerOrder, Effect, Notice, Offer, PurchaseOrder, Quote, WorldState

MAX_NOTES = 100
MAX_QUOTES = 20
MAX_LISTED_ORDERS = 30
RECENT_SHOCKS_KEPT = 5
DEMAND_BLOCK_DAYS = 256
EXPEDITE_MIN_FEE_CENTS = 500

# The most that stacked shocks can change each parameter (docs/METHOD.md, "Shocks"): effects of one kind
# multiply (lead times add), and the product is capped, so overlapping shocks stay within a business that can
# still be run. lead_time is in days added; every other cap is a factor.
EFFECT_CAPS: dict[str, float] = {
    "daily_fee": 3.0,
    "storage_fee": 3.0,
    "min_order": 3.0,
    "price": 2.0,
    "demand": 5.0,
    "lead_time": 14,
}


def dollars(cents: int) -> float:
    # Integer cents / 100 is already the double nearest to the 2-decimal amount (what round(x, 2) would return).
    return cents / 100


class LedgerEntry(NamedTuple):
    step: int
    day: int
    amount_cents: int
    cause: str
    ref: str


class Terms(NamedTuple):
    """An offer's terms as they stand today, after shock effects."""

    unit_price_cents: int
    lead_days: int
    min_order: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A purchase order that arrived at a day boundary (for resolving delivery predictions)."""

    po_id: str
    arrival_day: int
    delivered_quantity: int
    promised_quantity: int
    """What the agent was last told would arrive (the reference of its stock beliefs)."""


class World:
    """A `WorldState` plus its ledger, a lookup of the static catalogue, and the demand generator."""

    def __init__(self, state: WorldState, demand_rng: np.random.Generator) -> None:
        self.state = state
        self.ledger: list[LedgerEntry] = []
        self.demand_rng = demand_rng
        self.offers: dict[tuple[str, str], Offer] = {(o.supplier_id, o.sku_id): o for o in state.catalogue.offers}
        self.skus = {s.sku_id: s for s in state.catalogue.skus}
        self.unit_cost = {s.sku_id: s.base_cost_cents for s in state.catalogue.skus}
        self.supplier_ids = {s.supplier_id for s in state.catalogue.suppliers}
        self.sku_order = [s.sku_id for s in state.catalogue.skus]
        self._demand_block_index = -1
        self._demand_rows: list[list[tuple[int, float, int, int]]] = []

    # ----- money -----------------------------------------------------------------------------------------
    def post(self, amount_cents: int, cause: str, ref: str = "") -> None:
        s = self.state
        s.cash_cents += amount_cents
        self.ledger.append(LedgerEntry(s.step, s.day, amount_cents, cause, ref))

    # ----- effects (what shocks changed) -----------------------------------------------------------------
    def _effects(self, kind: str) -> list[Effect]:
        return [e for e in self.state.effects if e.kind == kind]

    def effective_offer(self, supplier_id: str, sku_id: str) -> Terms | None:
        """The offer as it stands today, after active effects (within EFFECT_CAPS); None if the supplier does
        not carry the SKU."""
        base = self.offers.get((supplier_id, sku_id))
        if base is None:
            return None
        price, extra_days, minimum = 1.0, 0, 1.0
        for e in self.state.effects:
            if e.supplier_id != supplier_id or (e.sku_id is not None and e.sku_id != sku_id):
                continue
            if e.kind == "drop_sku":
                return None
            if e.kind == "price":
                price *= e.factor
            elif e.kind == "lead_time":
                extra_days += e.days
            elif e.kind == "min_order":
                minimum *= e.factor
        return Terms(
            round(base.unit_price_cents * min(price, EFFECT_CAPS["price"])),
            max(1, base.lead_days + min(extra_days, int(EFFECT_CAPS["lead_time"]))),
            max(1, round(base.min_order * min(minimum, EFFECT_CAPS["min_order"]))),
        )

    def fee_factor(self, kind: str) -> float:
        if not self.state.effects:
            return 1.0
        factor = 1.0
        for e in self._effects(kind):
            factor *= e.factor
        return min(factor, EFFECT_CAPS[kind])

    def tool_is_down(self, tool: str) -> bool:
        return bool(self.state.effects) and any(e.kind == "tool_down" and e.tool == tool for e in self.state.effects)

    def demand_factor(self, sku_id: str) -> float:
        factor = 1.0
        for e in self.state.effects:
            if e.kind == "demand" and e.sku_id == sku_id:
                factor *= e.factor
        return min(factor, EFFECT_CAPS["demand"])

    # ----- lookups ----------------------------------------------------------------------------------------
    def _check_supplier_sku(self, supplier_id: str, sku_id: str) -> Terms:
        if supplier_id not in self.supplier_ids:
            known = ", ".join(sorted(self.supplier_ids))
            raise ActionError("unknown_supplier", f"Unknown supplier '{supplier_id}'. Suppliers: {known}.")
        if sku_id not in self.skus:
            raise ActionError("unknown_sku", f"Unknown SKU '{sku_id}'. See check_catalogue for the SKUs.")
        offer = self.effective_offer(supplier_id, sku_id)
        if offer is None:
            raise ActionError(
                "not_carried",
                f"Supplier {supplier_id} does not currently sell {sku_id}. See check_catalogue.",
            )
        return offer

    def _check_quantity(self, quantity: int) -> None:
        limit = self.state.rules.max_order_units
        if quantity <= 0:
            raise ActionError("bad_quantity", f"quantity must be a positive integer, got {quantity}.")
        if quantity > limit:
            raise ActionError("bad_quantity", f"quantity {quantity} exceeds the limit of {limit} units per order.")

    def _purchase_order(self, po_id: str) -> PurchaseOrder:
        for po in self.state.purchase_orders:
            if po.po_id == po_id:
                return po
        raise ActionError("unknown_po", f"No undelivered purchase order '{po_id}'. See check_orders.")

    def units_held(self) -> int:
        """Units in stock plus units on their way: what capacity is checked against at ordering."""
        s = self.state
        return sum(s.stock.values()) + sum(po.quantity for po in s.purchase_orders)

    # ----- actions ----------------------------------------------------------------------------------------
    # The `_do_` methods are the handlers of the tools declared, with their arguments, in world/tools.py.
    def refuse_if_down(self, tool: str, args: Args) -> None:
        """Raise `ActionError` if a rule shock has taken the tool down: every call is checked before its handler
        runs (`ToolSpec.apply`). A refused order reports what it would have cost."""
        if self.tool_is_down(tool):
            raise ActionError(
                "tool_down",
                f"{tool} is temporarily unavailable. Try again in a few days.",
                attempted_cents=self._list_cost(args) if tool == "order" else 0,
            )

    def _list_cost(self, a: Args) -> int:
        """What an order would cost at today's list price (0 if the offer does not exist)."""
        offer = self.effective_offer(a.supplier_id, a.sku_id)
        return offer.unit_price_cents * a.quantity if offer is not None and a.quantity > 0 else 0

    def _do_check_orders(self, _: Args) -> dict[str, Any]:
        s = self.state
        orders = sorted(s.customer_orders, key=lambda o: (o.due_day, o.order_id))
        return {
            "customer_orders": [
                {"order_id": o.order_id, "sku_id": o.sku_id, "quantity": o.quantity,
                 "price": dollars(o.price_cents), "due_day": o.due_day}
                for o in orders[:MAX_LISTED_ORDERS]
            ],
            "customer_orders_not_listed": max(0, len(orders) - MAX_LISTED_ORDERS),
            "purchase_orders": [
                {"po_id": p.po_id, "supplier_id": p.supplier_id, "sku_id": p.sku_id, "quantity": p.quantity,
                 "promised_day": p.promised_day, "promised_quantity": p.promised_quantity}
                for p in s.purchase_orders
            ],
        }  # fmt: skip

    def _do_check_inventory(self, _: Args) -> dict[str, Any]:
        s = self.state
        return {
            "stock": {sku: s.stock[sku] for sku in self.sku_order},
            "units_in_stock": sum(s.stock.values()),
            "units_inbound": sum(po.quantity for po in s.purchase_orders),
            "capacity_units": s.rules.capacity_units,
        }

    def _do_check_budget(self, _: Args) -> dict[str, Any]:
        s = self.state
        return {
            "cash": dollars(s.cash_cents),
            "daily_fee": dollars(round(s.rules.daily_fee_cents * self.fee_factor("daily_fee"))),
            "storage_fee_per_unit_day": dollars(round(s.rules.storage_fee_cents * self.fee_factor("storage_fee"))),
        }  # fmt: skip

    def _do_check_catalogue(self, _: Args) -> dict[str, Any]:
        rows = []
        for (supplier_id, sku_id), _base in self.offers.items():
            offer = self.effective_offer(supplier_id, sku_id)
            if offer is not None:
                rows.append(
                    {"supplier_id": supplier_id, "sku_id": sku_id, "unit_price": dollars(offer.unit_price_cents),
                     "lead_days": offer.lead_days, "min_order": offer.min_order}
                )  # fmt: skip
        skus = [
            {"sku_id": s.sku_id, "name": s.name, "sale_price": dollars(s.sale_price_cents)} for s in self.skus.values()
        ]
        return {"offers": rows, "skus": skus}

    def commitment_cents(self, tool: str, a: Args) -> int:
        """What an `order` or `expedite` call would charge now, as its handler prices it; 0 for any other call,
        and for one the world rejects before it can be priced (unknown supplier, SKU, quote or order)."""
        try:
            if tool == "order":
                offer = self._check_supplier_sku(a.supplier_id, a.sku_id)
                return self._order_price(a, offer) * a.quantity
            if tool == "expedite":
                return self._expedite_fee(self._purchase_order(a.po_id))
        except ActionError:
            pass
        return 0

    def _expedite_fee(self, po: PurchaseOrder) -> int:
        """A share of the order's value, at least EXPEDITE_MIN_FEE_CENTS."""
        share = round(po.unit_price_cents * po.quantity * self.state.rules.expedite_fee_frac)
        return max(EXPEDITE_MIN_FEE_CENTS, share)

    def _order_price(self, a: Args, offer: Terms) -> int:
        """Unit price of an order: the quote's if a valid quote is given, else today's list price."""
        if a.quote_id is None:
            return offer.unit_price_cents
        for q in self.state.quotes:
            if q.quote_id == a.quote_id:
                if q.valid_until_day < self.state.day:
                    raise ActionError("quote_expired", f"Quote {q.quote_id} expired on day {q.valid_until_day}.")
                if (q.supplier_id, q.sku_id) != (a.supplier_id, a.sku_id) or a.quantity > q.quantity:
                    raise ActionError(
                        "quote_mismatch",
                        f"Quote {q.quote_id} covers up to {q.quantity} x {q.sku_id} from {q.supplier_id}.",
                    )
                return q.unit_price_cents
        raise ActionError("unknown_quote", f"No quote '{a.quote_id}'. Quotes expire after a few days.")

    def _do_order(self, a: Args) -> dict[str, Any]:
        s = self.state
        offer = self._check_supplier_sku(a.supplier_id, a.sku_id)
        self._check_quantity(a.quantity)
        unit = self._order_price(a, offer)
        cost = unit * a.quantity  # reported with every later rejection: what the agent tried to commit
        if a.quantity < offer.min_order:
            raise ActionError(
                "below_min_order",
                f"{a.supplier_id} sells {a.sku_id} in orders of at least {offer.min_order} units.",
                attempted_cents=cost,
            )
        free = s.rules.capacity_units - self.units_held()
        if a.quantity > free:
            raise ActionError(
                "over_capacity",
                f"Ordering {a.quantity} units would exceed warehouse capacity: {free} units free "
                f"(stock plus inbound against {s.rules.capacity_units}).",
                attempted_cents=cost,
            )
        if cost > s.cash_cents:
            raise ActionError(
                "insufficient_funds",
                f"The order costs ${dollars(cost)} but cash is ${dollars(s.cash_cents)}.",
                attempted_cents=cost,
            )
        day = s.day + offer.lead_days
        po = PurchaseOrder(
            po_id=s.new_id("PO"), supplier_id=a.supplier_id, sku_id=a.sku_id, quantity=a.quantity,
            unit_price_cents=unit, placed_day=s.day, promised_day=day, promised_quantity=a.quantity,
            arrival_day=day, delivered_quantity=a.quantity,
        )  # fmt: skip
        s.purchase_orders.append(po)
        s.counters.purchases_cents += cost
        self.post(-cost, "purchase", po.po_id)
        return {
            "po_id": po.po_id,
            "unit_price": dollars(unit),
            "total_cost": dollars(cost),
            "promised_day": day,
        }

    def _do_ship(self, a: Args) -> dict[str, Any]:
        s = self.state
        index = next((i for i, o in enumerate(s.customer_orders) if o.order_id == a.order_id), None)
        if index is None:
            raise ActionError("unknown_order", f"No open customer order '{a.order_id}'. See check_orders.")
        order = s.customer_orders[index]
        have = s.stock[order.sku_id]
        if have < order.quantity:
            raise ActionError(
                "insufficient_stock",
                f"Order {order.order_id} needs {order.quantity} x {order.sku_id}; {have} in stock.",
            )
        late = s.day > order.due_day
        revenue = order.price_cents - (round(order.price_cents * s.rules.late_penalty_frac) if late else 0)
        s.stock[order.sku_id] = have - order.quantity
        del s.customer_orders[index]
        c = s.counters
        c.orders_shipped += 1
        c.orders_late += int(late)
        c.units_sold += order.quantity
        c.revenue_cents += revenue
        self.post(revenue, "sale", order.order_id)
        return {"order_id": order.order_id, "revenue": dollars(revenue), "late": late}

    def _do_wait(self, _: Args) -> dict[str, Any]:
        return {"waited": True}

    def _do_expedite(self, a: Args) -> dict[str, Any]:
        s = self.state
        po = self._purchase_order(a.po_id)
        if po.expedited:
            raise ActionError("already_expedited", f"{po.po_id} is already expedited.")
        fee = self._expedite_fee(po)
        if fee > s.cash_cents:
            raise ActionError(
                "insufficient_funds",
                f"Expediting costs ${dollars(fee)} but cash is ${dollars(s.cash_cents)}.",
                attempted_cents=fee,
            )
        remaining = max(1, po.arrival_day - s.day)
        cut = remaining - max(1, (remaining + 1) // 2)
        po.arrival_day -= cut
        po.promised_day = max(s.day + 1, po.promised_day - cut)
        po.expedited = True
        s.counters.fees_cents += fee
        self.post(-fee, "expedite_fee", po.po_id)
        return {"po_id": po.po_id, "fee": dollars(fee), "promised_day": po.promised_day}

    def _do_cancel(self, a: Args) -> dict[str, Any]:
        s = self.state
        po = self._purchase_order(a.po_id)
        refund = round(po.unit_price_cents * po.quantity * s.rules.cancel_refund_frac)
        s.purchase_orders = [p for p in s.purchase_orders if p.po_id != po.po_id]
        self.post(refund, "cancel_refund", po.po_id)
        return {"po_id": po.po_id, "refund": dollars(refund)}

    def _do_revise_expectation(self, a: Args) -> dict[str, Any]:
        """The agent restates when a purchase order will arrive and with how many units; the business is
        unchanged (the episode resolves the delivery's PE against these values)."""
        po = self._purchase_order(a.po_id)
        limit = self.state.rules.max_order_units
        if not 0 <= a.expected_quantity <= limit:
            raise ActionError(
                "bad_quantity", f"expected_quantity must be from 0 to {limit} units, got {a.expected_quantity}."
            )
        return {
            "po_id": po.po_id,
            "expected_delivery_day": a.expected_delivery_day,
            "expected_quantity": a.expected_quantity,
        }

    def _do_get_quote(self, a: Args) -> dict[str, Any]:
        s = self.state
        offer = self._check_supplier_sku(a.supplier_id, a.sku_id)
        self._check_quantity(a.quantity)
        quote = Quote(
            quote_id=s.new_id("Q"), supplier_id=a.supplier_id, sku_id=a.sku_id, quantity=a.quantity,
            unit_price_cents=offer.unit_price_cents, valid_until_day=s.day + s.rules.quote_valid_days,
        )  # fmt: skip
        s.quotes.append(quote)
        del s.quotes[:-MAX_QUOTES]
        return {
            "quote_id": quote.quote_id, "unit_price": dollars(quote.unit_price_cents),
            "lead_days": offer.lead_days, "min_order": offer.min_order, "valid_until_day": quote.valid_until_day,
        }  # fmt: skip

    def _do_write_note(self, a: Args) -> dict[str, Any]:
        notes = self.state.notes
        if a.key not in notes and len(notes) >= MAX_NOTES:
            raise ActionError("note_limit", f"At most {MAX_NOTES} notes; overwrite an existing key.")
        notes[a.key] = a.text
        return {"saved": a.key, "notes": len(notes)}

    def _do_read_note(self, a: Args) -> dict[str, Any]:
        if a.key not in self.state.notes:
            keys = ", ".join(sorted(self.state.notes)) or "none"
            raise ActionError("unknown_note", f"No note '{a.key}'. Keys: {keys}.")
        return {"key": a.key, "text": self.state.notes[a.key]}

    def _do_search_notes(self, a: Args) -> dict[str, Any]:
        q = a.query.lower()
        hits = {k: v for k, v in self.state.notes.items() if q in k.lower() or q in v.lower()}
        return {"matches": hits}

    def _do_audit(self, _: Args) -> dict[str, Any]:
        s = self.state
        by_cause: dict[str, int] = {}
        for entry in self.ledger:
            by_cause[entry.cause] = by_cause.get(entry.cause, 0) + entry.amount_cents
        return {
            "recent_shocks": [{"day": r.day, "kind": r.kind, "what": r.description} for r in s.recent_shocks],
            "active_changes": [
                {"kind": e.kind, "supplier_id": e.supplier_id, "sku_id": e.sku_id, "tool": e.tool,
                 "until_day": e.until_day}
                for e in s.effects
            ],
            "ledger_by_cause": {k: dollars(v) for k, v in sorted(by_cause.items())},
        }  # fmt: skip

    def _do_reset(self, _: Args) -> dict[str, Any]:
        return {
            "briefing": {
                **self._do_check_budget(_),
                **self._do_check_inventory(_),
                **self._do_check_orders(_),
            },
            "context_reset": True,
        }

    def _do_help(self, _: Args) -> dict[str, Any]:
        r = self.state.rules
        return {
            "rules": {
                "steps_per_day": r.steps_per_day,
                "daily_fee": dollars(r.daily_fee_cents),
                "storage_fee_per_unit_day": dollars(r.storage_fee_cents),
                "late_shipment_penalty": f"{r.late_penalty_frac:.0%} of the price, up to {r.grace_days} days late",
                "expired_order_penalty": f"{r.fail_penalty_frac:.0%} of the price",
                "capacity_units": r.capacity_units,
                "purchase_payment": "at placement; missing units refunded on arrival",
                "business_fails_when": f"cash negative at {r.bankrupt_days} consecutive day ends, "
                f"or {r.max_failed_orders} customer orders expired within {r.failure_window_days} days",
            }
        }

    # ----- notices ----------------------------------------------------------------------------------------
    def deliver_notice(self, notice: Notice) -> str:
        """The notice reaches the agent: a revision it carries becomes what the agent was promised (what
        check_orders shows), if the purchase order is still on its way. Returns the notice's text."""
        if notice.po_id is not None:
            po = next((p for p in self.state.purchase_orders if p.po_id == notice.po_id), None)
            if po is not None:
                if notice.promised_day is not None:
                    po.promised_day = notice.promised_day
                if notice.promised_quantity is not None:
                    po.promised_quantity = notice.promised_quantity
        return notice.text

    # ----- the day boundary -------------------------------------------------------------------------------
    def end_day(self) -> list[Delivery]:
        """Advance to the next day: deliveries, expiries, new demand, fees, effect expiry, failure rules."""
        s, r, c = self.state, self.state.rules, self.state.counters
        s.day += 1
        day = s.day
        deliveries: list[Delivery] = []
        arriving = [po for po in s.purchase_orders if po.arrival_day <= day]
        if arriving:
            s.purchase_orders = [po for po in s.purchase_orders if po.arrival_day > day]
            for po in arriving:
                s.stock[po.sku_id] += po.delivered_quantity
                c.units_delivered += po.delivered_quantity
                missing = po.quantity - po.delivered_quantity
                if missing:
                    self.post(missing * po.unit_price_cents, "short_shipment_refund", po.po_id)
                deliveries.append(Delivery(po.po_id, day, po.delivered_quantity, po.promised_quantity))
        expired = [o for o in s.customer_orders if o.due_day + r.grace_days < day]
        if expired:
            s.customer_orders = [o for o in s.customer_orders if o.due_day + r.grace_days >= day]
            for o in expired:
                c.orders_failed += 1
                s.recent_failure_days.append(day)
                penalty = round(o.price_cents * r.fail_penalty_frac)
                if penalty:
                    c.penalties_cents += penalty
                    self.post(-penalty, "expired_order_penalty", o.order_id)
        # Fees are those of the day that just ended (its effects still apply); effects that ended with it
        # expire before the new day's demand is drawn.
        fees = round(r.daily_fee_cents * self.fee_factor("daily_fee")) + round(
            sum(s.stock.values()) * r.storage_fee_cents * self.fee_factor("storage_fee")
        )
        c.fees_cents += fees
        self.post(-fees, "day_end_fees")
        if s.effects and any(e.until_day < day for e in s.effects):
            s.effects = [e for e in s.effects if e.until_day >= day]
        if s.quotes and any(q.valid_until_day < day for q in s.quotes):
            s.quotes = [q for q in s.quotes if q.valid_until_day >= day]
        self._new_demand(day)
        if s.cash_cents < 0:
            s.negative_cash_days += 1
        elif s.negative_cash_days:
            s.negative_cash_days = 0
        if s.recent_failure_days and s.recent_failure_days[0] <= day - r.failure_window_days:
            s.recent_failure_days = [d for d in s.recent_failure_days if d > day - r.failure_window_days]
        if s.negative_cash_days >= r.bankrupt_days:
            s.terminated = "bankrupt"
        elif len(s.recent_failure_days) >= r.max_failed_orders:
            s.terminated = "customers_lost"
        return deliveries

    def _new_demand(self, day: int) -> None:
        """Customer orders for the day. Draws come in fixed blocks of days whatever the agent does, so demand
        is common to every policy run on the same seed."""
        s, r = self.state, self.state.rules
        candidates = self._demand_block(day)
        if not candidates:
            return
        p = r.demand_rate / len(self.sku_order)
        for i, u, quantity, jitter in candidates:
            sku_id = self.sku_order[i]
            if u >= p * self.demand_factor(sku_id):
                continue
            s.customer_orders.append(
                CustomerOrder(
                    order_id=s.new_id("C"), sku_id=sku_id, quantity=quantity,
                    price_cents=quantity * self.skus[sku_id].sale_price_cents, created_day=day,
                    due_day=day + r.due_days + jitter,
                )
            )  # fmt: skip
            s.counters.orders_received += 1

    def _demand_block(self, day: int) -> list[tuple[int, float, int, int]]:
        """(sku index, uniform, quantity, due jitter) of the SKUs that could see an order on `day`: those whose
        uniform is below the largest possible demand probability. Drawn DEMAND_BLOCK_DAYS at a time."""
        block, offset = divmod(day - 1, DEMAND_BLOCK_DAYS)
        if block != self._demand_block_index:
            n, rng = len(self.sku_order), self.demand_rng
            arrive = rng.random((DEMAND_BLOCK_DAYS, n))
            quantity = 1 + rng.poisson(2.0, (DEMAND_BLOCK_DAYS, n))
            jitter = rng.integers(0, 3, (DEMAND_BLOCK_DAYS, n))
            bound = self.state.rules.demand_rate / n * EFFECT_CAPS["demand"]
            rows: list[list[tuple[int, float, int, int]]] = [[] for _ in range(DEMAND_BLOCK_DAYS)]
            days, skus = np.nonzero(arrive < bound)
            # As Python numbers, converted in bulk (the same values as float() and int() of each element).
            candidates = zip(
                days.tolist(), skus.tolist(), arrive[days, skus].tolist(), quantity[days, skus].tolist(),
                jitter[days, skus].tolist(), strict=True,
            )  # fmt: skip
            for d, i, u, q, j in candidates:
                rows[d].append((i, u, q, j))
            self._demand_rows = rows
            self._demand_block_index = block
        return self._demand_rows[offset]

    # ----- reporting --------------------------------------------------------------------------------------
    def net_worth_cents(self) -> int:
        """Cash + stock at unit cost + paid-for goods in transit (at the price paid)."""
        s = self.state
        stock = sum(map(operator.mul, s.stock.values(), map(self.unit_cost.__getitem__, s.stock)))  # one C loop
        inbound = sum(po.quantity * po.unit_price_cents for po in s.purchase_orders)
        return s.cash_cents + stock + inbound
