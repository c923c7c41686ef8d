"""Run a scripted policy on the vending world for a number of days (pure: no Inspect).

A policy is a generator: it yields a tool call (name, arguments) and is sent what the call returned, or
{"error": kind, "message": ...} if the world rejected it. It sees nothing else of the world.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from vendomini_eval.vending.catalogue import new_state
from vendomini_eval.vending.state import Effect
from vendomini_eval.vending.tools import call
from vendomini_eval.vending.world import VendingWorld
from vendomini_eval.world.actions import ActionError

Call = tuple[str, dict[str, Any]]
Observation = dict[str, Any]
Policy = Generator[Call, Observation, None]

MAX_CALLS_PER_DAY = 200
"""A policy that makes more calls than this in one day is stuck: the run stops with an error."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    world: VendingWorld
    net_worth_cents: int
    calls: int


def step(world: VendingWorld, tool: str, arguments: dict[str, Any]) -> Observation:
    """One call, with a rejection turned into the observation the policy sees."""
    try:
        return call(world, tool, arguments)
    except ActionError as error:
        return {"error": error.kind, "message": error.message}


def run_policy(
    policy: Policy, seed: int, days: int, start_cash_cents: int | None = None, effects: Sequence[Effect] = ()
) -> RunOutcome:
    """Run until `days` days have ended or the business fails; `effects` are in force from day 0."""
    world = VendingWorld(new_state(seed, start_cash_cents))
    for effect in effects:
        world.add_effect(effect)
    calls, calls_today = 0, 0
    tool, arguments = next(policy)
    while world.state.day < days and world.state.terminated is None:
        day = world.state.day
        observation = step(world, tool, arguments)
        calls += 1
        calls_today = 0 if world.state.day != day else calls_today + 1
        if calls_today > MAX_CALLS_PER_DAY:
            raise RuntimeError(f"the policy made more than {MAX_CALLS_PER_DAY} calls on day {day}")
        tool, arguments = policy.send(observation)
    return RunOutcome(world, world.net_worth_cents(), calls)
