"""One episode: the single step function that every driver (the Inspect tools, the direct runner) calls.

`Episode.step` applies the agent's action, advances the clock, fires the scheduled shock, runs the day
boundary, resolves predictions, updates the PE tracker and the crash detector, and returns a JSON-ready
`StepResult`. Nothing of the step logic lives anywhere else.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vendomini_eval.condition import Condition
from vendomini_eval.crash import CrashDetector, CrashSignal, StepFacts, thresholds_for
from vendomini_eval.pe import (
    PE_COLUMNS,
    PEObservation,
    PETracker,
    brier,
    causal_pe,
    cost_pe,
    quantity_pe,
    temporal_pe,
)
from vendomini_eval.predictions import BELIEF_FIELDS, PE_TYPE_OF_KIND, PredictionCard, parse_card, protocol_fields
from vendomini_eval.shocks import ShockSchedule, apply_shock
from vendomini_eval.world.actions import ActionError, parse_args
from vendomini_eval.world.setup import new_world
from vendomini_eval.world.state import WorldState
from vendomini_eval.world.tools import TOOL_SPECS, available_tools
from vendomini_eval.world.world import World, dollars

NO_TOOL = "<no_tool>"
UNKNOWN_TOOL = "<unknown>"
STOP_PHRASES = (
    "i give up",
    "i am stopping",
    "i'm stopping",
    "i will stop",
    "i quit",
    "i am done",
    "i'm done",
)

# Outcome fields that resolve at once when the call succeeds: card field -> observation key and PE kind.
IMMEDIATE_FIELDS = {
    ("order", "expected_cost"): "total_cost",
    ("ship", "expected_revenue"): "revenue",
    ("expedite", "expected_cost"): "fee",
    ("cancel", "expected_refund"): "refund",
    ("get_quote", "expected_unit_price"): "unit_price",
    ("check_budget", "expected_cash"): "cash",
    ("check_inventory", "expected_units_in_stock"): "units_in_stock",
}
# Fields that resolve when a purchase order arrives.
DELIVERY_FIELDS = ("expected_delivery_day", "expected_quantity")
TRACE_HASH_CHARS = 16  # 64 bits tell a run's states apart; the full hash would be most of the log's bytes
TRACE_DECIMALS = 6  # PE values in the exported trace (the tracker keeps full precision)
_PE_ROW = struct.Struct(f"{len(PE_COLUMNS)}d")  # one trace row of PE values, as the trace's array stores it


@dataclass(frozen=True, slots=True)
class AgentAction:
    """What the agent did at one step: a tool call, or a reply without one (`tool` is None)."""

    tool: str | None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""


@dataclass(slots=True)
class StepResult:
    step: int
    day: int
    tool: str
    valid: bool
    error_kind: str | None
    message: str | None
    result: dict[str, Any] | None
    notices: list[str]
    pe: list[dict[str, Any]]
    signals: list[dict[str, Any]]
    state_hash: str
    terminated: str | None
    """Why the business failed at this step (bankrupt, customers_lost), or None."""
    crash: dict[str, Any] | None
    """The confirmed crash once there is one (it stays set for the rest of the run)."""
    done: bool
    """No further step may be taken: terminated, crashed (after continue_after_crash), or max_steps."""

    def observation(self) -> dict[str, Any]:
        """What the agent sees: the outcome of its call, the day, and any notices."""
        obs: dict[str, Any] = {"day": self.day, "ok": self.valid}
        if self.valid:
            obs["result"] = self.result
        else:
            obs["error"] = self.error_kind
            obs["message"] = self.message
        if self.notices:
            obs["notices"] = self.notices
        if self.terminated:
            obs["business_failed"] = self.terminated
        return obs

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def episode_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for the catalogue, the demand and the shock schedule, all from the run seed."""
    catalogue, demand, shocks = np.random.SeedSequence(seed).spawn(3)
    return np.random.default_rng(catalogue), np.random.default_rng(demand), np.random.default_rng(shocks)


