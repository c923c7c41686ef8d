"""The business tools as Inspect tools: thin wrappers that pass every call to the core's Episode.step.

Each tool's schema is built from its one declaration in the core, the one the core validates calls against
(`ToolSpec` in vendomini_eval/world/tools.py or vending/tools.py, by the condition's world: description,
arguments with their types, ranges and descriptions; `CARD_FIELDS` in predictions.py for the card's fields).

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
from vendomini_eval.predictions import CARD_FIELDS, card_fields, fields_required
from vendomini_eval.world.actions import Argument, ToolSpec
from vendomini_eval.worlds import business_of

StepFunction = Callable[[AgentAction, Mapping[str, Any] | None], StepResult]

JSON_TYPES = {int: "integer", str: "string"}
KIND_SCHEMA = {
    "success": {"type": "boolean"},
    "probability": {"type": "number", "minimum": 0, "maximum": 1},
    "money": {"type": "number"},
    "day": {"type": "integer"},
    "units": {"type": "integer"},
    "text": {"type": "string"},
}


def tool_parameters(tool: str, condition: Condition) -> ToolParams:
    """The JSON schema of a tool's parameters, from its declaration: its arguments, then its prediction-card
    fields.

    Every parameter is listed as required and an optional one also accepts null (the form strict tool
    schemas demand, e.g. OpenAI-compatible servers with `strict: true`): null means "not given"."""
    properties: dict[str, ToolParam] = {}
    for a in business_of(condition).specs[tool].arguments:
        properties[a.name] = _parameter(_argument_schema(a), a.description, nullable=not a.required)
    must_predict = fields_required(condition)
    for name, kind in card_fields(tool, condition).items():
        optional = not must_predict or name == "rationale"
        described = f"Prediction: {CARD_FIELDS[name].description}."
        properties[name] = _parameter(KIND_SCHEMA[kind], described, nullable=optional)
    return ToolParams(properties=properties, required=list(properties))


def _argument_schema(a: Argument) -> dict[str, Any]:
    bounds = {"minimum": a.minimum, "maximum": a.maximum, "minLength": a.min_length, "maxLength": a.max_length}
    return {"type": JSON_TYPES[a.type], **{k: v for k, v in bounds.items() if v is not None}}


def _parameter(schema: dict[str, Any], description: str, nullable: bool) -> ToolParam:
    if nullable:
        return ToolParam(
            anyOf=[ToolParam(**schema), ToolParam(type="null")], description=f"{description} Null if none."
        )
    return ToolParam(**schema, description=description)


def observation_json(result: StepResult) -> str:
    return json.dumps(result.observation(), separators=(",", ":"))


def split_call(tool: str, parameters: Any, specs: Mapping[str, ToolSpec]) -> tuple[AgentAction, dict[str, Any] | None]:
    """A tool call's parameters as the core takes them: the action's arguments and the prediction card (every
    parameter that is not an argument of a known tool of the world's `specs`)."""
    spec = specs.get(tool)
    if not isinstance(parameters, Mapping):  # unparseable arguments: the core rejects them as malformed
        return AgentAction(tool, parameters), None
    if spec is None:
        return AgentAction(tool, dict(parameters)), None
    names = {a.name for a in spec.arguments}
    arguments = {k: v for k, v in parameters.items() if k in names}
    prediction = {k: v for k, v in parameters.items() if k not in names}
    return AgentAction(tool, arguments), prediction or None


def business_tool(tool: str, condition: Condition, step: StepFunction) -> ToolDef:
    async def execute(**kwargs: Any) -> str:
        result = step(*split_call(tool, kwargs, specs))
        if not result.valid:
            raise ToolError(observation_json(result))
        return observation_json(result)

    specs = business_of(condition).specs
    description = specs[tool].description
    return ToolDef(execute, name=tool, description=description, parameters=tool_parameters(tool, condition))


def business_tools(condition: Condition, step: StepFunction) -> list[ToolDef]:
    """One ToolDef per tool the condition offers, each calling `step` (the episode's step function)."""
    return [business_tool(tool, condition, step) for tool in business_of(condition).tools(condition)]
