"""Scripted policies: deterministic agents that decide only from their observations."""

from __future__ import annotations

from vendomini_eval.policies.attentive import AttentivePolicy
from vendomini_eval.policies.base import Policy, PolicyContext
from vendomini_eval.policies.behaviours import BEHAVIOURS, BENIGN, EXPECTED, make_behaviour
from vendomini_eval.policies.faults import FAULTS, FaultyHeuristic
from vendomini_eval.policies.heuristic import HeuristicPolicy
from vendomini_eval.policies.open_loop import OpenLoopPolicy
from vendomini_eval.policies.random_policy import RandomPolicy
from vendomini_eval.policies.vending import FaultyVendingHeuristic, VendingHeuristic

SIMPLE_POLICIES = {"heuristic": HeuristicPolicy, "attentive": AttentivePolicy, "random": RandomPolicy,
                   "open_loop": OpenLoopPolicy}  # fmt: skip
"""Policies that take no onset: the competent heuristic, its notice-reading variant, and two baselines."""
POLICIES = (*SIMPLE_POLICIES, *BEHAVIOURS)


def make_policy(
    name: str, context: PolicyContext, seed: int, *, fault: str | None = None, onset: int | None = None
) -> Policy:
    """`heuristic`, `attentive`, `random`, `open_loop`, or one of the LLM-like `BEHAVIOURS` (breakdowns need
    their `onset` step; `malformed_burst` takes one for where its burst starts). A `fault` (with its `onset`
    step) turns the heuristic into a faulty variant. The vending world has only the heuristic and its faults."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy '{name}'; choose one of {', '.join(POLICIES)}")
    if context.world == "vending" and name != "heuristic":
        raise ValueError(f"policy '{name}' plays the warehouse only; the vending world has heuristic and its faults")
    if fault is not None:
        if name != "heuristic":
            raise ValueError("faults are injected into the heuristic policy only")
        if onset is None:
            raise ValueError(f"fault '{fault}' needs an onset step")
        faulty = FaultyVendingHeuristic if context.world == "vending" else FaultyHeuristic
        return faulty(context, seed, fault=fault, onset=onset)
    if name in BEHAVIOURS:
        return make_behaviour(name, context, seed, onset=onset)
    if onset is not None:
        raise ValueError("onset is given without a fault")
    if context.world == "vending":
        return VendingHeuristic(context, seed)
    return SIMPLE_POLICIES[name](context, seed)


__all__ = ["BEHAVIOURS", "BENIGN", "EXPECTED", "FAULTS", "POLICIES", "Policy", "PolicyContext", "make_policy"]
