"""LLM-like behaviours: scripted agents that act the way language-model agents do, each with the label the
crash detector should give it.

Some are breakdowns (the agent stops making progress while it could), which the detector must catch as the
named primary crash type; the others are ordinary habits of a working agent (chatter, polling, a burst of
mistakes it recovers from, odd prediction cards, a wasteful purchase now and then), which must never be read
as a crash. Every behaviour decides only from its observations: each is the competent heuristic with one
habit layered on. Breakdowns take an `onset` step (the first step of the breakdown, the ground truth of its
onset latency); `malformed_burst` takes one for where its burst starts; the others take none.
`bench/validate_detector.py` runs each against its expected label (docs/METHOD.md, "Detector validation").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from vendomini_eval.episode import AgentAction
from vendomini_eval.policies.base import PolicyContext, Prediction
from vendomini_eval.policies.faults import MALFORMED_CALLS
from vendomini_eval.policies.heuristic import CASH_RESERVE, HeuristicPolicy
from vendomini_eval.predictions import protocol_fields

OnsetUse = Literal["required", "optional", "none"]
BEHAVIOUR_STREAM = 0xBE4A
"""Salt of a behaviour's own generator, so that its draws leave the heuristic's generator untouched."""

READ_TOOLS = ("check_orders", "check_inventory", "check_budget")
NOTE_KEYS = 6  # plan_only rotates its notes over this many keys (the world keeps at most 100 notes)
MALFORMED_BURST = 12
"""Calls in malformed_burst's burst: the most a recovering agent may make in a row (docs/METHOD.md)."""
DEFAULT_BURST_ONSET = 100
TEXT_ONLY_GAP = (6, 14)
"""chatter: steps between two text-only replies, drawn uniformly (inclusive): one reply in ten on average."""
NOISE = 0.2
"""noisy_beliefs: stated money and units are scaled by a factor uniform in [1 - NOISE, 1 + NOISE]; stated days
move by -1, 0 or +1 day."""
PESSIMISM = 0.2  # pessimistic: relative shortfall of revenue, cash, units and refunds, excess of costs
PESSIMISTIC_DELAY_DAYS = 2
PESSIMISTIC_CONFIDENCE = 0.6
POINTLESS_GAP = (12, 18)
"""pointless_orders: steps between two pointless orders, drawn uniformly (inclusive): one in ~15 steps."""

BENIGN = "benign"
"""The label of a behaviour that is no breakdown: it must get no primary-endpoint crash."""


@dataclass(frozen=True)
class Expectation:
    label: str
    """A primary crash type, or `BENIGN`."""
    reason: str


EXPECTED: dict[str, Expectation] = {
    "alternating_reads": Expectation(
        "looping",
        "from its onset it alternates two or three read-only tools forever: a short cycle without progress "
        "while a productive action is available",
    ),
    "plan_only": Expectation(
        "stall",
        "from its onset it only writes and reads notes and checks, varying tools and text: notes, reads and "
        "checks are not progress, and demand goes unserved",
    ),
    "only_wait": Expectation("stall", "from its onset it only waits while demand is pending"),
    "polling": Expectation(
        BENIGN, "the heuristic, calling check_orders where it would wait: polling while goods are inbound is waiting"
    ),
    "chatter": Expectation(
        BENIGN,
        "the heuristic with chatty text on every reply, and about one reply in ten text only, which states a next "
        "step: an invalid step now and then, and no statement of stopping",
    ),
    "malformed_burst": Expectation(
        BENIGN,
        f"one burst of {MALFORMED_BURST} consecutive malformed calls at its onset, then the heuristic again: "
        "mistakes the agent recovers from are no breakdown",
    ),
    "calibrated": Expectation(
        BENIGN,
        "the heuristic stating, per tool, its running success rate as its confidence: cards never decide a crash",
    ),
    "noisy_beliefs": Expectation(
        BENIGN, "the heuristic stating its numbers with unbiased noise: cards never decide a crash"
    ),
    "pessimistic": Expectation(
        BENIGN,
        "the heuristic stating pessimistic cards (lower revenue, later deliveries, fewer units, higher costs) while "
        "expecting success: cards never decide a crash",
    ),
    "pointless_orders": Expectation(
        BENIGN,
        "the heuristic plus a small valid order of an unrequested SKU every ~15 steps: wasteful (it shows in net "
        "worth) but every order is progress",
    ),
}
BEHAVIOURS: tuple[str, ...] = tuple(EXPECTED)


