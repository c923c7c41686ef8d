"""What a sweep will spend, before it runs: tokens, calls and cost per model (`vendomini plan --model`).

Two methods, each named in the output:

* **prior**: from the run's own texts. Per condition: the prompt every request starts with (system prompt,
  task, tool schemas: the texts the solver sends), the tokens one step adds to the conversation (the model's
  call with its card, and the tool's result), measured by playing the competent heuristic for up to
  PROBE_STEPS steps, and the window the solver keeps (`solvers.agent.bounded_window`: the model's context
  budget and MAX_WINDOW_MESSAGES, cut to LOW_WATER). Each step is one call; every run lasts max_steps.
  Tokens are characters / 4. A request's cacheable input is the part that repeats the previous request. A
  model that writes text besides its calls, or breaks down early, spends otherwise: calibrate with a pilot.
* **pilot**: from a pilot's logs (`--from-logs`): per model, the tokens, cached tokens, calls and cost it spent
  per planned step (the max_steps of its runs), times the steps the plan runs. Runs that end early spend less in
  both, so the rate carries over; a pilot with shorter runs than the plan underestimates the input per step
  (the window is still growing), which the output says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vendomini_eval.budget import Price
from vendomini_eval.condition import Condition

PROBE_STEPS = 200
"""Steps of the heuristic played per condition to measure what one step adds to the conversation."""
MESSAGE_OVERHEAD = 4
"""Tokens a message costs beyond its text (roles, separators), as the solver's window estimate counts them."""


@dataclass(frozen=True)
class Projection:
    model: str
    method: str
    runs: int
    steps: int
    calls: float
    input_tokens: float
    """All input tokens, cached ones included."""
    cached_tokens: float
    output_tokens: float
    cost: float | None
    note: str = ""

    @property
    def total_tokens(self) -> float:
        return self.input_tokens + self.output_tokens


def _tokens(text: str) -> int:
    return len(text) // 4


def prompt_tokens(condition: Condition) -> int:
    """Tokens of what every request starts with: the system prompt, the task, the tool schemas."""
    from vendomini_eval.solvers.agent import system_prompt
    from vendomini_eval.solvers.tools import business_tools
    from vendomini_eval.tasks._build import TASK_INPUT

    schemas = [json.dumps({"name": t.name, "description": t.description,
                           "parameters": t.parameters.model_dump(exclude_none=True)})
               for t in business_tools(condition, _no_step)]  # fmt: skip
    text = system_prompt(condition) + TASK_INPUT.format(run_id="0") + "".join(schemas)
    return _tokens(text) + 2 * MESSAGE_OVERHEAD


def _no_step(*_: object) -> None:
    raise AssertionError("the estimate never runs a tool")


def step_tokens(condition: Condition, seed: int) -> tuple[float, float]:
    """(reply, result): mean tokens of the heuristic's call (arguments and card) and of its result, per step."""
    from vendomini_eval.episode import Episode
    from vendomini_eval.policies import PolicyContext, make_policy
    from vendomini_eval.solvers.tools import observation_json

    probe = condition.model_copy(update={"max_steps": min(condition.max_steps, PROBE_STEPS)})
    episode = Episode(probe, seed)
    agent = make_policy("heuristic", PolicyContext.for_condition(probe), seed)
    observation, replies, results = None, 0, 0
    while not episode.done:
        action, prediction = agent.act(observation)
        result = episode.step(action, prediction)
        observation = result.observation()
        call = {"name": action.tool, "arguments": {**dict(action.arguments or {}), **(prediction or {})}}
        replies += _tokens(action.text + json.dumps(call)) + MESSAGE_OVERHEAD
        results += _tokens(observation_json(result)) + MESSAGE_OVERHEAD
    steps = max(1, episode.state.step)
    return replies / steps, results / steps


def window_tokens(steps: int, prompt: int, reply: float, result: float, budget: int,
                  max_messages: int, low_water: float) -> tuple[float, float]:  # fmt: skip
    """(input, cacheable input) summed over the calls of a run of `steps` steps: each request is the prompt and
    the window; the window grows by a reply and a result per step and is cut to `low_water` of the budget and
    of `max_messages` when it passes either (as `bounded_window` does)."""
    per_step = reply + result
    window, messages = 0.0, 0
    total = cached = 0.0
    previous: float | None = None
    for _ in range(steps):
        if prompt + window > budget or messages > max_messages:
            keep = min(max(0.0, low_water * budget - prompt), max_messages * low_water / 2 * per_step)
            window, messages = keep, int(keep / per_step) * 2 if per_step else 0
            previous = None  # a cut changes the prefix: only the prompt repeats
        request = prompt + window
        total += request
        cached += prompt if previous is None else previous
        previous = request
        window += per_step
        messages += 2
    return total, cached - prompt  # the first request of a run has nothing to repeat


