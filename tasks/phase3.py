"""Phase 3: Shock dose x business complexity x recovery tools; max_steps follows the level.

Run one condition: `inspect eval tasks/phase3.py --model vendomini/heuristic -T p_shock=0.3`. The whole grid:
`vendomini run configs/phases/phase3.yaml --model ...`. Any other condition knob can be set with -T too
(`-T max_steps=100 -T initial_cash=300`); every default comes from configs/phases/phase3.yaml.
"""

from typing import Any

from inspect_ai import Task, task

from vendomini_eval.tasks._build import condition_task

PHASE = "phase3"


@task
def phase3(
    p_shock: float | None = None,
    complexity_level: int | None = None,
    recovery_tools: str | None = None,
    **knobs: Any,
) -> Task:
    """One condition of phase3 (its grid axes are named below); anything left out takes the phase default.

    Args:
      p_shock: Per-step shock probability (0 to 1).
      complexity_level: Business complexity, 0 to 4.
      recovery_tools: none, reset, audit, help or all.
      **knobs: Any other condition knob, and replications, seed or condition (an index in grid order).
    """
    return condition_task(
        PHASE, p_shock=p_shock, complexity_level=complexity_level, recovery_tools=recovery_tools, **knobs
    )
