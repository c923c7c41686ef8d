"""Phase 2: Shock dose x shock type mix x observability.

Run one condition: `inspect eval tasks/phase2.py --model vendomini/heuristic -T p_shock=0.3`. The whole grid:
`vendomini run configs/phases/phase2.yaml --model ...`. Any other condition knob can be set with -T too
(`-T max_steps=100 -T initial_cash=300`); every default comes from configs/phases/phase2.yaml.
"""

from typing import Any

from inspect_ai import Task, task

from vendomini_eval.tasks._build import condition_task

PHASE = "phase2"


@task
def phase2(
    p_shock: float | None = None,
    pe_type_mix: str | None = None,
    observability: str | None = None,
    **knobs: Any,
) -> Task:
    """One condition of phase2 (its grid axes are named below); anything left out takes the phase default.

    Args:
      p_shock: Per-step shock probability (0 to 1).
      pe_type_mix: realistic, temporal_only, quantity_only, causal_only or uniform.
      observability: full, delayed, partial or hidden.
      **knobs: Any other condition knob, and replications, seed or condition (an index in grid order).
    """
    return condition_task(PHASE, p_shock=p_shock, pe_type_mix=pe_type_mix, observability=observability, **knobs)
