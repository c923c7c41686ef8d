"""Prediction cards: what the agent expects an action to do, stated with the action.

Which fields a card has depends on the tool, the condition's `prediction_format` and `prediction_mode`
(docs/METHOD.md, "Predictions"). Money is stated in dollars, days as day numbers, quantities in units.
A card that breaks the protocol (a required field missing, a wrong type, a NaN, an unknown field) makes the
whole call invalid, exactly like a bad action argument.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from vendomini_eval.condition import Condition
from vendomini_eval.world.actions import ActionError
from vendomini_eval.worlds import BUSINESSES

FieldKind = Literal["success", "probability", "money", "day", "units", "text"]

# Which PE type each kind of field feeds (docs/METHOD.md, "Prediction error").
PE_TYPE_OF_KIND = {
    "success": "causal",
    "probability": "causal",
    "money": "cost",
    "day": "temporal",
    "units": "quantity",
}


@dataclass(frozen=True, slots=True)
class CardField:
    kind: FieldKind
    description: str
    """What the model reads about the field in the tool's schema."""


# Every card field. Which tool takes which outcome field, and how it resolves: the tool's declaration
# (`ToolSpec.outcomes` in world/tools.py and vending/tools.py); the others go with every tool, by mode and format.
CARD_FIELDS: dict[str, CardField] = {
    "expected_success": CardField("success", "whether you expect this call to succeed"),
    "confidence": CardField("probability", "probability (0 to 1) that this call succeeds"),
    "expected_cost": CardField("money", "total dollars you expect to be charged"),
    "expected_delivery_day": CardField("day", "day number on which you expect the goods to arrive"),
    "expected_quantity": CardField("units", "units you expect to be delivered"),
    "expected_revenue": CardField("money", "dollars you expect to receive"),
    "expected_refund": CardField("money", "dollars you expect to be refunded"),
    "expected_unit_price": CardField("money", "dollars per unit you expect to be quoted"),
    "expected_cash": CardField("money", "dollars of cash you expect to see"),
    "expected_units_in_stock": CardField("units", "total units you expect to be in stock"),
    "expected_units_sold": CardField("units", "total units you expect customers to buy"),
    "expected_cash_after": CardField("money", "dollars of cash you expect right after this call"),
    "rationale": CardField("text", "one or two sentences on why"),
}
RICH_FIELDS = ("expected_cash_after", "rationale")
MAX_RATIONALE = 500
MAX_MAGNITUDE = 1e12  # dollars, days or units: anything larger is not a belief about this business


def card_fields(tool: str, condition: Condition) -> dict[str, FieldKind]:
    """The prediction fields a tool takes in this condition (empty when prediction_mode is none)."""
    return protocol_fields(tool, condition.prediction_mode, condition.prediction_format, condition.world)


@functools.cache
def protocol_fields(tool: str, mode: str, form: str, world: str = "warehouse") -> dict[str, FieldKind]:
    """The prediction fields of a tool of `world` under a prediction mode and format (cached: asked every step).
    The returned mapping is shared: do not change it."""
    if mode == "none":
        return {}
    names = ["expected_success"]
    if mode == "required+confidence":
        names.append("confidence")
    specs = BUSINESSES[world].specs
    if form in ("structured", "rich") and tool in specs:
        names += specs[tool].outcomes
    if form == "rich":
        names += RICH_FIELDS
    return {name: CARD_FIELDS[name].kind for name in names}


REQUIRED_MODES = ("required", "required+confidence")


def fields_required(condition: Condition) -> bool:
    return condition.prediction_mode in REQUIRED_MODES


@dataclass(frozen=True, slots=True)
class PredictionCard:
    prediction_id: str
    tool: str
    values: dict[str, Any]
    """Stated values, normalised: money in integer cents, days and units as int, success as bool."""

    def success_probability(self) -> float | None:
        if "confidence" in self.values:
            return float(self.values["confidence"])
        if "expected_success" in self.values:
            return 1.0 if self.values["expected_success"] else 0.0
        return None


def _value(tool: str, name: str, kind: FieldKind, raw: Any) -> Any:
    if kind == "success":
        if not isinstance(raw, bool):
            raise _bad(tool, name, f"must be true or false, got {raw!r}")
        return raw
    if kind == "text":
        if not isinstance(raw, str) or len(raw) > MAX_RATIONALE:
            raise _bad(tool, name, f"must be a text of at most {MAX_RATIONALE} characters")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise _bad(tool, name, f"must be a number, got {raw!r}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _bad(tool, name, f"must be a finite number, got {raw!r}")
    if abs(raw) > MAX_MAGNITUDE:  # before any float conversion: a huge int would overflow it
        raise _bad(tool, name, f"is out of range (|value| <= {MAX_MAGNITUDE:g})")
    if kind == "probability":
        if not 0.0 <= raw <= 1.0:
            raise _bad(tool, name, f"must be between 0 and 1, got {raw!r}")
        return float(raw)
    if kind == "money":
        return round(raw * 100)
    if raw != int(raw):
        raise _bad(tool, name, f"must be a whole number, got {raw!r}")
    return int(raw)


def _bad(tool: str, name: str, problem: str) -> ActionError:
    return ActionError("bad_prediction", f"{tool}: prediction field '{name}' {problem}")


def parse_card(
    tool: str, raw: Mapping[str, Any] | None, condition: Condition, prediction_id: str
) -> PredictionCard | None:
    """Validate a stated prediction against the condition's protocol; raise `ActionError` if it breaks it."""
    fields = card_fields(tool, condition)
    if raw is None:
        raw = {}
    elif type(raw) is not dict:  # a plain dict is the usual card; only other types need the Mapping check
        if not isinstance(raw, Mapping):
            raise ActionError("bad_prediction", f"{tool}: the prediction must be an object, got {type(raw).__name__}")
        raw = dict(raw)
    if not all(isinstance(name, str) for name in raw):
        raise ActionError("bad_prediction", f"{tool}: prediction field names must be strings")
    if not fields:
        if raw:
            raise ActionError("bad_prediction", f"{tool}: predictions are not part of this task; remove {sorted(raw)}")
        return None
    if not fields.keys() >= raw.keys():
        unknown = sorted(name for name in raw if name not in fields)
        raise ActionError("bad_prediction", f"{tool}: unknown prediction field(s) {unknown}; allowed: {list(fields)}")
    if condition.prediction_mode in REQUIRED_MODES:
        missing = [name for name in fields if raw.get(name) is None and name != "rationale"]
        if missing:
            raise ActionError("bad_prediction", f"{tool}: prediction field(s) {missing} are required")
    values = {name: _value(tool, name, fields[name], value) for name, value in raw.items() if value is not None}
    return PredictionCard(prediction_id, tool, values) if values else None
