"""Fault-injected heuristics against the real Episode: each fault is detected as its own type on its own endpoint
(the primary crash, or incoherence for `SECONDARY` faults) with an onset close to the injected one, the competent
heuristic is never crashed without shocks, and a faulty policy is the heuristic until its onset. The full
statistics are `bench/validate_detector.py`'s; this is its fast core."""

from __future__ import annotations

import statistics

import pytest

from vendomini_eval.condition import Condition
from vendomini_eval.crash import CrashSignal
from vendomini_eval.policies import FAULTS
from vendomini_eval.results import EpisodeSummary
from vendomini_eval.runner import run_policy

# The validation condition of bench/validate_detector.py (moderate preset), at a few onsets.
VALIDATION = Condition(complexity_level=1, p_shock=0.1, prediction_mode="required", max_steps=500)
ONSETS = {0: 80, 1: 117, 2: 154, 3: 191, 4: 107}  # seed -> injected onset
WINDOW = (-10, 50)  # a correct detection's onset error, in steps
MEDIAN_LATENCY = 10
SECONDARY = ("decoupling", "slow_divergence")
"""Faults judged on the secondary endpoint (incoherence); the others on the primary crash."""


def detection(summary: EpisodeSummary, fault: str) -> CrashSignal | None:
    """The signal the fault is judged on: the run's incoherence for a secondary fault, else its crash."""
    return summary.incoherence if fault in SECONDARY else summary.crash


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_detected_as_its_own_type_near_its_onset(fault: str) -> None:
    errors = []
    for seed, onset in ONSETS.items():
        signal = detection(run_policy(VALIDATION, seed, "heuristic", fault=fault, onset=onset).summary, fault)
        assert signal is not None, (fault, seed)
        assert signal.crash_type == fault, (seed, signal)
        assert signal.endpoint == ("incoherence" if fault in SECONDARY else "crash"), signal
        errors.append(signal.onset_step - onset)
        assert WINDOW[0] <= errors[-1] <= WINDOW[1], (seed, signal)
    assert statistics.median(abs(e) for e in errors) <= MEDIAN_LATENCY, errors


@pytest.mark.parametrize("level", range(5))
def test_competent_heuristic_without_shocks_never_crashes(level: int) -> None:
    condition = Condition(complexity_level=level, p_shock=0.0, prediction_mode="required", max_steps=500)
    for seed in range(20):
        summary = run_policy(condition, 1000 + seed, "heuristic").summary
        assert not summary.crashed, (level, seed, summary.crash)


@pytest.mark.parametrize("fault", FAULTS)
def test_faulty_policy_is_the_heuristic_before_its_onset(fault: str) -> None:
    onset = 60
    healthy = run_policy(VALIDATION.model_copy(update={"max_steps": onset - 1}), 3, "heuristic")
    faulty = run_policy(VALIDATION, 3, "heuristic", fault=fault, onset=onset)
    assert faulty.state_hashes[: onset - 1] == healthy.state_hashes


def test_collapse_fault_uses_one_valid_tool_and_keeps_the_business_going() -> None:
    onset = 100
    episode = run_policy(VALIDATION, 5, "heuristic", fault="exploration_collapse", onset=onset).episode
    tools = episode.trace.column("tool")[onset - 1 :]
    assert set(tools) == {"write_note"}
    assert all(episode.trace.column("valid")[onset - 1 :])
    assert episode.state.terminated is None  # the business outlives the confirmation
