"""The Inspect business tools called directly (no model, no eval): results, errors, schemas, tool sets.

Each tool is a ToolDef over one Episode's step function. A valid call returns the observation as compact JSON; a
rejected call raises ToolError whose message is the same JSON with ok false and the core's error kind and message.
The parameter schema is what a model sees: the action's arguments, then the prediction card's fields, which
depend on prediction_mode and prediction_format.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from inspect_ai.tool import ToolDef, ToolError, ToolParams
from jsonschema import Draft7Validator

from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction, Episode
from vendomini_eval.predictions import CARD_FIELDS, card_fields, parse_card
from vendomini_eval.solvers import business_tools, split_call
from vendomini_eval.solvers.tools import tool_parameters
from vendomini_eval.world.actions import ActionError, parse_args
from vendomini_eval.world.tools import TOOL_SPECS, available_tools

SEED = 7
BASE_TOOLS = ("check_orders", "check_inventory", "check_budget", "check_catalogue", "order", "ship", "wait")
REVISE = "revise_expectation"


def condition(**overrides: Any) -> Condition:
    return Condition(**{"p_shock": 0.0, "max_steps": 100, **overrides})


class Tools:
    """One episode and its tools, called like Inspect calls them (keyword arguments, awaited)."""

    def __init__(self, c: Condition, seed: int = SEED) -> None:
        self.episode = Episode(c, seed)
        self.defs: dict[str, ToolDef] = {t.name: t for t in business_tools(c, self.episode.step)}

    def call(self, tool: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        """A valid call: the raw text and the parsed observation."""
        text = asyncio.run(self.defs[tool].tool(**kwargs))
        assert isinstance(text, str)
        return text, json.loads(text)

    def reject(self, tool: str, **kwargs: Any) -> dict[str, Any]:
        """A rejected call: the ToolError's message, parsed."""
        with pytest.raises(ToolError) as caught:
            asyncio.run(self.defs[tool].tool(**kwargs))
        return json.loads(caught.value.message)


def long_lead_offer(tools: Tools, **prediction: Any) -> dict[str, Any]:
    _, catalogue = tools.call("check_catalogue", **prediction)
    return max(catalogue["result"]["offers"], key=lambda o: o["lead_days"])


def is_compact(text: str) -> bool:
    return text == json.dumps(json.loads(text), separators=(",", ":"))


# ----- valid calls --------------------------------------------------------------------------------------------


def test_valid_calls_return_compact_json_observations() -> None:
    # One day per 20 steps: the purchase order is still on its way when expedite and cancel come.
    c = condition(complexity_level=3, prediction_mode="none", memory_tools="full", recovery_tools="all",
                  steps_per_day=20)  # fmt: skip
    tools = Tools(c)
    assert set(tools.defs) == set(TOOL_SPECS) - {REVISE}  # no predictions, so no revisions either
    offer = long_lead_offer(tools)
    order_args = {"supplier_id": offer["supplier_id"], "sku_id": offer["sku_id"], "quantity": offer["min_order"]}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("order", order_args),
        ("check_orders", {}),
        ("check_inventory", {}),
        ("check_budget", {}),
        ("get_quote", order_args),
        ("write_note", {"key": "plan", "text": "restock weekly"}),
        ("read_note", {"key": "plan"}),
        ("search_notes", {"query": "restock"}),
        ("audit", {}),
        ("help", {}),
        ("reset", {}),
    ]
    results = {}
    for tool, kwargs in calls:
        text, observation = tools.call(tool, **kwargs)
        assert is_compact(text), tool
        assert observation["ok"] is True and "result" in observation and "error" not in observation, tool
        assert observation["day"] == tools.episode.state.day
        results[tool] = observation["result"]
    po_id = results["order"]["po_id"]
    assert results["order"]["total_cost"] == pytest.approx(offer["unit_price"] * offer["min_order"])
    assert "restock weekly" in json.dumps(results["read_note"])
    assert "plan" in json.dumps(results["search_notes"])
    _, expedited = tools.call("expedite", po_id=po_id)
    _, cancelled = tools.call("cancel", po_id=po_id)
    assert expedited["ok"] and cancelled["ok"]
    # Each call is one step of the episode; its trace records it as valid.
    columns = tools.episode.trace.columns()
    assert columns["step"] == list(range(1, len(calls) + 4))
    assert columns["tool"] == ["check_catalogue", *(t for t, _ in calls), "expedite", "cancel"]
    assert all(columns["valid"])