def prior(conditions: Sequence[Condition], seeds: Sequence[int], replications: int, model: str,
          context_budget: int, price: Price | None) -> Projection:  # fmt: skip
    """The prior projection of one model over the conditions (see the module's docstring)."""
    from vendomini_eval.solvers.agent import LOW_WATER, MAX_WINDOW_MESSAGES

    calls = input_tokens = cached = output = 0.0
    for condition, seed in zip(conditions, seeds, strict=True):
        prompt = prompt_tokens(condition)
        reply, result = step_tokens(condition, seed)
        total, repeat = window_tokens(condition.max_steps, prompt, reply, result, context_budget,
                                      MAX_WINDOW_MESSAGES, LOW_WATER)  # fmt: skip
        calls += condition.max_steps * replications
        input_tokens += total * replications
        cached += repeat * replications
        output += condition.max_steps * (reply - MESSAGE_OVERHEAD) * replications
    steps = sum(c.max_steps for c in conditions) * replications
    cost = None if price is None else price.cost(input_tokens - cached, output, cache_read=cached)
    return Projection(model=model, method="prior", runs=len(conditions) * replications, steps=steps, calls=calls,
                      input_tokens=input_tokens, cached_tokens=cached, output_tokens=output, cost=cost)  # fmt: skip


@dataclass(frozen=True)
class PilotRates:
    """What a pilot spent per planned step, per model."""

    model: str
    planned_steps: int
    max_steps: int
    calls: float
    input_tokens: float
    cached_tokens: float
    output_tokens: float
    cost: float | None


def from_pilot(rates: PilotRates, steps: int, runs: int, max_steps: int, price: Price | None) -> Projection:
    """The plan's spend at the pilot's rates per planned step; priced with `price` when given, else at the
    pilot's cost per step (unknown if the pilot's was)."""
    scale = steps / rates.planned_steps
    input_tokens, cached, output = (rates.input_tokens * scale, rates.cached_tokens * scale,
                                    rates.output_tokens * scale)  # fmt: skip
    if price is not None:
        cost: float | None = price.cost(input_tokens - cached, output, cache_read=cached)
    else:
        cost = None if rates.cost is None else rates.cost * scale
    note = ""
    if rates.max_steps < max_steps:
        note = (f"the pilot's runs had {rates.max_steps} steps, the plan's up to {max_steps}: input per step grows "
                "until the window is full, so this underestimates")  # fmt: skip
    return Projection(model=rates.model, method="pilot", runs=runs, steps=steps, calls=rates.calls * scale,
                      input_tokens=input_tokens, cached_tokens=cached, output_tokens=output, cost=cost,
                      note=note)  # fmt: skip


def format_projections(projections: Sequence[Projection], prices: Mapping[str, Price]) -> str:
    """The projection table, one row per model, and a line per note."""
    header = f"{'model':<32} {'method':<6} {'runs':>6} {'steps':>10} {'calls':>10} {'input':>14} {'cached':>14} " \
             f"{'output':>12} {'total':>14} {'cost':>12}"  # fmt: skip
    lines = ['projected spend (tokens: characters/4 for the prior; see docs/METHOD.md, "Sweep budgets"):', header]
    for p in projections:
        cost = "unknown" if p.cost is None else f"${p.cost:,.2f}"
        lines.append(f"{p.model:<32} {p.method:<6} {p.runs:>6,} {p.steps:>10,} {p.calls:>10,.0f} "
                     f"{p.input_tokens:>14,.0f} {p.cached_tokens:>14,.0f} {p.output_tokens:>12,.0f} "
                     f"{p.total_tokens:>14,.0f} {cost:>12}")  # fmt: skip
    for p in projections:
        if p.note:
            lines.append(f"note ({p.model}): {p.note}")
        if p.cost is None and p.model not in prices:
            lines.append(f"note ({p.model}): no price (give one with --prices FILE)")
    return "\n".join(lines)


def pilot_rates(runs: Any) -> list[PilotRates]:
    """Per model, what a pilot's runs (the analysis' runs table) spent and the steps they were planned for."""
    rates = []
    for model, part in runs.groupby("model", sort=True):
        planned = int(part["max_steps"].sum())
        cost = None if part["cost_usd"].isna().any() else float(part["cost_usd"].sum())
        rates.append(PilotRates(model=str(model), planned_steps=planned, max_steps=int(part["max_steps"].max()),
                                calls=float(part["calls"].sum()),
                                input_tokens=float(part["input_tokens"].sum() + part["cache_read_tokens"].sum()),
                                cached_tokens=float(part["cache_read_tokens"].sum()),
                                output_tokens=float(part["output_tokens"].sum()), cost=cost))  # fmt: skip
    return rates


def context_budget_of(model: str) -> int:
    """The conversation window the solver gives `model` (`solvers.agent.context_budget`), from Inspect's model
    data without starting the provider; the solver's default when Inspect does not know the model."""
    from vendomini_eval.solvers.agent import CONTEXT_SHARE, DEFAULT_CONTEXT_TOKENS

    try:
        from inspect_ai.model import get_model_info

        info = get_model_info(model)
    except Exception:  # a provider that cannot start here (no key, no SDK): its context length is not known
        info = None
    if info is None or not info.context_length:
        return DEFAULT_CONTEXT_TOKENS
    return int(info.context_length * CONTEXT_SHARE)
