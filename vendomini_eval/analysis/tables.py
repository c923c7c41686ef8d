"""The two tables of the analysis, built from loaded runs: `runs` (one row per run) and `steps` (one row per
step of each run, from the stored compact trace). Both are written as CSV and as Parquet (typed columns, which
CSV loses: booleans, nulls, integers next to floats)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # inspect-evals-lint: ignore[external_dependencies] -- the analysis extra; no task imports it

from vendomini_eval.analysis.load import LoadedLogs, RunRecord
from vendomini_eval.condition import Condition
from vendomini_eval.results import EpisodeSummary
from vendomini_eval.worlds import BUSINESSES

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


def business_metrics(columns: dict[str, list[Any]]) -> dict[str, Any]:
    """Vending-Bench style measures of the business over a run, from its compact trace.

    min_net_worth: the lowest net worth (dollars) after any step; NaN when the trace has no `net_worth_cents`
    column (logs written before it existed). days_until_sales_stop: the days run up to and including the day
    of the last sale (a valid `ship`: customers pay on shipment); 0 when nothing was ever sold (a run still
    selling at its end gets the day it ended on). The trace's `day` is the day after the step (a step can
    end a day), so a step's own day is the previous step's (the world starts on day 0)."""
    net_worth, tools = _column(columns, "net_worth_cents"), _column(columns, "tool")
    sales = np.flatnonzero((tools == "ship") & _column(columns, "valid").astype(bool)) if len(tools) else []
    days = _column(columns, "day")
    until_last_sale = ((days[sales[-1] - 1] if sales[-1] > 0 else 0) + 1) if len(sales) else 0
    return {
        "min_net_worth": net_worth.min() / 100 if len(net_worth) else math.nan,
        "days_until_sales_stop": until_last_sale if len(tools) else math.nan,
    }


def _column(columns: dict[str, Any], name: str) -> np.ndarray:
    """A trace column as an array (empty when the trace lacks it)."""
    values = columns.get(name)
    return np.asarray([] if values is None else values, dtype=None if values is not None and len(values) else object)


def world_columns(summary: EpisodeSummary, condition: dict[str, Any]) -> dict[str, Any]:
    """The business the run ran (`world`), its units sold and start cash (dollars; None when the log recorded no
    condition), and for the vending machine its days until sales stop and whether it ended above its start cash
    (`profitable`; None in the warehouse). The warehouse's days until sales stop come from its trace
    (`business_metrics`)."""
    world = summary.world or "warehouse"  # None: the warehouse, in every log written before the vending world
    start_cash = None
    if condition:
        knobs = Condition.model_construct(**condition)  # not validated: old knobs, or a gate file not here, still read
        start_cash = BUSINESSES[world].rules(knobs).start_cash_cents / 100
    if summary.vending is None:
        return {"world": world, "units_sold": summary.counters.units_sold, "start_cash": start_cash,
                "profitable": None}  # fmt: skip
    return {"world": world, "units_sold": summary.vending.units_sold,
            "days_until_sales_stop": summary.days_until_sales_stop, "start_cash": start_cash,
            "profitable": None if start_cash is None else summary.net_worth > start_cash}  # fmt: skip


def run_row(run: RunRecord) -> dict[str, Any]:
    summary, pe, counters = run.summary, run.summary.pe, run.summary.counters
    metadata = {**run.log.metadata, **run.metadata}
    condition = run.record.get("condition") or metadata.get("condition") or {}
    incoherent = summary.incoherent  # None in logs written before the secondary endpoint was recorded
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
        "seed": summary.seed,
        "replication": metadata.get("replication"),
        **condition_columns(condition),
        "time_to_crash": summary.time_to_crash,
        "crashed": summary.crashed,
        "censored": not summary.crashed,
        "crash_type": summary.crash_type or "none",
        "non_starter": summary.non_starter,
        "incoherent": incoherent,
        "incoherence_type": None if incoherent is None else (summary.incoherence_type or "none"),
        "time_to_incoherence": summary.time_to_incoherence,
        "terminated": summary.terminated is not None,
        "termination": summary.terminated,
        "outcome": run.record.get("outcome"),
        "limit": run.record.get("limit"),
        "steps": summary.steps,
        "days": summary.days,
        "net_worth": summary.net_worth,
        **business_metrics((run.record.get("trace") or {}).get("columns") or {}),
        **world_columns(summary, condition),
        "cash": summary.cash,
        "orders_shipped": counters.orders_shipped,
        "orders_failed": counters.orders_failed,
        "shocks": summary.shocks,
        "shocks_void": summary.shocks_void,
    }
    for pe_type, totals in pe.series().items():
        row[f"pe_{pe_type}_sum"] = totals.sum
        row[f"pe_{pe_type}_count"] = totals.count
        row[f"pe_{pe_type}_mean"] = totals.mean
    row["pe_surprises"] = pe.surprise_count
    row["brier_mean"] = pe.brier_mean
    row["brier_count"] = pe.brier_count
    row["predictions_made"] = summary.predictions_made
    row["actions_without_card"] = summary.actions_without_card
    # Governance gate decisions (None without a gate); by `<decision>:<reason>` as JSON text, one cell per run.
    decisions = None if summary.gate_decisions is None else json.dumps(summary.gate_decisions)
    row.update(gate_allowed=summary.gate_allowed, gate_warned=summary.gate_warned, gate_denied=summary.gate_denied,
               gate_decisions=decisions)  # fmt: skip
    usage = run.usage
    row.update(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, total_tokens=usage.total_tokens,
               cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
               reasoning_tokens=usage.reasoning_tokens, cost_usd=usage.cost, calls=usage.calls,
               model_time=run.record.get("model_time"), total_time=usage.total_time,
               working_time=usage.working_time)  # fmt: skip
    row["log"] = run.log.path
    return row


def runs_table(loaded: LoadedLogs) -> pd.DataFrame:
    """One row per run: identity, every condition parameter, the survival outcome, the secondary endpoint
    (incoherence), business and PE totals. A value a log did not record (an older log) is missing, never 0."""
    rows = [run_row(run) for run in loaded.runs]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=[*RUN_KEYS, "time_to_crash", "crashed", "censored", "crash_type"])
    return frame


def steps_table(loaded: LoadedLogs) -> pd.DataFrame:
    """One row per step of every run with a stored trace: the run id, then the trace's columns (PE per type at
    each step and its EWMAs per scale, cumulative PE and counts, surprises, validity, tool, shocks, whether a
    productive action was available (`actionable`), card fields stated (`predictions`)). A column an older
    trace lacks is missing (None) for its rows."""
    traces: list[tuple[str, dict[str, list[Any]]]] = []
    names: dict[str, None] = {}  # every trace column in first-seen order (older logs may lack newer columns)
    for run in loaded.runs:
        columns = (run.record.get("trace") or {}).get("columns") or {}
        if columns.get("step") is not None and len(columns["step"]):
            traces.append((run.run_id, columns))
            names.update((name, None) for name in columns if name not in STEP_COLUMNS_DROPPED)
    if not traces:
        return pd.DataFrame(columns=["run_id", "step"])
    # one frame from whole columns, each the runs' arrays end to end, taken without a copy
    lengths = [len(columns["step"]) for _, columns in traces]
    data: dict[str, Any] = {"run_id": np.repeat(np.array([run_id for run_id, _ in traces], dtype=object), lengths)}
    for name in names:
        column = np.concatenate([np.asarray(columns[name]) if columns.get(name) is not None
                                 else np.full(n, None, dtype=object)
                                 for (_, columns), n in zip(traces, lengths, strict=True)])  # fmt: skip
        data[name] = pd.Series(column).infer_objects() if column.dtype == object else column  # as from lists
    return pd.DataFrame(data, copy=False)


def write_table(frame: pd.DataFrame, out_dir: Path, name: str) -> list[Path]:
    """`<name>.csv` and `<name>.parquet` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet

    csv_path, parquet_path = out_dir / f"{name}.csv", out_dir / f"{name}.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pyarrow.csv.write_csv(table, csv_path)  # a tenth of pandas' time for the steps table (500,000 rows)
    pyarrow.parquet.write_table(table, parquet_path)
    return [csv_path, parquet_path]