def test_wait_moves_the_day_and_check_budget_shows_the_cash() -> None:
    tools = Tools(condition(prediction_mode="none"))
    cash = tools.episode.state.cash_cents / 100
    _, waited = tools.call("wait")
    assert waited == {"day": 1, "ok": True, "result": {"waited": True}}
    _, budget = tools.call("check_budget")
    assert budget["result"]["cash"] < cash  # the daily fee was charged at the day end


def test_valid_call_with_required_predictions() -> None:
    c = condition(prediction_mode="required+confidence", prediction_format="rich")
    tools = Tools(c)
    cash = tools.episode.state.cash_cents / 100
    text, observation = tools.call(
        "check_budget",
        expected_success=True,
        confidence=0.9,
        expected_cash=cash,
        expected_cash_after=cash,
        rationale="nothing spent yet",
    )
    assert is_compact(text) and observation["ok"] is True
    pe = tools.episode.pe.summary()
    assert pe.brier_count == 1 and pe.brier_mean == pytest.approx(0.01)
    assert pe.cost.count >= 1 and pe.cost.sum == pytest.approx(0.0)


# ----- rejected calls -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "kwargs", "kind"),
    [
        ("order", {"supplier_id": "S99", "sku_id": "SKU-01", "quantity": 5}, "unknown_supplier"),
        ("order", {"supplier_id": "S1", "sku_id": "SKU-01", "quantity": "ten"}, "malformed"),
        ("order", {"supplier_id": "S1", "quantity": 5}, "malformed"),
        ("order", {"supplier_id": "S1", "sku_id": "SKU-01", "quantity": 5, "colour": "red"}, "bad_prediction"),
        ("ship", {"order_id": "C-0"}, "unknown_order"),
        ("read_note", {"key": "missing"}, "unknown_note"),
        ("write_note", {"key": "", "text": "x"}, "malformed"),
        ("wait", {"expected_success": True}, "bad_prediction"),  # predictions are not part of this task
    ],
)
def test_rejected_calls_raise_tool_error_with_the_observation(tool: str, kwargs: dict[str, Any], kind: str) -> None:
    tools = Tools(condition(prediction_mode="none"))
    error = tools.reject(tool, **kwargs)
    assert error["ok"] is False and error["error"] == kind
    assert error["day"] == tools.episode.state.day and "result" not in error
    # The message is the core's: the same call on a fresh episode gives the same StepResult message.
    direct = Episode(condition(prediction_mode="none"), SEED).step(*split_call(tool, kwargs, TOOL_SPECS))
    assert not direct.valid and error["message"] == direct.message and direct.error_kind == kind
    # A rejected call is still a step, recorded invalid with its kind.
    columns = tools.episode.trace.columns()
    assert columns["valid"] == [False] and columns["error_kind"] == [kind]


def test_rejected_call_message_is_compact_json() -> None:
    tools = Tools(condition(prediction_mode="none"))
    with pytest.raises(ToolError) as caught:
        asyncio.run(tools.defs["ship"].tool(order_id="C-404"))
    assert is_compact(caught.value.message)
    assert json.loads(caught.value.message)["message"] == "No open customer order 'C-404'. See check_orders."


def test_missing_required_prediction_is_rejected() -> None:
    tools = Tools(condition(prediction_mode="required", prediction_format="structured"))
    error = tools.reject("check_budget", expected_success=True)  # expected_cash is missing
    assert error["error"] == "bad_prediction" and "expected_cash" in error["message"]
    error = tools.reject("wait")
    assert error["error"] == "bad_prediction" and "expected_success" in error["message"]


def test_bad_prediction_types_are_rejected() -> None:
    tools = Tools(condition(prediction_mode="required+confidence", prediction_format="minimal"))
    assert tools.reject("wait", expected_success="yes", confidence=0.5)["error"] == "bad_prediction"
    assert tools.reject("wait", expected_success=True, confidence=1.5)["error"] == "bad_prediction"


