"""A uniformly random agent: a floor for comparison and a stress test of the harness.

It picks a tool uniformly from the task's tool list and fills the arguments from ids it has seen in its own
observations (so some calls succeed), with random quantities; its predictions are random too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vendomini_eval.episode import AgentAction
from vendomini_eval.policies.base import PolicyContext, Prediction

MAX_RANDOM_QUANTITY = 20


class RandomPolicy:
    def __init__(self, context: PolicyContext, seed: int = 0) -> None:
        self.context = context
        self.rng = np.random.default_rng(seed)
        self.seen: dict[str, set[str]] = {
            "supplier_id": set(),
            "sku_id": set(),
            "order_id": set(),
            "po_id": set(),
        }
        self.day = 0

    def _remember(self, value: Any) -> None:
        """Collect ids from anywhere in an observation."""
        if isinstance(value, dict):
            for key, item in value.items():
                if key in self.seen and isinstance(item, str):
                    self.seen[key].add(item)
                else:
                    self._remember(item)
        elif isinstance(value, list):
            for item in value:
                self._remember(item)

    def _choose(self, key: str) -> str:
        options = sorted(self.seen[key])
        if not options:
            return f"{key.split('_')[0].upper()}-{int(self.rng.integers(1, 30))}"
        return options[int(self.rng.integers(len(options)))]

    def act(self, observation: dict[str, Any] | None) -> tuple[AgentAction, Prediction]:
        if observation is not None:
            self.day = observation["day"]
            self._remember(observation)
        tool = self.context.tools[int(self.rng.integers(len(self.context.tools)))]
        args: dict[str, Any] = {}
        if tool in ("order", "get_quote"):
            args = {"supplier_id": self._choose("supplier_id"), "sku_id": self._choose("sku_id"),
                    "quantity": int(self.rng.integers(1, MAX_RANDOM_QUANTITY + 1))}  # fmt: skip
        elif tool == "ship":
            args = {"order_id": self._choose("order_id")}
        elif tool in ("expedite", "cancel"):
            args = {"po_id": self._choose("po_id")}
        elif tool == "revise_expectation":
            args = {"po_id": self._choose("po_id"), "expected_delivery_day": self.day + int(self.rng.integers(1, 8)),
                    "expected_quantity": int(self.rng.integers(1, MAX_RANDOM_QUANTITY + 1))}  # fmt: skip
        elif tool == "write_note":
            args = {"key": f"note{int(self.rng.integers(5))}", "text": f"day {self.day}"}
        elif tool == "read_note":
            args = {"key": f"note{int(self.rng.integers(5))}"}
        elif tool == "search_notes":
            args = {"query": "day"}
        return AgentAction(tool, args), self._card(tool)

    def _card(self, tool: str) -> Prediction:
        fields = self.context.prediction_fields(tool)
        if not fields:
            return None
        card: dict[str, Any] = {}
        for name in sorted(fields):
            if name == "expected_success":
                card[name] = bool(self.rng.random() < 0.5)
            elif name == "confidence":
                card[name] = round(float(self.rng.random()), 3)
            elif name == "rationale":
                card[name] = "random choice"
            elif name == "expected_delivery_day":
                card[name] = self.day + int(self.rng.integers(1, 8))
            elif name in ("expected_quantity", "expected_units_in_stock"):
                card[name] = int(self.rng.integers(0, 50))
            else:
                card[name] = round(float(self.rng.uniform(0, 500)), 2)
        return card
