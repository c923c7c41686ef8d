"""What a scripted policy knows, and the interface every policy implements.

A policy sees exactly what an LLM agent sees: the task's tool list and stated rules (the system prompt and
tool schemas), and the observation returned by each of its calls. It never reads the world state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction
from vendomini_eval.predictions import protocol_fields
from vendomini_eval.worlds import business_of

Prediction = dict[str, Any] | None

FACTS_MARKER = "Business facts (JSON): "
"""Starts the line of the system prompt that states the task's facts; scripted models read it."""


@dataclass(frozen=True)
class PolicyContext:
    """The task as the system prompt and the tool schemas describe it."""

    tools: tuple[str, ...]
    prediction_mode: str
    prediction_format: str
    steps_per_day: int
    late_penalty_frac: float
    daily_fee: float
    storage_fee: float
    start_cash: float
    world: str = "warehouse"
    """The business (the warehouse's facts line leaves it out, as it did before there was a choice)."""

    @classmethod
    def for_condition(cls, condition: Condition) -> PolicyContext:
        business = business_of(condition)
        rules = business.rules(condition)
        return cls(
            tools=business.tools(condition),
            prediction_mode=condition.prediction_mode,
            prediction_format=condition.prediction_format,
            steps_per_day=condition.steps_per_day,
            # the vending machine has neither late shipments nor a storage fee
            late_penalty_frac=getattr(rules, "late_penalty_frac", 0.0),
            daily_fee=rules.daily_fee_cents / 100,
            storage_fee=getattr(rules, "storage_fee_cents", 0) / 100,
            start_cash=rules.start_cash_cents / 100,
            world=condition.world,
        )

    def facts(self) -> dict[str, Any]:
        """The context as the JSON facts block of the system prompt (what an LLM agent is told)."""
        facts = asdict(self)
        if self.world == "warehouse":
            del facts["world"]
        return facts

    @classmethod
    def from_facts(cls, facts: dict[str, Any]) -> PolicyContext:
        return cls(**{**facts, "tools": tuple(facts["tools"])})

    def prediction_fields(self, tool: str) -> set[str]:
        return set(protocol_fields(tool, self.prediction_mode, self.prediction_format, self.world))


class Policy(Protocol):
    def act(self, observation: dict[str, Any] | None) -> tuple[AgentAction, Prediction]:
        """The next action and its prediction card, given the observation of the previous call (None first)."""
        ...