class Trace:
    """The compact per-step record: base fields as one tuple per step, PE values in one flat float array
    (cheap to append; `columns()` turns it into named columns once, at the end)."""

    BASE_COLUMNS = (
        "step",
        "day",
        "tool",
        "valid",
        "error_kind",
        "cash_cents",
        "net_worth_cents",
        "shock",
        "notices",
        "state_hash",
    )

    def __init__(self) -> None:
        self._rows: list[tuple[Any, ...]] = []
        self._pe = array("d")
        self.signals: list[dict[str, Any]] = []

    def append(self, base: tuple[Any, ...], pe_values: tuple[float | int, ...]) -> None:
        self._rows.append(base)
        self._pe.frombytes(_PE_ROW.pack(*pe_values))  # one C call (extend converts value by value)

    def __len__(self) -> int:
        return len(self._rows)

    def column(self, name: str) -> list[Any]:
        if name in self.BASE_COLUMNS:
            i = self.BASE_COLUMNS.index(name)
            return [row[i] for row in self._rows]
        i, width = PE_COLUMNS.index(name), len(PE_COLUMNS)
        return [round(value, TRACE_DECIMALS) for value in self._pe[i::width]]

    def columns(self) -> dict[str, list[Any]]:
        return {name: self.column(name) for name in (*self.BASE_COLUMNS, *PE_COLUMNS)}


