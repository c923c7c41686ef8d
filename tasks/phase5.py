"""Phase 5: Shock dose x complexity 3-4 over long horizons, with every recovery tool.

Run one condition: `inspect eval tasks/phase5.py --model vendomini/heuristic -T p_shock=0.3`. The whole grid:
`vendomini run configs/phases/phase5.yaml --model ...`. Any other condition knob can be set with -T too
(`-T max_steps=100 -T initial_cash=300`); every default comes from configs/phases/phase5.yaml.
"""

from typing import Any

from inspect_ai import Task, task

from vendomini_eval.tasks._build import condition_task

PHASE = "phase5"


@task
def phase5(
    p_shock: float | None = None,
    complexity_level: int | None = None,
    **knobs: Any,
) -> Task:
    """One condition of phase5 (its grid axes are named below); anything left out takes the phase default.

    Args:
      p_shock: Per-step shock probability (0 to 1).
      complexity_level: Business complexity, 0 to 4.
      **knobs: Any other condition knob, and replications, seed or condition (an index in grid order).
    """
    return condition_task(PHASE, p_shock=p_shock, complexity_level=complexity_level, **knobs)
