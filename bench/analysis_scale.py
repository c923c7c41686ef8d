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
   its wall time, and its peak resident memory from the rusage of that child (os.wait4). The targets are checked
   and printed; exit status 1 if missed, or if the logs are smaller than phase-2 size.

Measured on two shared cores (load average 2 to 5 from other work): generating the 5,280 runs took about 50 min
(0.25 s a run on an idle core). The analysis of all 5,280 runs (4,893,027 steps, 150 crashes, 3 models): 301 s
wall and 6.98 GiB peak, at the time target rather than under it (258 s and 6.9 GiB in an earlier run). Reading the
logs takes about half of it (JSON parsing of the stores); the steps table written as CSV (1.6 GB), the figures and
the Kaplan-Meier fits most of the rest. The trace columns are read as numpy arrays and the steps table joins
them; the time-varying Cox intervals are built from the columns they read, never a copy of the steps table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _scale_logs import Family, generate

CONFIG = "phase2"
TARGET_RUNS = 4950
TARGET_STEPS = 1000
TARGET_SECONDS = 300.0
TARGET_BYTES = 8 * 1024**3
REPLICATIONS = 30  # x 165 phase-2 conditions = 4,950 runs
FAULTS = (("looping", 700), ("decoupling", 500))
"""Fault and onset step of the runs that break down late, as a breakdown in a long run would; one run per
condition each."""


def families(replications: int) -> list[Family]:
    return [Family("grid", replications),
            *(Family(f"faults/{fault}", 1, {"fault": fault, "onset": onset}) for fault, onset in FAULTS)]  # fmt: skip


def measure(log_dir: Path, out: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes (Linux reports KiB) and output of one `vendomini analyze` child."""
    command = [sys.executable, "-m", "vendomini_eval.cli", "analyze", str(log_dir), "--out", str(out)]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    if child.returncode != 0:
        raise SystemExit(f"analyze failed ({child.returncode}):\n{text}")
    return seconds, usage.ru_maxrss * 1024, text


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
        seconds, peak, text = measure(args.log_dir, out)
        import pandas as pd

        runs = pd.read_parquet(out / "runs.parquet", columns=["model", "steps", "max_steps", "crashed"])
    print(text.strip())
    print(f"analysed: {len(runs)} runs of {runs['model'].nunique()} models, {int(runs['steps'].sum())} steps "
          f"(max_steps {int(runs['max_steps'].max())}, mean {runs['steps'].mean():.0f} steps per run), "
          f"{int(runs['crashed'].sum())} crashes")  # fmt: skip
    time_ok, memory_ok = seconds <= TARGET_SECONDS, peak <= TARGET_BYTES
    size_ok = len(runs) >= TARGET_RUNS and runs["max_steps"].max() >= TARGET_STEPS
    print(f"wall time   {seconds:6.1f} s    (target <= {TARGET_SECONDS:.0f} s): {'PASS' if time_ok else 'FAIL'}")
    print(f"peak memory {peak / 1024**3:6.2f} GiB  (target <= {TARGET_BYTES / 1024**3:.0f} GiB): "
          f"{'PASS' if memory_ok else 'FAIL'}")  # fmt: skip
    if not size_ok:
        print(f"size: fewer than {TARGET_RUNS} runs of {TARGET_STEPS} steps: not the target's scale")
    return 0 if time_ok and memory_ok and size_ok else 1


if __name__ == "__main__":
    sys.exit(main())
