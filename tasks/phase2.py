"""Phase 2: Shock dose x shock type mix x observability.

Run one condition: `inspect eval tasks/phase2.py --model vendomini/heuristic -T p_shock=0.3`. The whole grid:
`vendomini run configs/phases/phase2.yaml --model ...`. Every default comes from configs/phases/phase2.yaml.
"""

from inspect_ai import Task, task

from vendomini_eval.tasks._phase import phase_task

PHASE = "phase2"


@task
def phase2(
    p_shock: float | None = None,
    pe_type_mix: str | None = None,
    observability: str | None = None,
    max_steps: int | None = None,
    crash_threshold: str | None = None,
    replications: int | None = None,
    seed: int | None = None,
) -> Task:
    """One condition of phase2; an argument left out takes the phase default.

    Args:
      p_shock: Per-step shock probability (0 to 1).
      pe_type_mix: realistic, temporal_only, quantity_only, causal_only or uniform.
      observability: full, delayed, partial or hidden.
      max_steps: Steps after which a run is censored.
      crash_threshold: Crash detector preset: strict, moderate or lenient.
      replications: Samples (runs) of the condition, each with its own derived seed.
      seed: Experiment seed from which the run seeds are derived.
    """
    return phase_task(PHASE, locals())
