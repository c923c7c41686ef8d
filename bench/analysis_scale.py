"""Scale of `vendomini analyze`: 1,000 runs x 500 steps from the scripted models, analysed in at most 60 s and
2 GiB of memory.

    python bench/analysis_scale.py --log-dir /tmp/analysis-scale                 # generate, then analyse
    python bench/analysis_scale.py --log-dir /tmp/analysis-scale --no-generate   # analyse what is there

1. Logs (unless --no-generate), all real runs of the scripted models at max_steps 500: the phase-1 grid on the
   heuristic (`vendomini run phase1 --model vendomini/heuristic --replications 23`: 44 conditions x 23 = 1,012
   runs, most censored) into LOGDIR/grid, and, so that there are crashes for the Cox models, the
   heuristic with a decoupling fault from step 250 and a looping fault from step 350 (`inspect eval
   vendomini_eval/phase1 -M fault=... -M onset=...`, 23 runs each) into LOGDIR/faults/<fault>. Rerunning
   finishes what is missing. Through Inspect a scripted turn costs about 10 ms: about 1.5 CPU-hours in all.
2. The measurement: `python -m vendomini_eval.cli analyze LOGDIR --out OUT` in a child process (imports, reading
   the logs, tables, statistics, figures, report, every file written), its wall time, and its peak resident
   memory from the rusage of that child (os.wait4). The targets are checked and printed; exit status 1 if missed.

The figures in the README are from all-real logs made by step 1 (1,012 grid runs and the two fault sets of 23,
1,058 runs, 380,523 steps, 230 crashes) on two shared cores: 23.0 to 43.0 s, peak 1.42 to 1.44 GiB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RUNS = 1000
TARGET_STEPS = 500
TARGET_SECONDS = 60.0
TARGET_BYTES = 2 * 1024**3
REPLICATIONS = 23  # x 44 phase-1 conditions = 1,012 runs
FAULT_TASKS = (("decoupling", 250, 0.2, "high"), ("looping", 350, 0.1, "low"))
"""Fault, onset step, p_shock and pe_mag of the runs that crash late, as a breakdown in a long run would."""


def generate(log_dir: Path, workers: int) -> None:
    """The real runs of step 1; each command resumes or skips what is already there."""
    grid = ["vendomini", "run", "phase1", "--model", "vendomini/heuristic", "--max-steps", str(TARGET_STEPS),
            "--replications", str(REPLICATIONS), "--max-tasks", "1", "--workers", str(workers), "--log-dir",
            str(log_dir / "grid"), "--display", "log"]  # fmt: skip
    print("generating:", " ".join(grid), flush=True)
    subprocess.run(grid, check=True)
    for fault, onset, p_shock, pe_mag in FAULT_TASKS:
        fault_dir = log_dir / "faults" / fault
        if finished_logs(fault_dir):
            continue
        command = ["inspect", "eval", "vendomini_eval/phase1", "--model", "vendomini/heuristic", "-M",
                   f"fault={fault}", "-M", f"onset={onset}", "-T", f"max_steps={TARGET_STEPS}", "-T",
                   f"replications={REPLICATIONS}", "-T", f"p_shock={p_shock}", "-T", f"pe_mag={pe_mag}",
                   "--log-dir", str(fault_dir), "--display", "log"]  # fmt: skip
        print("generating:", " ".join(command), flush=True)
        subprocess.run(command, check=True)


def finished_logs(log_dir: Path) -> list[tuple[Path, int]]:
    """The finished logs below log_dir, with their sample counts."""
    from inspect_ai.log import read_eval_log

    logs: list[tuple[Path, int]] = []
    for path in sorted(log_dir.rglob("*.eval")) if log_dir.is_dir() else []:
        header = read_eval_log(str(path), header_only=True)
        if header.status == "success" and header.results is not None:
            logs.append((path, header.results.completed_samples))
    return logs


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
    args = parser.parse_args()

    if not args.no_generate:
        generate(args.log_dir, args.workers)
    real = sum(n for _, n in finished_logs(args.log_dir))
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "report"
        seconds, peak, text = measure(args.log_dir, out)
        import pandas as pd

        runs = pd.read_parquet(out / "runs.parquet", columns=["steps", "max_steps", "crashed"])
    print(text.strip())
    print(f"logs: {args.log_dir}: {real} runs in finished logs")
    print(f"analysed: {len(runs)} runs, {int(runs['steps'].sum())} steps (max_steps {int(runs['max_steps'].max())}, "
          f"mean {runs['steps'].mean():.0f} steps per run), {int(runs['crashed'].sum())} crashes")  # fmt: skip
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
