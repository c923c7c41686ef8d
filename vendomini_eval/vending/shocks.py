"""What each shock variant does to the vending business: the vending world's table for `shocks.apply_shock`.

The variants, their magnitudes and the notices mirror the warehouse's (vendomini_eval/shocks.py), in this
business's terms: a delivery moves or comes short, a supplier's lead time or minimum order grows, demand surges,
an offer costs more or is not sold, a tool goes down, the daily fee rises. Targets are picked by the shock's
target uniform from a deterministic order of the state (orders by po_id, offers and products in catalogue order,
suppliers by id); a variant with no target is void. Temporary changes last until day + duration_days.
"""

from __future__ import annotations

from vendomini_eval.shocks import (
    Magnitude,
    ScheduledShock,
    ShockChange,
    VariantEffect,
    bring_forward_one,
    delay_one,
    pick,
    short_ship_one,
)
from vendomini_eval.vending.state import Effect, Order
from vendomini_eval.vending.world import VendingWorld

DOWN_TOOLS = ("order", "check_inventory", "list_suppliers")


def _effect(world: VendingWorld, mag: Magnitude, **fields) -> Effect:
    effect = Effect(until_day=world.state.day + mag.duration_days, **fields)
    world.add_effect(effect)
    return effect


def _undelivered(world: VendingWorld) -> list[Order]:
    return sorted((o for o in world.state.orders if o.status != "delivered"), key=lambda o: o.po_id)


def _delay(world: VendingWorld, shock: ScheduledShock, mag: Magnitude) -> ShockChange | None:
    return delay_one(_undelivered(world), shock, mag)


def _early(world: VendingWorld, shock: ScheduledShock, mag: Magnitude) -> ShockChange | None:
    return bring_forward_one(_undelivered(world), world.state.day, shock, mag)


def _lead_time(world: VendingWorld, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    supplier = pick(sorted(world.suppliers), shock.target_u)
    e = _effect(world, mag, kind="supplier_delay", supplier_id=supplier, days=mag.shift_days)
    return ShockChange(
        f"{supplier}: orders placed until day {e.until_day} arrive {mag.shift_days} days after the stated lead time.",
        f"{supplier} reports changed lead times.",
    )


def _short_shipment(world: VendingWorld, shock: ScheduledShock, mag: Magnitude) -> ShockChange | None:
    return short_ship_one(_undelivered(world), shock, mag)


def _demand_surge(world: VendingWorld, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    product = pick(list(world.products), shock.target_u)
    e = _effect(world, mag, kind="demand", product_id=product, factor=1 + 4 * mag.fraction)
    return ShockChange(
        f"Demand for {product} is running {e.factor:.1f}x normal until day {e.until_day}.",
        f"Demand for {product} has changed.",
    )


def _price_rise(world: VendingWorld, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    supplier, product = pick(list(world.offers), shock.target_u)
    e = _effect(world, mag, kind="cost", supplier_id=supplier, product_id=product, factor=1 + mag.fraction)
    return ShockChange(
        f"{supplier}: the price of {product} rises {mag.fraction:.0%} until day {e.until_day}.",
        f"{supplier} has changed the price of {product}.",
    )


def _drop_sku(world: VendingWorld, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    supplier, product = pick(list(world.offers), shock.target_u)
    e = _effect(world, mag, kind="unavailable", supplier_id=supplier, product_id=product)
    return ShockChange(
        f"{supplier} has stopped selling {product} until day {e.until_day}.", f"{supplier} has changed its range."
    )


def _tool_down(world: VendingWorld, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    tool = pick(list(DOWN_TOOLS), shock.target_u)
    e = _effect(world, mag, kind="tool_outage", tool=tool)
    return ShockChange(f"The {tool} system is down until day {e.until_day}.", f"The {tool} system is having problems.")


def _min_order(world: VendingWorld, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    supplier = pick(sorted(world.suppliers), shock.target_u)
    e = _effect(world, mag, kind="min_order", supplier_id=supplier, factor=mag.rule_factor)
    return ShockChange(
        f"{supplier}: minimum orders are {mag.rule_factor:g}x higher until day {e.until_day}.",
        f"{supplier} has changed its order terms.",
    )


def _daily_fee(world: VendingWorld, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    e = _effect(world, mag, kind="daily_fee", factor=mag.rule_factor)
    return ShockChange(
        f"The daily fee is {mag.rule_factor:g}x higher ({world.daily_fee_cents()} cents) until day {e.until_day}.",
        "The daily fee has changed.",
    )


VARIANT_EFFECTS: dict[str, VariantEffect] = {
    "delay": _delay,
    "early": _early,
    "lead_time": _lead_time,
    "short_shipment": _short_shipment,
    "demand_surge": _demand_surge,
    "price_rise": _price_rise,
    "drop_sku": _drop_sku,
    "tool_down": _tool_down,
    "min_order": _min_order,
    # The machine pays no storage fee (Vending-Bench charges only the daily fee), so this rule raises that one.
    "storage_fee": _daily_fee,
    "daily_fee": _daily_fee,
}
