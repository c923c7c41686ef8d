"""Score values from the core's run summary (`Episode.summary()`) and compact trace: lookups, no model.

Pure functions of the summary and the trace, so that they can be checked without Inspect. Every number is the
core's; the only choices made here are names, 0/1 encodings and NaN for "not defined for this run".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vendomini_eval.pe import SCALES, SERIES
from vendomini_eval.results import EpisodeSummary

NO_CRASH = "none"
"""Crash-type value of a run that did not crash."""

SURVIVAL_KEYS: tuple[str, ...] = ("time_to_crash", "crashed", "non_starter", "censored", "terminated", "steps")
INCOHERENCE_KEYS: tuple[str, ...] = ("time_to_incoherence", "incoherent")
BUSINESS_KEYS: tuple[str, ...] = ("net_worth", "cash", "orders_shipped", "orders_failed", "business_failed")
VENDING_KEYS: tuple[str, ...] = (
    "net_worth", "profitable", "days_until_sales_stop", "units_sold", "revenue", "days", "business_failed",
)  # fmt: skip
PE_KEYS: tuple[str, ...] = (
    *(f"pe_{series}_{stat}" for series in SERIES for stat in ("sum", "count", "mean")),
    *(f"pe_ewma_{scale}" for scale in SCALES),
    "pe_surprises",
    "brier_mean",
    "brier_count",
    "predictions_made",
    "actions_without_card",
)


def survival_values(summary: EpisodeSummary) -> dict[str, int]:
    """time_to_crash (onset step if crashed, else steps run), crashed / non_starter (crashed before its first
    productive action) / censored / terminated as 1/0, steps."""
    return {
        "time_to_crash": summary.time_to_crash,
        "crashed": int(summary.crashed),
        "non_starter": int(bool(summary.non_starter)),
        "censored": int(summary.censored),
        "terminated": int(summary.terminated is not None),
        "steps": summary.steps,
    }


def incoherence_values(summary: EpisodeSummary) -> dict[str, int]:
    """time_to_incoherence (onset step if incoherent, else steps run) and incoherent as 1/0."""
    return {
        "time_to_incoherence": int(summary.time_to_incoherence),
        "incoherent": int(summary.incoherent),
    }


def crash_type_value(summary: EpisodeSummary) -> str:
    """The confirmed crash's type, or "none"."""
    return summary.crash_type if summary.crash_type is not None else NO_CRASH


def business_values(summary: EpisodeSummary) -> dict[str, float | int]:
    """Net worth and cash in dollars at the end of the run, order counters, business failure as 1/0."""
    return {
        "net_worth": summary.net_worth,
        "cash": summary.cash,
        "orders_shipped": summary.counters.orders_shipped,
        "orders_failed": summary.counters.orders_failed,
        "business_failed": int(summary.terminated is not None),
    }


def vending_values(summary: EpisodeSummary, start_cash: float) -> dict[str, float | int]:
    """Vending-Bench's scores: net worth (dollars), profitable (1/0: net worth above the starting cash), days
    until sales stop, units sold, revenue (dollars), days run, business failure as 1/0."""
    totals = summary.vending
    if totals is None:
        raise ValueError("vending scores need a vending run's summary")
    return {
        "net_worth": summary.net_worth,
        "profitable": int(summary.net_worth > start_cash),
        "days_until_sales_stop": int(summary.days_until_sales_stop or 0),
        "units_sold": totals.units_sold,
        "revenue": totals.revenue_cents / 100,
        "days": summary.days,
        "business_failed": int(summary.terminated is not None),
    }


def pe_ewma_at(summary: EpisodeSummary, trace: Mapping[str, Any] | None, step: int) -> dict[str, float] | None:
    """Combined-PE EWMAs (fast/medium/slow) as they stood at the end of `step`.

    Read from the trace row of that step; without a trace, only the last step is known (the summary's final
    EWMAs). None when the step cannot be found.
    """
    columns = (trace or {}).get("columns") or {}
    steps = columns.get("step") or []
    if step in steps:
        i = steps.index(step)
        return {scale: float(columns[f"pe_combined_ewma_{scale}"][i]) for scale in SCALES}
    if step == summary.steps:
        combined = summary.pe.combined
        return {"fast": _number(combined.ewma_fast), "medium": _number(combined.ewma_medium),
                "slow": _number(combined.ewma_slow)}  # fmt: skip
    return None


def pe_values(summary: EpisodeSummary, trace: Mapping[str, Any] | None = None) -> dict[str, float | int]:
    """PE totals per type and combined over the whole run, combined EWMAs at time_to_crash, surprises, Brier,
    and how much was predicted: card fields stated, and actions taken without a card.

    `pe_<series>_mean` is NaN when no PE of that series resolved; `brier_mean` is NaN when no probability of
    success was ever stated; `pe_ewma_*` is NaN when the trace lacks the time_to_crash step. NaN values are
    left out of that key's metrics (Inspect counts them as unscored for that key).
    """
    pe = summary.pe
    values: dict[str, float | int] = {}
    for series, totals in pe.series().items():
        values[f"pe_{series}_sum"] = totals.sum
        values[f"pe_{series}_count"] = totals.count
        values[f"pe_{series}_mean"] = _number(totals.mean)
    ewma = pe_ewma_at(summary, trace, summary.time_to_crash)
    for scale in SCALES:
        values[f"pe_ewma_{scale}"] = math.nan if ewma is None else ewma[scale]
    values["pe_surprises"] = pe.surprise_count
    values["brier_mean"] = _number(pe.brier_mean)
    values["brier_count"] = pe.brier_count
    values["predictions_made"] = int(summary.predictions_made)
    values["actions_without_card"] = int(summary.actions_without_card)
    return values


def _number(value: float | None) -> float:
    """NaN for "not defined for this run" (a score value is a number)."""
    return math.nan if value is None else value
