"""Building a fresh world from a condition and the episode's catalogue generator."""

from __future__ import annotations

import numpy as np

from vendomini_eval.condition import Condition
from vendomini_eval.world.state import Catalogue, Offer, Rules, Sku, Supplier, WorldState

SKU_NAMES = (
    "anchor bolts", "cable ties", "duct tape", "work gloves", "hex keys", "wood screws", "zip bags",
    "pallet wrap", "box cutters", "safety vests", "hose clamps", "wall plugs", "sand paper", "paint rollers",
    "spirit levels", "tape measures", "door hinges", "drill bits", "glue sticks", "light bulbs",
    "padlocks", "rope coils", "shelf brackets", "storage bins", "wire spools",
)  # fmt: skip
SUPPLIER_NAMES = (
    "Acme Supply",
    "Borealis Trading",
    "Cobalt Wholesale",
    "Delta Goods",
    "Ember & Co",
    "Fjord Parts",
)

# Per pressure level: the demand and money knobs (docs/METHOD.md, "Pressure").
PRESSURE = {
    "low": dict(demand_rate=0.10, due_days=12, late_penalty_frac=0.1, fail_penalty_frac=0.0,
                daily_fee_cents=50, storage_fee_cents=1, start_cash_cents=80_000),
    "medium": dict(demand_rate=0.15, due_days=9, late_penalty_frac=0.2, fail_penalty_frac=0.1,
                   daily_fee_cents=100, storage_fee_cents=1, start_cash_cents=50_000),
    "high": dict(demand_rate=0.22, due_days=6, late_penalty_frac=0.3, fail_penalty_frac=0.25,
                 daily_fee_cents=200, storage_fee_cents=2, start_cash_cents=30_000),
}  # fmt: skip


def n_skus(level: int) -> int:
    return 5 + 5 * level


def n_suppliers(level: int) -> int:
    return 2 + level


def build_catalogue(level: int, rng: np.random.Generator) -> Catalogue:
    """SKUs 5/10/15/20/25 and suppliers 2-6 by level. Below level 3 every SKU has exactly one supplier; from
    level 3 each SKU has two, so switching supplier is a real choice."""
    skus_n, suppliers_n = n_skus(level), n_suppliers(level)
    suppliers = tuple(Supplier(supplier_id=f"S{i + 1}", name=SUPPLIER_NAMES[i]) for i in range(suppliers_n))
    base_costs = rng.integers(200, 2001, size=skus_n)  # 2-20 dollars
    markups = rng.uniform(1.6, 2.4, size=skus_n)
    sources = 2 if level >= 3 else 1
    order = rng.permutation(suppliers_n)
    lead_hi = 4 if level <= 1 else 6
    min_hi = {0: 1, 1: 3}.get(level, 6)
    offers: list[Offer] = []
    skus: list[Sku] = []
    for i in range(skus_n):
        chosen = [int(order[(i + k) % suppliers_n]) for k in range(sources)]
        prices = []
        for s in sorted(chosen):
            price = round(base_costs[i] * rng.uniform(0.9, 1.15))
            prices.append(price)
            offers.append(
                Offer(
                    supplier_id=suppliers[s].supplier_id,
                    sku_id=f"SKU-{i + 1:02d}",
                    unit_price_cents=price,
                    lead_days=int(rng.integers(1, lead_hi + 1)),
                    min_order=int(rng.integers(1, min_hi + 1)),
                )
            )
        skus.append(
            Sku(
                sku_id=f"SKU-{i + 1:02d}",
                name=SKU_NAMES[i],
                sale_price_cents=round(base_costs[i] * markups[i]),
                base_cost_cents=min(prices),
            )
        )
    offers.sort(key=lambda o: (o.supplier_id, o.sku_id))
    return Catalogue(skus=tuple(skus), suppliers=suppliers, offers=tuple(offers))


def build_rules(condition: Condition) -> Rules:
    level = condition.complexity_level
    p = PRESSURE[condition.pressure_level]
    return Rules(
        complexity_level=level,
        steps_per_day=condition.steps_per_day,
        start_cash_cents=(
            int(p["start_cash_cents"] * (1 + 0.5 * level))
            if condition.initial_cash is None
            else round(condition.initial_cash * 100)
        ),
        capacity_units=20 * n_skus(level),
        storage_fee_cents=int(p["storage_fee_cents"]),
        daily_fee_cents=int(p["daily_fee_cents"]),
        demand_rate=float(p["demand_rate"]) * (1 + 0.1 * level),
        due_days=int(p["due_days"]),
        grace_days=3,
        late_penalty_frac=float(p["late_penalty_frac"]),
        fail_penalty_frac=float(p["fail_penalty_frac"]),
        expedite_fee_frac=0.25,
        cancel_refund_frac=0.9,
        quote_valid_days=5,
        max_order_units=10_000,
        bankrupt_days=10,
        max_failed_orders=10,
        failure_window_days=30,
    )


def new_world(condition: Condition, rng: np.random.Generator) -> WorldState:
    rules = build_rules(condition)
    catalogue = build_catalogue(condition.complexity_level, rng)
    return WorldState(
        cash_cents=rules.start_cash_cents,
        stock={s.sku_id: 0 for s in catalogue.skus},
        catalogue=catalogue,
        rules=rules,
    )
