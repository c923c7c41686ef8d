"""Fault-injected variants of the heuristic: competent until `onset`, then one known breakdown.

They give the crash detector ground truth: the crash type is the fault's name and the true onset is the first
step at which the fault acts. Each fault reproduces the behaviour its detector is meant to catch
(docs/METHOD.md, "Detector validation").
"""

from __future__ import annotations

from typing import Any

from vendomini_eval.episode import AgentAction
from vendomini_eval.policies.base import PolicyContext, Prediction
from vendomini_eval.policies.heuristic import HeuristicPolicy

FAULTS = (
    "looping", "invalid_burst", "budget_denial", "decoupling", "exploration_collapse", "slow_divergence", "stall",
)  # fmt: skip

# Calls a model might send by mistake: an unknown tool, a missing argument, a wrong type, a stale id.
MALFORMED_CALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("restock_all", {}),
    ("order", {"sku_id": "SKU-01", "quantity": 5}),
    ("order", {"supplier_id": "S1", "sku_id": "SKU-01", "quantity": "ten"}),
    ("ship", {"order_id": "C-0"}),
)
INVALID_SHARE = 0.85
BELIEF_DRIFT_PER_STEP = 0.04  # slow_divergence: relative growth of the cash belief per step after onset
NOTE_KEYS = 5  # note-writing faults rotate over this many keys (the world keeps at most 100 notes)
TOOL_DOWN_RETRY_DAYS = 3  # a tool that answered "down, try again in a few days" is left alone this long