def test_unavailable_tool_is_rejected_by_the_core() -> None:
    """A tool the condition does not offer has no ToolDef; called through the step function it is invalid."""
    c = condition(complexity_level=1, recovery_tools="none", prediction_mode="none")
    tools = Tools(c)
    assert "expedite" not in tools.defs
    result = tools.episode.step(AgentAction("expedite", {"po_id": "PO-1"}), None)
    assert not result.valid and result.error_kind == "unavailable_tool"


# ----- schemas ------------------------------------------------------------------------------------------------


def schema(tool: str, **overrides: Any) -> tuple[dict[str, Any], list[str]]:
    """(parameter schemas, parameters that must have a value). The schema lists every parameter as required
    (the strict form); an optional one accepts null as well as its value."""
    return unwrap(tool_parameters(tool, condition(**overrides)))


def unwrap(params: ToolParams) -> tuple[dict[str, Any], list[str]]:
    """`schema` of a tool's parameters: each parameter's schema with null folded away, and those that must have
    a value."""
    assert params.required == list(params.properties)
    properties, must = {}, []
    for name, param in params.properties.items():
        found = param.model_dump(exclude_none=True)
        if "anyOf" in found:
            value, null = found.pop("anyOf")
            assert null == {"type": "null"} and found["description"].endswith("Null if none.")
            found = {**value, **found}
        else:
            must.append(name)
        properties[name] = found
    return properties, must


ARGUMENTS = {
    "order": {"supplier_id": "string", "sku_id": "string", "quantity": "integer", "quote_id": "string"},
    "ship": {"order_id": "string"},
    "wait": {},
    "check_budget": {},
    "write_note": {"key": "string", "text": "string"},
}


@pytest.mark.parametrize("tool", list(ARGUMENTS))
def test_no_prediction_fields_when_mode_is_none(tool: str) -> None:
    properties, required = schema(tool, prediction_mode="none", prediction_format="rich")
    assert {name: p["type"] for name, p in properties.items()} == ARGUMENTS[tool]
    assert set(required) == {a.name for a in TOOL_SPECS[tool].arguments if a.required}
    assert "quote_id" not in required


@pytest.mark.parametrize("tool", list(ARGUMENTS))
def test_prediction_fields_required_when_mode_is_required(tool: str) -> None:
    properties, required = schema(tool, prediction_mode="required", prediction_format="structured")
    fields = card_fields(tool, condition(prediction_mode="required", prediction_format="structured"))
    assert list(properties) == [*ARGUMENTS[tool], *fields]
    assert properties["expected_success"]["type"] == "boolean"
    assert set(fields) <= set(required) and "expected_success" in required
    assert "confidence" not in properties and "expected_cash_after" not in properties and "rationale" not in properties
    for name in fields:
        assert properties[name]["description"].startswith("Prediction: ")


def test_order_schema_kinds() -> None:
    properties, required = schema("order", prediction_mode="required", prediction_format="structured")
    assert properties["expected_cost"]["type"] == "number"
    assert properties["expected_delivery_day"]["type"] == "integer"
    assert properties["expected_quantity"]["type"] == "integer"
    assert required == ["supplier_id", "sku_id", "quantity", "expected_success", "expected_cost",
                        "expected_delivery_day", "expected_quantity"]  # fmt: skip


def test_optional_mode_offers_fields_without_requiring_them() -> None:
    properties, required = schema("order", prediction_mode="optional", prediction_format="structured")
    assert {"expected_success", "expected_cost", "expected_delivery_day", "expected_quantity"} <= set(properties)
    assert required == ["supplier_id", "sku_id", "quantity"]


def test_confidence_only_for_required_plus_confidence() -> None:
    for mode in ("none", "optional", "required"):
        properties, _ = schema("wait", prediction_mode=mode)
        assert "confidence" not in properties, mode
    properties, required = schema("wait", prediction_mode="required+confidence")
    assert properties["confidence"] == {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "description": properties["confidence"]["description"],
    }
    assert "confidence" in required and "expected_success" in required


