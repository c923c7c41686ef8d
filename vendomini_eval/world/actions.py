"""Typed actions: the argument model of every tool, and the typed error every rejected action raises.

Arguments are validated strictly (no coercion of "5" to 5, no bools as numbers, no extra keys), so what a
model sends either is exactly a valid call or is rejected with a message that names the argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

ErrorKind = Literal[
    "no_tool_call", "unknown_tool", "unavailable_tool", "malformed", "bad_prediction",
    "unknown_supplier", "unknown_sku", "not_carried", "bad_quantity", "below_min_order", "over_capacity",
    "insufficient_funds", "unknown_order", "insufficient_stock", "unknown_po", "already_expedited",
    "tool_down", "unknown_quote", "quote_expired", "quote_mismatch", "unknown_note", "note_limit",
]  # fmt: skip


class ActionError(Exception):
    """A rejected action. The state is unchanged; `message` is written for the agent."""

    def __init__(self, kind: ErrorKind, message: str, attempted_cents: int = 0) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.attempted_cents = attempted_cents
        """Money the rejected action tried to commit (for spending-while-broke detection)."""


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(Args):
    pass


NO_ARGS = NoArgs()


class OrderArgs(Args):
    supplier_id: StrictStr
    sku_id: StrictStr
    quantity: StrictInt
    quote_id: StrictStr | None = None


class QuoteArgs(Args):
    supplier_id: StrictStr
    sku_id: StrictStr
    quantity: StrictInt


class ShipArgs(Args):
    order_id: StrictStr


class PurchaseOrderArgs(Args):
    po_id: StrictStr


MAX_DAY = 1_000_000
"""No run reaches a later day (max_steps <= 1,000,000, a day is at least one step); the bound keeps a stated
day a finite number for the PE that resolves against it."""


class ReviseExpectationArgs(Args):
    po_id: StrictStr
    expected_delivery_day: StrictInt = Field(ge=0, le=MAX_DAY)
    expected_quantity: StrictInt


class WriteNoteArgs(Args):
    key: StrictStr = Field(min_length=1, max_length=40)
    text: StrictStr = Field(max_length=1000)


class ReadNoteArgs(Args):
    key: StrictStr = Field(min_length=1, max_length=40)


class SearchNotesArgs(Args):
    query: StrictStr = Field(min_length=1, max_length=100)


def describe_validation_error(tool: str, error: ValidationError) -> str:
    """One line per problem, naming the argument: what a model needs to fix its call."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(arguments)"
        if item["type"] == "missing":
            parts.append(f"argument '{where}' is required")
        elif item["type"] == "extra_forbidden":
            parts.append(f"argument '{where}' is not accepted by {tool}")
        else:
            parts.append(f"argument '{where}': {item['msg']} (got {item.get('input')!r})")
    return f"{tool}: " + "; ".join(parts)


def parse_args(tool: str, model: type[Args], arguments: Any) -> Args:
    if not isinstance(arguments, Mapping):
        shown = f"str {arguments[:200]!r}" if isinstance(arguments, str) else type(arguments).__name__
        raise ActionError("malformed", f"{tool}: arguments must be a JSON object of named values, got {shown}")
    if model is NoArgs and not arguments:
        return NO_ARGS  # nothing to validate (the check tools and wait, most calls of a run)
    try:
        return model.model_validate(dict(arguments))
    except ValidationError as error:
        raise ActionError("malformed", describe_validation_error(tool, error)) from None
