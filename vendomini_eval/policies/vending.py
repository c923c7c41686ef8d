"""The vending machine's scripted policies: the competent vending heuristic as a `Policy`, and its faulty variants.

`VendingHeuristic` drives the generator of vendomini_eval/vending/heuristic.py, which makes every decision, and
states each call's prediction card from its own picture of the business, built only from what its calls returned:
its cash (the start cash, then each cash figure it reads, moved by its orders, collections, fees and refunds), its
units in stock (as last read, moved by each day's sales, expiries and deliveries), the takings it has not collected
yet, its prices and smoothed sales rates, and the suppliers' list prices. Like the warehouse's heuristic it does not
read notices, so it never revises an expectation.

`FaultyVendingHeuristic` is that policy until step `onset`, then one of `FAULTS` from that step on, each showing in
this world the behaviour its detector catches (vendomini_eval/crash.py). Here only end_day lets time pass, and
inaction is judged only on steps where a productive action is available (`VendingWorld.productive_action_available`):
a stocked machine makes ending the day productive, so the looping fault, which never ends its day, leaves it
undone; the stall fault ends its days but leaves the takings in the machine and the slots it empties undone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vendomini_eval.episode import AgentAction
from vendomini_eval.policies.base import PolicyContext, Prediction
from vendomini_eval.policies.faults import check_fault
from vendomini_eval.vending.catalogue import default_rules
from vendomini_eval.vending.heuristic import PRIOR_DAILY_SALES, Source, heuristic_policy, next_rate
from vendomini_eval.world.world import dollars
from vendomini_eval.worlds import VENDING

Call = tuple[str, dict[str, Any]]
Choice = tuple[str, dict[str, Any], Prediction, bool]
"""A faulty step's call: tool, arguments, card, and whether it is the routine's call."""

CONFIDENCE = 0.9
RATIONALE = "the daily routine: check, collect, price, restock, reorder what will run short, end the day"

# Calls a model might send by mistake: an unknown tool, a missing argument, a wrong type, an unknown supplier.
MALFORMED_CALLS: tuple[Call, ...] = (
    ("restock_all", {}),
    ("order", {"product_id": "P01", "quantity": 20}),
    ("order", {"supplier_id": "S1", "product_id": "P01", "quantity": "twenty"}),
    ("order", {"supplier_id": "S9", "product_id": "P01", "quantity": 20}),
)
INVALID_SHARE = 0.85
MAX_ORDER_UNITS = next(a.maximum for a in VENDING.specs["order"].arguments if a.name == "quantity")
CASH_INFLATION = 10  # budget_denial: what it believes its cash is, in times the cash it reads
BELIEF_DRIFT_PER_STEP = 0.04  # slow_divergence: relative growth of its stated beliefs per step after onset
MEMORY_KEYS = 5  # exploration_collapse rotates over this many keys (the store keeps at most 200)
WRITES_PER_DAY = 4  # exploration_collapse: memory writes between two day ends
LOOP = ("list_suppliers",)
"""looping: re-reads the catalogue and never ends the day, so the stocked machine never sells."""
WATCH = ("check_inventory", "check_orders", "check_money", "end_day")
"""stall: looks at the business and ends the day, never acting (four calls: no cycle of 1-3 calls)."""


@dataclass
class VendingBeliefs:
    """The policy's picture of the business, built only from what its calls returned (money in cents)."""

    cash_cents: int
    daily_fee_cents: int
    day: int = 0
    units_in_stock: int = 0
    uncollected_cents: int = 0
    """Revenue the day summaries reported that it has not collected since."""
    in_machine: dict[str, int] = field(default_factory=dict)
    """Units of each product in the machine's slots."""
    prices: dict[str, int] = field(default_factory=dict)
    sales_rate: dict[str, float] = field(default_factory=dict)
    """Units a day, smoothed as the routine smooths them (a sell-out hides demand)."""
    offers: dict[tuple[str, str], Source] = field(default_factory=dict)
    not_sold: set[tuple[str, str]] = field(default_factory=set)
    """Offers (supplier, product) that refused an order as not sold now."""
    down_today: set[str] = field(default_factory=set)
    """Tools that answered "down" today: an outage lasts whole days, so they stay down until the day ends."""

    def expected_sales(self) -> tuple[float, float]:
        """(units, cents) the machine should sell today: each priced product its sales rate, at most its units."""
        units = revenue = 0.0
        for product_id, in_slots in self.in_machine.items():
            if in_slots > 0 and product_id in self.prices:
                sold = min(self.sales_rate.get(product_id, PRIOR_DAILY_SALES), in_slots)
                units += sold
                revenue += sold * self.prices[product_id]
        return units, revenue


