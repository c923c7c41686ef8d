"""Crash-detector validation: recall, precision and onset latency per crash type, and false crashes.

Ground truth comes from the fault-injected heuristic (`vendomini_eval.policies.faults`): competent until a known
onset step, then one named breakdown. For each fault, `--seeds` runs of the validation condition (level 1,
p_shock 0.1, predictions required, 500 steps) with the onset drawn per seed from 80..200, so that no rule can be
tuned to one onset. The competent heuristic without faults gives the false-crash rate: `--control-runs` runs
per shock level (0, 0.1, 0.3), spread over complexity levels 0-4.

* A detection is **correct** when the run's crash has the fault's type and its onset step lies in
  [onset - 10, onset + 50].
* **Recall** of type T: correct detections / runs of fault T.
* **Precision** of type T: correct detections / crashes labelled T in all runs (every fault's and the
  controls'). A crash before the fault's onset, of another type, or dated outside the window is false.
* **Latency**: crash onset - true onset over correct detections (median, and median of its absolute value).
  The decision delay (confirmation step - true onset) is reported for information.

Targets (the preset given; the design's targets apply to moderate): recall >= 0.95 and precision >= 0.95 per
type, median |latency| <= 10 steps per type, false-crash rate <= 1 % at p_shock 0. Exits 1 if any fails.

    PYTHONPATH=. python bench/validate_detector.py [--seeds 100] [--control-runs 500] [--preset moderate]
        [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Any

import numpy as np

from vendomini_eval.condition import Condition
from vendomini_eval.crash import CRASH_TYPES, PRESETS
from vendomini_eval.policies import FAULTS
from vendomini_eval.runner import run_policy

VALIDATION = {"complexity_level": 1, "p_shock": 0.1, "prediction_mode": "required", "max_steps": 500}
"""The fault runs' condition (with the preset under test); the rest is the base condition."""
ONSET_RANGE = (80, 200)
"""True onsets are drawn per seed, uniformly from this range (inclusive)."""
ONSET_STREAM = 0x0A5E7
"""Salt of the onset draw, so that onsets are independent of the run's own random streams."""
WINDOW = (-10, 50)
"""A crash is a correct detection when its onset - the true onset lies in this range (inclusive)."""
CONTROL_P_SHOCKS = (0.0, 0.1, 0.3)
"""Shock levels of the control runs; the false-crash target applies to the first."""
CONTROL_LEVELS = range(5)
CONTROL_SEED0 = 100_000
"""Control seeds start here (fault runs use 0..seeds-1)."""
RECALL_MIN, PRECISION_MIN, LATENCY_MAX, FALSE_CRASH_MAX = 0.95, 0.95, 10, 0.01


@dataclass(frozen=True)
class Job:
    fault: str | None
    seed: int
    onset: int | None
    level: int
    p_shock: float
    preset: str


@dataclass(frozen=True)
class Outcome:
    job: Job
    crash_type: str | None
    crash_onset: int | None
    resolved: int | None
    terminated: str | None

    @property
    def delta(self) -> int | None:
        """Crash onset - true onset (fault runs with a crash only)."""
        if self.crash_onset is None or self.job.onset is None:
            return None
        return self.crash_onset - self.job.onset

    @property
    def correct(self) -> bool:
        delta = self.delta
        return self.crash_type == self.job.fault and delta is not None and WINDOW[0] <= delta <= WINDOW[1]

    def miss_reason(self) -> str:
        if self.crash_type is None:
            return f"censored:{self.terminated or 'max_steps'}"
        if self.crash_type != self.job.fault:
            return f"as:{self.crash_type}"
        return f"onset{self.delta:+d}"


def true_onset(seed: int) -> int:
    return int(np.random.default_rng((ONSET_STREAM, seed)).integers(ONSET_RANGE[0], ONSET_RANGE[1] + 1))


def jobs(seeds: int, control_runs: int, preset: str) -> list[Job]:
    out = [
        Job(fault, seed, true_onset(seed), VALIDATION["complexity_level"], VALIDATION["p_shock"], preset)
        for fault in FAULTS
        for seed in range(seeds)
    ]
    levels = list(CONTROL_LEVELS)
    for p_shock in CONTROL_P_SHOCKS:
        out += [
            Job(None, CONTROL_SEED0 + i, None, levels[i % len(levels)], p_shock, preset) for i in range(control_runs)
        ]
    return out


def run(job: Job) -> Outcome:
    condition = Condition(
        **{**VALIDATION, "complexity_level": job.level, "p_shock": job.p_shock, "crash_threshold": job.preset}
    )
    output = run_policy(condition, job.seed, "heuristic", fault=job.fault, onset=job.onset)
    crash = output.episode.crash
    return Outcome(
        job,
        crash.crash_type if crash else None,
        crash.onset_step if crash else None,
        crash.resolved_step if crash else None,
        output.summary["terminated"],
    )


def run_all(all_jobs: list[Job], workers: int) -> Iterator[Outcome]:
    if workers <= 1:
        yield from map(run, all_jobs)
        return
    with Pool(workers) as pool:
        yield from pool.imap_unordered(run, all_jobs, chunksize=8)


