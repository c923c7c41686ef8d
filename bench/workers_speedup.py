"""Speed-up of `vendomini run --workers N` over one worker on a CPU-bound scripted sweep.

Runs the same small phase-1 grid (the first `--conditions` conditions, `--max-steps` steps, one replication,
vendomini/heuristic) with --workers 1 and --workers N into fresh temporary log dirs, alternating the two so
that a change in machine load hits both, and reports the median wall time of each (the whole command:
process start-up, eval_set, shard processes), the turns per second and the ratio. Target: >= 1.6x with 2
workers on 2 free cores. On a shared machine, read the ratio against the load average and against the cores
each run obtained (CPU seconds of the command and its shard processes / wall seconds): two workers can only
be faster when they get more than one core. Each shard process pays a few seconds of Inspect start-up, so the
default runs are 300 steps long (a real phase has far more work per shard).

    python bench/workers_speedup.py [--conditions 8] [--max-steps 300] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inspect_ai.log import list_eval_logs, read_eval_log

TARGET_RATIO = 1.6


def run_sweep(log_dir: Path, workers: int, conditions: int, max_steps: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `vendomini run`, shard processes included; fails loudly if the sweep
    did not complete."""
    command = [
        sys.executable, "-m", "vendomini_eval.cli", "run", "phase1", "--model", "vendomini/heuristic",
        "--max-steps", str(max_steps), "--replications", "1", "--limit-conditions", str(conditions),
        "--workers", str(workers), "--log-dir", str(log_dir),
    ]  # fmt: skip
    cpu_before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"workers={workers} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, _children_cpu() - cpu_before


def _children_cpu() -> float:
    """CPU seconds of every finished child process (and theirs, once waited for: the shard processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def turns(log_dir: Path) -> int:
    """Agent turns (environment steps) in the sweep's logs."""
    total = 0
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info.name)
        for sample in log.samples or []:
            assert sample.scores is not None
            total += int(sample.scores["survival"].value["steps"])  # type: ignore[index]
    return total


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conditions", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"phase1, first {args.conditions} conditions, {args.max_steps} steps, 1 replication, vendomini/heuristic")
    print(f"before: {load()}")
    times: dict[int, list[float]] = {1: [], args.workers: []}
    cpu: dict[int, list[float]] = {1: [], args.workers: []}
    steps: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="workers_speedup_") as tmp:
        for repeat in range(args.repeats):
            for workers in times:
                log_dir = Path(tmp) / f"w{workers}-r{repeat}"
                before = load()
                seconds, cpu_seconds = run_sweep(log_dir, workers, args.conditions, args.max_steps)
                times[workers].append(seconds)
                cpu[workers].append(cpu_seconds)
                steps[workers] = turns(log_dir)
                print(
                    f"  repeat {repeat}  workers {workers}  {seconds:6.1f} s wall  {cpu_seconds:6.1f} s CPU  "
                    f"{cpu_seconds / seconds:4.2f} cores  (before: {before})"
                )
    print(f"after: {load()}")
    print(f"{'workers':>7} {'median s':>9} {'runs (s)':>20} {'CPU s':>6} {'turns':>6} {'turns/s':>8}")
    for workers, runs in times.items():
        median = statistics.median(runs)
        listed = ", ".join(f"{s:.1f}" for s in runs)
        print(
            f"{workers:>7} {median:>9.1f} {listed:>20} {statistics.median(cpu[workers]):>6.1f} "
            f"{steps[workers]:>6} {steps[workers] / median:>8.0f}"
        )
    if steps[1] != steps[args.workers]:
        print(f"WARNING: the sweeps ran different numbers of turns ({steps[1]} vs {steps[args.workers]})")
    ratio = statistics.median(times[1]) / statistics.median(times[args.workers])
    verdict = "meets" if ratio >= TARGET_RATIO else "below"
    print(f"speed-up {args.workers} workers / 1 worker: {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target)")


if __name__ == "__main__":
    main()
