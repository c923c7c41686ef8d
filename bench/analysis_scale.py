"""Scale of `vendomini analyze` at phase-2 size: 4,950 runs x 1,000 steps analysed in at most 300 s and 8 GiB.

    python bench/analysis_scale.py --log-dir /tmp/analysis-scale                 # generate, then analyse
    python bench/analysis_scale.py --log-dir /tmp/analysis-scale --no-generate   # analyse what is there
    python bench/analysis_scale.py --log-dir /tmp/small --conditions 20 --replications 5 --steps 300

1. Logs (unless --no-generate): the phase-2 grid (`configs/phases/phase2.yaml`, 165 conditions, max_steps 1000)
   on the scripted heuristic with 30 replications (4,950 runs, as `vendomini run phase2 --model
   vendomini/heuristic --replications 30` would make) into LOGDIR/grid, and, so that the Cox models have crashes,
   the heuristic with a looping fault from step 700 and a decoupling fault (the secondary endpoint) from step 500,
   one run per condition each, into LOGDIR/faults/<fault>. The episodes run on the core's direct runner and
   Inspect scores and writes them (bench/_scale_logs.py: the real tasks and scorers, the scripted model's seeds;
   tests/test_scale_logs.py checks that such a log gives the analysis rows of `inspect eval`), in --workers
   processes. Rerunning finishes what is missing.
2. The measurement: `python -m vendomini_eval.cli analyze LOGDIR --out OUT` in a child process (imports, reading
   the logs, tables, statistics with the default 200 bootstrap resamples, figures, report, every file written),
   its wall time, and its peak resident memory: the rusage of that child (os.wait4), and, since the logs are read
   by a process per core, the memory of the child and its processes together, sampled. The targets are checked
   (on the larger peak) and printed; exit status 1 if missed, or if the logs are smaller than phase-2 size.

Measured on two shared cores: generating the 5,280 runs took about 50 min (0.25 s a run on an idle core). The
analysis of all 5,280 runs (4,893,027 steps, 150 crashes, 3 models): 166 to 193 s wall and 6.1 to 6.4 GiB peak
(load average 1 to 2.7 from other work), where it took 235 s and 6.97 GiB on the same machine before the logs were
read in parallel (258 to 301 s on a busier one). Reading the logs, a process per core, takes about 70 s (JSON
parsing of the stores, most of it); the tables and statistics, in one process, about 50 s (the Kaplan-Meier fits,
lifelines' own for each of the 495 groups, a quarter of it); writing about 45 s, the steps table (CSV of 1.6 GB,
and Parquet) in a thread beside the figures (the crash-type mix, a bar per group, is most of their time). The trace
columns are read as numpy arrays and the steps table joins them; the time-varying Cox intervals are built from the
columns they read, never a copy of the steps table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _scale_logs import Family, generate

CONFIG = "phase2"
TARGET_RUNS = 4950
TARGET_STEPS = 1000
TARGET_SECONDS = 300.0
TARGET_BYTES = 8 * 1024**3
REPLICATIONS = 30  # x 165 phase-2 conditions = 4,950 runs
SAMPLE_SECONDS = 0.5
"""How often the memory of the analysis's processes is summed."""
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
FAULTS = (("looping", 700), ("decoupling", 500))
"""Fault and onset step of the runs that break down late, as a breakdown in a long run would; one run per
condition each."""


def families(replications: int) -> list[Family]:
    return [Family("grid", replications),
            *(Family(f"faults/{fault}", 1, {"fault": fault, "onset": onset}) for fault, onset in FAULTS)]  # fmt: skip


def measure(log_dir: Path, out: Path) -> tuple[float, int, int, str]:
    """Wall seconds, peak memory in bytes and output of one `vendomini analyze` child. Two peaks: the child's
    own peak resident memory (its rusage; Linux reports KiB), and that of the child and its children together,
    sampled (the logs are read by a process per core; rusage gives the largest process of a tree, not a sum)."""
    command = [sys.executable, "-m", "vendomini_eval.cli", "analyze", str(log_dir), "--out", str(out)]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        done, tree_peak = threading.Event(), [0]

        def sample() -> None:
            while not done.wait(SAMPLE_SECONDS):
                tree_peak[0] = max(tree_peak[0], tree_rss(child.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    if child.returncode != 0:
        raise SystemExit(f"analyze failed ({child.returncode}):\n{text}")
    return seconds, usage.ru_maxrss * 1024, tree_peak[0], text


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants now (Linux /proc; 0 elsewhere). Pages a forked child
    still shares with its parent count in both: an upper bound."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # the parent pid follows the command, which is in parentheses and may hold spaces
            parents.setdefault(int(stat.read_bytes().rsplit(b")", 1)[1].split()[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):  # gone since listed
            continue
    total, todo = 0, [pid]
    while todo:
        process = todo.pop()
        todo.extend(parents.get(process, []))
        try:
            total += int(Path(f"/proc/{process}/statm").read_bytes().split()[1]) * PAGE_BYTES
        except (OSError, IndexError, ValueError):
            continue
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-dir", type=Path, default=Path(tempfile.gettempdir()) / "vendomini-analysis-scale")
    parser.add_argument("--out", type=Path, help="report directory (default: a temporary one)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-generate", action="store_true", help="analyse the logs already in --log-dir")
    parser.add_argument("--replications", type=int, default=REPLICATIONS, help="grid runs per condition")
    parser.add_argument("--steps", type=int, default=TARGET_STEPS, help="max_steps of every run")
    parser.add_argument("--conditions", type=int, help="only the first N phase-2 conditions (default: all 165)")
    args = parser.parse_args()

    if not args.no_generate:
        seconds = generate(args.log_dir, CONFIG, families(args.replications), args.steps, args.conditions,
                           args.workers)  # fmt: skip
        print(f"generation: {seconds:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "report"
        seconds, own_peak, tree_peak, text = measure(args.log_dir, out)
        import pandas as pd

        runs = pd.read_parquet(out / "runs.parquet", columns=["model", "steps", "max_steps", "crashed"])
    print(text.strip())
    print(f"analysed: {len(runs)} runs of {runs['model'].nunique()} models, {int(runs['steps'].sum())} steps "
          f"(max_steps {int(runs['max_steps'].max())}, mean {runs['steps'].mean():.0f} steps per run), "
          f"{int(runs['crashed'].sum())} crashes")  # fmt: skip
    peak = max(own_peak, tree_peak)
    time_ok, memory_ok = seconds <= TARGET_SECONDS, peak <= TARGET_BYTES
    size_ok = len(runs) >= TARGET_RUNS and runs["max_steps"].max() >= TARGET_STEPS
    print(f"wall time   {seconds:6.1f} s    (target <= {TARGET_SECONDS:.0f} s): {'PASS' if time_ok else 'FAIL'}")
    print(f"peak memory {peak / 1024**3:6.2f} GiB  (target <= {TARGET_BYTES / 1024**3:.0f} GiB): "
          f"{'PASS' if memory_ok else 'FAIL'} (the analysis process {own_peak / 1024**3:.2f} GiB; with the "
          f"processes it started, sampled every {SAMPLE_SECONDS:g} s, {tree_peak / 1024**3:.2f} GiB)")  # fmt: skip
    if not size_ok:
        print(f"size: fewer than {TARGET_RUNS} runs of {TARGET_STEPS} steps: not the target's scale")
    return 0 if time_ok and memory_ok and size_ok else 1


if __name__ == "__main__":
    sys.exit(main())
