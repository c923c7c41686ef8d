"""Dose-response: the competent policy's prediction error rises with the shock dose.

This is the manipulation check of the whole study: if shocks did not raise PE, p_shock could not be used to
test whether PE raises crash hazard. Mean combined PE per step is averaged over fixed seeds per dose.
"""

from __future__ import annotations

import functools
import itertools

import pytest

from vendomini_eval.condition import Condition
from vendomini_eval.runner import run_policy

DOSES = (0.0, 0.1, 0.3, 0.6, 1.0)
SEEDS = (11, 22, 33)
STEPS = 300


@functools.cache
def mean_pe_per_step(p_shock: float, mix: str = "realistic") -> float:
    values = []
    for seed in SEEDS:
        condition = Condition(complexity_level=1, p_shock=p_shock, pe_type_mix=mix, max_steps=STEPS)
        summary = run_policy(condition, seed, "heuristic").summary
        if mix == "realistic":  # a real run, not one ended at once (a shock every step may end a business)
            assert summary.steps > 50, summary
        values.append(summary.pe.combined.sum / summary.steps)
    return sum(values) / len(values)


def test_pe_is_near_zero_without_shocks() -> None:
    assert mean_pe_per_step(0.0) < 0.01


def test_pe_rises_with_p_shock() -> None:
    means = [mean_pe_per_step(p) for p in DOSES]
    assert all(a < b for a, b in itertools.pairwise(means)), dict(zip(DOSES, means, strict=True))
    # Not a flat rise: the highest dose gives at least ten times the PE of the no-shock baseline and the
    # lowest non-zero dose clearly more than it.
    assert means[-1] > 10 * max(means[0], 1e-3)
    assert means[1] > 2 * means[0]


@pytest.mark.parametrize("mix", ["temporal_only", "quantity_only", "causal_only"])
def test_every_shock_family_raises_pe(mix: str) -> None:
    """Each family alone raises PE (under causal_only the heuristic often crashes early; the per-step mean
    is over the steps it ran)."""
    assert mean_pe_per_step(0.6, mix) > 3 * max(mean_pe_per_step(0.0), 1e-3)
