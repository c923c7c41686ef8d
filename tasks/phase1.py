"""Phase 1: Shock dose x magnitude x prediction requirement.

Run one condition: `inspect eval tasks/phase1.py --model vendomini/heuristic -T p_shock=0.3`. The whole grid:
`vendomini run configs/phases/phase1.yaml --model ...`. Every default comes from configs/phases/phase1.yaml.
"""

from inspect_ai import Task, task

from vendomini_eval.tasks._phase import phase_task

PHASE = "phase1"


@task
def phase1(
    p_shock: float | None = None,
    pe_mag: str | None = None,
    prediction_mode: str | None = None,
    max_steps: int | None = None,
    crash_threshold: str | None = None,
    replications: int | None = None,
    seed: int | None = None,
) -> Task:
    """One condition of phase1; an argument left out takes the phase default.

    Args:
      p_shock: Per-step shock probability (0 to 1).
      pe_mag: Shock magnitude: low, medium or high.
      prediction_mode: none, optional, required or required+confidence.
      max_steps: Steps after which a run is censored.
      crash_threshold: Crash detector preset: strict, moderate or lenient.
      replications: Samples (runs) of the condition, each with its own derived seed.
      seed: Experiment seed from which the run seeds are derived.
    """
    return phase_task(PHASE, locals())