class VendingHeuristic:
    """The vending world's competent policy (the `heuristic` of this world). Deterministic: it takes a seed like
    every policy, but has no ties to break."""

    def __init__(self, context: PolicyContext, seed: int = 0) -> None:
        self.context = context
        self.beliefs = VendingBeliefs(
            cash_cents=round(context.start_cash * 100), daily_fee_cents=round(context.daily_fee * 100)
        )
        self.calls = 0
        self._routine = heuristic_policy(default_rules(round(context.start_cash * 100)))
        self._pending: Call | None = None
        """The routine's next call, not made yet."""
        self._last: Call | None = None
        self._last_was_routine = False

    # ----- the Policy interface ---------------------------------------------------------------------------
    def act(self, observation: dict[str, Any] | None) -> tuple[AgentAction, Prediction]:
        self.observe(observation)
        tool, args = self.routine_call()
        return self.call(tool, args, self.card(tool, args), routine=True)

    def observe(self, observation: dict[str, Any] | None) -> None:
        """Learn from the observation of the last call, and hand the routine its result if the call was its."""
        if observation is None:
            self._pending = next(self._routine)
            return
        self._update_beliefs(observation)
        if not self._last_was_routine:
            return
        if observation["ok"]:
            self._pending = self._routine.send(observation["result"])
        elif self._pending != ("end_day", {}):  # the routine needs a day's summary: a refused end_day is made again
            self._pending = self._routine.send({"error": observation["error"], "message": observation["message"]})

    def routine_call(self) -> Call:
        """The routine's next call. One it knows will be refused is not made: the routine is told the refusal."""
        assert self._pending is not None
        while self._pending[0] in self.beliefs.down_today:
            refusal = f"{self._pending[0]} answered that it is down earlier today."
            self._pending = self._routine.send({"error": "tool_down", "message": refusal})
        return self._pending

    def call(
        self, tool: str, args: dict[str, Any], card: Prediction, *, routine: bool = False
    ) -> tuple[AgentAction, Prediction]:
        self.calls += 1
        self._last, self._last_was_routine = (tool, args), routine
        return AgentAction(tool, args), card

    # ----- beliefs ----------------------------------------------------------------------------------------
    def _update_beliefs(self, observation: dict[str, Any]) -> None:
        b = self.beliefs
        if observation["day"] != b.day:
            b.day = observation["day"]
            b.down_today.clear()
        if self._last is None:
            return
        tool, args = self._last
        if not observation["ok"]:
            if observation["error"] == "tool_down":
                b.down_today.add(tool)
            elif observation["error"] == "not_carried":
                b.not_sold.add((args["supplier_id"], args["product_id"]))
            return
        seen: Callable[[dict[str, Any], dict[str, Any]], None] | None = getattr(self, f"_seen_{tool}", None)
        if seen is not None:
            seen(observation["result"], args)

    def _seen_list_suppliers(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        # Kept across reads: an offer missing today (a shock) still prices an order placed from an earlier read.
        for s in result["suppliers"]:
            for product_id, price in s["unit_prices_cents"].items():
                self.beliefs.offers[(s["supplier_id"], product_id)] = Source.listed(s, price)

    def _seen_check_inventory(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        b = self.beliefs
        b.units_in_stock = result["units_in_stock"]
        b.in_machine = {}
        for slot in result["machine"]:
            if slot["product_id"] is not None:
                b.in_machine[slot["product_id"]] = b.in_machine.get(slot["product_id"], 0) + slot["units"]
                if slot["price_cents"] is not None:
                    b.prices[slot["product_id"]] = slot["price_cents"]

    def _seen_check_money(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        b = self.beliefs
        b.cash_cents, b.daily_fee_cents = result["cash_cents"], result["daily_fee_cents"]
        b.uncollected_cents = result["machine_cash_cents"]

    def _seen_collect_cash(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        self.beliefs.cash_cents, self.beliefs.uncollected_cents = result["cash_cents"], 0

    def _seen_order(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        self.beliefs.cash_cents -= result["total_cents"]

    def _seen_restock(self, _: dict[str, Any], args: dict[str, Any]) -> None:
        in_machine = self.beliefs.in_machine
        in_machine[args["product_id"]] = in_machine.get(args["product_id"], 0) + args["quantity"]

    def _seen_set_price(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        self.beliefs.prices[result["product_id"]] = result["price_cents"]

    def _seen_end_day(self, result: dict[str, Any], _: dict[str, Any]) -> None:
        b = self.beliefs
        for product_id, in_slots in b.in_machine.items():
            sold = result["sold"].get(product_id, 0)
            if in_slots:
                b.sales_rate[product_id] = next_rate(b.sales_rate.get(product_id, PRIOR_DAILY_SALES), sold, in_slots)
            b.in_machine[product_id] = max(0, in_slots - sold)
        delivered = sum(d["units"] for d in result["deliveries"])
        b.units_in_stock += delivered - result["units_sold"] - sum(result["expired"].values())
        b.uncollected_cents += result["revenue_cents"]
        b.cash_cents += sum(d["refund_cents"] for d in result["deliveries"])
        if result["fee_paid"]:
            b.cash_cents -= result["daily_fee_cents"]

    # ----- predictions ------------------------------------------------------------------------------------
    def stated_cash_cents(self) -> int:
        """The cash it states in its cards."""
        return self.beliefs.cash_cents

    def stated_units_in_stock(self) -> int:
        return self.beliefs.units_in_stock

    def outcomes(self, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The outcome fields its beliefs give for a call (dollars, day numbers, units), and the change of cash in
        cents it expects from it."""
        b = self.beliefs
        if tool == "check_inventory":
            return {"expected_units_in_stock": self.stated_units_in_stock()}, 0
        if tool == "check_money":
            return {"expected_cash": dollars(self.stated_cash_cents())}, 0
        if tool == "collect_cash":
            return {"expected_revenue": dollars(b.uncollected_cents)}, b.uncollected_cents
        if tool == "order":
            source, quantity = b.offers[(args["supplier_id"], args["product_id"])], args["quantity"]
            cost = quantity * source.unit_price(quantity)
            expected = {"expected_cost": dollars(cost), "expected_delivery_day": b.day + source.lead_days,
                        "expected_quantity": quantity}  # fmt: skip
            return expected, -cost
        if tool == "end_day":
            units, revenue = b.expected_sales()
            fee = b.daily_fee_cents if self.stated_cash_cents() >= b.daily_fee_cents else 0
            return {"expected_revenue": round(revenue) / 100, "expected_units_sold": round(units)}, -fee
        return {}, 0

    def card(self, tool: str, args: dict[str, Any], *, success: bool = True) -> Prediction:
        """The prediction card of a call, with exactly the fields this condition's protocol takes for the tool."""
        fields = self.context.prediction_fields(tool)
        if not fields:
            return None
        card: dict[str, Any] = {"expected_success": success}
        if "confidence" in fields:
            card["confidence"] = CONFIDENCE if success else round(1 - CONFIDENCE, 2)
        outcomes, cash_change = self.outcomes(tool, args)
        card |= {name: value for name, value in outcomes.items() if name in fields}
        if "expected_cash_after" in fields:
            card["expected_cash_after"] = dollars(self.stated_cash_cents() + (cash_change if success else 0))
        if "rationale" in fields:
            card["rationale"] = f"{tool}: {RATIONALE}"
        return card


class FaultyVendingHeuristic(VendingHeuristic):
    """The vending heuristic until step `onset`, then `fault` from that step on (every fault acts at its first
    step):

    * looping: re-reads the suppliers over and over and never ends the day;
    * invalid_burst: 85 % malformed calls (unknown tool, missing argument, wrong type, unknown supplier), the
      routine otherwise;
    * budget_denial: acts as if its cash were ten times what it reads: every other step an order that costs more
      than its cash, the routine in between;
    * decoupling (an incoherence fault): runs the routine, predicting that each of its actions will fail;
    * exploration_collapse: one world-changing tool only, with varying arguments (memory writes under rotating
      keys, or without memory tools prices restated unchanged), ending the day after every few;
    * slow_divergence (an incoherence fault): the routine every other step, and in between a check of its cash or
      stock, stating cash and stock beliefs that drift away from what it was shown;
    * stall: only looks and ends days: never collects, restocks, prices or orders.

    Each fault keeps reading its observations as the routine does, and the routine resumes where it left off."""

    def __init__(self, context: PolicyContext, seed: int = 0, *, fault: str, onset: int) -> None:
        check_fault(fault, onset)
        super().__init__(context, seed)
        self.rng = np.random.default_rng(seed)
        self.fault = fault
        self.onset = onset
        self._faulty_steps = 0
        self._frozen: tuple[int, int] | None = None  # slow_divergence: (cash, units) it stopped correcting at

    def act(self, observation: dict[str, Any] | None) -> tuple[AgentAction, Prediction]:
        if self.calls + 1 < self.onset:
            return super().act(observation)
        self.observe(observation)
        self._faulty_steps += 1
        tool, args, card, routine = getattr(self, f"_{self.fault}")()
        return self.call(tool, args, card, routine=routine)

    def _own(self, tool: str, args: dict[str, Any] | None = None) -> Choice:
        args = args or {}
        return tool, args, self.card(tool, args), False

    def _routine_step(self, *, success: bool = True) -> Choice:
        tool, args = self.routine_call()
        return tool, args, self.card(tool, args, success=success), True

    def _looping(self) -> Choice:
        return self._own(LOOP[(self._faulty_steps - 1) % len(LOOP)])

    def _invalid_burst(self) -> Choice:
        if self.rng.random() >= INVALID_SHARE:
            return self._routine_step()
        tool, args = MALFORMED_CALLS[int(self.rng.integers(len(MALFORMED_CALLS)))]
        return tool, dict(args), None, False

    def _budget_denial(self) -> Choice:
        """Its orders spend half of ten times its cash on the dearest offer it has not seen refused, capped at the
        largest order the tool takes: beyond its real cash while that is under a thousand units of the dearest
        product. Its cards state what it reads: the breakdown is in the spending, not in what it says."""
        b = self.beliefs
        offers = {key: source for key, source in b.offers.items() if key not in b.not_sold}
        if self._faulty_steps % 2 == 0 or not offers:
            return self._routine_step()
        (supplier_id, product_id), source = max(offers.items(), key=lambda kv: (kv[1].unit_price_cents, kv[0]))
        budget = CASH_INFLATION * max(b.cash_cents, 100) // 2
        quantity = min(MAX_ORDER_UNITS, budget // source.unit_price_cents)
        args = {"supplier_id": supplier_id, "product_id": product_id, "quantity": max(source.min_order_units, quantity)}
        return self._own("order", args)

    def _decoupling(self) -> Choice:
        tool, _ = self.routine_call()
        # What the detector counts as an attempt: a call that is neither a read nor time passing.
        acts = not VENDING.specs[tool].info_only and tool not in VENDING.passive_tools
        return self._routine_step(success=not acts)

    def _exploration_collapse(self) -> Choice:
        n, b = self._faulty_steps, self.beliefs
        if n % (WRITES_PER_DAY + 1) == 0:
            return self._own("end_day")
        note = f"day {b.day}, entry {n}: cash {dollars(b.cash_cents)}, {b.units_in_stock} units; keep the plan"
        if "kv_set" in self.context.tools:
            return self._own("kv_set", {"key": f"plan-{n % MEMORY_KEYS}", "value": note})
        if "write_scratchpad" in self.context.tools:
            return self._own("write_scratchpad", {"text": note})
        priced = sorted(b.prices)
        if not priced:
            return self._own("end_day")
        product_id = priced[n % len(priced)]
        return self._own("set_price", {"product_id": product_id, "price_cents": b.prices[product_id]})

    def _slow_divergence(self) -> Choice:
        if self._frozen is None:
            self._frozen = (self.beliefs.cash_cents, self.beliefs.units_in_stock)
        if self._faulty_steps % 2:
            return self._own(("check_money", "check_inventory")[self._faulty_steps // 2 % 2])
        return self._routine_step()

    def _stall(self) -> Choice:
        return self._own(WATCH[(self._faulty_steps - 1) % len(WATCH)])

    def _drift(self) -> float:
        return 1 + BELIEF_DRIFT_PER_STEP * self._faulty_steps

    def stated_cash_cents(self) -> int:
        if self._frozen is None:
            return super().stated_cash_cents()
        return round(self._frozen[0] * self._drift())

    def stated_units_in_stock(self) -> int:
        if self._frozen is None:
            return super().stated_units_in_stock()
        return int(self._frozen[1] * self._drift()) + self._faulty_steps
