"""The censoring-aware metrics through Inspect's real epoch handling: every epoch of a sample is its own run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.solver import Generate, Solver, TaskState, solver

from vendomini_eval.condition import Condition
from vendomini_eval.runner import run_policy
from vendomini_eval.scorers import survival
from vendomini_eval.solvers.store import EpisodeRecord

TEMPLATE = run_policy(Condition(max_steps=5), 0).summary


def summary(time: int, crashed: bool) -> dict[str, Any]:
    """A stored summary with the given survival data (the rest from a short real run)."""
    survival = {"time_to_crash": time, "crashed": crashed, "censored": not crashed, "terminated": None, "steps": time}
    return TEMPLATE.model_copy(update=survival).model_dump(mode="json")


@solver
def replay_epochs() -> Solver:
    """Writes the run of the current epoch (from the sample metadata) as the episode's outcome."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        record = state.store_as(EpisodeRecord)
        record.summary = state.metadata["runs"][state.epoch - 1]
        record.outcome = "crashed" if record.summary["crashed"] else "censored"
        return state

    return solve


def survival_metrics(tmp_path: Path, runs_per_sample: list[list[dict[str, Any]]]) -> dict[str, float]:
    samples = [Sample(id=f"s{i}", input="run", metadata={"runs": runs}) for i, runs in enumerate(runs_per_sample)]
    task = Task(dataset=samples, solver=replay_epochs(), scorer=survival())
    (log,) = inspect_eval(task, model="mockllm/model", epochs=2, log_dir=str(tmp_path), display="none")
    assert log.status == "success" and log.results is not None
    metrics = {name: m.value for s in log.results.scores for name, m in s.metrics.items()}
    return metrics


def test_crash_rate_and_km_median_count_every_epoch(tmp_path: Path) -> None:
    # Four runs: crashes at 10, 12 and 20, one censored at 50. S(10) = 3/4, S(12) = 2/4: the median is 12.
    metrics = survival_metrics(
        tmp_path, [[summary(10, True), summary(12, True)], [summary(50, False), summary(20, True)]]
    )
    assert metrics["crash_rate"] == 0.75
    assert metrics["km_median_survival"] == 12


def test_km_median_is_nan_when_survival_never_halves(tmp_path: Path) -> None:
    metrics = survival_metrics(
        tmp_path, [[summary(100, False), summary(100, False)], [summary(30, True), summary(100, False)]]
    )
    assert metrics["crash_rate"] == 0.25
    assert math.isnan(metrics["km_median_survival"])
