"""Profitability of the scripted heuristic in the vending world, played through `Episode.step` (the step function
`inspect eval tasks/vending_bench.py --model vendomini/heuristic` drives), and the do-nothing policy beside it.

Reports the share of seeds on which the heuristic's net worth at the horizon exceeds the $500 start (target:
>= 95% at 30 days), its net worth spread and counters, crashes, and the do-nothing policy's net worth at the
horizon and the day its business fails under the fee rule. The condition is configs/vending_bench.yaml's default
(no shocks, no cards) unless --p-shock or --prediction-mode say otherwise; seeds are the task's run seeds
(experiment seed, condition, replication 0..N-1).

    python bench/vending_profit.py [--seeds 100] [--days 30] [--p-shock 0.1] [--prediction-mode required]
"""

from __future__ import annotations

import argparse
import statistics
import time

from vendomini_eval.experiments import condition_for, derive_run_seed, load_experiment
from vendomini_eval.runner import run_policy
from vendomini_eval.vending.heuristic import do_nothing_policy
from vendomini_eval.vending.runner import run_policy as run_world_policy
from vendomini_eval.worlds import business_of

TARGET_SHARE = 0.95
FAILURE_HORIZON_DAYS = 1_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--p-shock", type=float, default=None)
    parser.add_argument("--prediction-mode", default=None)
    options = parser.parse_args()

    experiment = load_experiment("vending_bench")
    knobs = {"max_days": options.days, "p_shock": options.p_shock, "prediction_mode": options.prediction_mode}
    condition = condition_for(experiment, {k: v for k, v in knobs.items() if v is not None})
    seeds = [derive_run_seed(experiment.seed, condition, replication) for replication in range(options.seeds)]
    started = time.perf_counter()
    summaries = [run_policy(condition, seed).summary for seed in seeds]
    elapsed = time.perf_counter() - started
    start_cash = business_of(condition).rules(condition).start_cash_cents / 100
    worth = [s.net_worth for s in summaries]
    share = sum(w > start_cash for w in worth) / len(worth)
    totals = [s.vending for s in summaries if s.vending is not None]
    print(f"heuristic through Episode.step, {options.seeds} seeds x {options.days} days, p_shock "
          f"{condition.p_shock}, predictions {condition.prediction_mode} ({elapsed:.1f} s):")  # fmt: skip
    print(f"  profitable (net worth > ${start_cash:.0f}): {share:.0%} (target >= {TARGET_SHARE:.0%})")
    print(
        f"  net worth: min ${min(worth):.2f}, median ${statistics.median(worth):.2f}, "
        f"mean ${statistics.mean(worth):.2f}, max ${max(worth):.2f}"
    )
    print(
        f"  per run (mean): steps {statistics.mean(s.steps for s in summaries):.0f}, "
        f"units sold {statistics.mean(t.units_sold for t in totals):.0f}, "
        f"units expired {statistics.mean(t.units_expired for t in totals):.1f}, "
        f"stockout product-days {statistics.mean(t.stockout_product_days for t in totals):.1f}"
    )
    print(
        f"  crashes {sum(s.crashed for s in summaries)}, incoherent {sum(bool(s.incoherent) for s in summaries)}, "
        f"failed businesses {sum(s.terminated is not None for s in summaries)}"
    )

    # Doing nothing has no decisions to play through the harness: the world alone gives its numbers.
    idle = run_world_policy(do_nothing_policy(), 0, options.days)
    failed = run_world_policy(do_nothing_policy(), 0, FAILURE_HORIZON_DAYS).world.state
    print("do-nothing (every seed alike: it never buys or sells):")
    print(f"  net worth at day {options.days}: ${idle.net_worth_cents / 100:.2f}")
    print(
        f"  business fails ({failed.terminated}) after {failed.day} days "
        f"({failed.counters.unpaid_fee_days} unpaid daily fees in a row)"
    )
    if share < TARGET_SHARE:
        raise SystemExit(f"below target: {share:.0%} < {TARGET_SHARE:.0%}")


if __name__ == "__main__":
    main()
