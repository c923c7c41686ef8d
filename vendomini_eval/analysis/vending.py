"""The Vending-Bench table: the vending runs per model and condition in the leaderboard's measures, and the published
figures they are read against (`published_table`), each row marked with its source.

Our measures come from the runs table (`tables.run_row`): net worth at the end, `profitable` (net worth above the
run's start cash), units sold, days until sales stop (through the last day with a sale) and business failure.
"""

from __future__ import annotations

import pandas as pd  # inspect-evals-lint: ignore[external_dependencies] -- the analysis extra; no task imports it

GROUP_KEYS = ("model", "experiment", "condition_label")
COLUMNS = (*GROUP_KEYS, "runs", "start_cash", "net_worth_mean", "net_worth_min", "net_worth_max", "profitable_share",
           "units_sold_mean", "units_sold_min", "days_until_sales_stop_mean", "days_until_sales_stop_share_mean",
           "days_mean", "business_failures")  # fmt: skip

VENDING_BENCH = "Vending-Bench"
VENDING_BENCH_2 = "Vending-Bench 2"
SOURCES = {
    VENDING_BENCH: "https://andonlabs.com/evals/vending-bench; Backlund & Petersson 2025, arXiv 2502.15840: 5 runs "
    "per model (the human baseline: one), $500 start, $2 daily fee, runs of up to 2,000 messages; net worth at the "
    "end, units sold, days until sales stop and their share of the run",
    VENDING_BENCH_2: "https://andonlabs.com/evals/vending-bench-2: a simulated year; the money balance at the end "
    "(not net worth), mean of 5 runs",
}
"""Where each published row comes from, by the `source` that marks it."""
CAVEAT = (
    "This world is a re-implementation with its own catalogue, demand model and tools (no e-mail and no web search; "
    "Vending-Bench 2 scores the money balance, not net worth): read the numbers as orders of magnitude, not as a "
    "ranking against the published models."
)
"""Shown beside the published figures, always."""
PUBLISHED_COLUMNS = ("source", "model", "runs", "net_worth_mean", "net_worth_min", "units_sold_mean",
                     "units_sold_min", "days_until_sales_stop_mean", "days_until_sales_stop_share_mean",
                     "money_balance_mean")  # fmt: skip
_VENDING_BENCH_ROWS = (
    # model, runs, net worth mean and min ($), units sold mean and min, days until sales stop mean, its share of run
    ("Claude 3.5 Sonnet", 5, 2217.93, 476.00, 1560, 0, 102, 0.822),
    ("o3-mini", 5, 906.86, 369.05, 831, 0, 86, 0.803),
    ("Human", 1, 844.05, 844.05, 344, 344, 67, 1.0),
    ("Gemini 1.5 Pro", 5, 594.02, 439.20, 375, 0, 35, 0.438),
    ("GPT-4o mini", 5, 582.33, 420.50, 473, 65, 71, 0.732),
    ("Gemini 1.5 Flash", 5, 571.85, 476.00, 89, 0, 15, 0.424),
    ("Claude 3.5 Haiku", 5, 373.36, 264.00, 23, 0, 8, 0.129),
    ("Gemini 2.0 Flash", 5, 338.08, 157.25, 104, 0, 50, 0.557),
    ("GPT-4o", 5, 335.46, 265.65, 258, 108, 65, 0.503),
    ("Gemini 2.0 Pro", 5, 273.70, 273.70, 118, 118, 25, 0.158),
)
_VENDING_BENCH_2_ROWS = (  # model, money balance at the end of the year ($), mean of 5 runs
    ("Gemini 3 Pro", 5478.16),
    ("Claude Sonnet 4.5", 3838.74),
    ("Grok 4", 1999.46),
    ("GPT-5.1", 1473.43),
    ("Gemini 2.5 Pro", 573.64),
)


def published_table() -> pd.DataFrame:
    """The published leaderboards as one table, a row per model and source (`SOURCES`); a measure a leaderboard
    does not report is missing."""
    rows = [dict(zip(PUBLISHED_COLUMNS, (VENDING_BENCH, *row), strict=False)) for row in _VENDING_BENCH_ROWS]
    rows += [{"source": VENDING_BENCH_2, "model": model, "runs": 5, "money_balance_mean": balance}
             for model, balance in _VENDING_BENCH_2_ROWS]  # fmt: skip
    return pd.DataFrame(rows, columns=list(PUBLISHED_COLUMNS))


def vending_bench_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model, experiment and condition, over its vending runs: runs, the start cash, net worth at the end (mean,
    min, max), the share of runs that ended above their start cash, units sold (mean, min), days until sales stop
    (mean, and the mean of each run's share of the days it ran), days run, business failures. Empty without a
    vending run."""
    vending = runs[runs["world"] == "vending"] if "world" in runs else runs.iloc[:0]
    if vending.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    days = vending["days"].astype(float)
    vending = vending.assign(  # a run that ended on day 0 ran no whole day: no share
        sales_share=vending["days_until_sales_stop"].astype(float) / days.where(days > 0),
        profitable=vending["profitable"].astype(float),
        business_failed=vending["terminated"].astype(int),
    )
    table = vending.groupby(list(GROUP_KEYS), dropna=False, sort=True).agg(
        runs=("run_id", "count"), start_cash=("start_cash", "first"), net_worth_mean=("net_worth", "mean"),
        net_worth_min=("net_worth", "min"), net_worth_max=("net_worth", "max"),
        profitable_share=("profitable", "mean"), units_sold_mean=("units_sold", "mean"),
        units_sold_min=("units_sold", "min"), days_until_sales_stop_mean=("days_until_sales_stop", "mean"),
        days_until_sales_stop_share_mean=("sales_share", "mean"), days_mean=("days", "mean"),
        business_failures=("business_failed", "sum"),
    )  # fmt: skip
    return table.reset_index()[list(COLUMNS)]


def mixed_worlds(runs: pd.DataFrame) -> str | None:
    """A warning when the runs come from both worlds: the per-model statistics (headline, hazard ratios, power)
    pool the runs of a model whatever their world, and two businesses pooled answer neither's question."""
    worlds = sorted(runs["world"].dropna().unique()) if "world" in runs else []
    if len(worlds) < 2:
        return None
    return (f"the runs come from {len(worlds)} worlds ({', '.join(worlds)}): the per-model statistics pool them; "
            "analyze each world's logs in a directory of their own")  # fmt: skip
