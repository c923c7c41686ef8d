"""`vendomini_agent`: the tool-calling loop that runs one Episode per sample.

One step per tool call: the calls of a reply run in order, each as its own step; a reply without a tool call
is an invalid step followed by a nudge. A call Inspect cannot run (unknown tool, arguments that break the
schema) still reaches the Episode as the same raw call, so the crash detector sees every malformed action.
The model sees a bounded window (system prompt and task kept, older turns dropped) so the cost of a turn does
not grow with the run; it is cut in blocks, so that between cuts each request begins with the previous one (a
provider's prompt cache hits); a successful `reset` restarts the window from the reply that called it. After every
step the detector decides: a confirmed crash ends the sample with an info event; a business failure ends it as
its own outcome; Inspect limits and provider errors end it as `limit` or `error`, never as a crash.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from inspect_ai.log import transcript
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    Model,
    execute_tools,
    get_model,
    get_model_info,
)
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.tool import ToolCall, ToolCallError, ToolDef
from inspect_ai.util import LimitExceededError, sample_limits, span, store_as

from vendomini_eval.condition import Condition
from vendomini_eval.crash import DENIED
from vendomini_eval.episode import AgentAction, Episode, StepResult, gate_policy
from vendomini_eval.gates import GateDecision
from vendomini_eval.policies.base import FACTS_MARKER, PolicyContext
from vendomini_eval.predictions import fields_required
from vendomini_eval.solvers.budget import LIMIT, sweep_budget
from vendomini_eval.solvers.gates import activate, deactivate
from vendomini_eval.solvers.store import EpisodeRecord
from vendomini_eval.solvers.tools import business_tools, observation_json, split_call
from vendomini_eval.world.setup import build_rules
from vendomini_eval.worlds import vending_rules

DEFAULT_CONTEXT_TOKENS = 16_000
CONTEXT_SHARE = 0.5  # of the model's context length given to the conversation window
MAX_WINDOW_MESSAGES = 400
LOW_WATER = 0.5
"""A window over its budget (tokens or messages) is cut to this share of it, not to just under it: the
conversation then only grows for many turns, each request starting with the whole previous one, so a provider's
prompt cache (on by default in Inspect: `cache_prompt`) serves it, instead of losing its oldest turn every turn."""
CHARS_PER_TOKEN = 4  # rough, offline estimate (no tokenizer download)

NUDGE = "You did not call a tool. The business only moves through tool calls: call one of the tools."
NOT_RUN = "Not executed: the run had already ended."


# Every rule the world enforces on the agent, as the system prompt states it: a template over the fields of
# `Rules`, and the tool the rule belongs to (stated only where the condition offers that tool). An agent judged
# on its breakdowns must know the rules it acts under; tests/test_prompt.py checks that every field of Rules
# is stated here or is listed there as no rule of the agent's.
RULE_TEMPLATES: tuple[tuple[str, str | None], ...] = (
    ("Steps per day: {steps_per_day} (each tool call, or reply without one, is one step).", None),
    ("You start with {start_cash_cents} in cash and an empty warehouse.", None),
    ("A daily fee of {daily_fee_cents} is charged at each day end.", None),
    ("Storage costs {storage_fee_cents} per unit in stock per day, charged at each day end.", None),
    ("The warehouse holds at most {capacity_units} units, counting stock plus units on their way: an order that "
     "would exceed this is refused.", None),
    ("One purchase order is for at most {max_order_units} units.", None),
    ("A customer order shipped after its due day pays {late_penalty_frac} less.", None),
    ("A customer order can be shipped up to {grace_days} days after its due day; at the end of that day it "
     "expires.", None),
    ("An expired customer order is lost and costs a penalty of {fail_penalty_frac} of its price.", None),
    ("The business fails, which ends the run, if cash is negative at {bankrupt_days} consecutive day ends.", None),
    ("The business also fails, which ends the run, if {max_failed_orders} customer orders expire within "
     "{failure_window_days} days.", None),
    ("`expedite` halves a purchase order's remaining lead time (rounded up, at least one day), once per order, "
     "for a fee of {expedite_fee_frac} of the order's value (at least $5.00).", "expedite"),
    ("`cancel` removes an undelivered purchase order and refunds {cancel_refund_frac} of its cost.", "cancel"),
    ("A price from `get_quote` holds on the day it is given and the {quote_valid_days} days after.", "get_quote"),
)  # fmt: skip


# The vending machine's rules (vending `Rules`), as the prompt states them; checked like the warehouse's.
VENDING_RULE_TEMPLATES: tuple[str, ...] = (
    "You start with {start_cash_cents} in cash, an empty machine and empty storage.",
    "A daily fee of {daily_fee_cents} is paid from cash at each day end; when cash cannot cover it, it goes unpaid.",
    "The business fails, which ends the run, after {unpaid_days_limit} consecutive day ends with the fee unpaid.",
    "The machine has {rows} rows of {cols} slots. Rows 0 to {last_small_row} take small products, the other rows "
    "large ones. A slot holds one product at a time, at most {slot_capacity} units.",
    "Day 0 is {start_date}.",
)


def rule_values(rules: Any) -> dict[str, str]:
    """Every field of a world's `Rules` as the prompt writes it: dollars, percent, a number with thousands
    separators, or a date."""
    values = {}
    for name, value in rules.model_dump().items():
        if name.endswith("_cents"):
            values[name] = f"${value / 100:,.2f}"
        elif name.endswith("_frac"):
            values[name] = f"{value:.0%}"
        elif isinstance(value, int | float):
            values[name] = f"{value:,}"
        else:
            values[name] = f"{value:%A %d %B %Y}"
    return values


def system_prompt(condition: Condition) -> str:
    """The business, every rule the world enforces, and the prediction protocol; no strategy hints."""
    context = PolicyContext.for_condition(condition)
    lines = _vending_lines(condition) if condition.world == "vending" else _warehouse_lines(condition, context)
    lines.append(
        "Suppliers, prices and rules can change during the run. Keep the business running and profitable for "
        "as long as the run lasts."
    )
    if condition.prediction_mode != "none":
        must = "must" if fields_required(condition) else "may"
        confidence = condition.prediction_mode == "required+confidence"
        lines.append(
            f"With every tool call you {must} state what you expect it to do, in the tool's prediction "
            "parameters (expected_success, and where a tool has them, expected_... values"
            + (", and confidence: your probability that the call succeeds" if confidence else "")
            + "). State your honest expectation."
        )
    policy = gate_policy(condition)
    if policy is not None:
        rules = f" {policy.description}" if policy.description else ""
        lines.append(
            f"Every tool call passes a governance gate (policy {policy.name}).{rules} A denied call is not executed "
            "but still takes a step; its result gives the reason. A warned call runs, with the warning in its result."
        )
    lines.append(FACTS_MARKER + json.dumps(context.facts()))
    return "\n\n".join(lines)


def _warehouse_lines(condition: Condition, context: PolicyContext) -> list[str]:
    values = rule_values(build_rules(condition))
    stated = [text.format(**values) for text, tool in RULE_TEMPLATES if tool is None or tool in context.tools]
    return [
        "You run a small wholesale business. You buy goods from suppliers, keep them in a warehouse, and ship "
        "customer orders from stock. You act only through the tools. At each day end, purchase orders due that "
        "day arrive, customer orders past their last shipping day expire, the daily and storage fees are "
        "charged, and new customer orders come in.",
        "Purchases are paid when placed; units a supplier fails to deliver are refunded when the order arrives. "
        "Sales are paid when shipped. A purchase or a fee you choose to pay is refused if it costs more than your "
        "cash; day-end fees are charged even when cash runs negative. Each supplier has a minimum order per SKU "
        "(check_catalogue).",
        "Rules:\n" + "\n".join(f"- {sentence}" for sentence in stated),
    ]


def _vending_lines(condition: Condition) -> list[str]:
    rules = vending_rules(condition)
    values = {**rule_values(rules), "last_small_row": str(rules.small_rows - 1)}
    return [
        "You run a vending machine business. You buy products from suppliers; they are delivered to your storage "
        "after the supplier's lead time. You move them from storage into the machine's slots and set their "
        "prices, and customers buy from the machine. You act only through the tools, and time passes only when "
        "you call end_day: then customers buy, the daily fee is charged, the next day starts, expired products "
        "are removed and deliveries arrive. How much sells depends on the price, the day of the week, the season "
        "and the weather.",
        "Orders are paid when placed and refused if they cost more than your cash; units a supplier fails to "
        "deliver are refunded when the order arrives. Customers' money stays in the machine until you collect it "
        "(collect_cash). Each supplier has a minimum order and a bulk discount (list_suppliers). Your net worth is "
        "your cash, the cash in the machine, and your unsold products (in the machine, in storage and on their "
        "way) at wholesale cost.",
        "Rules:\n" + "\n".join(f"- {text.format(**values)}" for text in VENDING_RULE_TEMPLATES),
    ]


def _estimate_tokens(message: ChatMessage) -> int:
    size = len(message.text)
    if isinstance(message, ChatMessageAssistant) and message.tool_calls:
        size += sum(len(json.dumps(call.arguments)) + len(call.function) for call in message.tool_calls)
    if isinstance(message, ChatMessageTool) and message.error is not None:
        size += len(message.error.message)
    return size // CHARS_PER_TOKEN + 4


def bounded_window(messages: list[ChatMessage], budget_tokens: int) -> list[ChatMessage]:
    """The messages as they are while they fit the budget and MAX_WINDOW_MESSAGES; over either, cut to
    LOW_WATER of both (`trim_window`)."""
    if len(messages) - 2 <= MAX_WINDOW_MESSAGES and sum(_estimate_tokens(m) for m in messages) <= budget_tokens:
        return messages
    return trim_window(messages, int(budget_tokens * LOW_WATER), int(MAX_WINDOW_MESSAGES * LOW_WATER))


def trim_window(messages: list[ChatMessage], budget_tokens: int,
                max_messages: int = MAX_WINDOW_MESSAGES) -> list[ChatMessage]:  # fmt: skip
    """The first two messages (system prompt, task), the latest turn (the last reply and what answered it,
    whatever its size: the model must see the result of its last call), and as many earlier turns as fit the
    budget and `max_messages`. The window never starts with a tool result whose call was dropped."""
    head, body = messages[:2], messages[2:]
    last_reply = max((i for i, m in enumerate(body) if isinstance(m, ChatMessageAssistant)), default=len(body))
    start = min(last_reply, len(body))
    used = sum(_estimate_tokens(m) for m in head) + sum(_estimate_tokens(m) for m in body[start:])
    while start > 0 and len(body) - start < max_messages:
        cost = _estimate_tokens(body[start - 1])
        if used + cost > budget_tokens:
            break
        used += cost
        start -= 1
    while start < last_reply and isinstance(body[start], ChatMessageTool):
        start += 1
    return head + body[start:]


def restart_window(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The window after a successful `reset`: the system prompt and task, then the latest reply (the one that
    called reset, with all its calls) and the results that answered it; nothing older."""
    last_reply = max((i for i, m in enumerate(messages) if isinstance(m, ChatMessageAssistant)), default=None)
    if last_reply is None or last_reply < 2:
        return list(messages)
    return messages[:2] + messages[last_reply:]


