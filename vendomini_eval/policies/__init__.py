"""Scripted policies: deterministic agents that decide only from their observations."""

from __future__ import annotations

from vendomini_eval.policies.base import Policy, PolicyContext
from vendomini_eval.policies.faults import FAULTS, FaultyHeuristic
from vendomini_eval.policies.heuristic import HeuristicPolicy
from vendomini_eval.policies.random_policy import RandomPolicy

POLICIES = ("heuristic", "random")


def make_policy(
    name: str, context: PolicyContext, seed: int, *, fault: str | None = None, onset: int | None = None
) -> Policy:
    """`heuristic` or `random`; a `fault` (with its `onset` step) turns the heuristic into a faulty variant."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy '{name}'; choose one of {', '.join(POLICIES)}")
    if fault is not None:
        if name != "heuristic":
            raise ValueError("faults are injected into the heuristic policy only")
        if onset is None:
            raise ValueError(f"fault '{fault}' needs an onset step")
        return FaultyHeuristic(context, seed, fault=fault, onset=onset)
    if onset is not None:
        raise ValueError("onset is given without a fault")
    return HeuristicPolicy(context, seed) if name == "heuristic" else RandomPolicy(context, seed)


__all__ = ["FAULTS", "POLICIES", "Policy", "PolicyContext", "make_policy"]
