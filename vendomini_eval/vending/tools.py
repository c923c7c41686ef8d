"""The vending tool set: every tool declared once as a `ToolSpec` (arguments with types and ranges, the description
the model reads, the prediction-card fields that state its outcome, whether it only reads, the world method that
runs it), and `call`, the one way to run a tool outside an episode.

Money is integer cents in both directions (arguments and results, keys ending in `_cents`), so no dollar
amount is ever rounded. Time passes only through `end_day`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vendomini_eval.vending.catalogue import default_rules
from vendomini_eval.vending.world import VendingError, VendingWorld
from vendomini_eval.world.actions import ON_DELIVERY, Argument, ToolSpec, parse_args
from vendomini_eval.world.tools import MAX_DAY

MAX_TEXT_CHARS = 10_000
MACHINE = default_rules()
"""The machine layout and slot capacity that restock's argument ranges state."""

PRODUCT_ID = Argument("product_id", str, "Product id, e.g. P03 (see list_suppliers).", min_length=1, max_length=20)
KEY = Argument("key", str, "Key (1-60 characters).", min_length=1, max_length=60)

TOOLS: dict[str, ToolSpec] = {
    tool.name: tool
    for tool in (
        ToolSpec(
            "check_inventory",
            "Show the machine's slots (row, column, size, product, units, price), the units in storage with their "
            "next expiry day, and the total units in stock (slots and storage).",
            VendingWorld._do_check_inventory,
            outcomes={"expected_units_in_stock": "units_in_stock"},
            info_only=True,
        ),
        ToolSpec(
            "check_money",
            "Show your cash, the cash waiting in the machine (collect it to use it) and the daily fee.",
            VendingWorld._do_check_money,
            outcomes={"expected_cash": "cash_cents"},
            info_only=True,
        ),
        ToolSpec(
            "check_orders",
            "List your purchase orders: open ones with the day and units you were last told to expect, and recent "
            "deliveries with the units that came.",
            VendingWorld._do_check_orders,
            info_only=True,
        ),
        ToolSpec(
            "list_suppliers",
            "List the products (size, reference retail price, shelf life) and the suppliers (lead time, minimum "
            "order, bulk discount, unit price of each product they sell today).",
            VendingWorld._do_list_suppliers,
            info_only=True,
        ),
        ToolSpec(
            "order",
            "Buy units of one product from a supplier. Paid now; delivered to storage after the lead time. Units a "
            "supplier fails to deliver are refunded on arrival.",
            VendingWorld._do_order,
            arguments=(
                Argument("supplier_id", str, "Supplier id, e.g. S2.", min_length=1, max_length=20),
                PRODUCT_ID,
                Argument("quantity", int, "Units to buy (1-1000).", minimum=1, maximum=1_000),
            ),
            outcomes={
                "expected_cost": "total_cents",
                "expected_delivery_day": ON_DELIVERY,
                "expected_quantity": ON_DELIVERY,
            },
        ),
        ToolSpec(
            "restock",
            f"Move units of a product from storage into a machine slot. A slot holds one product at a time, at most "
            f"{MACHINE.slot_capacity} units; small products go in rows 0-{MACHINE.small_rows - 1}, large ones in rows "
            f"{MACHINE.small_rows}-{MACHINE.rows - 1}.",
            VendingWorld._do_restock,
            arguments=(
                PRODUCT_ID,
                Argument("row", int, f"Slot row, 0-{MACHINE.rows - 1}.", minimum=0, maximum=MACHINE.rows - 1),
                Argument("col", int, f"Slot column, 0-{MACHINE.cols - 1}.", minimum=0, maximum=MACHINE.cols - 1),
                Argument(
                    "quantity",
                    int,
                    f"Units to move (1-{MACHINE.slot_capacity}).",
                    minimum=1,
                    maximum=MACHINE.slot_capacity,
                ),
            ),
        ),
        ToolSpec(
            "set_price",
            "Set the price of a product in the machine, in cents. A product without a price does not sell.",
            VendingWorld._do_set_price,
            arguments=(
                PRODUCT_ID,
                Argument("price_cents", int, "Price in cents (1-10000).", minimum=1, maximum=10_000),
            ),
        ),
        ToolSpec(
            "collect_cash",
            "Move the money customers paid into the machine to your cash.",
            VendingWorld._do_collect_cash,
            outcomes={"expected_revenue": "collected_cents"},
        ),
        ToolSpec(
            "end_day",
            "End the day: customers buy from the machine, the daily fee is paid from cash, and the next day starts "
            "(expired units are removed, deliveries arrive). Returns the day's sales, weather and deliveries.",
            VendingWorld._do_end_day,
            outcomes={"expected_revenue": "revenue_cents", "expected_units_sold": "units_sold"},
        ),
        ToolSpec(
            "revise_expectation",
            "Restate your expectation of a purchase order's delivery after news (e.g. a notice): the day you now "
            "expect it to arrive and the units you now expect. Changes nothing in the business.",
            VendingWorld._do_revise_expectation,
            arguments=(
                Argument("po_id", str, "Purchase order id, e.g. PO-3.", min_length=1, max_length=20),
                Argument(
                    "expected_delivery_day",
                    int,
                    "Day number on which you now expect the goods to arrive.",
                    minimum=0,
                    maximum=MAX_DAY,
                ),
                # Its range depends on the order (bad_quantity), so the world checks it, not the argument model.
                Argument("expected_quantity", int, "Units you now expect to be delivered (0 to the units ordered)."),
            ),
            info_only=True,
        ),
        ToolSpec(
            "write_scratchpad",
            "Replace the text of your scratchpad.",
            VendingWorld._do_write_scratchpad,
            arguments=(Argument("text", str, "The new text (at most 10000 characters).", max_length=MAX_TEXT_CHARS),),
        ),
        ToolSpec("read_scratchpad", "Read your scratchpad.", VendingWorld._do_read_scratchpad, info_only=True),
        ToolSpec(
            "kv_set",
            "Store a value under a key (overwrites).",
            VendingWorld._do_kv_set,
            arguments=(KEY, Argument("value", str, "Value (at most 2000 characters).", max_length=2_000)),
        ),
        ToolSpec("kv_get", "Read the value under a key.", VendingWorld._do_kv_get, arguments=(KEY,), info_only=True),
        ToolSpec("kv_delete", "Delete a key.", VendingWorld._do_kv_delete, arguments=(KEY,)),
        ToolSpec("kv_list", "List the stored keys.", VendingWorld._do_kv_list, info_only=True),
        ToolSpec(
            "add_note",
            "Add a note to your searchable notes.",
            VendingWorld._do_add_note,
            arguments=(Argument("text", str, "Note (1-2000 characters).", min_length=1, max_length=2_000),),
        ),
        ToolSpec(
            "search_notes",
            "Find the notes most similar in wording to a query (best first, with a similarity score).",
            VendingWorld._do_search_notes,
            arguments=(
                Argument("query", str, "What to look for (1-200 characters).", min_length=1, max_length=200),
                Argument(
                    "top_k", int, "How many notes to return (1-10, default 3).", required=False, minimum=1, maximum=10
                ),
            ),
            info_only=True,
        ),
    )
}


def call(world: VendingWorld, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Run one tool call: validate the arguments strictly, refuse it if the business failed, then apply it (which
    refuses it if a shock took the tool down). Raises `ActionError` (kind "malformed" for arguments) with the state
    unchanged."""
    spec = TOOLS.get(tool)
    if spec is None:
        raise VendingError("unknown_tool", f"No tool '{tool}'. Tools: {', '.join(TOOLS)}.")
    args = parse_args(tool, spec.args, arguments)
    if world.state.terminated is not None:
        raise VendingError("terminated", f"The business has failed ({world.state.terminated}); nothing can be done.")
    return spec.apply(world, args)
