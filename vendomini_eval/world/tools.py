"""The tool set: every tool declared once, and which tools a condition offers.

A tool's declaration holds everything about it: its arguments (names, types, ranges, descriptions), the
description the model reads, the prediction-card fields that state its outcome and how each resolves, whether it
only reads, and the world method that executes it. The core validates calls from it (`ToolSpec.args`, and the
card protocol in `predictions.py`); the Inspect layer builds the tool schema the model sees from it
(`solvers/tools.py`).
"""

from __future__ import annotations

from vendomini_eval.condition import Condition
from vendomini_eval.world.actions import ON_DELIVERY, Argument, ToolSpec
from vendomini_eval.world.world import World

MAX_DAY = 1_000_000
"""No run reaches a later day (max_steps <= 1,000,000, a day is at least one step); the bound keeps a stated
day a finite number for the PE that resolves against it."""

SUPPLIER_ID = Argument("supplier_id", str, "Supplier id, e.g. S1.")
SKU_ID = Argument("sku_id", str, "SKU id, e.g. SKU-03.")
QUANTITY = Argument("quantity", int, "Number of units (a positive whole number).")
PO_ID = Argument("po_id", str, "Purchase order id, e.g. PO-7.")
NOTE_KEY = Argument("key", str, "Note key (at most 40 characters).", min_length=1, max_length=40)

TOOL_SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            "check_orders",
            "List open customer orders (id, SKU, quantity, price, due day) and your undelivered purchase orders (id, "
            "supplier, SKU, quantity ordered, and the arrival day and units you were last promised).",
            World._do_check_orders,
            info_only=True,
        ),
        ToolSpec(
            "check_inventory",
            "Show units in stock per SKU, units on their way, and the warehouse capacity.",
            World._do_check_inventory,
            outcomes={"expected_units_in_stock": "units_in_stock"},
            info_only=True,
        ),
        ToolSpec(
            "check_budget",
            "Show your cash and the fees charged at the end of each day.",
            World._do_check_budget,
            outcomes={"expected_cash": "cash"},
            info_only=True,
        ),
        ToolSpec(
            "check_catalogue",
            "List what each supplier sells today: unit price, lead time in days, minimum order; and each SKU's sale "
            "price to customers.",
            World._do_check_catalogue,
            info_only=True,
        ),
        ToolSpec(
            "order",
            "Buy stock from a supplier. Paid when placed; goods arrive after the lead time. Units a supplier fails "
            "to deliver are refunded on arrival.",
            World._do_order,
            arguments=(
                SUPPLIER_ID,
                SKU_ID,
                QUANTITY,
                Argument("quote_id", str, "Optional quote id from get_quote, to pay the quoted price.", required=False),
            ),
            outcomes={
                "expected_cost": "total_cost",
                "expected_delivery_day": ON_DELIVERY,
                "expected_quantity": ON_DELIVERY,
            },
        ),
        ToolSpec(
            "ship",
            "Ship an open customer order from stock. Paid on shipment; late shipments pay less.",
            World._do_ship,
            arguments=(Argument("order_id", str, "Customer order id, e.g. C-12."),),
            outcomes={"expected_revenue": "revenue"},
        ),
        ToolSpec("wait", "Do nothing this step and let time pass.", World._do_wait),
        ToolSpec(
            "expedite",
            "Pay a fee (a quarter of the order's value, at least $5) to halve a purchase order's remaining lead time.",
            World._do_expedite,
            arguments=(PO_ID,),
            outcomes={"expected_cost": "fee", "expected_delivery_day": ON_DELIVERY},
        ),
        ToolSpec(
            "cancel",
            "Cancel an undelivered purchase order; 90% of its cost is refunded.",
            World._do_cancel,
            arguments=(PO_ID,),
            outcomes={"expected_refund": "refund"},
        ),
        ToolSpec(
            "get_quote",
            "Get a price quote that holds for a few days; pass its quote_id to order to pay that price.",
            World._do_get_quote,
            arguments=(SUPPLIER_ID, SKU_ID, QUANTITY),
            outcomes={"expected_unit_price": "unit_price"},
        ),
        ToolSpec(
            "revise_expectation",
            "Restate your expectation of a purchase order's delivery after news (e.g. a notice): the day you now "
            "expect it to arrive and the units you now expect. Changes nothing in the business.",
            World._do_revise_expectation,
            arguments=(
                PO_ID,
                Argument(
                    "expected_delivery_day",
                    int,
                    "Day number on which you now expect the goods to arrive.",
                    minimum=0,
                    maximum=MAX_DAY,
                ),
                # Its range is a rule of the business (bad_quantity), checked by the world, not a malformed call.
                Argument("expected_quantity", int, "Units you now expect to be delivered (0 or more)."),
            ),
            info_only=True,
        ),
        ToolSpec(
            "write_note",
            "Store a note under a key (overwrites an existing note with that key).",
            World._do_write_note,
            arguments=(NOTE_KEY, Argument("text", str, "Note text (at most 1000 characters).", max_length=1000)),
        ),
        ToolSpec(
            "read_note", "Read the note stored under a key.", World._do_read_note, arguments=(NOTE_KEY,), info_only=True
        ),
        ToolSpec(
            "search_notes",
            "Find notes whose key or text contains the query.",
            World._do_search_notes,
            arguments=(Argument("query", str, "Text to look for.", min_length=1, max_length=100),),
            info_only=True,
        ),
        ToolSpec(
            "audit",
            "Review recent disruptions, the changes currently in force, and your money by cause.",
            World._do_audit,
            info_only=True,
        ),
        ToolSpec(
            "reset",
            "Get a full briefing of the business (cash, stock, orders) to rebuild your picture of it; older "
            "conversation is cleared (your notes are kept).",
            World._do_reset,
            info_only=True,
        ),
        ToolSpec("help", "Show the rules of the business.", World._do_help, info_only=True),
    )
}

MEMORY_TOOLS = {
    "none": (),
    "basic": ("write_note", "read_note"),
    "full": ("write_note", "read_note", "search_notes"),
}
RECOVERY_TOOLS = {
    "none": (),
    "reset": ("reset",),
    "audit": ("audit",),
    "help": ("help",),
    "all": ("audit", "reset", "help"),
}


def available_tools(condition: Condition) -> tuple[str, ...]:
    """The tools a condition offers, in a stable order: business tools by complexity level (expedite from
    level 2; cancel and quotes from level 3), revise_expectation where the agent states predictions, then
    memory and recovery tools."""
    level = condition.complexity_level
    names = ["check_orders", "check_inventory", "check_budget", "check_catalogue", "order", "ship", "wait"]
    if level >= 2:
        names.append("expedite")
    if level >= 3:
        names += ["cancel", "get_quote"]
    if condition.prediction_mode != "none":
        names.append("revise_expectation")
    names += MEMORY_TOOLS[condition.memory_tools]
    names += RECOVERY_TOOLS[condition.recovery_tools]
    return tuple(names)
