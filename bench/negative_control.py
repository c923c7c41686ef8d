"""Negative control of the PE analysis: the open-loop routine, whose PE cannot change what it does.

`OpenLoopPolicy` (vendomini_eval.policies.open_loop) runs one fixed schedule of calls and cards whatever its
calls return, so its prediction error has no path to its behaviour. Its crashes come from the routine meeting
the world (an order system down while customers' orders could be shipped: stall; the money running out while
it keeps ordering: budget_denial), and the world that makes them also makes its PE. Any PE effect a
time-varying Cox finds in these runs is confounding that the analysis failed to remove.

Runs `--runs` open-loop episodes (seeds seed0.., spread evenly over the `--p-shock` x `--pe-mag` conditions)
through the direct runner, builds the counting-process table (one row per step up to the crash onset or the
run's end, every covariate lagged by one step, `stats.pe_intervals`), and fits, for the cumulative PE and
its slow EWMA, four models: the PE alone over all runs; within conditions (one baseline hazard per condition);
within conditions and adjusted for the shock exposure so far (`stats.SHOCK_EXPOSURE`: effective shocks,
blocked steps); and adjusted for the state of the business as well (`stats.BUSINESS_STATE`: cash, goods).
Prints runs, crashes by type, business failures and, per fit, the hazard ratio per SD of the PE covariate
with its 95% CI and p. PASS (exit 0) when every CI of the last model covers 1; exit 1 otherwise. Whether the
shock exposure alone suffices is printed too. Reasons and results: docs/METHOD.md, "Negative control".

    PYTHONPATH=. python bench/negative_control.py [--runs 200] [--p-shock 0.3] [--pe-mag medium,high]
        [--pressure low] [--level 1] [--max-steps 500] [--seed0 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Any

import pandas as pd

from vendomini_eval.analysis import stats
from vendomini_eval.condition import Condition
from vendomini_eval.pe import PE_COLUMNS
from vendomini_eval.runner import run_policy

PE_COVARIATES = ("pe_combined_cum", "pe_combined_ewma_slow")
"""The PE accumulators tested: the cumulative PE and its slow EWMA."""
TRACE_COLUMNS = (
    "step",
    "tool",
    "valid",
    "error_kind",
    "cash_cents",
    "net_worth_cents",
    "shock",
    "actionable",
    *PE_COVARIATES,
)
BASE = {"complexity_level": 1, "observability": "full", "prediction_mode": "required"}
"""The rest of the condition (the open-loop routine is the same under every observability arm)."""


@dataclass(frozen=True)
class Job:
    seed: int
    p_shock: float
    pe_mag: str
    pressure: str
    level: int
    max_steps: int


def jobs(runs: int, p_shocks: Sequence[float], mags: Sequence[str], pressure: str, level: int, max_steps: int,
         seed0: int = 0) -> list[Job]:  # fmt: skip
    cells = [(p, m) for p in p_shocks for m in mags]
    return [Job(seed, *cells[seed % len(cells)], pressure, level, max_steps) for seed in range(seed0, seed0 + runs)]


def run(job: Job) -> dict[str, Any]:
    condition = Condition(**{**BASE, "complexity_level": job.level, "p_shock": job.p_shock, "pe_mag": job.pe_mag,
                             "pressure_level": job.pressure, "max_steps": job.max_steps})  # fmt: skip
    output = run_policy(condition, job.seed, "open_loop")
    summary, trace = output.summary, output.episode.trace
    columns = {name: trace.column(name) for name in TRACE_COLUMNS if name in (*trace.BASE_COLUMNS, *PE_COLUMNS)}
    return {
        "run_id": f"s{job.seed}", "seed": job.seed, "p_shock": job.p_shock, "pe_mag": job.pe_mag,
        "time_to_crash": summary.time_to_crash, "crashed": summary.crashed, "crash_type": summary.crash_type,
        "terminated": summary.terminated, "steps": summary.steps,
        "trace": columns,
    }  # fmt: skip


def run_all(all_jobs: list[Job], workers: int) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        yield from map(run, all_jobs)
        return
    with Pool(workers) as pool:
        yield from pool.imap_unordered(run, all_jobs, chunksize=4)


def tables(results: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs table and the steps table (trace columns plus the shock-exposure and business-state
    covariates)."""
    runs = pd.DataFrame([{k: v for k, v in r.items() if k != "trace"} for r in results])
    frames = [pd.DataFrame({"run_id": r["run_id"], **r["trace"]}) for r in results]
    steps = pd.concat(frames, ignore_index=True)
    covariates = (stats.shock_exposure(steps), stats.business_state(steps))
    return runs, pd.concat([steps, *(frame.drop(columns=["run_id", "step"]) for frame in covariates)], axis=1)