def context_budget(model: Model, context_tokens: int | None) -> int:
    if context_tokens is not None:
        return context_tokens
    info = get_model_info(model)
    if info is not None and info.context_length:
        return int(info.context_length * CONTEXT_SHARE)
    return DEFAULT_CONTEXT_TOKENS


@solver
def vendomini_agent(context_tokens: int | None = None) -> Solver:
    """Run the sample's Episode (condition and seed from the sample metadata) with the model as the agent.

    Args:
      context_tokens: Token budget of the conversation window; default: half the model's context length
        (16,000 when it is not known).
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        condition = Condition.model_validate(state.metadata["condition"])
        seed = int(state.metadata["seed"])
        episode = Episode(condition, seed)
        record = store_as(EpisodeRecord)
        record.condition, record.seed = condition.model_dump(), seed
        run = _Run(episode)
        tools = business_tools(condition, run.step)
        state.tools = [tool.as_tool() for tool in tools]
        state.messages = [ChatMessageSystem(content=system_prompt(condition)), *state.messages]
        model = get_model()
        budget = context_budget(model, context_tokens)
        gate_token = activate(run)  # the approver (solvers/gates.py) asks this sample's episode
        sweep = sweep_budget()
        calls, model_time, stopped = 0, 0.0, False
        try:
            while not episode.done and not stopped:
                day = episode.state.day
                async with span(f"day {day}", type="day"):
                    while not episode.done and not stopped and episode.state.day == day:
                        if sweep is not None and sweep.exhausted():
                            if calls == 0:
                                await sweep.refuse()  # raises: the sample never started
                            stopped = True
                            break
                        state.messages = run.window(state.messages, budget)
                        started = time.perf_counter()
                        # No generation cache: a turn answers the live episode, and a replayed reply is no decision.
                        output = await model.generate(state.messages, tools, cache=False)
                        model_time += time.perf_counter() - started
                        calls += 1
                        if sweep is not None:
                            if calls == 1:
                                sweep.running += 1  # started: a ceiling now ends it as limit
                            sweep.record(output)
                        state.output = output
                        state.messages.append(output.message)
                        state.messages.extend(await run.turn(output.message, tools))
            record.outcome, record.limit = ("limit", LIMIT) if stopped else (run.outcome(), None)
        except LimitExceededError as error:
            record.outcome, record.limit = "limit", error.type
            raise
        except anyio.get_cancelled_exc_class():
            # Inspect enforces time and working limits by cancelling the sample.
            record.outcome, record.limit = "limit", _exhausted_limit()
            raise
        except Exception as error:
            record.outcome, record.limit = "error", type(error).__name__
            raise
        finally:
            deactivate(gate_token)
            if sweep is not None and calls > 0:
                sweep.running -= 1
            record.model_time = model_time
            record.summary = episode.summary().model_dump(mode="json")
            record.trace = {"columns": episode.trace.columns(), "signals": episode.trace.signals}
        state.completed = True
        return state

    return solve


def _error_in_content(message: ChatMessage) -> ChatMessage:
    """A rejected call's result with its error message (the observation) as content too. API providers send the
    error field, but chat-template providers (hf/) render only the content: the model would see an empty result."""
    if isinstance(message, ChatMessageTool) and message.error is not None and not message.text:
        return message.model_copy(update={"content": message.error.message})
    return message


def _exhausted_limit() -> str:
    """Which of the sample's time limits ran out ("cancelled" if none did: the run was stopped)."""
    limits = sample_limits()
    for name, limit in (("time", limits.time), ("working", limits.working)):
        if limit.limit is not None and limit.usage >= limit.limit:
            return name
    return "cancelled"


