"""The scale bench's logs (bench/_scale_logs.py: direct-runner episodes logged by Inspect) read as `vendomini run`'s.

The same condition, seeds and scripted policy, once through `inspect eval` with the scripted model and once
through the bench's generator, must give the same rows in the analysis tables. Only what a model call adds
differs: the token usage and the time a sample took, and the log's path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from inspect_ai import eval

from vendomini_eval.analysis import load_runs, runs_table, steps_table
from vendomini_eval.tasks._build import condition_task

BENCH = Path(__file__).resolve().parents[1] / "bench" / "_scale_logs.py"
NOT_COMPARED = ["log", "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens",
                "reasoning_tokens", "cost_usd", "calls", "model_time", "total_time", "working_time"]  # fmt: skip
"""What a model call adds to a run's row (the direct runner calls none), and where the log lies."""
CONDITION, RUNS, STEPS = 160, 2, 40  # phase 2 at p_shock 1.0: shocks and PE within 40 steps
MODEL_ARGS = {"fault": "invalid_burst", "onset": 10}
"""The heuristic, breaking down from step 10: both the routine and a crash in a short run."""


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("scale_logs_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def tables(log_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    loaded = load_runs(log_dir)
    assert len(loaded.runs) == RUNS and not loaded.skipped
    runs, steps = runs_table(loaded), steps_table(loaded)
    return runs.drop(columns=NOT_COMPARED).sort_values("run_id", ignore_index=True), steps


def test_direct_runner_logs_give_the_analysis_rows_of_inspect_eval(tmp_path: Path, no_network: list[Any]) -> None:
    task = condition_task("phase2", condition=CONDITION, replications=RUNS, max_steps=STEPS)
    [log] = eval(task, model="vendomini/heuristic", model_args=MODEL_ARGS, log_dir=str(tmp_path / "inspect"),
                 display="none")  # fmt: skip
    assert log.status == "success", log.error
    bench = load_bench()
    assert bench.write_logs(tmp_path / "direct", "phase2", [CONDITION], RUNS, STEPS, MODEL_ARGS) == RUNS

    inspect_runs, inspect_steps = tables(tmp_path / "inspect")
    direct_runs, direct_steps = tables(tmp_path / "direct")
    pd.testing.assert_frame_equal(direct_runs, inspect_runs)
    pd.testing.assert_frame_equal(direct_steps, inspect_steps)
    assert (inspect_runs["crash_type"] == "invalid_burst").all() and inspect_runs["pe_combined_count"].gt(0).all()
