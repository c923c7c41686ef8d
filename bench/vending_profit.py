"""Profitability of the scripted vending policies (vendomini_eval/vending): the heuristic on many seeds, and the
do-nothing policy beside it.

Reports the share of seeds on which the heuristic's net worth at the horizon exceeds the $500 start (target:
>= 95% at 30 days), its net worth spread and counters, and the do-nothing policy's net worth at the horizon and
the day its business fails under the fee rule.

    python bench/vending_profit.py [--seeds 100] [--days 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

from vendomini_eval.vending.heuristic import do_nothing_policy, heuristic_policy
from vendomini_eval.vending.runner import run_policy

TARGET_SHARE = 0.95
FAILURE_HORIZON_DAYS = 1_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    options = parser.parse_args()

    started = time.perf_counter()
    outcomes = [run_policy(heuristic_policy(), seed, options.days) for seed in range(options.seeds)]
    elapsed = time.perf_counter() - started
    start_cash = outcomes[0].world.state.rules.start_cash_cents
    worth = [o.net_worth_cents / 100 for o in outcomes]
    share = sum(o.net_worth_cents > start_cash for o in outcomes) / len(outcomes)
    counters = [o.world.state.counters for o in outcomes]
    print(f"heuristic, {options.seeds} seeds x {options.days} days ({elapsed:.1f} s):")
    print(f"  profitable (net worth > ${start_cash / 100:.0f}): {share:.0%} (target >= {TARGET_SHARE:.0%})")
    print(
        f"  net worth: min ${min(worth):.2f}, median ${statistics.median(worth):.2f}, "
        f"mean ${statistics.mean(worth):.2f}, max ${max(worth):.2f}"
    )
    print(
        f"  per run (mean): units sold {statistics.mean(c.units_sold for c in counters):.0f}, "
        f"units expired {statistics.mean(c.units_expired for c in counters):.1f}, "
        f"stockout product-days {statistics.mean(c.stockout_product_days for c in counters):.1f}, "
        f"failed runs {sum(o.world.state.terminated is not None for o in outcomes)}"
    )

    idle = run_policy(do_nothing_policy(), 0, options.days)
    failed = run_policy(do_nothing_policy(), 0, FAILURE_HORIZON_DAYS).world.state
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