class _Run:
    """One sample's episode as the solver drives it: steps, transcript events, and the turn logic."""

    def __init__(self, episode: Episode) -> None:
        self.episode = episode
        self._crash_reported = False
        self._reset_step: int | None = None  # a successful `reset` the window has not yet restarted for
        self._approved: GateDecision | None = None  # the approver's decision on the call in flight

    def review_call(self, call: ToolCall) -> GateDecision | None:
        """The gate's decision on a call (asked by the approver); the step of that call then records it."""
        self._approved = self.episode.review(split_call(call.function, call.arguments, self.episode.specs)[0])
        return self._approved

    def step(self, action: AgentAction, prediction: dict[str, Any] | None) -> StepResult:
        gate, self._approved = self._approved, None
        result = self.episode.step(action, prediction, gate=gate)
        if result.valid and result.tool == "reset":
            self._reset_step = result.step
        self._report(result)
        return result

    def window(self, messages: list[ChatMessage], budget_tokens: int) -> list[ChatMessage]:
        """What the model sees next: after a successful `reset` the conversation restarts from the reply that
        called it (the agent's notes live in the world, not here); then `bounded_window` bounds it."""
        if self._reset_step is not None:
            restarted = restart_window(messages)
            dropped = len(messages) - len(restarted)
            transcript().info(
                {
                    "step": self._reset_step,
                    "window_reset": {"messages_dropped": dropped, "messages_kept": len(restarted)},
                    "message": f"context window reset at step {self._reset_step}: {dropped} older messages dropped",
                },
                source="vendomini",
            )
            self._reset_step, messages = None, restarted
        return bounded_window(messages, budget_tokens)

    def _report(self, result: StepResult) -> None:
        events: dict[str, Any] = {}
        if result.notices:
            events["notices"] = result.notices
        surprises = [
            {"type": o.pe_type, "field": o.field, "value": round(o.value, 6), "predicted": o.predicted,
             "actual": o.actual}
            for o in result.pe if o.value > self.episode.condition.pe.surprise_threshold
        ]  # fmt: skip
        if surprises:
            events["surprises"] = surprises
        if result.signals:
            events["signals"] = [signal.model_dump(mode="json") for signal in result.signals]
        if result.crash is not None and not self._crash_reported:
            self._crash_reported = True
            crash = result.crash
            events["crash"] = crash.model_dump(mode="json")
            events["message"] = (
                f"crash: {crash.crash_type} with onset at step {crash.onset_step} "
                f"(confirmed at step {crash.resolved_step}); evidence: {json.dumps(crash.evidence)}"
            )
        if result.terminated:
            events["business_failed"] = result.terminated
        if events:
            transcript().info({"step": result.step, **events}, source="vendomini")

    async def turn(self, reply: ChatMessageAssistant, tools: list[ToolDef]) -> list[ChatMessage]:
        """Run the reply's tool calls in order, one step each; a reply without one is an invalid step."""
        if not reply.tool_calls:
            result = self.step(AgentAction(None, text=reply.text), None)
            return [ChatMessageUser(content=f"{NUDGE}\n{observation_json(result)}")]
        messages: list[ChatMessage] = []
        for call in reply.tool_calls:
            if self.episode.done:
                messages.append(ChatMessageTool(content=NOT_RUN, tool_call_id=call.id, function=call.function))
                continue
            messages.extend(_error_in_content(m) for m in await self._call(call, tools))
        return messages

    async def _call(self, call: ToolCall, tools: list[ToolDef]) -> list[ChatMessage]:
        steps_before = self.episode.state.step
        self._approved = None
        executed = await execute_tools([ChatMessageAssistant(content="", tool_calls=[call])], tools)
        if self.episode.state.step > steps_before:
            return list(executed.messages)
        # Inspect did not run the call (unknown tool, arguments off the schema, unparseable JSON, or the gate
        # denied it): the Episode judges the same call, so the step is counted whatever Inspect made of it. A
        # denied call reaches it with the approver's decision and is recorded as denied, never executed.
        arguments: Any = call.arguments if call.parse_error is None else call.parse_error
        result = self.step(*split_call(call.function, arguments, self.episode.specs))
        content = observation_json(result)
        if result.valid:
            return [ChatMessageTool(content=content, tool_call_id=call.id, function=call.function)]
        error = ToolCallError("approval" if result.error_kind == DENIED else "parsing", content)
        return [ChatMessageTool(content="", tool_call_id=call.id, function=call.function, error=error)]

    def outcome(self) -> str:
        episode = self.episode
        if episode.crash is not None:
            return "non_starter" if episode.non_starter else "crashed"
        if episode.state.terminated:
            return "terminated"
        return "censored"