class Episode:
    """A run of one condition on one seed. Call `step` until `done`; read `summary()` at the end."""

    def __init__(self, condition: Condition, seed: int) -> None:
        self.condition = condition
        self.seed = seed
        self.tools = available_tools(condition)
        catalogue_rng, demand_rng, shock_rng = episode_streams(seed)
        self.world = World(new_world(condition, catalogue_rng), demand_rng)
        self.schedule = ShockSchedule(condition, shock_rng)
        self.pe = PETracker(condition.pe)
        self.detector = CrashDetector(thresholds_for(condition.crash_threshold), len(self.tools))
        self.trace = Trace()
        # Delivery predictions waiting for their purchase order: po_id -> [(prediction_id, field, value)].
        self._awaiting_delivery: dict[str, list[tuple[str, str, int]]] = {}
        self.unresolved_predictions = 0
        """Delivery predictions dropped because their purchase order was cancelled."""
        self.truncated = False
        self.done = False

    @property
    def state(self) -> WorldState:
        return self.world.state

    @property
    def crash(self) -> CrashSignal | None:
        return self.detector.crash

    # ----- the step ---------------------------------------------------------------------------------------
    def step(self, action: AgentAction, prediction: Mapping[str, Any] | None = None) -> StepResult:
        if self.done:
            raise RuntimeError("the episode is over; no further step may be taken")
        world, s = self.world, self.world.state
        step = s.step = s.step + 1  # set first, so the action's ledger entries carry their own step
        cash_before = s.cash_cents
        tool, result, error, card = self._act(action, prediction, f"P{step}")
        valid = error is None
        cash_after_action = s.cash_cents

        shock = self.schedule.at(step)
        if shock is not None:
            apply_shock(world, shock, self.condition)
        deliveries = world.end_day() if step % s.rules.steps_per_day == 0 else []

        observations, briers = self._resolve(step, tool, valid, result, card, cash_after_action)
        for d in deliveries:
            for prediction_id, name, value in self._awaiting_delivery.pop(d.po_id, ()):
                actual = d.arrival_day if name == "expected_delivery_day" else d.delivered_quantity
                observations.append(self._observe(step, prediction_id, name, value, actual))
        if tool == "cancel" and valid:
            self.unresolved_predictions += len(self._awaiting_delivery.pop(result["po_id"], ()))
        record = self.pe.update(step, observations, briers)

        notices = self._due_notices(step)
        spec = TOOL_SPECS.get(tool)
        info_only = spec is not None and spec.info_only
        mutated = valid and not info_only and tool != "wait"
        beliefs = [o.value for o in observations if o.field in BELIEF_FIELDS]
        facts = StepFacts(
            step=step,
            tool=tool,
            action_key=_action_key(tool, action.arguments),
            valid=valid,
            error_kind=error.kind if error else None,
            mutated=mutated,
            # Only calls that changed nothing can loop, so only their results need a digest.
            result_digest="" if mutated else _digest(result if valid else error.message),
            spend_cents=_spend(error, cash_before, cash_after_action),
            cash_cents=s.cash_cents,
            predicted_success=card.success_probability() if card else None,
            predicted_cash_cents=_stated_cash(card),
            belief_error=sum(beliefs) / len(beliefs) if beliefs else None,
            pending_work=bool(s.customer_orders),
            declared_stop=action.tool is None and _declares_stop(action.text),
            n_tools_available=len(self.tools),
            info_only=info_only,
        )
        signals = self.detector.observe(facts)
        for signal in signals:
            self.trace.signals.append(signal.to_dict())

        crash = self.detector.crash
        self.truncated = step >= self.condition.max_steps
        crash_over = crash is not None and step >= crash.resolved_step + self.condition.continue_after_crash
        self.done = bool(s.terminated) or self.truncated or crash_over
        state_hash = s.state_hash()
        self.trace.append(
            (step, s.day, tool, valid, error.kind if error else None, s.cash_cents, world.net_worth_cents(),
             shock.kind if shock else None, len(notices), state_hash[:TRACE_HASH_CHARS]),
            record.values,
        )  # fmt: skip
        return StepResult(
            step=step,
            day=s.day,
            tool=tool,
            valid=valid,
            error_kind=error.kind if error else None,
            message=error.message if error else None,
            result=result,
            notices=notices,
            pe=[_pe_dict(o) for o in observations],
            signals=[sig.to_dict() for sig in signals],
            state_hash=state_hash,
            terminated=s.terminated,
            crash=crash.to_dict() if crash else None,
            done=self.done,
        )

    def _act(
        self, action: AgentAction, prediction: Mapping[str, Any] | None, prediction_id: str
    ) -> tuple[str, dict[str, Any] | None, ActionError | None, PredictionCard | None]:
        """Validate and apply the action. Any problem becomes an ActionError; the state is then untouched."""
        if action.tool is None:
            return (
                NO_TOOL,
                None,
                ActionError("no_tool_call", "Your reply had no tool call. Use a tool."),
                None,
            )
        tool = action.tool
        if not isinstance(tool, str) or tool not in TOOL_SPECS:
            known = ", ".join(self.tools)
            return UNKNOWN_TOOL, None, ActionError("unknown_tool", f"No tool '{tool}'. Tools: {known}."), None
        if tool not in self.tools:
            return (
                tool,
                None,
                ActionError("unavailable_tool", f"{tool} is not available in this business."),
                None,
            )
        try:
            args = parse_args(tool, TOOL_SPECS[tool].args, action.arguments)
            card = parse_card(tool, prediction, self.condition, prediction_id)
        except ActionError as error:
            return tool, None, error, None
        try:
            return tool, self.world.apply(tool, args), None, card
        except ActionError as error:
            return tool, None, error, card

    def _observe(self, step: int, prediction_id: str, name: str, predicted: Any, actual: Any) -> PEObservation:
        kind = _FIELD_PE_TYPE[name]
        if kind == "temporal":
            value = temporal_pe(predicted, actual, self.condition.pe.temporal_half_days)
        elif kind == "quantity":
            value = quantity_pe(predicted, actual)
        elif kind == "cost":
            value = cost_pe(predicted, actual)
        else:
            value = causal_pe(predicted, bool(actual))
        return PEObservation(step, kind, value, prediction_id, name, predicted, actual)

    def _resolve(
        self,
        step: int,
        tool: str,
        valid: bool,
        result: dict[str, Any] | None,
        card: PredictionCard | None,
        cash_after_action: int,
    ) -> tuple[list[PEObservation], list[float]]:
        """PEs of the card fields whose outcome is known now; delivery fields wait for the goods."""
        if card is None:
            return [], []
        observations: list[PEObservation] = []
        briers: list[float] = []
        values = card.values
        probability = card.success_probability()
        if probability is not None:
            name = "confidence" if "confidence" in values else "expected_success"
            observations.append(self._observe(step, card.prediction_id, name, probability, valid))
            if "confidence" in values:
                briers.append(brier(probability, valid))
        if "expected_cash_after" in values:
            observations.append(
                self._observe(step, card.prediction_id, "expected_cash_after", values["expected_cash_after"],
                              cash_after_action)
            )  # fmt: skip
        if not valid or result is None:
            return observations, briers
        for name, value in values.items():
            key = IMMEDIATE_FIELDS.get((tool, name))
            if key is not None:
                actual = result[key]
                actual_units = round(actual * 100) if isinstance(actual, float) else actual
                observations.append(self._observe(step, card.prediction_id, name, value, actual_units))
            elif name in DELIVERY_FIELDS:
                self._awaiting_delivery.setdefault(result["po_id"], []).append((card.prediction_id, name, value))
        return observations, briers

    def _due_notices(self, step: int) -> list[str]:
        pending = self.state.pending_notices
        if not pending or all(n.deliver_step > step for n in pending):
            return []
        due = [n.text for n in pending if n.deliver_step <= step]
        self.state.pending_notices = [n for n in pending if n.deliver_step > step]
        return due

    # ----- reporting --------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The run's outcome: what the scorers and the direct runner report."""
        s, crash = self.state, self.detector.crash
        return {
            "seed": self.seed,
            "steps": s.step,
            "days": s.day,
            "crashed": crash is not None,
            "crash_type": crash.crash_type if crash else None,
            "time_to_crash": crash.onset_step if crash else s.step,
            "censored": crash is None,
            "crash": crash.to_dict() if crash else None,
            "terminated": s.terminated,
            "truncated": self.truncated,
            "net_worth": dollars(self.world.net_worth_cents()),
            "cash": dollars(s.cash_cents),
            "counters": s.counters.model_dump(),
            "shocks": sum(1 for kind in self.trace.column("shock") if kind),
            "pe": self.pe.summary(),
            "unresolved_predictions": self.unresolved_predictions,
            "signals": len(self.trace.signals),
        }


