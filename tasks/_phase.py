"""Builds the Inspect task of one condition of a phase. The phase YAML is the single source of every default."""

from __future__ import annotations

from typing import Any

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample

from vendomini_eval.experiments import (
    condition_for,
    condition_label,
    condition_slug,
    derive_run_seed,
    load_experiment,
)
from vendomini_eval.scorers import HEADLINE_METRIC, vendomini_scorers
from vendomini_eval.solvers import vendomini_agent

TASK_VERSION = "0.1.0"
TASK_INPUT = "The business opens on day 0. Run it. (Run {run_id}.)"
"""The first user message; the run id tells replications apart (scripted models seed from the prompt)."""


def phase_task(phase: str, parameters: dict[str, Any]) -> Task:
    """The task of one condition: `parameters` are the @task function's arguments; None means the phase
    default (the base value of an axis if it lies on the axis, else the axis's first value)."""
    experiment = load_experiment(phase)
    given = {key: value for key, value in parameters.items() if value is not None}
    replications = int(given.pop("replications", experiment.replications))
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications}")
    experiment_seed = int(given.pop("seed", experiment.seed))
    condition = condition_for(experiment, given)
    axes = list(experiment.grid)
    label = condition_label(condition, axes)
    samples = []
    for replication in range(replications):
        seed = derive_run_seed(experiment_seed, condition, replication)
        metadata = {"experiment": experiment.name, "condition_label": label, "condition": condition.model_dump(),
                    "replication": replication, "seed": seed}  # fmt: skip
        run_id = f"{experiment.name}/{label}/rep{replication}"
        samples.append(Sample(id=f"rep{replication}", input=TASK_INPUT.format(run_id=run_id), metadata=metadata))
    return Task(
        dataset=MemoryDataset(samples, name=f"{experiment.name}_{condition_slug(condition, axes)}"),
        solver=vendomini_agent(),
        scorer=vendomini_scorers(),
        headline_metric=HEADLINE_METRIC,
        name=f"{experiment.name}_{condition_slug(condition, axes)}",
        metadata={
            "experiment": experiment.name,
            "condition_label": label,
            "condition": condition.model_dump(),
            "experiment_seed": experiment_seed,
        },
        version=TASK_VERSION,
    )
