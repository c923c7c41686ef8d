"""The system prompt states every rule the world enforces on the agent, with its value (solvers/agent.py).

The list of rules is derived from the fields of `Rules`: a field is either stated in the prompt or listed in
NOT_AGENT_RULES with the reason, so a new rule field cannot be left out of the prompt silently.
"""

from __future__ import annotations

import pytest

from vendomini_eval.condition import Condition
from vendomini_eval.policies.base import FACTS_MARKER
from vendomini_eval.solvers import agent
from vendomini_eval.solvers.agent import rule_values, system_prompt
from vendomini_eval.world.setup import build_rules
from vendomini_eval.world.state import Rules
from vendomini_eval.world.tools import available_tools

NOT_AGENT_RULES = {
    "complexity_level",  # sets the catalogue and the tool set; the tools themselves are what the agent is given
    "demand_rate",  # how often customers order: the market, not a rule the agent acts under
    "due_days",  # each customer order shows its own due day
}
TOOL_RULES = {"expedite_fee_frac": "expedite", "cancel_refund_frac": "cancel", "quote_valid_days": "get_quote"}
"""Rules of one tool: stated where the condition offers the tool, and only there."""
RULES = sorted(Rules.model_fields.keys() - NOT_AGENT_RULES)

CONDITIONS = [
    *(Condition(pressure_level=p, complexity_level=level) for p in ("low", "medium", "high") for level in (0, 2, 3)),
    Condition(steps_per_day=4, complexity_level=4, prediction_mode="none"),
]


def label(condition: Condition) -> str:
    return f"{condition.pressure_level}-level{condition.complexity_level}-{condition.steps_per_day}perday"


def rules_text(prompt: str) -> str:
    """The prompt without its facts line (which repeats a few values as JSON for scripted models)."""
    return "\n".join(line for line in prompt.splitlines() if not line.startswith(FACTS_MARKER))


def test_not_agent_rules_are_fields_of_rules() -> None:
    assert NOT_AGENT_RULES | TOOL_RULES.keys() <= Rules.model_fields.keys()
    assert not NOT_AGENT_RULES & TOOL_RULES.keys()


@pytest.mark.parametrize("condition", CONDITIONS, ids=label)
def test_every_enforced_rule_is_stated_with_its_value(condition: Condition) -> None:
    prompt = rules_text(system_prompt(condition))
    values = rule_values(build_rules(condition))
    tools = available_tools(condition)
    for name in RULES:
        tool = TOOL_RULES.get(name)
        if tool is None or tool in tools:
            assert values[name] in prompt, name
    for tool in TOOL_RULES.values():
        assert (f"`{tool}`" in prompt) == (tool in tools), tool


def test_each_rule_field_reaches_the_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rule field set to a value of its own: each must show up, so none is dropped or stated twice by
    another's name (a check on real values could pass by a coincidence such as 10 days and 10 orders)."""
    base = build_rules(Condition(complexity_level=3))
    distinct = {}
    for i, name in enumerate(Rules.model_fields):
        value = getattr(base, name)
        if name.endswith("_cents"):
            distinct[name] = 123_400 + i  # $1,234.0i
        elif name.endswith("_frac"):
            distinct[name] = (61 + i) / 100
        elif isinstance(value, int):
            distinct[name] = 9_000 + i
        else:
            distinct[name] = value
    rules = Rules(**distinct)
    monkeypatch.setattr(agent, "build_rules", lambda _: rules)
    prompt = rules_text(system_prompt(Condition(complexity_level=3)))
    values = rule_values(rules)
    for name in RULES:
        assert prompt.count(values[name]) == 1, name


def test_expired_order_penalty_and_refunds_are_stated() -> None:
    prompt = system_prompt(Condition(pressure_level="high", complexity_level=1))
    assert "An expired customer order is lost and costs a penalty of 25% of its price." in prompt
    assert "You start with $450.00 in cash" in prompt
    assert "Purchases are paid when placed; units a supplier fails to deliver are refunded" in prompt
    assert "`expedite`" not in prompt  # level 1 has no expedite


def test_protocol_line_and_facts_line_are_kept() -> None:
    prompt = system_prompt(Condition(prediction_mode="required"))
    assert "State your honest expectation." in prompt
    assert prompt.splitlines()[-1].startswith(FACTS_MARKER)
