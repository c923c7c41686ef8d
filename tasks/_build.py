"""Builds the Inspect task of one condition of an experiment: the one builder behind `vendomini_eval/vendomini`
and the phase front doors. The experiment YAML is the single source of every default."""

from __future__ import annotations

from typing import Any

from inspect_ai import Task
from inspect_ai._util.error import PrerequisiteError
from inspect_ai.dataset import MemoryDataset, Sample

from vendomini_eval.episode import gate_policy
from vendomini_eval.experiments import (
    CONDITION_KEYS,
    ExperimentConfigError,
    condition_for,
    condition_label,
    condition_values,
    derive_run_seed,
    labelled_axes,
    load_experiment,
    task_name,
    unknown_key,
)
from vendomini_eval.gates import GatePolicyError
from vendomini_eval.scorers import HEADLINE_METRIC, vendomini_scorers
from vendomini_eval.solvers import vendomini_agent
from vendomini_eval.solvers.gates import gate_approval

TASK_VERSION = "0.1.0"
TASK_INPUT = "The business opens on day 0. Run it. (Run {run_id}.)"
"""The first user message; the run id tells replications apart (scripted models seed from the prompt)."""
RUN_ARGUMENTS = ("config", "condition", "replications", "seed")
"""Task arguments that choose what runs but are not condition knobs."""


class TaskArgumentError(PrerequisiteError):
    """A -T argument is unknown or out of range. Inspect prints a PrerequisiteError's message alone (no
    traceback) and exits non-zero, before any sample runs."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.args = (message,)


def condition_task(
    config: str,
    condition: int | None = None,
    replications: int | None = None,
    seed: int | None = None,
    **knobs: Any,
) -> Task:
    """The task of one condition of the experiment `config` (a shipped name such as "phase2", or a YAML path).

    `condition` picks a condition by its index in grid order (as `vendomini plan` numbers them); without it,
    each grid axis takes its default (the base value if it lies on the axis, else the axis's first value).
    Every other keyword is a condition knob (dotted for nested ones: `pe.surprise_threshold`) that overrides
    the experiment's value. None means "not given". Raises TaskArgumentError naming the -T key and value."""
    try:
        experiment = load_experiment(config)
    except ExperimentConfigError as error:
        raise TaskArgumentError(f"-T config={config}: {error}") from None
    given = {key: value for key, value in knobs.items() if value is not None}
    for key in given:
        if key not in CONDITION_KEYS:
            raise TaskArgumentError(f"-T {key}: {unknown_key(key, [*RUN_ARGUMENTS, *CONDITION_KEYS], 'task argument')}")
    values = dict(given)
    if condition is not None:
        count = len(experiment.conditions)
        if not _is_int(condition) or not 0 <= condition < count:
            raise TaskArgumentError(f"-T condition={condition}: {experiment.name} has conditions 0 to {count - 1} "
                                    f"(`vendomini plan {config}` lists them)")  # fmt: skip
        values = {**condition_values(experiment, condition), **given}
    replications = experiment.replications if replications is None else replications
    experiment_seed = experiment.seed if seed is None else seed
    for key, value, minimum in (("replications", replications, 1), ("seed", experiment_seed, 0)):
        if not _is_int(value) or value < minimum:
            raise TaskArgumentError(f"-T {key}={value}: must be an integer >= {minimum}")
    try:
        chosen = condition_for(experiment, values)
    except ExperimentConfigError as error:
        if error.key_path in given:
            raise TaskArgumentError(f"-T {error.key_path}={given[error.key_path]}: {error.problem}") from None
        raise TaskArgumentError(f"-T {_shown(given)} with {config}: {error}") from None
    try:
        gate_policy(chosen)  # the tools and arguments its rules name exist (the condition checked the rest)
    except GatePolicyError as error:
        raise TaskArgumentError(f"-T gates={chosen.gates}: {error}") from None
    return _task(experiment.name, labelled_axes(list(experiment.grid), chosen), chosen, replications, experiment_seed)


def _task(experiment: str, axes: list[str], condition: Any, replications: int, experiment_seed: int) -> Task:
    label = condition_label(condition, axes)
    name = task_name(experiment, condition, axes)
    samples = []
    for replication in range(replications):
        seed = derive_run_seed(experiment_seed, condition, replication)
        metadata = {"experiment": experiment, "condition_label": label, "condition": condition.model_dump(),
                    "replication": replication, "seed": seed}  # fmt: skip
        run_id = f"{experiment}/{label}/rep{replication}"
        samples.append(Sample(id=f"rep{replication}", input=TASK_INPUT.format(run_id=run_id), metadata=metadata))
    return Task(
        dataset=MemoryDataset(samples, name=name),
        solver=vendomini_agent(),
        # The condition's governance gate: an approval event for every tool call (docs/METHOD.md).
        approval=gate_approval() if condition.gates is not None else None,
        scorer=vendomini_scorers(condition),
        headline_metric=HEADLINE_METRIC,
        name=name,
        metadata={
            "experiment": experiment,
            "condition_label": label,
            "condition": condition.model_dump(),
            "experiment_seed": experiment_seed,
        },
        version=TASK_VERSION,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(given: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in given.items()) or "(no knobs)"