MODELS = {
    "unadjusted": ((), False),
    "by condition": ((), True),
    "shock exposure": (stats.SHOCK_EXPOSURE, True),
    "+ business state": ((*stats.SHOCK_EXPOSURE, *stats.BUSINESS_STATE), True),
}
"""The fits: adjustment covariates, and whether each condition (p_shock x pe_mag) has its own baseline hazard."""
SHOCKS_ONLY, ADJUSTED = "shock exposure", "+ business state"
"""The model the brief adjustment is read from, and the one the control is judged on (PASS or FAIL)."""


def fits(runs: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """One row per (PE covariate, model): the PE alone over all runs; within conditions; within conditions and
    adjusted for the shock exposure so far; and adjusted for the state of the business as well."""
    intervals = stats.pe_intervals(runs, steps, [*PE_COVARIATES, *stats.SHOCK_EXPOSURE, *stats.BUSINESS_STATE])
    cells = runs.set_index("run_id")["p_shock"].astype(str) + "/" + runs.set_index("run_id")["pe_mag"]
    intervals["condition"] = intervals["run_id"].map(cells)
    rows = []
    for covariate in PE_COVARIATES:
        for model, (adjust, by_condition) in MODELS.items():
            strata = "condition" if by_condition and intervals["condition"].nunique() > 1 else None
            row = stats.adjusted_time_varying_cox(intervals, covariate, adjust, strata=strata).iloc[0].to_dict()
            rows.append({"model": model, **row})
    return pd.DataFrame(rows)


def covers_one(table: pd.DataFrame, model: str) -> bool:
    rows = table[table["model"] == model]
    return bool(len(rows)) and bool(((rows["hr_per_sd_lo"] <= 1) & (rows["hr_per_sd_hi"] >= 1)).all())


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> bool:
    runs, steps = tables(results)
    crashed = runs[runs["crashed"]]
    types = Counter(crashed["crash_type"])
    business = Counter(runs.loc[~runs["crashed"] & runs["terminated"].notna(), "terminated"])
    shocks = steps.groupby("run_id")["shocks_cum"].max()

    def listing(counts: Counter) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"

    print(f"open-loop negative control: {len(runs)} runs (seeds {args.seed0}..{args.seed0 + len(runs) - 1}), "
          f"level {args.level}, pressure {args.pressure}, p_shock {args.p_shock}, pe_mag {args.pe_mag}, "
          f"max_steps {args.max_steps}")  # fmt: skip
    at_horizon = int((~runs["crashed"] & runs["terminated"].isna()).sum())
    print(f"crashes {len(crashed)} ({listing(types)}); business failures {sum(business.values())} "
          f"({listing(business)}); censored at max_steps {at_horizon}")  # fmt: skip
    print(f"median time to crash {crashed['time_to_crash'].median():.0f} steps; effective shocks per run: "
          f"median {shocks.median():.0f}")  # fmt: skip
    table = fits(runs, steps)
    print("\ntime-varying Cox of the crash hazard: hazard ratio per SD of the PE covariate (95% CI), p")
    print(f"{'covariate':<24}{'model':<18}{'HR/SD':>7}{'95% CI':>16}{'p':>9}  strata; adjusted for")
    for row in table.to_dict("records"):
        ci = f"[{row['hr_per_sd_lo']:.2f}, {row['hr_per_sd_hi']:.2f}]"
        note = f"  ({row['note']})" if row["note"] else ""
        print(f"{row['covariate']:<24}{row['model']:<18}{row['hr_per_sd']:>7.2f}{ci:>16}{row['p']:>9.3g}  "
              f"{row['strata'] or '-'}; {row['adjusted_for'] or '-'}{note}")  # fmt: skip
    shocks_only, passed = covers_one(table, SHOCKS_ONLY), covers_one(table, ADJUSTED)
    print(f"\nwithin conditions, adjusted for shock exposure only: the CI {'covers' if shocks_only else 'misses'} 1")
    print(f"{'PASS' if passed else 'FAIL'}: within conditions, adjusted for shock exposure and business state, "
          f"the CI {'covers 1 for every PE covariate' if passed else 'misses 1 for a PE covariate'}")  # fmt: skip
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--p-shock", default="0.3", help="comma-separated shock probabilities (runs spread over them)")
    parser.add_argument("--pe-mag", default="medium,high", help="comma-separated magnitudes (runs spread over them)")
    parser.add_argument("--pressure", default="low", choices=("low", "medium", "high"))
    parser.add_argument("--level", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--seed0", type=int, default=0, help="first seed (runs use seed0 .. seed0 + runs - 1)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1: run in this process)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    all_jobs = jobs(args.runs, [float(p) for p in args.p_shock.split(",")], args.pe_mag.split(","), args.pressure,
                    args.level, args.max_steps, args.seed0)  # fmt: skip
    results = sorted(run_all(all_jobs, args.workers), key=lambda r: r["seed"])
    passed = report(results, args)
    print(f"({len(results)} runs in {time.perf_counter() - start:.0f} s, {args.workers} workers)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