def _median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def report(outcomes: list[Outcome], preset: str, seeds: int, control_runs: int) -> bool:
    """Print the tables and the PASS/FAIL lines; True when every target passes."""
    faulty = [o for o in outcomes if o.job.fault is not None]
    controls = [o for o in outcomes if o.job.fault is None]
    print(
        f"preset {preset}: {seeds} seeds per fault, condition {VALIDATION}, onset drawn from "
        f"{ONSET_RANGE[0]}..{ONSET_RANGE[1]} per seed, correct = own type with onset error in "
        f"[{WINDOW[0]}, {WINDOW[1]}]; precision over the fault runs and {len(controls)} control runs"
    )
    header = (
        f"{'type':<21}{'runs':>5}{'correct':>8}{'recall':>8}{'crashes':>8}{'false':>6}{'precision':>10}"
        f"{'med lat':>8}{'med |lat|':>10}{'med decision':>13}  misses"
    )
    print(header)
    print("-" * len(header))
    rows: dict[str, dict[str, Any]] = {}
    for crash_type in CRASH_TYPES:
        runs = [o for o in faulty if o.job.fault == crash_type]
        correct = [o for o in runs if o.correct]
        labelled = [o for o in outcomes if o.crash_type == crash_type]
        true_pos = sum(o.correct for o in labelled)
        deltas = [o.delta for o in correct if o.delta is not None]
        row = {
            "recall": len(correct) / len(runs) if runs else None,
            "precision": true_pos / len(labelled) if labelled else None,
            "latency": _median(deltas),
            "abs_latency": _median(abs(d) for d in deltas),
        }
        rows[crash_type] = row
        decision = _median(o.resolved - o.job.onset for o in correct if o.resolved is not None and o.job.onset)
        misses = Counter(o.miss_reason() for o in runs if not o.correct)
        miss_text = ", ".join(f"{k} {v}" for k, v in sorted(misses.items())) or "-"
        print(
            f"{crash_type:<21}{len(runs):>5}{len(correct):>8}{_fmt(row['recall'], '.3f'):>8}{len(labelled):>8}"
            f"{len(labelled) - true_pos:>6}{_fmt(row['precision'], '.3f'):>10}{_fmt(row['latency']):>8}"
            f"{_fmt(row['abs_latency']):>10}{_fmt(decision):>13}  {miss_text}"
        )

    print(f"\ncompetent heuristic, no fault, 500 steps, levels {CONTROL_LEVELS.start}-{CONTROL_LEVELS.stop - 1}:")
    rates: dict[float, float] = {}
    for p_shock in CONTROL_P_SHOCKS:
        runs = [o for o in controls if o.job.p_shock == p_shock]
        crashed = Counter(o.crash_type for o in runs if o.crash_type is not None)
        failed = Counter(o.terminated for o in runs if o.terminated)
        rates[p_shock] = sum(crashed.values()) / len(runs) if runs else 0.0
        what = ", ".join(f"{k} {v}" for k, v in sorted(crashed.items())) or "-"
        business = ", ".join(f"{k} {v}" for k, v in sorted(failed.items())) or "none"
        target = " (target)" if p_shock == CONTROL_P_SHOCKS[0] else ""
        print(
            f"  p_shock {p_shock:<4} false crashes {sum(crashed.values()):>3}/{len(runs)} = {rates[p_shock]:6.2%}"
            f"  [{what}]  business failures: {business}{target}"
        )

    def check(name: str, values: dict[str, float | None], ok: Any) -> bool:
        failing = [t for t, v in values.items() if v is None or not ok(v)]
        shown = ", ".join(f"{t} {_fmt(v, '.3g')}" for t, v in values.items())
        passed = not failing
        print(
            f"{'PASS' if passed else 'FAIL'} {name}: {shown}"
            + (f"  (failing: {', '.join(failing)})" if failing else "")
        )
        return passed

    print()
    results = [
        check(f"recall >= {RECALL_MIN}", {t: r["recall"] for t, r in rows.items()}, lambda v: v >= RECALL_MIN),
        check(
            f"precision >= {PRECISION_MIN}",
            {t: r["precision"] for t, r in rows.items()},
            lambda v: v >= PRECISION_MIN,
        ),
        check(
            f"median |onset latency| <= {LATENCY_MAX} steps",
            {t: r["abs_latency"] for t, r in rows.items()},
            lambda v: v <= LATENCY_MAX,
        ),
        check(
            f"false-crash rate at p_shock {CONTROL_P_SHOCKS[0]} <= {FALSE_CRASH_MAX:.0%}",
            {"heuristic": rates.get(CONTROL_P_SHOCKS[0])},
            lambda v: v <= FALSE_CRASH_MAX,
        ),
    ]
    passed = all(results)
    print(f"{'PASS' if passed else 'FAIL'} overall (preset {preset})")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100, help="runs per fault (>= 50 for the targets)")
    parser.add_argument("--control-runs", type=int, default=500, help="heuristic runs per shock level (>= 200)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="moderate")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1: run in this process)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    outcomes = list(run_all(jobs(args.seeds, args.control_runs, args.preset), args.workers))
    passed = report(outcomes, args.preset, args.seeds, args.control_runs)
    print(f"({len(outcomes)} runs in {time.perf_counter() - start:.0f} s, {args.workers} workers)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
