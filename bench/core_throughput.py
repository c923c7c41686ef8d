"""Throughput of the simulation core: steps per second of Episode.step driven by the heuristic policy.

Reports, at complexity 0 and 4, over 1,000 and 100,000 steps: the rate of Episode.step alone (the policy's
time excluded) and of the whole loop, as the median of several repeats. Targets: >= 20,000 steps/s of
Episode.step at level 4, and the 100k-step rate >= 0.8 x the 1k-step rate (flat cost per step). A 1k-step run
is over in about a tenth of a second, so one hiccup of a shared machine moves its rate by a quarter: it is
repeated more (`--short-repeats`, seeds 11, 12, ...) than the long run (`--repeats`), and its repeats are spread
between the long runs, so that the two rates are taken over the same stretch of time.

    python bench/core_throughput.py [--repeats 3] [--short-repeats 15] [--long 100000] [--levels 0 4]
                                    [--clock wall|cpu]

`--clock cpu` times with the process's CPU time (time.process_time) instead of the wall clock: steadier on a
machine shared with other work, at the price of a slower clock read (about a microsecond per step is counted as
step time). To compare two checkouts, run this script with PYTHONPATH set to each in turn.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

from vendomini_eval.condition import Condition
from vendomini_eval.episode import Episode
from vendomini_eval.policies import PolicyContext, make_policy

P_SHOCK = 0.1


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def measure(
    level: int, steps: int, seed: int, clock: Callable[[], float] = time.perf_counter
) -> tuple[float, float, int]:
    """(Episode.step steps/s, whole-loop steps/s, steps run) for one episode."""
    condition = Condition(complexity_level=level, max_steps=steps, p_shock=P_SHOCK)
    episode = Episode(condition, seed)
    policy = make_policy("heuristic", PolicyContext.for_condition(condition), seed)
    observation = None
    in_step = 0.0
    start = clock()
    while not episode.done:
        action, prediction = policy.act(observation)
        t0 = clock()
        result = episode.step(action, prediction)
        in_step += clock() - t0
        observation = result.observation()
    total = clock() - start
    n = episode.state.step
    return n / in_step, n / total, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the long run")
    parser.add_argument("--short-repeats", type=int, default=15, help="repeats of the 1,000-step run")
    parser.add_argument("--long", type=int, default=100_000, help="steps of the long run")
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 4], choices=range(5), help="complexity levels")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall clock or process CPU time")
    args = parser.parse_args()
    if args.long <= 1_000:
        parser.error(f"--long must be more than the 1,000 steps of the short run, got {args.long}")
    if min(args.repeats, args.short_repeats) < 1:
        parser.error("--repeats and --short-repeats must be at least 1")
    clock = CLOCKS[args.clock]
    print(f"p_shock {P_SHOCK}, heuristic policy, {args.clock} clock, Python {platform.python_version()}")
    print(f"median of {args.short_repeats} repeats (1,000 steps) and {args.repeats} ({args.long:,} steps)")
    print(f"{'level':>5} {'steps':>8} {'ran':>8} {'step/s (Episode.step)':>22} {'step/s (loop)':>14}")
    rates: dict[tuple[int, int], float] = {}
    for level in args.levels:
        runs: dict[int, list[tuple[float, float, int]]] = {1_000: [], args.long: []}
        for r in range(args.repeats):
            # The short runs are spread between the long ones, so that both see the same moments of the machine.
            for k in range(r * args.short_repeats // args.repeats, (r + 1) * args.short_repeats // args.repeats):
                runs[1_000].append(measure(level, 1_000, seed=11 + k, clock=clock))
            runs[args.long].append(measure(level, args.long, seed=11 + r, clock=clock))
        for steps, results in runs.items():
            step_rate = statistics.median(r[0] for r in results)
            loop_rate = statistics.median(r[1] for r in results)
            ran = min(r[2] for r in results)
            rates[(level, steps)] = step_rate
            print(f"{level:>5} {steps:>8} {ran:>8} {step_rate:>22,.0f} {loop_rate:>14,.0f}")
    for level in args.levels:
        ratio = rates[(level, args.long)] / rates[(level, 1_000)]
        print(f"level {level}: long/short rate ratio {ratio:.2f} (target >= 0.8)")
    if 4 in args.levels:
        print(f"level 4 Episode.step rate {rates[(4, 1_000)]:,.0f} steps/s (target >= 20,000)")


if __name__ == "__main__":
    main()
