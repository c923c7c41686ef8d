"""The state of the vending business: one pydantic model that can be dumped, loaded and hashed.

Money is integer cents. The catalogue and rules are frozen for a run; what shocks change lives in `effects`
(temporary modifiers with an end day). The seed is part of the state because every random draw of a day is
derived from (seed, stream, day): a loaded state continues exactly as the original would have.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vendomini_eval.world.state import Notice, ShockRecord

Size = Literal["small", "large"]
EffectKind = Literal["supplier_delay", "cost", "demand", "tool_outage", "unavailable", "min_order", "daily_fee"]
OrderStatus = Literal["placed", "in_transit", "delivered"]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mutable(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Product(Frozen):
    product_id: str
    name: str
    size: Size
    reference_price_cents: int
    """The price customers consider normal: demand is `base_sales` there."""
    wholesale_cents: int
    """The lowest unit price any supplier asks, after its bulk discount: the unit value of inventory in net worth
    (so buying, even in bulk, never raises net worth; only selling does)."""
    shelf_life_days: int
    base_sales: float
    """Mean units sold per day at the reference price, before calendar, weather, variety and noise (hidden)."""
    elasticity: float
    """Constant price elasticity of demand (hidden): sales scale with (price / reference) ** -elasticity."""


class Supplier(Frozen):
    supplier_id: str
    name: str
    lead_days: int
    """Days from order to delivery that the supplier states (shocks can make it later)."""
    min_order_units: int
    bulk_threshold_units: int
    """Orders of at least this many units get `bulk_discount_pct` off every unit."""
    bulk_discount_pct: int


class Offer(Frozen):
    supplier_id: str
    product_id: str
    unit_price_cents: int
    """List price per unit, before bulk discount and cost effects."""


class Catalogue(Frozen):
    products: tuple[Product, ...]
    suppliers: tuple[Supplier, ...]
    offers: tuple[Offer, ...]


class Rules(Frozen):
    start_cash_cents: int
    daily_fee_cents: int
    unpaid_days_limit: int
    """Consecutive days without paying the daily fee after which the business fails."""
    rows: int
    cols: int
    small_rows: int
    """Rows 0 .. small_rows-1 take small products; the rest take large ones."""
    slot_capacity: int
    start_date: datetime.date
    """Calendar date of day 0: sets the weekday and month multipliers of demand."""


class Batch(Mutable):
    """Units delivered together: they expire together."""

    units: int
    expiry_day: int
    """First day on which these units are gone (delivery day + shelf life)."""


class Slot(Mutable):
    product_id: str | None = None
    """The product the slot is set up for; kept when it sells out, until another product is loaded."""
    batches: list[Batch] = Field(default_factory=list)

    @property
    def units(self) -> int:
        return sum(b.units for b in self.batches)


class Order(Mutable):
    """A purchase order. `expected_day` and `promised_quantity` are what the agent was told (at placement, or by a
    notice that revised them); `arrival_day` and `delivered_quantity` are what will happen (shocks move them)."""

    po_id: str
    supplier_id: str
    product_id: str
    quantity: int
    """Units ordered and paid for."""
    unit_price_cents: int
    """Price paid per unit, after cost effects and bulk discount."""
    placed_day: int
    expected_day: int
    """Day the agent was told the goods would be in storage: the supplier's stated lead time, or a notice's."""
    promised_quantity: int
    """Units the agent was told will arrive: the quantity ordered until a notice revises it."""
    arrival_day: int
    """Day they really are (later than expected under a supplier delay or a delay shock)."""
    delivered_quantity: int
    """Units that really arrive; the missing ones are refunded on arrival at the price paid."""
    status: OrderStatus = "placed"


class Effect(Mutable):
    """A temporary change made by a shock, active through the end of `until_day`."""

    kind: EffectKind
    until_day: int
    supplier_id: str | None = None
    """supplier_delay, unavailable, min_order: the supplier (required); cost: None for every supplier."""
    product_id: str | None = None
    """unavailable: the product (required); cost, demand: None for every product."""
    tool: str | None = None
    """tool_outage: the tool that refuses calls."""
    factor: float = 1.0
    """cost, demand, min_order, daily_fee: multiplier."""
    days: int = 0
    """supplier_delay: days added to the arrival of orders placed while it is active."""


class Counters(Mutable):
    units_sold: int = 0
    revenue_cents: int = 0
    purchases_cents: int = 0
    fees_cents: int = 0
    refunds_cents: int = 0
    """Paid units that never arrived (short shipments), refunded to cash on arrival."""
    units_delivered: int = 0
    units_expired: int = 0
    unpaid_fee_days: int = 0
    stockout_product_days: int = 0
    """Days x products set up in a slot and priced whose demand exceeded the units in the machine."""
    last_sale_day: int | None = None
    """Last day with any sale: "days until sales stop"."""


class VendingState(Mutable):
    seed: int
    step: int = 0
    """Steps of the episode completed (the episode counts them; a run outside one leaves it at 0)."""
    day: int = 0
    """The current day: actions happen on it until end_day."""
    cash_cents: int
    machine_cash_cents: int = 0
    """Takings in the machine, not usable until collected."""
    slots: list[Slot]
    """rows x cols, row-major."""
    storage: dict[str, list[Batch]] = Field(default_factory=dict)
    """Delivered units by product, oldest expiry first."""
    prices: dict[str, int] = Field(default_factory=dict)
    """Price per product in the machine; a product without a price does not sell."""
    orders: list[Order] = Field(default_factory=list)
    """Open orders and the most recent delivered ones."""
    effects: list[Effect] = Field(default_factory=list)
    pending_notices: list[Notice] = Field(default_factory=list)
    """Notices of shocks not yet delivered to the agent (the episode delivers them at their step)."""
    recent_shocks: list[ShockRecord] = Field(default_factory=list)
    scratchpad: str = ""
    kv_store: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    counters: Counters = Field(default_factory=Counters)
    unpaid_days_in_a_row: int = 0
    next_id: int = 1
    terminated: str | None = None
    """Why the business failed ("bankrupt"), or None while it runs."""
    catalogue: Catalogue
    rules: Rules

    def new_id(self, prefix: str) -> str:
        value = f"{prefix}-{self.next_id}"
        self.next_id += 1
        return value

    def slot(self, row: int, col: int) -> Slot:
        return self.slots[row * self.rules.cols + col]

    def dump(self) -> str:
        return self.model_dump_json()

    @classmethod
    def load(cls, text: str) -> VendingState:
        return cls.model_validate_json(text)

    def state_hash(self) -> str:
        return hashlib.sha256(self.dump().encode()).hexdigest()