def test_rich_fields_only_for_rich_format() -> None:
    for form in ("minimal", "structured"):
        properties, _ = schema("ship", prediction_mode="required", prediction_format=form)
        assert "expected_cash_after" not in properties and "rationale" not in properties, form
    properties, required = schema("ship", prediction_mode="required", prediction_format="rich")
    assert properties["expected_cash_after"]["type"] == "number" and properties["rationale"]["type"] == "string"
    assert "expected_cash_after" in required and "rationale" not in required  # a rationale is never required
    properties, _ = schema("ship", prediction_mode="required", prediction_format="minimal")
    assert list(properties) == ["order_id", "expected_success"]  # minimal: no outcome fields either


def test_tool_defs_carry_descriptions_and_the_schema() -> None:
    c = condition(complexity_level=3, memory_tools="full", recovery_tools="all", prediction_format="rich")
    for tool in business_tools(c, Episode(c, SEED).step):
        assert tool.description == TOOL_SPECS[tool.name].description
        assert tool.parameters == tool_parameters(tool.name, c)
        assert all(p.description for p in tool.parameters.properties.values()), tool.name
        info = tool.as_tool()  # Inspect accepts the ToolDef as a tool
        assert callable(info)


# ----- one declaration, both sides ----------------------------------------------------------------------------
# The schema the model sees and the core's validation are both built from the tool's declaration (ToolSpec): the
# schema states the declared arguments and card fields, and every call the schema forbids, the core rejects as a
# protocol error (malformed or bad_prediction), never as a domain outcome.

DECLARATION_CONDITIONS = [
    condition(complexity_level=4, memory_tools="full", recovery_tools="all", prediction_mode=mode,
              prediction_format=form)
    for mode, form in (("none", "rich"), ("optional", "structured"), ("required", "minimal"),
                       ("required", "structured"), ("required+confidence", "rich"))
]  # fmt: skip
JSON_TYPE = {int: "integer", str: "string"}
DROPPED = object()
"""A parameter left out of the call (the schema's "not given", like null)."""
WRONG_VALUES = (None, True, 0, 2.5, "5", "", [], {})


def label(c: Condition) -> str:
    return f"{c.prediction_mode}-{c.prediction_format}"


@pytest.mark.parametrize("c", DECLARATION_CONDITIONS, ids=label)
def test_each_tool_schema_states_its_declaration(c: Condition) -> None:
    for tool in business_tools(c, Episode(c, SEED).step):
        spec = TOOL_SPECS[tool.name]
        assert tool.description == spec.description
        properties, must = unwrap(tool.parameters)
        fields = card_fields(tool.name, c)
        assert list(properties) == [*(a.name for a in spec.arguments), *fields]
        for a in spec.arguments:
            bounds = {"minimum": a.minimum, "maximum": a.maximum, "minLength": a.min_length, "maxLength": a.max_length}
            assert properties[a.name] == {
                "type": JSON_TYPE[a.type],
                "description": a.description if a.required else f"{a.description} Null if none.",
                **{key: value for key, value in bounds.items() if value is not None},
            }, (tool.name, a.name)
            assert (a.name in must) == a.required
        for name in fields:
            assert properties[name]["description"].startswith(f"Prediction: {CARD_FIELDS[name].description}.")


def core_error(c: Condition, tool: str, call: dict[str, Any]) -> str | None:
    """The kind of error the core's validation (arguments, then card) gives a call's parameters; None if valid."""
    action, prediction = split_call(tool, call, TOOL_SPECS)
    spec = TOOL_SPECS[tool]
    try:
        parse_args(tool, spec.args, action.arguments)
        parse_card(tool, prediction, c, "P1")
    except ActionError as error:
        return error.kind
    return None


def schema_allows(params: dict[str, Any], call: dict[str, Any]) -> bool:
    """Whether a tool's parameter schema accepts a call, checked as Inspect checks it (a left-out parameter is
    null: "not given")."""
    return Draft7Validator(params).is_valid({**dict.fromkeys(params["properties"]), **call})


def non_null(param: dict[str, Any]) -> dict[str, Any]:
    return param["anyOf"][0] if "anyOf" in param else param


def typical(param: dict[str, Any]) -> Any:
    p = non_null(param)
    low = p.get("minimum", 1)
    return {"boolean": True, "integer": low, "number": low, "string": "x" * p.get("minLength", 1)}[p["type"]]


