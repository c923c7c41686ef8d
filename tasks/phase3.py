"""Phase 3: Shock dose x business complexity x recovery tools; max_steps follows the level.

Run one condition: `inspect eval tasks/phase3.py --model vendomini/heuristic -T p_shock=0.3`. The whole grid:
`vendomini run configs/phases/phase3.yaml --model ...`. Every default comes from configs/phases/phase3.yaml.
"""

from inspect_ai import Task, task

from vendomini_eval.tasks._phase import phase_task

PHASE = "phase3"


@task
def phase3(
    p_shock: float | None = None,
    complexity_level: int | None = None,
    recovery_tools: str | None = None,
    max_steps: int | None = None,
    crash_threshold: str | None = None,
    replications: int | None = None,
    seed: int | None = None,
) -> Task:
    """One condition of phase3; an argument left out takes the phase default.

    Args:
      p_shock: Per-step shock probability (0 to 1).
      complexity_level: Business complexity, 0 to 4.
      recovery_tools: none, reset, audit, help or all.
      max_steps: Steps after which a run is censored.
      crash_threshold: Crash detector preset: strict, moderate or lenient.
      replications: Samples (runs) of the condition, each with its own derived seed.
      seed: Experiment seed from which the run seeds are derived.
    """
    return phase_task(PHASE, locals())
