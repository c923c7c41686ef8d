"""The business tools as Inspect tools: thin wrappers that pass every call to the core's Episode.step.

The tool set and each tool's parameters depend on the condition: complexity level, memory and recovery
tools, and the prediction protocol (the prediction card's fields are ordinary tool parameters, absent when
prediction_mode is none, required when it is required). A valid call returns the observation as compact
JSON; a rejected call raises `ToolError` whose message is the same JSON (with "ok": false and the core's
message), so a model and a scripted policy read both alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from inspect_ai.tool import ToolDef, ToolError, ToolParam, ToolParams

from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction, StepResult
from vendomini_eval.predictions import FIELD_HELP, card_fields, fields_required
from vendomini_eval.world.tools import TOOL_SPECS, available_tools

StepFunction = Callable[[AgentAction, Mapping[str, Any] | None], StepResult]

DESCRIPTIONS = {
    "check_orders": "List open customer orders (id, SKU, quantity, price, due day) and your undelivered purchase "
    "orders (id, supplier, SKU, quantity ordered, and the arrival day and units you were last promised).",
    "check_inventory": "Show units in stock per SKU, units on their way, and the warehouse capacity.",
    "check_budget": "Show your cash and the fees charged at the end of each day.",
    "check_catalogue": "List what each supplier sells today: unit price, lead time in days, minimum order; and "
    "each SKU's sale price to customers.",
    "order": "Buy stock from a supplier. Paid when placed; goods arrive after the lead time. Units a supplier "
    "fails to deliver are refunded on arrival.",
    "ship": "Ship an open customer order from stock. Paid on shipment; late shipments pay less.",
    "wait": "Do nothing this step and let time pass.",
    "expedite": "Pay a fee (a quarter of the order's value, at least $5) to halve a purchase order's remaining "
    "lead time.",
    "cancel": "Cancel an undelivered purchase order; 90% of its cost is refunded.",
    "get_quote": "Get a price quote that holds for a few days; pass its quote_id to order to pay that price.",
    "revise_expectation": "Restate your expectation of a purchase order's delivery after news (e.g. a notice): "
    "the day you now expect it to arrive and the units you now expect. Changes nothing in the business.",
    "write_note": "Store a note under a key (overwrites an existing note with that key).",
    "read_note": "Read the note stored under a key.",
    "search_notes": "Find notes whose key or text contains the query.",
    "audit": "Review recent disruptions, the changes currently in force, and your money by cause.",
    "reset": "Get a full briefing of the business (cash, stock, orders) to rebuild your picture of it; older "
    "conversation is cleared (your notes are kept).",
    "help": "Show the rules of the business.",
}
ARGUMENT_HELP = {
    "supplier_id": "Supplier id, e.g. S1.",
    "sku_id": "SKU id, e.g. SKU-03.",
    "quantity": "Number of units (a positive whole number).",
    "quote_id": "Optional quote id from get_quote, to pay the quoted price.",
    "order_id": "Customer order id, e.g. C-12.",
    "po_id": "Purchase order id, e.g. PO-7.",
    "expected_delivery_day": "Day number on which you now expect the goods to arrive.",
    "expected_quantity": "Units you now expect to be delivered (0 or more).",
    "key": "Note key (at most 40 characters).",
    "text": "Note text (at most 1000 characters).",
    "query": "Text to look for.",
}
KIND_SCHEMA = {
    "success": {"type": "boolean"},
    "probability": {"type": "number", "minimum": 0, "maximum": 1},
    "money": {"type": "number"},
    "day": {"type": "integer"},
    "units": {"type": "integer"},
    "text": {"type": "string"},
}


INTEGER_ARGUMENTS = {"quantity", "expected_delivery_day", "expected_quantity"}  # the rest are string ids or text


def tool_parameters(tool: str, condition: Condition) -> ToolParams:
    """The JSON schema of a tool's parameters: its arguments, then its prediction-card fields.

    Every parameter is listed as required and an optional one also accepts null (the form strict tool
    schemas demand, e.g. OpenAI-compatible servers with `strict: true`): null means "not given"."""
    properties: dict[str, ToolParam] = {}
    must_predict = fields_required(condition)
    for name, field in TOOL_SPECS[tool].args.model_fields.items():
        kind = "integer" if name in INTEGER_ARGUMENTS else "string"
        properties[name] = _parameter({"type": kind}, ARGUMENT_HELP[name], nullable=not field.is_required())
    for name, kind in card_fields(tool, condition).items():
        optional = not must_predict or name == "rationale"
        properties[name] = _parameter(KIND_SCHEMA[kind], f"Prediction: {FIELD_HELP[name]}.", nullable=optional)
    return ToolParams(properties=properties, required=list(properties))


def _parameter(schema: dict[str, Any], description: str, nullable: bool) -> ToolParam:
    if nullable:
        return ToolParam(
            anyOf=[ToolParam(**schema), ToolParam(type="null")], description=f"{description} Null if none."
        )
    return ToolParam(**schema, description=description)


def observation_json(result: StepResult) -> str:
    return json.dumps(result.observation(), separators=(",", ":"))


def split_call(tool: str, parameters: Any) -> tuple[AgentAction, dict[str, Any] | None]:
    """A tool call's parameters as the core takes them: the action's arguments and the prediction card (every
    parameter that is not an argument of a known tool)."""
    spec = TOOL_SPECS.get(tool)
    if not isinstance(parameters, Mapping):  # unparseable arguments: the core rejects them as malformed
        return AgentAction(tool, parameters), None
    if spec is None:
        return AgentAction(tool, dict(parameters)), None
    names = spec.args.model_fields
    arguments = {k: v for k, v in parameters.items() if k in names}
    prediction = {k: v for k, v in parameters.items() if k not in names}
    return AgentAction(tool, arguments), prediction or None


def business_tool(tool: str, condition: Condition, step: StepFunction) -> ToolDef:
    async def execute(**kwargs: Any) -> str:
        result = step(*split_call(tool, kwargs))
        if not result.valid:
            raise ToolError(observation_json(result))
        return observation_json(result)

    return ToolDef(execute, name=tool, description=DESCRIPTIONS[tool], parameters=tool_parameters(tool, condition))


def business_tools(condition: Condition, step: StepFunction) -> list[ToolDef]:
    """One ToolDef per tool the condition offers, each calling `step` (the episode's step function)."""
    return [business_tool(tool, condition, step) for tool in available_tools(condition)]