def at_bounds(param: dict[str, Any]) -> list[Any]:
    p = non_null(param)
    return [*(p[key] for key in ("minimum", "maximum") if key in p),
            *("x" * p[key] for key in ("minLength", "maxLength") if key in p)]  # fmt: skip


def past_bounds(param: dict[str, Any]) -> list[Any]:
    p, past = non_null(param), []
    step = 1 if p["type"] == "integer" else 0.01
    if "minimum" in p:
        past.append(p["minimum"] - step)
    if "maximum" in p:
        past.append(p["maximum"] + step)
    if p.get("minLength", 0) > 0:
        past.append("x" * (p["minLength"] - 1))
    if "maxLength" in p:
        past.append("x" * (p["maxLength"] + 1))
    return past


@pytest.mark.parametrize("c", DECLARATION_CONDITIONS, ids=label)
def test_core_rejects_every_call_the_schema_forbids(c: Condition) -> None:
    for tool in business_tools(c, Episode(c, SEED).step):
        params = tool.parameters.model_dump(exclude_none=True)
        properties = params["properties"]
        base = {name: typical(param) for name, param in properties.items()}
        assert schema_allows(params, base) and core_error(c, tool.name, base) is None, tool.name
        forbidden = 0
        for name, param in properties.items():
            for value in at_bounds(param):  # the same ranges on both sides: their ends are valid for both
                call = {**base, name: value}
                assert schema_allows(params, call) and core_error(c, tool.name, call) is None, (tool.name, name)
            for value in (*WRONG_VALUES, *past_bounds(param), DROPPED):
                call = {k: v for k, v in base.items() if k != name} if value is DROPPED else {**base, name: value}
                if not schema_allows(params, call):
                    forbidden += 1
                    assert core_error(c, tool.name, call) in ("malformed", "bad_prediction"), (tool.name, name, value)
        extra = {**base, "colour": "red"}
        assert not schema_allows(params, extra) and core_error(c, tool.name, extra) == "bad_prediction"
        assert forbidden >= len(properties), tool.name  # every parameter has values the schema forbids


# ----- tool sets ----------------------------------------------------------------------------------------------


NO_PREDICTIONS = {"prediction_mode": "none"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"complexity_level": 1, "memory_tools": "none", "recovery_tools": "none"}, (*BASE_TOOLS, REVISE)),
        ({"complexity_level": 1, "memory_tools": "none", **NO_PREDICTIONS}, BASE_TOOLS),
        ({"complexity_level": 2, "memory_tools": "none", **NO_PREDICTIONS}, (*BASE_TOOLS, "expedite")),
        (
            {"complexity_level": 3, "memory_tools": "none", "recovery_tools": "none"},
            (*BASE_TOOLS, "expedite", "cancel", "get_quote", REVISE),
        ),
        ({"complexity_level": 1, "memory_tools": "basic"}, (*BASE_TOOLS, REVISE, "write_note", "read_note")),
        (
            {"complexity_level": 1, "memory_tools": "full", "prediction_mode": "optional"},
            (*BASE_TOOLS, REVISE, "write_note", "read_note", "search_notes"),
        ),
        ({"memory_tools": "none", "recovery_tools": "reset", **NO_PREDICTIONS}, (*BASE_TOOLS, "reset")),
        ({"memory_tools": "none", "recovery_tools": "audit"}, (*BASE_TOOLS, REVISE, "audit")),
        ({"memory_tools": "none", "recovery_tools": "help", **NO_PREDICTIONS}, (*BASE_TOOLS, "help")),
        (
            {"memory_tools": "basic", "recovery_tools": "all", "prediction_mode": "required+confidence"},
            (*BASE_TOOLS, REVISE, "write_note", "read_note", "audit", "reset", "help"),
        ),
        (
            {"complexity_level": 4, "memory_tools": "full", "recovery_tools": "all"},
            tuple(TOOL_SPECS),
        ),
        (
            {"complexity_level": 4, "memory_tools": "full", "recovery_tools": "all", **NO_PREDICTIONS},
            tuple(t for t in TOOL_SPECS if t != REVISE),
        ),
    ],
)
def test_tool_set_follows_the_condition(overrides: dict[str, Any], expected: tuple[str, ...]) -> None:
    c = condition(**overrides)
    names = tuple(t.name for t in business_tools(c, Episode(c, SEED).step))
    assert names == expected == available_tools(c)


