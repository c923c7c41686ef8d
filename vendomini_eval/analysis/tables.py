"""The two tables of the analysis, built from loaded runs: `runs` (one row per run) and `steps` (one row per
step of each run, from the stored compact trace). Both are written as CSV and as Parquet (typed columns, which
CSV loses: booleans, nulls, integers next to floats)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd  # inspect-evals-lint: ignore[external_dependencies] -- the analysis extra; no task imports it

from vendomini_eval.analysis.load import LoadedLogs, RunRecord

PE_TYPES = ("temporal", "quantity", "cost", "causal", "combined")
STEP_COLUMNS_DROPPED = ("state_hash",)
"""Trace columns left out of the steps table: state hashes serve determinism checks, not the analysis."""
RUN_KEYS = ("run_id", "experiment", "phase", "task", "condition_label", "model", "model_args", "sample_id", "epoch",
            "seed", "replication")  # fmt: skip


def condition_columns(condition: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every condition parameter as its own column; nested settings as `pe.surprise_threshold`, lists as text."""
    columns: dict[str, Any] = {}
    for key, value in condition.items():
        if isinstance(value, dict):
            columns.update(condition_columns(value, f"{prefix}{key}."))
        elif isinstance(value, list | tuple):
            columns[f"{prefix}{key}"] = ",".join(map(str, value))
        else:
            columns[f"{prefix}{key}"] = value
    return columns


def run_row(run: RunRecord) -> dict[str, Any]:
    summary = run.record["summary"]
    metadata = {**run.log.metadata, **run.metadata}
    condition = run.record.get("condition") or metadata.get("condition") or {}
    pe = summary.get("pe") or {}
    counters = summary.get("counters") or {}
    row: dict[str, Any] = {
        "run_id": run.run_id,
        "experiment": metadata.get("experiment"),
        "phase": run.log.task.split("_", 1)[0],
        "task": run.log.task,
        "condition_label": metadata.get("condition_label"),
        "model": run.model_label,
        "model_args": ",".join(f"{k}={v}" for k, v in sorted(run.log.model_args.items())) or None,
        "sample_id": run.sample_id,
        "epoch": run.epoch,
        "seed": summary.get("seed", metadata.get("seed")),
        "replication": metadata.get("replication"),
        **condition_columns(condition),
        "time_to_crash": int(summary["time_to_crash"]),
        "crashed": bool(summary["crashed"]),
        "censored": not bool(summary["crashed"]),
        "crash_type": summary.get("crash_type") or "none",
        "terminated": bool(summary.get("terminated")),
        "termination": summary.get("terminated"),
        "outcome": run.record.get("outcome"),
        "limit": run.record.get("limit"),
        "steps": summary.get("steps"),
        "net_worth": summary.get("net_worth"),
        "cash": summary.get("cash"),
        "orders_shipped": counters.get("orders_shipped"),
        "orders_failed": counters.get("orders_failed"),
        "shocks": summary.get("shocks"),
    }
    for pe_type in PE_TYPES:
        stats = pe.get(pe_type) or {}
        row[f"pe_{pe_type}_sum"] = stats.get("sum")
        row[f"pe_{pe_type}_count"] = stats.get("count")
        row[f"pe_{pe_type}_mean"] = stats.get("mean")
    row["pe_surprises"] = pe.get("surprise_count")
    row["brier_mean"] = pe.get("brier_mean")
    row["brier_count"] = pe.get("brier_count")
    row["log"] = run.log.path
    return row


def runs_table(loaded: LoadedLogs) -> pd.DataFrame:
    """One row per run: identity, every condition parameter, the survival outcome, business and PE totals."""
    rows = [run_row(run) for run in loaded.runs]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=[*RUN_KEYS, "time_to_crash", "crashed", "censored", "crash_type"])
    return frame


def steps_table(loaded: LoadedLogs) -> pd.DataFrame:
    """One row per step of every run with a stored trace: the run id, then the trace's columns (PE per type at
    each step and its EWMAs per scale, cumulative PE and counts, surprises, validity, tool, shocks)."""
    frames = []
    for run in loaded.runs:
        trace = run.record.get("trace") or {}
        columns = trace.get("columns") or {}
        if not columns or not columns.get("step"):
            continue
        kept = {name: values for name, values in columns.items() if name not in STEP_COLUMNS_DROPPED}
        frame = pd.DataFrame(kept)
        frame.insert(0, "run_id", run.run_id)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["run_id", "step"])
    return pd.concat(frames, ignore_index=True)


def write_table(frame: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    """`<name>.csv` and `<name>.parquet` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = out_dir / f"{name}.csv", out_dir / f"{name}.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path, index=False)
    return [csv_path, parquet_path]
