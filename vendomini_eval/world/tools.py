"""The tool set: which tools exist, what arguments they take, and which ones a condition offers."""

from __future__ import annotations

from dataclasses import dataclass

from vendomini_eval.condition import Condition
from vendomini_eval.world.actions import (
    Args,
    NoArgs,
    OrderArgs,
    PurchaseOrderArgs,
    QuoteArgs,
    ReadNoteArgs,
    ReviseExpectationArgs,
    SearchNotesArgs,
    ShipArgs,
    WriteNoteArgs,
)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    args: type[Args]
    info_only: bool
    """Only reads information: never changes the business."""
    summary: str


TOOL_SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec("check_orders", NoArgs, True, "open customer orders and inbound purchase orders"),
        ToolSpec("check_inventory", NoArgs, True, "stock per SKU and warehouse capacity"),
        ToolSpec("check_budget", NoArgs, True, "cash and the fees charged at each day end"),
        ToolSpec("check_catalogue", NoArgs, True, "suppliers' current prices, lead times and minimum orders"),
        ToolSpec("order", OrderArgs, False, "buy stock from a supplier (paid at placement)"),
        ToolSpec("ship", ShipArgs, False, "ship a customer order from stock (paid on shipment)"),
        ToolSpec("wait", NoArgs, False, "let time pass without acting"),
        ToolSpec("expedite", PurchaseOrderArgs, False, "pay a fee to halve a purchase order's remaining lead time"),
        ToolSpec("cancel", PurchaseOrderArgs, False, "cancel an undelivered purchase order for a partial refund"),
        ToolSpec("get_quote", QuoteArgs, False, "a price quote that holds for a few days"),
        ToolSpec("revise_expectation", ReviseExpectationArgs, True, "restate a purchase order's expected delivery"),
        ToolSpec("write_note", WriteNoteArgs, False, "store a note under a key"),
        ToolSpec("read_note", ReadNoteArgs, True, "read a note by key"),
        ToolSpec("search_notes", SearchNotesArgs, True, "find notes containing a text"),
        ToolSpec("audit", NoArgs, True, "recent shocks, active rule changes and the ledger by cause"),
        ToolSpec("reset", NoArgs, True, "a full briefing of the business, to rebuild your picture of it"),
        ToolSpec("help", NoArgs, True, "the rules of the business and the tools"),
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
