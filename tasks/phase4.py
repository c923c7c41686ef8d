"""Phase 4: Shock dose x magnitude at complexity 2; the model sweep is the model axis.

Run one condition: `inspect eval tasks/phase4.py --model vendomini/heuristic -T p_shock=0.3`. The whole grid:
`vendomini run configs/phases/phase4.yaml --model ...`. Any other condition knob can be set with -T too
(`-T max_steps=100 -T initial_cash=300`); every default comes from configs/phases/phase4.yaml.
"""

from typing import Any

from inspect_ai import Task, task

from vendomini_eval.tasks._build import condition_task

PHASE = "phase4"


@task
def phase4(
    p_shock: float | None = None,
    pe_mag: str | None = None,
    **knobs: Any,
) -> Task:
    """One condition of phase4 (its grid axes are named below); anything left out takes the phase default.

    Args:
      p_shock: Per-step shock probability (0 to 1).
      pe_mag: Shock magnitude: low, medium or high.
      **knobs: Any other condition knob, and replications, seed or condition (an index in grid order).
    """
    return condition_task(PHASE, p_shock=p_shock, pe_mag=pe_mag, **knobs)