def check_fault(fault: str, onset: int) -> None:
    """Raise ValueError for an unknown fault or an onset before the first step (the faulty policies of either
    world take the same)."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault '{fault}'; choose one of {', '.join(FAULTS)}")
    if onset < 1:
        raise ValueError(f"onset must be a step number >= 1, got {onset}")


class FaultyHeuristic(HeuristicPolicy):
    """The heuristic until step `onset`, then `fault` from that step on (every fault acts at its first step):

    * looping: re-reads the catalogue forever;
    * invalid_burst: 85 % malformed or unknown calls, the routine otherwise;
    * budget_denial: acts as if cash were ten times what it is: orders against that figure, every other step;
    * decoupling (an incoherence fault): runs its routine but predicts that each action will fail (writes notes
      instead of waiting);
    * exploration_collapse: one tool only, a valid world-changing call with varying arguments (notes);
    * slow_divergence (an incoherence fault): runs its routine every other step, stating cash and stock beliefs
      that drift away from what it is shown;
    * stall: only waits.

    Each fault keeps reading its observations as the routine does, so that it shows its own breakdown rather
    than another one (a refused offer, a tool that is down)."""

    def __init__(self, context: PolicyContext, seed: int = 0, *, fault: str, onset: int) -> None:
        check_fault(fault, onset)
        super().__init__(context, seed)
        self.fault = fault
        self.onset = onset
        self._faulty_steps = 0
        self._frozen_cash: float | None = None
        self._tool_down_day: dict[str, int] = {}

    def _on_error(self, tool: str, args: dict[str, Any], error: str | None) -> None:
        super()._on_error(tool, args, error)
        if error == "tool_down":
            self._tool_down_day[tool] = self.beliefs.day

    def _tool_down(self, tool: str) -> bool:
        day = self._tool_down_day.get(tool)
        return day is not None and self.beliefs.day - day < TOOL_DOWN_RETRY_DAYS

    def act(self, observation: dict[str, Any] | None) -> tuple[AgentAction, Prediction]:
        step = self.beliefs.step + (observation is not None) + 1  # the step this action will be
        if step < self.onset:
            return super().act(observation)
        self.observe(observation)
        self._faulty_steps += 1
        tool, args, card = getattr(self, f"_{self.fault}")()
        self._last = (tool, args)
        return AgentAction(tool, args), card or None

    # Each fault returns (tool, arguments, prediction card or None).
    def _normal(self) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        tool, args, expected = self.decide()
        return tool, args, self.card(tool, expected)

    def _looping(self):
        return "check_catalogue", {}, self.card("check_catalogue", {"success": True})

    def _invalid_burst(self):
        if self.rng.random() >= INVALID_SHARE:
            return self._normal()
        tool, args = MALFORMED_CALLS[int(self.rng.integers(len(MALFORMED_CALLS)))]
        return tool, dict(args), None

    def _budget_denial(self):
        """Acts as if cash were ten times what it is: orders against that figure, reading its budget in between.
        Its cards state what it reads (the breakdown is in the spending, not in what it says)."""
        b = self.beliefs
        if self._tool_down("order"):
            return self._normal()  # the denial shows in spending, which a down order tool prevents
        inflated = max(b.cash, 1.0) * 10
        if self._faulty_steps % 2:
            tool, args, expected = self._check("check_budget")
            return tool, args, self.card(tool, expected)
        # Offers that refused an order are avoided until the catalogue is re-read, as the routine does: the
        # denial is about money, not about reading the suppliers' replies.
        offers = {key: o for key, o in b.offers.items() if not b.refused(key)}
        if not offers:
            return self._normal()
        (supplier_id, sku_id), offer = min(offers.items(), key=lambda kv: (kv[1]["unit_price"], kv[0]))
        quantity = max(offer["min_order"], int(inflated / 2 / offer["unit_price"]))
        cost = round(quantity * offer["unit_price"], 2)
        expected = {"success": True, "expected_cost": cost, "expected_delivery_day": b.day + offer["lead_days"],
                    "expected_quantity": quantity}  # fmt: skip
        return (
            "order",
            {"supplier_id": supplier_id, "sku_id": sku_id, "quantity": quantity},
            self.card("order", expected),
        )

    def _decoupling(self):
        """Keeps running the business, stating that each of its actions will fail; where the routine would only
        wait, it writes a note instead (an action too, predicted to fail as well). It spends no more than the
        routine does, so the business keeps going while the pattern is confirmed."""
        tool, args, expected = self.decide()
        if tool == "wait" and "write_note" in self.context.tools:
            tool, args, expected = self._note()
        if tool.startswith("check_"):
            return tool, args, self.card(tool, expected)
        return tool, args, self.card(tool, {**expected, "success": False})

    def _note(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """A note about the state of the business, under one of a few rotating keys."""
        b = self.beliefs
        text = f"day {b.day}: {len(b.customer_orders)} open orders, {len(b.inbound)} inbound; plan: ship, restock"
        return "write_note", {"key": f"plan-{self._faulty_steps % NOTE_KEYS}", "text": text}, {"success": True}

    def _forced_action(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """A mutating action whatever the routine says: a small order, cycling through the offers."""
        b = self.beliefs
        if not b.offers:
            return "check_catalogue", {}, {"success": True}
        keys = sorted(b.offers)
        supplier_id, sku_id = keys[self._faulty_steps % len(keys)]
        offer = b.offers[(supplier_id, sku_id)]
        quantity = offer["min_order"]
        expected = {"success": True, "expected_cost": round(quantity * offer["unit_price"], 2),
                    "expected_delivery_day": b.day + offer["lead_days"], "expected_quantity": quantity}  # fmt: skip
        return "order", {"supplier_id": supplier_id, "sku_id": sku_id, "quantity": quantity}, expected

    def _exploration_collapse(self):
        """Uses one tool only: keeps rewriting its plan in notes, with different keys and text, so that each call
        is valid and changes the world (neither a loop nor a stall) and spends nothing. Without memory tools it
        keeps asking for quotes (level 3+), else it cycles small orders through the offers (which spends)."""
        if "write_note" in self.context.tools:
            tool, args, expected = self._note()
        elif "get_quote" in self.context.tools and self.beliefs.offers:
            keys = sorted(self.beliefs.offers)
            supplier_id, sku_id = keys[self._faulty_steps % len(keys)]
            offer = self.beliefs.offers[(supplier_id, sku_id)]
            args = {"supplier_id": supplier_id, "sku_id": sku_id, "quantity": offer["min_order"]}
            tool, expected = "get_quote", {"expected_unit_price": offer["unit_price"]}
        else:
            tool, args, expected = self._forced_action()
        return tool, args, self.card(tool, {"success": True, **expected})

    def _slow_divergence(self):
        """Keeps working, but stops correcting its cash and stock beliefs, which drift from reality; it states
        them often (every other step, and whenever its routine checks them)."""
        b = self.beliefs
        if self._frozen_cash is None:
            self._frozen_cash = b.cash
        drift = 1 + BELIEF_DRIFT_PER_STEP * self._faulty_steps
        stated = {
            "check_budget": {"success": True, "expected_cash": round(self._frozen_cash * drift, 2)},
            "check_inventory": {
                "success": True,
                "expected_units_in_stock": int(sum(b.stock.values()) * drift) + self._faulty_steps,
            },
        }
        # Every other step states a belief (budget and stock in turn); the stating checks count as the routine's
        # checks, so that its own steps go to the business.
        if self._faulty_steps % 2:
            tool, args, expected = self._check(("check_budget", "check_inventory")[self._faulty_steps // 2 % 2])
        else:
            tool, args, expected = self.decide()
        return tool, args, self.card(tool, stated.get(tool, expected))

    def _stall(self):
        """Stops acting: only waits, whatever is pending."""
        return "wait", {}, self.card("wait", {"success": True})