def _field_pe_types() -> dict[str, str]:
    """PE type of every card field (a field name has one kind whatever the tool)."""
    types: dict[str, str] = {}
    for tool in TOOL_SPECS:
        for name, kind in protocol_fields(tool, "required+confidence", "rich").items():
            if kind in PE_TYPE_OF_KIND:
                types[name] = PE_TYPE_OF_KIND[kind]
    return types


_FIELD_PE_TYPE = _field_pe_types()


def _digest(content: Any) -> str:
    """Short digest of an observation: results are built in a fixed key order, so repr is canonical."""
    return hashlib.blake2b(repr(content).encode(), digest_size=8).hexdigest()


def _action_key(tool: str, arguments: Any) -> str:
    if isinstance(arguments, Mapping):
        if not arguments:
            return f"{tool}[]"
        return f"{tool}{sorted(arguments.items(), key=lambda kv: str(kv[0]))!r}"
    return f"{tool}({arguments!r})"


def _spend(error: ActionError | None, cash_before: int, cash_after: int) -> int:
    if error is not None:
        return error.attempted_cents
    return max(0, cash_before - cash_after)


def _stated_cash(card: PredictionCard | None) -> int | None:
    if card is None:
        return None
    for name in ("expected_cash_after", "expected_cash"):
        if name in card.values:
            return int(card.values[name])
    return None


def _declares_stop(text: str) -> bool:
    lowered = text.lower()
    return any(phrase in lowered for phrase in STOP_PHRASES)


def _pe_dict(o: PEObservation) -> dict[str, Any]:
    return {
        "type": o.pe_type,
        "field": o.field,
        "value": round(o.value, 6),
        "predicted": o.predicted,
        "actual": o.actual,
    }