# ----- revise_expectation ---------------------------------------------------------------------------------------


def test_revise_expectation_schema_has_integer_arguments_and_only_a_success_card() -> None:
    properties, required = schema(REVISE, prediction_mode="required", prediction_format="structured")
    assert {name: p["type"] for name, p in properties.items()} == {
        "po_id": "string", "expected_delivery_day": "integer", "expected_quantity": "integer",
        "expected_success": "boolean",
    }  # fmt: skip
    assert required == ["po_id", "expected_delivery_day", "expected_quantity", "expected_success"]
    assert not properties["expected_delivery_day"]["description"].startswith("Prediction")  # an argument
    assert "notice" in TOOL_SPECS[REVISE].description


def test_revise_expectation_through_its_tool() -> None:
    tools = Tools(condition(prediction_mode="required", prediction_format="structured", steps_per_day=10))
    offer = long_lead_offer(tools, expected_success=True)
    _, placed = tools.call(
        "order", supplier_id=offer["supplier_id"], sku_id=offer["sku_id"], quantity=offer["min_order"],
        expected_success=True, expected_cost=offer["unit_price"] * offer["min_order"],
        expected_delivery_day=offer["lead_days"], expected_quantity=offer["min_order"],
    )  # fmt: skip
    po_id = placed["result"]["po_id"]
    revision = {"po_id": po_id, "expected_delivery_day": offer["lead_days"] + 3, "expected_quantity": 1}
    assert split_call(REVISE, {**revision, "expected_success": True}, TOOL_SPECS) == (AgentAction(REVISE, revision),
                                                                         {"expected_success": True})  # fmt: skip
    _, revised = tools.call(REVISE, **revision, expected_success=True)
    assert revised["ok"] and revised["result"] == revision
    assert tools.reject(REVISE, **{**revision, "po_id": "PO-99"}, expected_success=True)["error"] == "unknown_po"
    wrong = tools.reject(REVISE, **{**revision, "expected_quantity": "1"}, expected_success=True)
    assert wrong["error"] == "malformed" and "expected_quantity" in wrong["message"]
    negative = tools.reject(REVISE, **{**revision, "expected_quantity": -2}, expected_success=True)
    assert negative["error"] == "bad_quantity"


# ----- split_call ---------------------------------------------------------------------------------------------


def test_split_call_separates_arguments_from_prediction() -> None:
    action, prediction = split_call(
        "order",
        {"supplier_id": "S1", "sku_id": "SKU-01", "quantity": 5, "expected_success": True, "expected_cost": 12.5},
        TOOL_SPECS,
    )
    assert action == AgentAction("order", {"supplier_id": "S1", "sku_id": "SKU-01", "quantity": 5})
    assert prediction == {"expected_success": True, "expected_cost": 12.5}


def test_split_call_without_prediction_gives_none() -> None:
    assert split_call("wait", {}, TOOL_SPECS) == (AgentAction("wait", {}), None)
    assert split_call("ship", {"order_id": "C-1"}, TOOL_SPECS) == (AgentAction("ship", {"order_id": "C-1"}), None)


def test_split_call_unknown_parameter_of_a_known_tool_is_a_prediction_field() -> None:
    """The core then rejects it as an unknown prediction field, naming it."""
    action, prediction = split_call("ship", {"order_id": "C-1", "urgent": True}, TOOL_SPECS)
    assert action.arguments == {"order_id": "C-1"} and prediction == {"urgent": True}
    result = Episode(condition(), SEED).step(action, prediction)
    assert result.error_kind == "bad_prediction" and "urgent" in (result.message or "")


def test_split_call_unknown_tool_keeps_every_parameter_as_argument() -> None:
    action, prediction = split_call("frobnicate", {"x": 1, "expected_success": True}, TOOL_SPECS)
    assert action == AgentAction("frobnicate", {"x": 1, "expected_success": True}) and prediction is None
    result = Episode(condition(), SEED).step(action, prediction)
    assert result.error_kind == "unknown_tool"
