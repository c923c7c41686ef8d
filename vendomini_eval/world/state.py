"""The world state: one pydantic model that can be dumped, loaded and hashed.

Money is integer cents everywhere, so the ledger identity (cash = start cash + sum of ledger entries) holds
exactly. The catalogue and the business rules are fixed for an episode; everything shocks change lives in
`effects` (temporary modifiers with an end day), so a shock never rewrites the catalogue.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

STATIC_PARTS = {"catalogue": True, "rules": True}
"""Fields of WorldState that never change during an episode (as a serializer filter: a dict is the fastest)."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mutable(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sku(Frozen):
    sku_id: str
    name: str
    sale_price_cents: int
    """Price a customer pays per unit."""
    base_cost_cents: int
    """Cheapest list price among the suppliers carrying the SKU: the unit value used for net worth."""


class Supplier(Frozen):
    supplier_id: str
    name: str


class Offer(Frozen):
    supplier_id: str
    sku_id: str
    unit_price_cents: int
    lead_days: int
    min_order: int


class Catalogue(Frozen):
    skus: tuple[Sku, ...]
    suppliers: tuple[Supplier, ...]
    offers: tuple[Offer, ...]


class Rules(Frozen):
    """Business rules of an episode, set by complexity and pressure (docs/METHOD.md, "World")."""

    complexity_level: int
    steps_per_day: int
    start_cash_cents: int
    capacity_units: int
    storage_fee_cents: int
    """Per unit in stock per day."""
    daily_fee_cents: int
    demand_rate: float
    """Expected customer orders per day, over all SKUs."""
    due_days: int
    """Days from a customer order's arrival to its due day (plus 0-2 days of jitter)."""
    grace_days: int
    """Days after the due day during which a late shipment is still accepted at a penalty."""
    late_penalty_frac: float
    fail_penalty_frac: float
    """Fraction of an expired order's price charged as a penalty."""
    expedite_fee_frac: float
    cancel_refund_frac: float
    quote_valid_days: int
    max_order_units: int
    bankrupt_days: int
    """Consecutive day ends with negative cash after which the business fails (terminated)."""
    max_failed_orders: int
    """Expired customer orders within `failure_window_days` at which the business fails (terminated)."""
    failure_window_days: int


class PurchaseOrder(Mutable):
    po_id: str
    supplier_id: str
    sku_id: str
    quantity: int
    unit_price_cents: int
    placed_day: int
    promised_day: int
    """Arrival day the agent was last told: at placement, at expedite, or by a notice that revised it."""
    promised_quantity: int
    """Units the agent was last told will arrive: the ordered quantity until a notice revises it."""
    arrival_day: int
    """Day the goods really arrive; shocks move it."""
    delivered_quantity: int
    """Units that will really arrive; shocks lower it (missing units are refunded on arrival)."""
    expedited: bool = False


class CustomerOrder(Mutable):
    order_id: str
    sku_id: str
    quantity: int
    price_cents: int
    created_day: int
    due_day: int


class Effect(Mutable):
    """A temporary change of the world made by a shock, active until the end of `until_day`."""

    effect_id: str
    kind: str
    """lead_time, demand, price, drop_sku, tool_down, min_order, storage_fee, daily_fee."""
    supplier_id: str | None = None
    sku_id: str | None = None
    tool: str | None = None
    factor: float = 1.0
    days: int = 0
    until_day: int


class Notice(Mutable):
    """What the agent is told about a shock, at `deliver_step`. A notice about a purchase order can revise what
    the agent was promised (None: that value is unchanged); it takes effect when the notice is delivered."""

    deliver_step: int
    text: str
    po_id: str | None = None
    promised_day: int | None = None
    promised_quantity: int | None = None


class Quote(Mutable):
    quote_id: str
    supplier_id: str
    sku_id: str
    quantity: int
    unit_price_cents: int
    valid_until_day: int


class ShockRecord(Mutable):
    """What a shock did, kept (bounded) for the audit tool; the full list lives in the episode trace."""

    step: int
    day: int
    kind: str
    description: str


class Counters(Mutable):
    orders_received: int = 0
    orders_shipped: int = 0
    orders_late: int = 0
    orders_failed: int = 0
    revenue_cents: int = 0
    purchases_cents: int = 0
    fees_cents: int = 0
    penalties_cents: int = 0
    units_delivered: int = 0
    units_sold: int = 0


class WorldState(Mutable):
    step: int = 0
    """Steps completed (tool calls and no-tool replies alike)."""
    day: int = 0
    cash_cents: int
    stock: dict[str, int]
    purchase_orders: list[PurchaseOrder] = Field(default_factory=list)
    customer_orders: list[CustomerOrder] = Field(default_factory=list)
    effects: list[Effect] = Field(default_factory=list)
    pending_notices: list[Notice] = Field(default_factory=list)
    quotes: list[Quote] = Field(default_factory=list)
    notes: dict[str, str] = Field(default_factory=dict)
    recent_shocks: list[ShockRecord] = Field(default_factory=list)
    counters: Counters = Field(default_factory=Counters)
    negative_cash_days: int = 0
    recent_failure_days: list[int] = Field(default_factory=list)
    """Days on which customer orders expired, within the failure window."""
    next_id: int = 1
    terminated: str | None = None
    """Why the business failed (bankrupt, customers_lost), or None while it runs."""
    catalogue: Catalogue
    rules: Rules
    _static_digest: str | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        """Equal fields make equal states; the hash cache (a private attribute) does not count."""
        return isinstance(other, WorldState) and self.__dict__ == other.__dict__

    __hash__ = None  # mutable

    def new_id(self, prefix: str) -> str:
        value = f"{prefix}-{self.next_id}"
        self.next_id += 1
        return value

    def dump(self) -> str:
        return self.model_dump_json()

    @classmethod
    def load(cls, text: str) -> WorldState:
        return cls.model_validate_json(text)

    def state_hash(self) -> str:
        """SHA-256 over the canonical JSON of the state (field order is the model's, so it is stable).

        The catalogue and rules are frozen, so their digest is computed once and the per-step cost is that
        of the changing part only.
        """
        private = self.__pydantic_private__  # direct access: the attribute path costs more than the hash
        static_digest = private["_static_digest"]
        if static_digest is None:
            static = self.model_dump_json(include=STATIC_PARTS)
            static_digest = private["_static_digest"] = hashlib.sha256(static.encode()).hexdigest()
        dynamic = self.__pydantic_serializer__.to_json(self, exclude=STATIC_PARTS)
        return hashlib.sha256(static_digest.encode() + dynamic).hexdigest()
