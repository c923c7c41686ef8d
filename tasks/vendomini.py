"""The generic task: any condition of any experiment, every knob settable with -T.

    inspect eval vendomini_eval/vendomini --model vendomini/heuristic -T config=phase2 -T condition=17
    inspect eval vendomini_eval/vendomini --model vendomini/heuristic -T p_shock=0.3 -T initial_cash=200

`config` is a shipped experiment name (`vendomini plan` lists them) or a YAML path; `condition` is an index as
`vendomini plan CONFIG` numbers the conditions. Any condition knob (docs/METHOD.md, "Condition") overrides
the experiment's value; nested knobs are dotted (`-T pe.surprise_threshold=0.4`). An unknown key or a bad value
stops the eval before any sample runs, with one line naming it. `vendomini run` runs its sweeps through this task.
"""

from typing import Any

from inspect_ai import Task, task

from vendomini_eval.tasks._build import condition_task


@task
def vendomini(
    config: str = "base",
    condition: int | None = None,
    replications: int | None = None,
    seed: int | None = None,
    **knobs: Any,
) -> Task:
    """One condition of an experiment; every knob left out takes the experiment's value.

    Args:
      config: Experiment: a shipped name (base, phase1 ... phase5) or a YAML file.
      condition: Index of the condition in grid order (`vendomini plan CONFIG`); default: each axis's default.
      replications: Samples (runs) of the condition, each with its own derived seed.
      seed: Experiment seed from which the run seeds are derived.
      **knobs: Condition knobs (p_shock, pe_mag, initial_cash, pe.surprise_threshold, ...).
    """
    return condition_task(config, condition, replications, seed, **knobs)
