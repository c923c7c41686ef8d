"""One episode: the single step function that every driver (the Inspect tools, the direct runner) calls.

`Episode.step` applies the agent's action, advances the clock, fires the scheduled shock, runs the day
boundary, resolves predictions, updates the PE tracker and the crash detector, and returns a JSON-ready
`StepResult`. Nothing of the step logic lives anywhere else. The business behind it (the warehouse or the vending
machine) is the condition's `world`, reached through one interface (`worlds.Business`).
"""

from __future__ import annotations

import re
import struct
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vendomini_eval.condition import Condition
from vendomini_eval.crash import DENIED, CrashDetector, CrashSignal, StepFacts, thresholds_for
from vendomini_eval.gates import GateCall, GateDecision, GatePolicy, evaluate, load_policy
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
from vendomini_eval.predictions import PE_TYPE_OF_KIND, PredictionCard, card_fields, parse_card, protocol_fields
from vendomini_eval.results import EpisodeSummary
from vendomini_eval.shocks import ShockSchedule, apply_shock
from vendomini_eval.world.actions import ON_DELIVERY, ActionError, parse_args
from vendomini_eval.world.world import dollars
from vendomini_eval.worlds import BUSINESSES, business_of, tool_arguments

NO_TOOL = "<no_tool>"
UNKNOWN_TOOL = "<unknown>"
REVISE = "revise_expectation"
# A stop statement ends its sentence: "I'm done." or "I give up for now", never "I'm done checking the orders".
_STOP = re.compile(
    r"\b(?:i give up|i quit|i(?: am|'m) (?:done|finished|stopping|quitting)|i(?: will|'ll) stop"
    r"|i (?:cannot|can't|can not) (?:continue|go on))"
    r"(?:\s+(?:here|now|for now|for good|with (?:this|the) (?:task|business|run|job)))?\s*(?:[.!]|$)"
)
# Anything that plans a next step makes the text a report of progress, not a stop.
_NEXT_STEP = re.compile(
    r"\b(?:next|then|i will|i'll|i am going to|i'm going to|let me|let's|now i|after that|afterwards|continue)\b"
)

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
    pe: list[PEObservation]
    """The predictions resolved at this step."""
    signals: list[CrashSignal]
    """The detector's signals of this step (candidates, confirmations, incoherence)."""
    state_hash: str
    terminated: str | None
    """Why the business failed at this step (bankrupt, customers_lost), or None."""
    crash: CrashSignal | None
    """The confirmed crash once there is one (it stays set for the rest of the run)."""
    done: bool
    """No further step may be taken: terminated, crashed (after continue_after_crash), or max_steps."""
    gate: GateDecision | None = None
    """The governance gate's decision on the call; None when the condition has no gate or it made no call."""

    def observation(self) -> dict[str, Any]:
        """What the agent sees: the outcome of its call (a denial with its reason, a warning beside the result),
        the day, and any notices."""
        obs: dict[str, Any] = {"day": self.day, "ok": self.valid}
        if self.valid:
            obs["result"] = self.result
        else:
            obs["error"] = self.error_kind
            obs["message"] = self.message
        if self.gate is not None and self.gate.decision == "warn":
            obs["gate_warning"] = self.gate.explanation
        if self.notices:
            obs["notices"] = self.notices
        if self.terminated:
            obs["business_failed"] = self.terminated
        return obs

    def to_dict(self) -> dict[str, Any]:
        """The step as JSON-ready data."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values["pe"] = [o._asdict() for o in self.pe]
        values["signals"] = [signal.model_dump(mode="json") for signal in self.signals]
        values["crash"] = self.crash.model_dump(mode="json") if self.crash else None
        values["gate"] = self.gate.label if self.gate else None
        return values


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
        "actionable",
        "predictions",
        "state_hash",
        "gate",
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
        self.business = business = business_of(condition)
        self.specs = business.specs
        self.tools = business.tools(condition)
        catalogue_rng, demand_rng, shock_rng = episode_streams(seed)
        self.world = business.build(condition, seed, catalogue_rng, demand_rng)
        self.schedule = ShockSchedule(condition, shock_rng)
        self.pe = PETracker(condition.pe)
        self.detector = CrashDetector(thresholds_for(condition.crash_threshold), len(self.tools))
        self.trace = Trace()
        # Delivery predictions waiting for their purchase order: po_id -> [(prediction_id, field, value)].
        self._awaiting_delivery: dict[str, list[tuple[str, str, int]]] = {}
        self.unresolved_predictions = 0
        """Delivery predictions dropped because their purchase order was cancelled."""
        self.shocks_void = 0
        """Shocks that fired with no target (e.g. a delay with nothing inbound): no change, no notice."""
        self.predictions_made = 0
        """Prediction values stated (card fields other than the rationale, and revisions)."""
        self.actions_without_card = 0
        """Calls of tools that take a card, made without one (only possible when predictions are optional)."""
        self.first_progress_step: int | None = None
        """The step of the agent's first productive action (a valid order, ship, expedite or cancel)."""
        # Units in stock as the agent was told (`Business.told_units`). A stated belief that contradicts what the
        # agent was told is incoherence; a wrong guess about what it was not told (a hidden short shipment) is a PE.
        self._told_units = business.units_in_stock(self.world)
        self.gate: GatePolicy | None = gate_policy(condition)
        self.gate_decisions: dict[str, int] = {}
        """Gate decisions by `<decision>:<reason>`."""
        self._denials_in_a_row = 0
        self.truncated = False
        self.done = False

    @property
    def state(self) -> Any:
        """The world's state (`WorldState` or `VendingState`)."""
        return self.world.state

    @property
    def crash(self) -> CrashSignal | None:
        return self.detector.crash

    @property
    def non_starter(self) -> bool:
        """The crash came before the agent's first productive action: it never functioned."""
        crash, first = self.detector.crash, self.first_progress_step
        return crash is not None and (first is None or first >= crash.onset_step)

    # ----- the gate ---------------------------------------------------------------------------------------
    def review(self, action: AgentAction) -> GateDecision | None:
        """The gate's decision on a call in the current state, without taking the step; None when the condition
        has no gate or the gate does not rule on it: a reply without a call, a tool the condition does not offer,
        arguments that are not a JSON object (what Inspect's approval never sees either)."""
        tool, arguments = action.tool, action.arguments
        if self.gate is None or tool not in self.tools or not isinstance(arguments, Mapping):
            return None
        call = GateCall(tool, arguments, self.state.cash_cents, self._cost(tool, arguments), self._denials_in_a_row)
        return evaluate(self.gate, call)

    def _cost(self, tool: str, arguments: Mapping[str, Any]) -> int:
        """What the call would commit now, as the world would charge it; 0 for a call that commits nothing or
        cannot be priced (the world rejects it for its own reason)."""
        try:
            return self.world.commitment_cents(tool, parse_args(tool, self.specs[tool].args, arguments))
        except ActionError:
            return 0

    # ----- the step ---------------------------------------------------------------------------------------
    def step(
        self, action: AgentAction, prediction: Mapping[str, Any] | None = None, gate: GateDecision | None = None
    ) -> StepResult:
        """One step. `gate` is the decision already made on this call (by Inspect's approver, through `review`);
        without it the Episode asks its gate itself. A denied call is a step of its own: not executed, the world
        unchanged by it, the clock advancing as for any step."""
        if self.done:
            raise RuntimeError("the episode is over; no further step may be taken")
        world, s, business = self.world, self.world.state, self.business
        actionable = business.actionable(world)  # the state the agent acts in
        decision = gate if gate is not None else self.review(action)
        if decision is not None:
            self.gate_decisions[decision.label] = self.gate_decisions.get(decision.label, 0) + 1
            self._denials_in_a_row = self._denials_in_a_row + 1 if decision.decision == "deny" else 0
        step = s.step = s.step + 1  # set first, so the action's ledger entries carry their own step
        cash_before = s.cash_cents
        units_before = business.units_in_stock(world)
        if decision is not None and decision.decision == "deny":
            tool, result, error, card = self._deny(action, prediction, f"P{step}", decision)
        else:
            tool, result, error, card = self._act(action, prediction, f"P{step}")
        valid = error is None
        cash_after_action = s.cash_cents
        belief_error = self._belief_error(card, cash_before, cash_after_action)
        units_after_action = business.units_in_stock(world)

        shock = self.schedule.at(step)
        applied = apply_shock(world, shock, self.condition, business.shock_effects) if shock is not None else None
        if applied is not None and applied.void:
            self.shocks_void += 1
        deliveries = business.advance(world, step, tool if valid else NO_TOOL)
        if valid:
            self._told_units = business.told_units(
                self._told_units, tool, result, units_before, units_after_action, deliveries
            )
        elif deliveries:
            self._told_units = business.told_units(self._told_units, NO_TOOL, {}, 0, 0, deliveries)

        observations, briers = self._resolve(step, tool, valid, result, card, cash_after_action)
        for d in deliveries:
            for prediction_id, name, value in self._awaiting_delivery.pop(d.po_id, ()):
                actual = d.arrival_day if name == "expected_delivery_day" else d.delivered_quantity
                observations.append(self._observe(step, prediction_id, name, value, actual))
        if tool == "cancel" and valid:
            self.unresolved_predictions += len(self._awaiting_delivery.pop(result["po_id"], ()))
        predictions = 0
        if card is not None:
            predictions = len(card.values) - ("rationale" in card.values)
        elif tool in self.tools and card_fields(tool, self.condition):
            self.actions_without_card += 1
        if tool == REVISE and valid:
            # A revision replaces the pending delivery expectation of that purchase order.
            po_id, revised = result["po_id"], f"R{step}"
            self._awaiting_delivery[po_id] = [
                (revised, "expected_delivery_day", result["expected_delivery_day"]),
                (revised, "expected_quantity", result["expected_quantity"]),
            ]
            predictions += 2
        self.predictions_made += predictions
        record = self.pe.update(step, observations, briers)

        notices = self._due_notices(step)
        spec = self.specs.get(tool)
        passive = tool in business.passive_tools
        attempted = spec is not None and not spec.info_only and not passive
        facts = StepFacts(
            step=step,
            tool=tool,
            action_key=_action_key(tool, action.arguments),
            valid=valid,
            error_kind=error.kind if error else None,
            attempted=attempted,
            progress=valid and business.progress(world, tool, result),
            actionable=actionable,
            spend_cents=_spend(error, cash_before, cash_after_action),
            cash_cents=s.cash_cents,
            predicted_success=card.success_probability() if card else None,
            predicted_cash_cents=_stated_cash(card),
            belief_error=belief_error,
            declared_stop=action.tool is None and declares_stop(action.text),
            passive=passive,
        )
        if facts.progress and self.first_progress_step is None:
            self.first_progress_step = step
        signals = self.detector.observe(facts)
        if s.terminated:
            signals += self.detector.business_failed(step)
        for signal in signals:
            self.trace.signals.append(signal.model_dump(mode="json"))

        crash = self.detector.crash
        max_days = self.condition.max_days
        self.truncated = step >= self.condition.max_steps or (max_days is not None and s.day >= max_days)
        crash_over = crash is not None and step >= crash.resolved_step + self.condition.continue_after_crash
        self.done = bool(s.terminated) or self.truncated or crash_over
        state_hash = s.state_hash()
        self.trace.append(
            (step, s.day, tool, valid, error.kind if error else None, s.cash_cents, world.net_worth_cents(),
             applied.variant if applied and not applied.void else None, len(notices), actionable, predictions,
             state_hash[:TRACE_HASH_CHARS], decision.label if decision else None),
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
            pe=list(observations),
            signals=list(signals),
            state_hash=state_hash,
            terminated=s.terminated,
            crash=crash,
            done=self.done,
            gate=decision,
        )

    def _deny(
        self, action: AgentAction, prediction: Mapping[str, Any] | None, prediction_id: str, decision: GateDecision
    ) -> tuple[str, None, ActionError, PredictionCard | None]:
        """A denied call: nothing is executed. Its card is kept when it is well formed, so a stated expectation of
        success resolves against the refusal as for any rejected call."""
        tool = str(action.tool)
        try:
            card = parse_card(tool, prediction, self.condition, prediction_id)
        except ActionError:
            card = None
        # The attempted spend is what the call would have committed: committing money beyond the cash is
        # budget_denial's event whether the gate or the world refuses it.
        error = ActionError(DENIED, decision.explanation, decision.cost_cents)  # type: ignore[arg-type]
        return tool, None, error, card

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
        if not isinstance(tool, str) or tool not in self.specs:
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
            args = parse_args(tool, self.specs[tool].args, action.arguments)
            card = parse_card(tool, prediction, self.condition, prediction_id)
        except ActionError as error:
            return tool, None, error, None
        try:
            return tool, self.specs[tool].apply(self.world, args), None, card
        except ActionError as error:
            return tool, None, error, card

    def _belief_error(self, card: PredictionCard | None, cash_before: int, cash_after_action: int) -> float | None:
        """Mean error of the card's stated beliefs against what the agent was told; None when it states none.

        Cash: the cash before the call (for a cash-after belief, after it): every change of cash is reported by
        the agent's own calls or follows a stated rule (fees, penalties, refunds of missing units). Stock: the
        units as told (`_told_units`)."""
        if card is None:
            return None
        values, errors = card.values, []
        if "expected_cash" in values:
            errors.append(cost_pe(values["expected_cash"], cash_before))
        if "expected_cash_after" in values:
            errors.append(cost_pe(values["expected_cash_after"], cash_after_action))
        if "expected_units_in_stock" in values:
            errors.append(quantity_pe(values["expected_units_in_stock"], self._told_units))
        return sum(errors) / len(errors) if errors else None

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
        outcomes = self.specs[tool].outcomes  # each outcome field resolves as the tool's declaration says
        for name, value in values.items():
            key = outcomes.get(name)
            if key == ON_DELIVERY:
                self._awaiting_delivery.setdefault(result["po_id"], []).append((card.prediction_id, name, value))
            elif key is not None:
                actual = result[key]
                actual_units = round(actual * 100) if isinstance(actual, float) else actual
                observations.append(self._observe(step, card.prediction_id, name, value, actual_units))
        return observations, briers

    def _due_notices(self, step: int) -> list[str]:
        pending = self.state.pending_notices
        if not pending or all(n.deliver_step > step for n in pending):
            return []
        due = [self.world.deliver_notice(n) for n in pending if n.deliver_step <= step]
        self.state.pending_notices = [n for n in pending if n.deliver_step > step]
        return due

    # ----- reporting --------------------------------------------------------------------------------------
    def summary(self) -> EpisodeSummary:
        """The run's outcome: what the scorers, the direct runner and the analysis report."""
        s, crash, incoherence = self.state, self.detector.crash, self.detector.incoherence
        return EpisodeSummary(
            seed=self.seed,
            steps=s.step,
            days=s.day,
            crashed=crash is not None,
            crash_type=crash.crash_type if crash else None,
            time_to_crash=crash.onset_step if crash else s.step,
            censored=crash is None,
            crash=crash,
            non_starter=self.non_starter,
            first_progress_step=self.first_progress_step,
            incoherent=incoherence is not None,
            incoherence_type=incoherence.crash_type if incoherence else None,
            time_to_incoherence=incoherence.onset_step if incoherence else s.step,
            incoherence=incoherence,
            terminated=s.terminated,
            truncated=self.truncated,
            net_worth=dollars(self.world.net_worth_cents()),
            cash=dollars(s.cash_cents),
            **self.business.totals(self.world),
            shocks=sum(1 for variant in self.trace.column("shock") if variant),
            shocks_void=self.shocks_void,
            pe=self.pe.summary(),
            unresolved_predictions=self.unresolved_predictions,
            predictions_made=self.predictions_made,
            actions_without_card=self.actions_without_card,
            signals=len(self.trace.signals),
            **self._gate_totals(),
        )

    def _gate_totals(self) -> dict[str, Any]:
        if self.gate is None:
            return {}
        totals = dict.fromkeys(("allow", "warn", "deny"), 0)
        for label, n in self.gate_decisions.items():
            totals[label.split(":", 1)[0]] += n
        return {"gate_allowed": totals["allow"], "gate_warned": totals["warn"], "gate_denied": totals["deny"],
                "gate_decisions": dict(sorted(self.gate_decisions.items()))}  # fmt: skip


def gate_policy(condition: Condition) -> GatePolicy | None:
    """The condition's gate policy, with every tool and argument its rules name checked against the tool
    declarations; None when the condition has no gate. Raises GatePolicyError."""
    if condition.gates is None:
        return None
    return load_policy(condition.gates, tool_arguments(business_of(condition)))


def _field_pe_types() -> dict[str, str]:
    """PE type of every card field (a field name has one kind whatever the tool)."""
    types: dict[str, str] = {}
    for world, business in BUSINESSES.items():
        for tool in business.specs:
            for name, kind in protocol_fields(tool, "required+confidence", "rich", world).items():
                if kind in PE_TYPE_OF_KIND:
                    types[name] = PE_TYPE_OF_KIND[kind]
    return types


_FIELD_PE_TYPE = _field_pe_types()


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


def declares_stop(text: str) -> bool:
    """An explicit statement of stopping the task with no next step ("I give up.", "I'm done."); a report such
    as "I'm done checking the orders. Next I will restock." is not one."""
    lowered = text.lower().replace("\u2019", "'")
    match = _STOP.search(lowered)
    if match is None:
        return False
    rest = lowered[: match.start()] + " " + lowered[match.end() :]
    return _NEXT_STEP.search(rest) is None
