"""Harness cost per turn: one sample of phase 1 driven by the scripted heuristic model through Inspect.

Reports, for runs of 500 and 5,000 steps: the median milliseconds per turn (from the timestamps of
consecutive model events in the log), and the log's compressed size per step. Targets: the 5,000-step median
within 1.25x of the 500-step median (a bounded context keeps turns flat), <= 15 ms per turn, and <= 1 KB of
compressed log per step.

    python bench/harness_turns.py [--steps 500 5000]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
from pathlib import Path

from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log

from vendomini_eval.results import EpisodeSummary
from vendomini_eval.tasks.phase1 import phase1

P_SHOCK = 0.1


def measure(steps: int) -> tuple[float, float, int]:
    """(median ms per turn, compressed log bytes per step, steps run)."""
    with tempfile.TemporaryDirectory() as log_dir:
        task = phase1(p_shock=P_SHOCK, max_steps=steps, replications=1)
        (log,) = inspect_eval(task, model="vendomini/heuristic", log_dir=log_dir, display="none")
        path = Path(log.location)
        size = path.stat().st_size
        sample = read_eval_log(str(path)).samples[0]
        times = [event.timestamp for event in sample.events if event.event == "model"]
        turns = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(times)]
        stored = sample.store.get("EpisodeRecord:summary")
        ran = EpisodeSummary.model_validate(stored).steps if stored else len(times)
        return statistics.median(turns), size / max(ran, 1), ran


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[500, 5000])
    args = parser.parse_args()
    results = {}
    print(f"{'steps':>6} {'ran':>6} {'ms/turn (median)':>17} {'log bytes/step':>15}")
    for steps in args.steps:
        ms, per_step, ran = measure(steps)
        results[steps] = ms
        print(f"{steps:>6} {ran:>6} {ms:>17.2f} {per_step:>15.0f}")
    short, long = min(results), max(results)
    if short != long:
        print(f"median ratio {long}/{short} steps: {results[long] / results[short]:.2f} (target <= 1.25)")


if __name__ == "__main__":
    main()