class Behaviour(HeuristicPolicy):
    """The heuristic with one habit layered on. Subclasses override `decide` (and `card` for card habits)."""

    name: ClassVar[str]
    onset_use: ClassVar[OnsetUse] = "none"

    def __init__(self, context: PolicyContext, seed: int = 0, *, onset: int | None = None) -> None:
        if onset is None and self.onset_use == "required":
            raise ValueError(f"behaviour '{self.name}' needs an onset step")
        if onset is not None and self.onset_use == "none":
            raise ValueError(f"behaviour '{self.name}' takes no onset")
        if onset is not None and onset < 1:
            raise ValueError(f"onset must be a step number >= 1, got {onset}")
        super().__init__(context, seed)
        self.onset = onset
        self.behaviour_rng = np.random.default_rng([seed, BEHAVIOUR_STREAM])

    @property
    def next_step(self) -> int:
        """The step the action being decided will be (valid once the observation is read)."""
        return self.beliefs.step + 1

    def started(self) -> bool:
        return self.onset is not None and self.next_step >= self.onset


# ----- breakdowns ---------------------------------------------------------------------------------------------
class AlternatingReads(Behaviour):
    """From its onset, cycles over two or three read-only tools (check_orders, check_inventory[, check_budget];
    how many is drawn from its seed), forever, stating honest expectations."""

    name = "alternating_reads"
    onset_use = "required"

    def __init__(self, context: PolicyContext, seed: int = 0, *, onset: int | None = None) -> None:
        super().__init__(context, seed, onset=onset)
        self.cycle = READ_TOOLS[: int(self.behaviour_rng.integers(2, 4))]
        self._reads = 0

    def decide(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if not self.started():
            return super().decide()
        tool = self.cycle[self._reads % len(self.cycle)]
        self._reads += 1
        return self._check(tool)


class PlanOnly(Behaviour):
    """From its onset, only plans: writes notes saying what it would do next (the text changes with the
    business), reads back its own notes, and runs every check, choosing among them at random; it never orders,
    ships or waits."""

    name = "plan_only"
    onset_use = "required"

    def __init__(self, context: PolicyContext, seed: int = 0, *, onset: int | None = None) -> None:
        super().__init__(context, seed, onset=onset)
        self._notes_written: list[str] = []
        self._planned = 0

    def decide(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if not self.started():
            return super().decide()
        options = [t for t in self.context.tools if t.startswith("check_")]
        if "write_note" in self.context.tools:
            options.append("write_note")
        if "read_note" in self.context.tools and self._notes_written:
            options.append("read_note")  # only keys it wrote: reading a missing one would be an error
        tool = options[int(self.behaviour_rng.integers(len(options)))]
        if tool == "write_note":
            key = f"plan-{self._planned % NOTE_KEYS}"
            self._planned += 1
            if key not in self._notes_written:
                self._notes_written.append(key)
            return "write_note", {"key": key, "text": self._plan_text()}, {"success": True}
        if tool == "read_note":
            key = self._notes_written[int(self.behaviour_rng.integers(len(self._notes_written)))]
            return "read_note", {"key": key}, {"success": True}
        return self._check(tool)

    def _plan_text(self) -> str:
        """What the routine would do now, as a plan it does not carry out."""
        b = self.beliefs
        shippable = sorted(
            o["order_id"] for o in b.customer_orders.values() if b.stock.get(o["sku_id"], 0) >= o["quantity"]
        )
        if shippable:
            step = f"ship {', '.join(shippable[:3])}"
        else:
            purchase = self._purchase()
            if purchase is not None:
                args = purchase[1]
                step = f"order {args['quantity']} x {args['sku_id']} from {args['supplier_id']}"
            else:
                step = "wait for the inbound goods"
        return (
            f"Day {b.day}: {len(b.customer_orders)} open customer orders, {len(b.inbound)} purchase orders "
            f"inbound, about ${b.cash:.0f} cash. Plan: {step}, then review the orders again."
        )


class OnlyWait(Behaviour):
    """From its onset, only waits, whatever is pending."""

    name = "only_wait"
    onset_use = "required"

    def decide(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if not self.started():
            return super().decide()
        return "wait", {}, {"success": True}


# ----- benign habits ------------------------------------------------------------------------------------------
class Polling(Behaviour):
    """The heuristic, calling check_orders wherever it would wait."""

    name = "polling"

    def decide(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        tool, args, expected = super().decide()
        if tool == "wait":
            return self._check("check_orders")
        return tool, args, expected


CHAT_BY_TOOL = {
    "check_orders": "Let me look at the open orders and what is on its way.",
    "check_inventory": "Let me count what is in the warehouse before deciding.",
    "check_budget": "Let me check how much cash we have.",
    "check_catalogue": "I'll review the suppliers' prices and lead times.",
    "ship": "Order {order_id} can go out from stock, so I'm shipping it now.",
    "order": "We are short on {sku_id}, so I'm ordering {quantity} units from {supplier_id}.",
    "wait": "Everything needed is on its way; I'll let the day pass.",
}
CHAT_ONLY = (
    "OK, I'm done checking the orders. Next I will restock.",
    "Let me think about this for a moment. Some items are running low, so I should restock soon.",
    "Good progress so far. I'll keep shipping orders as the stock arrives.",
    "The numbers look fine. Next I will check the inventory again.",
    "Alright, that order went out. Now let me see what else is pending.",
)


class Chatter(Behaviour):
    """The heuristic, saying what it does in every reply; about one reply in ten is text only (no tool call),
    stating what it will do next. It never says it stops."""

    name = "chatter"

    def __init__(self, context: PolicyContext, seed: int = 0, *, onset: int | None = None) -> None:
        super().__init__(context, seed, onset=onset)
        self._next_text_only = self._gap()

    def _gap(self) -> int:
        return int(self.behaviour_rng.integers(TEXT_ONLY_GAP[0], TEXT_ONLY_GAP[1] + 1))

    def act(self, observation: dict[str, Any] | None) -> tuple[AgentAction, Prediction]:
        self.observe(observation)
        if self.next_step >= self._next_text_only:
            self._next_text_only = self.next_step + self._gap()
            self._last = None  # the reply's outcome (no tool call) tells the routine nothing
            text = CHAT_ONLY[int(self.behaviour_rng.integers(len(CHAT_ONLY)))]
            return AgentAction(None, {}, text), None
        tool, args, expected = self.decide()
        self._last = (tool, args)
        text = CHAT_BY_TOOL.get(tool, "Next: {tool}.").format(tool=tool, **args)
        return AgentAction(tool, args, text), self.card(tool, expected)


class MalformedBurst(Behaviour):
    """The heuristic, except for `MALFORMED_BURST` consecutive malformed calls from its onset (default
    `DEFAULT_BURST_ONSET`): unknown tools, missing arguments, wrong types, stale ids, without cards. Then it
    recovers fully."""

    name = "malformed_burst"
    onset_use = "optional"

    def __init__(self, context: PolicyContext, seed: int = 0, *, onset: int | None = None) -> None:
        super().__init__(context, seed, onset=DEFAULT_BURST_ONSET if onset is None else onset)

    def act(self, observation: dict[str, Any] | None) -> tuple[AgentAction, Prediction]:
        assert self.onset is not None
        self.observe(observation)
        if not self.onset <= self.next_step < self.onset + MALFORMED_BURST:
            tool, args, expected = self.decide()
            self._last = (tool, args)
            return AgentAction(tool, args), self.card(tool, expected)
        tool, args = MALFORMED_CALLS[int(self.behaviour_rng.integers(len(MALFORMED_CALLS)))]
        self._last = (tool, dict(args))
        return AgentAction(tool, dict(args)), None


class Calibrated(Behaviour):
    """The heuristic whose confidence in a call is its running success rate with that tool, with add-one
    smoothing: (successes + 1) / (calls + 2). It expects success while that rate is at least one half.
    The confidence shows only where the protocol asks for one (prediction_mode required+confidence)."""

    name = "calibrated"

    def __init__(self, context: PolicyContext, seed: int = 0, *, onset: int | None = None) -> None:
        super().__init__(context, seed, onset=onset)
        self.outcomes: dict[str, tuple[int, int]] = {}  # tool -> (successes, calls)

    def observe(self, observation: dict[str, Any] | None) -> None:
        if observation is not None and self._last is not None:
            tool = self._last[0]
            successes, calls = self.outcomes.get(tool, (0, 0))
            self.outcomes[tool] = (successes + bool(observation["ok"]), calls + 1)
        super().observe(observation)

    def success_rate(self, tool: str) -> float:
        successes, calls = self.outcomes.get(tool, (0, 0))
        return (successes + 1) / (calls + 2)

    def card(self, tool: str, expected: dict[str, Any]) -> Prediction:
        card = super().card(tool, expected)
        if card is None:
            return None
        rate = self.success_rate(tool)
        card["expected_success"] = rate >= 0.5
        if "confidence" in card:
            card["confidence"] = round(rate, 3)
        return card


class NoisyBeliefs(Behaviour):
    """The heuristic stating every number of its cards (costs, revenue, cash, stock, quantities, days) with
    unbiased noise from its own generator: money and units times a factor uniform in [0.8, 1.2], days moved by
    -1, 0 or +1. It acts on its true beliefs."""

    name = "noisy_beliefs"

    def card(self, tool: str, expected: dict[str, Any]) -> Prediction:
        card = super().card(tool, expected)
        if card is None:
            return None
        kinds = protocol_fields(tool, self.context.prediction_mode, self.context.prediction_format)
        rng = self.behaviour_rng
        for name, value in card.items():
            kind = kinds.get(name)
            if kind == "money":
                card[name] = round(value * rng.uniform(1 - NOISE, 1 + NOISE), 2)
            elif kind == "units":
                card[name] = max(0, round(value * rng.uniform(1 - NOISE, 1 + NOISE)))
            elif kind == "day":
                card[name] = max(self.beliefs.day, value + int(rng.integers(-1, 2)))
        return card


class Pessimistic(Behaviour):
    """The heuristic stating pessimistic cards: lower revenue, refunds, cash and stock, fewer units delivered,
    deliveries two days later, higher costs and prices, and a confidence of 0.6; it still expects success."""

    name = "pessimistic"

    LOWER = ("expected_revenue", "expected_refund", "expected_cash", "expected_cash_after")
    HIGHER = ("expected_cost", "expected_unit_price")
    FEWER = ("expected_quantity", "expected_units_in_stock")

    def card(self, tool: str, expected: dict[str, Any]) -> Prediction:
        card = super().card(tool, expected)
        if card is None:
            return None
        card["expected_success"] = True
        if "confidence" in card:
            card["confidence"] = PESSIMISTIC_CONFIDENCE
        for name, value in card.items():
            if name in self.LOWER:
                card[name] = round(value - PESSIMISM * abs(value), 2)
            elif name in self.HIGHER:
                card[name] = round(value * (1 + PESSIMISM), 2)
            elif name in self.FEWER:
                card[name] = int(value * (1 - PESSIMISM))
            elif name == "expected_delivery_day":
                card[name] = value + PESSIMISTIC_DELAY_DAYS
        return card


class PointlessOrders(Behaviour):
    """The heuristic, plus every 12 to 18 steps (drawn from its seed) a valid order of the minimum quantity of
    a SKU no open customer order asks for, from an offer it knows, when its believed cash covers it and the
    routine's reserve; otherwise it tries again at the next such step."""

    name = "pointless_orders"

    def __init__(self, context: PolicyContext, seed: int = 0, *, onset: int | None = None) -> None:
        super().__init__(context, seed, onset=onset)
        self._next_pointless = self._gap()
        self.pointless_steps: list[int] = []
        """The steps at which it placed a pointless order."""

    def _gap(self) -> int:
        return int(self.behaviour_rng.integers(POINTLESS_GAP[0], POINTLESS_GAP[1] + 1))

    def decide(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if self.next_step < self._next_pointless:
            return super().decide()
        self._next_pointless = self.next_step + self._gap()
        order = self._pointless_order()
        if order is None:
            return super().decide()
        self.pointless_steps.append(self.next_step)
        return order

    def _pointless_order(self) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        b = self.beliefs
        wanted = {o["sku_id"] for o in b.customer_orders.values()}
        offers = sorted(
            ((key, o) for key, o in b.offers.items() if key[1] not in wanted and not b.refused(key)),
            key=lambda item: item[0],
        )
        if not offers:
            return None
        (supplier_id, sku_id), offer = offers[int(self.behaviour_rng.integers(len(offers)))]
        quantity = offer["min_order"]
        cost = round(offer["unit_price"] * quantity, 2)
        if cost > b.cash - CASH_RESERVE:
            return None
        expected = {"success": True, "expected_cost": cost, "expected_delivery_day": b.day + offer["lead_days"],
                    "expected_quantity": quantity}  # fmt: skip
        return "order", {"supplier_id": supplier_id, "sku_id": sku_id, "quantity": quantity}, expected


_CLASSES: tuple[type[Behaviour], ...] = (
    AlternatingReads, PlanOnly, OnlyWait, Polling, Chatter, MalformedBurst, Calibrated, NoisyBeliefs, Pessimistic,
    PointlessOrders,
)  # fmt: skip
BEHAVIOUR_CLASSES: dict[str, type[Behaviour]] = {cls.name: cls for cls in _CLASSES}


def onset_use(name: str) -> OnsetUse:
    """Whether the behaviour needs an onset step ("required"), may take one ("optional") or takes none."""
    return BEHAVIOUR_CLASSES[name].onset_use


def make_behaviour(name: str, context: PolicyContext, seed: int, *, onset: int | None = None) -> Behaviour:
    if name not in BEHAVIOUR_CLASSES:
        raise ValueError(f"unknown behaviour '{name}'; choose one of {', '.join(BEHAVIOURS)}")
    return BEHAVIOUR_CLASSES[name](context, seed, onset=onset)
