"""A Vending-Bench 2 horizon through Inspect: one year of the vending business played by the scripted heuristic
model, `vendomini_eval/vending_bench` with `days=365` and the step cap lifted so that only the year ends the run.

Reports the steps and days run, the net worth at the end, the median milliseconds per turn over the first and
the last thousand turns (from the timestamps of consecutive model events; target: last / first <= 1.25, the
bounded window keeps turns flat) and the log's compressed size per step.

    python bench/vending_year.py [--days 365] [--p-shock 0.1] [--prediction-mode required]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log

from vendomini_eval.results import EpisodeSummary
from vendomini_eval.tasks.vending_bench import vending_bench

WINDOW_TURNS = 1_000
TARGET_RATIO = 1.25
STEP_CAP = 100_000  # far above a year's steps: the year, not the cap, ends the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--p-shock", type=float, default=0.0)
    parser.add_argument("--prediction-mode", default="none")
    options = parser.parse_args()
    task = vending_bench(days=options.days, replications=1, p_shock=options.p_shock,
                         prediction_mode=options.prediction_mode, max_steps=STEP_CAP)  # fmt: skip
    with tempfile.TemporaryDirectory() as log_dir:
        started = time.perf_counter()
        (log,) = inspect_eval(task, model="vendomini/heuristic", log_dir=log_dir, display="none")
        elapsed = time.perf_counter() - started
        path = Path(log.location)
        sample = read_eval_log(str(path)).samples[0]
        size = path.stat().st_size
    summary = EpisodeSummary.model_validate(sample.store["EpisodeRecord:summary"])
    times = [event.timestamp for event in sample.events if event.event == "model"]
    gaps = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(times)]
    first, last = statistics.median(gaps[:WINDOW_TURNS]), statistics.median(gaps[-WINDOW_TURNS:])
    print(f"{summary.steps} steps, {summary.days} days, net worth ${summary.net_worth:,.2f}, "
          f"{'crashed: ' + str(summary.crash_type) if summary.crashed else 'no crash'}, "
          f"terminated {summary.terminated}, {elapsed:.0f} s")  # fmt: skip
    print(f"ms per turn (median): first {WINDOW_TURNS} turns {first:.2f}, last {WINDOW_TURNS} turns {last:.2f}, "
          f"ratio {last / first:.2f} (target <= {TARGET_RATIO})")  # fmt: skip
    print(f"log: {size / 1e6:.2f} MB compressed, {size / max(summary.steps, 1):.0f} bytes per step")
    if summary.days < options.days:
        raise SystemExit(f"the run ended on day {summary.days}, before day {options.days}")
    if last / first > TARGET_RATIO:
        raise SystemExit(f"turns slowed down: ratio {last / first:.2f} > {TARGET_RATIO}")


if __name__ == "__main__":
    main()
