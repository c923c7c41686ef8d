"""The built-in product list and the per-seed catalogue: which products, suppliers and prices a run has.

Everything here is drawn from the seed's catalogue stream, so the catalogue is fixed by the seed alone.
"""

from __future__ import annotations

import datetime

from vendomini_eval.vending.demand import stream
from vendomini_eval.vending.state import Catalogue, Offer, Product, Rules, Slot, Supplier, VendingState

# name, size, typical wholesale cost (cents), reference retail price (cents), shelf life (days), base sales per day
PRODUCTS = (
    ("Chocolate bar", "small", 60, 150, 180, 4.0),
    ("Potato chips", "small", 55, 150, 120, 4.5),
    ("Gummy bears", "small", 50, 125, 240, 3.0),
    ("Salted peanuts", "small", 45, 125, 180, 2.5),
    ("Granola bar", "small", 50, 150, 150, 3.0),
    ("Chewing gum", "small", 35, 100, 365, 2.5),
    ("Pretzels", "small", 45, 125, 120, 2.5),
    ("Chocolate chip cookies", "small", 60, 150, 90, 3.5),
    ("Trail mix", "small", 80, 200, 120, 2.0),
    ("Beef jerky", "small", 150, 350, 365, 1.5),
    ("Mints", "small", 40, 125, 365, 1.5),
    ("Protein bar", "small", 110, 275, 180, 2.5),
    ("Fruit snacks", "small", 40, 110, 180, 2.5),
    ("Cheese crackers", "small", 50, 125, 120, 2.0),
    ("Cola", "large", 80, 225, 270, 5.0),
    ("Bottled water", "large", 40, 150, 365, 5.0),
    ("Energy drink", "large", 130, 325, 365, 3.0),
    ("Iced tea", "large", 75, 200, 270, 3.0),
    ("Sports drink", "large", 85, 225, 270, 3.5),
    ("Orange juice", "large", 110, 275, 21, 2.0),
    ("Iced coffee", "large", 140, 350, 60, 2.5),
    ("Turkey sandwich", "large", 220, 500, 4, 2.0),
    ("Instant noodle cup", "large", 70, 200, 180, 2.0),
    ("Yogurt parfait", "large", 160, 375, 7, 1.5),
    ("Chocolate milk", "large", 90, 225, 14, 2.0),
    ("Fruit cup", "large", 90, 225, 30, 1.5),
)  # fmt: skip
SUPPLIER_NAMES = ("Metro Vending Supply", "Snackwise Wholesale", "Blue Ridge Distributors", "Cascade Foods")

START_CASH_CENTS = 50_000
SMALL_PRODUCTS_PER_RUN = 9
LARGE_PRODUCTS_PER_RUN = 7
ELASTICITY_RANGE = (1.5, 2.5)
BASE_SALES_SPREAD = (0.75, 1.25)
"""Per-run factor on a product's base sales."""
SUPPLIER_PRICE_RANGE = (0.95, 1.2)
"""A supplier's list price is the typical cost times its factor in this range, times U(0.95, 1.05) per product."""
CARRY_PROBABILITY = 0.6
LEAD_DAYS = (1, 5)
MIN_ORDER_CHOICES = (5, 10, 20)
BULK_THRESHOLD_CHOICES = (50, 100)
BULK_DISCOUNT_CHOICES = (5, 10, 15)


def default_rules(start_cash_cents: int = START_CASH_CENTS) -> Rules:
    return Rules(
        start_cash_cents=start_cash_cents,
        daily_fee_cents=200,
        unpaid_days_limit=10,
        rows=4,
        cols=3,
        small_rows=2,
        slot_capacity=10,
        start_date=datetime.date(2025, 4, 7),  # a Monday
    )


def discounted(unit_price_cents: int, discount_pct: int) -> int:
    """A unit price less a bulk discount, rounded half up in integer cents."""
    return (unit_price_cents * (100 - discount_pct) + 50) // 100


def build_catalogue(seed: int) -> Catalogue:
    rng = stream(seed, "catalogue")
    small = [i for i, p in enumerate(PRODUCTS) if p[1] == "small"]
    large = [i for i, p in enumerate(PRODUCTS) if p[1] == "large"]
    chosen = sorted(
        [
            *rng.choice(small, SMALL_PRODUCTS_PER_RUN, replace=False),
            *rng.choice(large, LARGE_PRODUCTS_PER_RUN, replace=False),
        ]
    )
    n_suppliers = int(rng.integers(3, 5))
    suppliers = []
    for i in range(n_suppliers):
        threshold = int(rng.choice(BULK_THRESHOLD_CHOICES))
        suppliers.append(
            Supplier(
                supplier_id=f"S{i + 1}",
                name=SUPPLIER_NAMES[i],
                lead_days=int(rng.integers(LEAD_DAYS[0], LEAD_DAYS[1] + 1)),
                min_order_units=int(rng.choice(MIN_ORDER_CHOICES)),
                bulk_threshold_units=threshold,
                bulk_discount_pct=int(rng.choice(BULK_DISCOUNT_CHOICES)),
            )
        )
    discount_of = {supplier.supplier_id: supplier.bulk_discount_pct for supplier in suppliers}
    supplier_factor = rng.uniform(*SUPPLIER_PRICE_RANGE, n_suppliers)
    offers: list[Offer] = []
    products: list[Product] = []
    for number, index in enumerate(chosen, start=1):
        name, size, cost, reference, shelf_life, base_sales = PRODUCTS[index]
        product_id = f"P{number:02d}"
        carried = rng.random(n_suppliers) < CARRY_PROBABILITY
        carried[int(rng.integers(n_suppliers))] = True  # every product has at least one supplier
        jitter = rng.uniform(0.95, 1.05, n_suppliers)
        prices = {f"S{s + 1}": round(cost * supplier_factor[s] * jitter[s]) for s in range(n_suppliers) if carried[s]}
        offers += [Offer(supplier_id=s, product_id=product_id, unit_price_cents=p) for s, p in prices.items()]
        products.append(
            Product(
                product_id=product_id,
                name=name,
                size=size,
                reference_price_cents=reference,
                wholesale_cents=min(discounted(p, discount_of[s]) for s, p in prices.items()),
                shelf_life_days=shelf_life,
                base_sales=round(base_sales * float(rng.uniform(*BASE_SALES_SPREAD)), 3),
                elasticity=round(float(rng.uniform(*ELASTICITY_RANGE)), 3),
            )
        )
    offers.sort(key=lambda o: (o.supplier_id, o.product_id))
    return Catalogue(products=tuple(products), suppliers=tuple(suppliers), offers=tuple(offers))


def new_state(seed: int, start_cash_cents: int | None = None) -> VendingState:
    """A fresh business: empty machine and storage, the start cash, the seed's catalogue."""
    rules = default_rules(START_CASH_CENTS if start_cash_cents is None else start_cash_cents)
    return VendingState(
        seed=seed,
        cash_cents=rules.start_cash_cents,
        slots=[Slot() for _ in range(rules.rows * rules.cols)],
        catalogue=build_catalogue(seed),
        rules=rules,
    )
