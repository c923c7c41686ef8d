"""Whether the world lets the agent make progress right now: the one definition every detector of inaction uses.

A productive action is available when an open customer order can be shipped from stock, or when some SKU has
unmet demand (open customer demand above stock plus inbound) and a minimum order of it can be placed today: the
order tool is up, a supplier currently carries the SKU, the minimum order fits the free capacity and the order
limit, and the cash covers it. Inaction while none is available is the world's doing (a tool down, an unbuyable
SKU, no money, goods already on their way), not a breakdown. Reasons: docs/METHOD.md, "Actionability".
"""

from __future__ import annotations

from vendomini_eval.world.world import World

PROGRESS_TOOLS = frozenset({"order", "ship", "expedite", "cancel"})
"""Tools whose valid call moves the business. Notes, reads, checks, quotes, revisions and waits do not."""


def productive_action_available(world: World) -> bool:
    s = world.state
    if not s.customer_orders:
        return False
    stock = s.stock
    demand: dict[str, int] = {}
    for order in s.customer_orders:
        if stock[order.sku_id] >= order.quantity:
            return True  # shippable now
        demand[order.sku_id] = demand.get(order.sku_id, 0) + order.quantity
    if world.tool_is_down("order"):
        return False
    inbound: dict[str, int] = {}
    for po in s.purchase_orders:
        inbound[po.sku_id] = inbound.get(po.sku_id, 0) + po.quantity
    free = min(s.rules.capacity_units - sum(stock.values()) - sum(inbound.values()), s.rules.max_order_units)
    for supplier_id, sku_id in world.offers:
        need = demand.get(sku_id)
        if need is None or need <= stock[sku_id] + inbound.get(sku_id, 0):
            continue
        terms = world.effective_offer(supplier_id, sku_id)
        if terms is not None and terms.min_order <= free and terms.min_order * terms.unit_price_cents <= s.cash_cents:
            return True
    return False
