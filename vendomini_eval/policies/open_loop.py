"""An open-loop routine: a fixed schedule of calls that never looks at what its calls return.

It is the negative control of the PE analysis (docs/METHOD.md, "Negative control"): its actions and its
prediction cards are fixed before the world answers, so its prediction error cannot change what it does, and
any association between its PE and its crashes comes from the world, which makes both.
"""

from __future__ import annotations

from typing import Any

from vendomini_eval.episode import AgentAction
from vendomini_eval.policies.base import PolicyContext, Prediction

ROUND = (
    "order", "check_orders", "order", "check_catalogue", "order", "write_note",
    "order", "check_orders", "order", "check_catalogue", "order", "write_note",
    "wait", "check_orders", "wait", "check_catalogue", "wait", "write_note", "wait", "check_orders",
    "wait", "check_catalogue", "wait", "write_note", "wait", "check_orders", "wait", "check_catalogue",
    "wait", "write_note", "wait", "check_orders",
)  # fmt: skip
"""One round of the routine (32 steps), repeated after the first step's catalogue read: a restock burst of six
orders every other step, then looks and waits. The burst is dense enough that orders refused for want of
money are a budget denial (4 in 20 steps), the gap long enough that a whole burst refused is a stall."""
ORDER_BUDGET = 12.0
"""Dollars each order is sized to: units = this / the offer's unit price (at least 1 and the minimum order),
so that every order of the plan costs about the same and the money runs out for all of them at once."""
PLAN_MAX_ORDER = 1.5 * ORDER_BUDGET
"""SKUs whose minimum order costs more than this are left out of the plan (their orders could not be sized
to the budget)."""
NOTE_KEY = "routine"
CONFIDENCE = 0.9


class OpenLoopPolicy:
    """A fixed cyclic routine. Its one reading is the catalogue at step 1, which is its plan; after that
    `act` never reads an observation.

    The SKU ids, which supplier sells each SKU, and the prices, lead times and minimum orders are drawn with
    the run seed and are not among the task's stated facts, so the routine reads the catalogue once, at step
    1 (before any shock can have fired: the first shock fires after the first action), and keeps the cheapest
    offer of each SKU as its plan (leaving out SKUs whose minimum order costs more than `PLAN_MAX_ORDER`).
    Then it repeats `ROUND`: orders of the plan's SKUs in turn, each sized to about `ORDER_BUDGET` dollars,
    looks at the orders and the catalogue whose results it ignores, a note, and waits. It never ships:
    shipping needs the ids of customer orders, which only reading the orders would give. So it buys without
    selling until the money or the warehouse runs out, and its breakdowns come from the world: money running
    out while it keeps ordering (budget_denial), or a burst of orders all refused (the order system down, the
    warehouse full, no money) while customers' orders could be shipped (stall).

    Every card states the plan: success (with `CONFIDENCE`), the plan's cost, the offer's lead time and the
    ordered units for an order; the plan's cash (start cash less the plan's purchases and the stated daily
    fee) where the format asks for a cash belief. Its PE therefore measures only the world departing from the
    plan. The seed is unused: the routine is one fixed schedule, the same under every condition's shocks,
    observability and dose."""

    def __init__(self, context: PolicyContext, seed: int = 0) -> None:
        self.context = context
        self.steps = 0
        self._plan: list[dict[str, Any]] = []
        self._orders = 0
        self._planned_spend = 0.0

    def act(self, observation: dict[str, Any] | None) -> tuple[AgentAction, Prediction]:
        if self.steps == 1:
            self._plan = plan_from_catalogue(observation)  # the only observation the routine ever reads
        self.steps += 1
        if self.steps == 1:
            return AgentAction("check_catalogue", {}), self._card("check_catalogue", {})
        tool = ROUND[(self.steps - 2) % len(ROUND)]
        if tool == "order" and self._plan:
            return self._order()
        if tool == "write_note" and "write_note" in self.context.tools:
            args = {"key": NOTE_KEY, "text": f"round {(self.steps - 2) // len(ROUND) + 1} of the routine"}
            return AgentAction("write_note", args), self._card("write_note", {})
        if tool not in self.context.tools or tool == "order":  # no memory tools (or no plan): a look instead
            tool = "check_orders"
        return AgentAction(tool, {}), self._card(tool, {})

    def _order(self) -> tuple[AgentAction, Prediction]:
        offer = self._plan[self._orders % len(self._plan)]
        self._orders += 1
        quantity = order_units(offer)
        cost = round(offer["unit_price"] * quantity, 2)
        self._planned_spend += cost
        args = {"supplier_id": offer["supplier_id"], "sku_id": offer["sku_id"], "quantity": quantity}
        expected = {"expected_cost": cost, "expected_delivery_day": self._day() + int(offer["lead_days"]),
                    "expected_quantity": quantity}  # fmt: skip
        return AgentAction("order", args), self._card("order", expected)

    def _day(self) -> int:
        """The day the current call is made on: the clock is stated (steps per day), so it is known without
        reading anything."""
        return (self.steps - 1) // self.context.steps_per_day

    def _card(self, tool: str, expected: dict[str, Any]) -> Prediction:
        fields = self.context.prediction_fields(tool)
        if not fields:
            return None
        card: dict[str, Any] = {"expected_success": True}
        if "confidence" in fields:
            card["confidence"] = CONFIDENCE
        for name, value in expected.items():
            if name in fields:
                card[name] = value
        planned_cash = round(self.context.start_cash - self._planned_spend - self._day() * self.context.daily_fee, 2)
        for name in ("expected_cash", "expected_cash_after"):
            if name in fields:
                card[name] = planned_cash
        if "rationale" in fields:
            card["rationale"] = f"{tool}: the next call of the fixed routine"
        return card


def plan_from_catalogue(observation: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The cheapest offer of each SKU in a check_catalogue result (ties by supplier id) whose minimum order
    costs at most `PLAN_MAX_ORDER` dollars (or the cheapest such offer if none does), in SKU order; empty if
    the observation is not a catalogue."""
    result = (observation or {}).get("result") or {}
    cheapest: dict[str, dict[str, Any]] = {}
    for offer in result.get("offers") or []:
        best = cheapest.get(offer["sku_id"])
        if best is None or (offer["unit_price"], offer["supplier_id"]) < (best["unit_price"], best["supplier_id"]):
            cheapest[offer["sku_id"]] = offer

    def minimum_cost(offer: dict[str, Any]) -> float:
        return float(offer["unit_price"]) * int(offer["min_order"])

    plan = [cheapest[sku] for sku in sorted(cheapest) if minimum_cost(cheapest[sku]) <= PLAN_MAX_ORDER]
    return plan or sorted(cheapest.values(), key=lambda o: (minimum_cost(o), o["sku_id"]))[:1]


def order_units(offer: dict[str, Any]) -> int:
    """Units of an order of the plan: about `ORDER_BUDGET` dollars' worth, at least 1 and the minimum order."""
    return max(1, int(offer["min_order"]), round(ORDER_BUDGET / max(offer["unit_price"], 0.01)))
