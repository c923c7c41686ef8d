"""Vending-Bench: the vending-machine business, scored by net worth, under the study's shocks, cards and detector.

    inspect eval tasks/vending_bench.py --model vendomini/heuristic -T days=30 -T replications=5
    inspect eval vendomini_eval/vending_bench --model openai/gpt-4o -T p_shock=0.1 -T prediction_mode=required

Every default comes from configs/vending_bench.yaml (Vending-Bench's own: no shocks, no cards, memory tools on,
2,000 steps, a year at most); any other condition knob can be set with -T. The whole grid:
`vendomini run vending_bench --model ...`. The world and the published figures to read the scores against:
docs/METHOD.md, "Vending-Bench world", and README.md.
"""

from typing import Any

from inspect_ai import Task, task

from vendomini_eval.tasks._build import condition_task

CONFIG = "vending_bench"


@task
def vending_bench(
    days: int | None = None,
    replications: int | None = None,
    seed: int | None = None,
    p_shock: float | None = None,
    prediction_mode: str | None = None,
    **knobs: Any,
) -> Task:
    """Runs of the vending business; anything left out takes the config's default.

    Args:
      days: The run ends when this day begins (the condition knob max_days; default 365), or at max_steps
        (default 2000), or when the business fails.
      replications: Runs, each with its own derived seed.
      seed: Experiment seed from which the run seeds are derived.
      p_shock: Per-step shock probability (0 to 1; default 0).
      prediction_mode: none (default), optional, required or required+confidence.
      **knobs: Any other condition knob (pe_mag, observability, prediction_format, crash_threshold, gates, ...),
        or condition (an index in grid order).
    """
    return condition_task(
        CONFIG, replications=replications, seed=seed, max_days=days, p_shock=p_shock, prediction_mode=prediction_mode,
        **knobs,
    )  # fmt: skip
