"""Crash-detector validation: recall, precision and onset latency per type, false crashes of the competent
heuristic, and the expected label of every LLM-like behaviour.

Three kinds of runs (docs/METHOD.md, "Detector validation"):

* **Faults.** The fault-injected heuristic (`vendomini_eval.policies.faults`): competent until a known onset step,
  then one named breakdown. For each fault, `--seeds` runs of the validation condition (level 1, p_shock 0.1,
  predictions required, 500 steps) with the onset drawn per seed from 80..200, so that no rule can be tuned to
  one onset. A fault is judged on its endpoint: the faults in `SECONDARY` (decoupling, slow_divergence) on the
  run's incoherence (`Episode.summary().incoherence`), the others on its primary crash.
* **Controls.** The competent heuristic without faults: `--control-runs` runs per shock level (0, 0.1, 0.3,
  0.6), spread over complexity levels 0-4. Any primary crash is false.
* **Behaviours.** The LLM-like behaviours (`vendomini_eval.policies.behaviours`), each with an expected label:
  `--behaviour-seeds` runs per behaviour at each complexity level (1, 3) and shock level (0, 0.3, 0.6), with
  predictions required+confidence, 500 steps; breakdowns start at an onset drawn as the faults' are.

* A detection is **correct** when the run's signal on the judged endpoint has the expected type and its onset
  step lies in [onset - 10, onset + 50].
* **Recall** of type T: correct detections / runs of fault T.
* **Precision** of type T, within its endpoint: correct detections / signals labelled T on that endpoint in all
  fault and control runs. A signal before the fault's onset, of another type, or dated outside the window is
  false.
* **Latency**: signal onset - true onset over correct detections (median, and median of its absolute value).
  The decision delay (confirmation step - true onset) is reported for information.

`--world vending` repeats the faults and the controls in the vending world (the validation condition with
`world: vending` and every memory tool, no complexity levels; the LLM-like behaviours play the warehouse only).

Targets (the preset given; the design's targets apply to moderate): per fault type recall >= 0.95, precision
>= 0.95 and median |latency| <= 10 steps; heuristic false-crash rate <= 1 % at p_shock 0 and <= 2 % at 0.3 and
0.6; breakdown behaviours recall >= 0.95 with the expected type; benign behaviours no primary crash at all.
Exits 1 if any fails.

    PYTHONPATH=. python bench/validate_detector.py [--seeds 100] [--control-runs 500] [--behaviour-seeds 30]
        [--preset moderate] [--workers 2] [--quick] [--world vending]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Any

import numpy as np

from vendomini_eval.condition import Condition
from vendomini_eval.crash import PRESETS, CrashSignal
from vendomini_eval.policies import BEHAVIOURS, BENIGN, EXPECTED, FAULTS
from vendomini_eval.policies.behaviours import onset_use
from vendomini_eval.runner import run_policy

VALIDATION = {"complexity_level": 1, "p_shock": 0.1, "prediction_mode": "required", "max_steps": 500}
"""The fault runs' condition (with the preset under test); the rest is the base condition."""
WORLD_KNOBS = {"warehouse": {}, "vending": {"world": "vending", "memory_tools": "full"}}
"""What each world adds to the validation and control conditions."""
SECONDARY = ("decoupling", "slow_divergence")
"""Faults judged on the secondary endpoint (incoherence); the others are judged on the primary crash."""
CRASH, INCOHERENCE = "crash", "incoherence"
ONSET_RANGE = (80, 200)
"""True onsets are drawn per seed, uniformly from this range (inclusive)."""
ONSET_STREAM = 0x0A5E7
"""Salt of the onset draw, so that onsets are independent of the run's own random streams."""
WINDOW = (-10, 50)
"""A signal is a correct detection when its onset - the true onset lies in this range (inclusive)."""
CONTROL_P_SHOCKS = (0.0, 0.1, 0.3, 0.6)
CONTROL_LEVELS = range(5)
CONTROL_SEED0 = 100_000
"""Control seeds start here (fault runs use 0..seeds-1)."""
FALSE_CRASH_MAX = {0.0: 0.01, 0.3: 0.02, 0.6: 0.02}
"""Heuristic false-crash targets per shock level; the other levels are reported for information."""
BEHAVIOUR_CONDITION = {"prediction_mode": "required+confidence", "max_steps": 500}
BEHAVIOUR_LEVELS = (1, 3)
BEHAVIOUR_P_SHOCKS = (0.0, 0.3, 0.6)
BEHAVIOUR_SEED0 = 200_000
RECALL_MIN, PRECISION_MIN, LATENCY_MAX = 0.95, 0.95, 10
QUICK = {"seeds": 5, "control_runs": 20, "behaviour_seeds": 2}
"""--quick: a smoke run (235 runs, about a minute on 2 cores); its rates are too noisy to judge the targets."""


@dataclass(frozen=True)
class Job:
    kind: str
    """fault, control or behaviour"""
    policy: str
    fault: str | None
    seed: int
    onset: int | None
    level: int
    p_shock: float
    preset: str
    world: str = "warehouse"

    @property
    def name(self) -> str:
        return self.fault or self.policy

    @property
    def endpoint(self) -> str:
        """The endpoint the run is judged on."""
        return INCOHERENCE if self.fault in SECONDARY else CRASH

    @property
    def expected(self) -> str | None:
        """The type the run should show on its endpoint (None: no signal)."""
        if self.kind == "fault":
            return self.fault
        if self.kind == "behaviour":
            label = EXPECTED[self.policy].label
            return None if label == BENIGN else label
        return None


@dataclass(frozen=True)
class Signal:
    type: str
    onset: int
    resolved: int


@dataclass(frozen=True)
class Outcome:
    job: Job
    crash: Signal | None
    incoherence: Signal | None
    terminated: str | None

    def signal(self, endpoint: str) -> Signal | None:
        return self.crash if endpoint == CRASH else self.incoherence

    @property
    def judged(self) -> Signal | None:
        return self.signal(self.job.endpoint)

    @property
    def delta(self) -> int | None:
        """Judged signal's onset - true onset (runs with an onset and a signal only)."""
        judged = self.judged
        if judged is None or self.job.onset is None:
            return None
        return judged.onset - self.job.onset

    @property
    def correct(self) -> bool:
        judged, delta = self.judged, self.delta
        expected = self.job.expected
        return (
            expected is not None
            and judged is not None
            and judged.type == expected
            and delta is not None
            and WINDOW[0] <= delta <= WINDOW[1]
        )

    def miss_reason(self) -> str:
        judged = self.judged
        if judged is None:
            if self.job.endpoint == INCOHERENCE and self.crash is not None:
                return f"crashed:{self.crash.type}"
            return f"none:{self.terminated or 'max_steps'}"
        if judged.type != self.job.expected:
            return f"as:{judged.type}"
        return f"onset{self.delta:+d}"


def true_onset(seed: int) -> int:
    return int(np.random.default_rng((ONSET_STREAM, seed)).integers(ONSET_RANGE[0], ONSET_RANGE[1] + 1))


def jobs(seeds: int, control_runs: int, behaviour_seeds: int, preset: str, world: str = "warehouse") -> list[Job]:
    out = [
        Job("fault", "heuristic", fault, seed, true_onset(seed), VALIDATION["complexity_level"],
            VALIDATION["p_shock"], preset, world)
        for fault in FAULTS
        for seed in range(seeds)
    ]  # fmt: skip
    levels = list(CONTROL_LEVELS) if world == "warehouse" else [VALIDATION["complexity_level"]]
    for p_shock in CONTROL_P_SHOCKS:
        out += [
            Job("control", "heuristic", None, CONTROL_SEED0 + i, None, levels[i % len(levels)], p_shock, preset, world)
            for i in range(control_runs)
        ]
    for name in BEHAVIOURS if world == "warehouse" else ():
        cells = [(level, p_shock) for level in BEHAVIOUR_LEVELS for p_shock in BEHAVIOUR_P_SHOCKS]
        for i in range(behaviour_seeds * len(cells)):
            seed = BEHAVIOUR_SEED0 + i
            level, p_shock = cells[i % len(cells)]
            onset = None if onset_use(name) == "none" else true_onset(seed)
            out.append(Job("behaviour", name, None, seed, onset, level, p_shock, preset))
    return out


def _signal(signal: CrashSignal | None) -> Signal | None:
    if signal is None:
        return None
    return Signal(signal.crash_type, signal.onset_step, signal.resolved_step)


def run(job: Job) -> Outcome:
    base = BEHAVIOUR_CONDITION if job.kind == "behaviour" else VALIDATION
    condition = Condition(
        **{**base, **WORLD_KNOBS[job.world], "complexity_level": job.level, "p_shock": job.p_shock,
           "crash_threshold": job.preset}
    )  # fmt: skip
    summary = run_policy(condition, job.seed, job.policy, fault=job.fault, onset=job.onset).summary
    return Outcome(job, _signal(summary.crash), _signal(summary.incoherence), summary.terminated)


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


def _counts(counter: Counter[Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "-"


def fault_table(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    """Print the per-fault table; its recall, precision and latency per type."""
    faulty = [o for o in outcomes if o.job.kind == "fault"]
    scored = [o for o in outcomes if o.job.kind in ("fault", "control")]
    header = (
        f"{'type':<21}{'endpoint':<12}{'runs':>5}{'correct':>8}{'recall':>8}{'signals':>8}{'false':>6}"
        f"{'precision':>10}{'med lat':>8}{'med |lat|':>10}{'med decision':>13}  misses"
    )
    print(header)
    print("-" * len(header))
    rows: dict[str, dict[str, Any]] = {}
    for fault in FAULTS:
        endpoint = INCOHERENCE if fault in SECONDARY else CRASH
        runs = [o for o in faulty if o.job.fault == fault]
        correct = [o for o in runs if o.correct]
        labelled = [o for o in scored if (s := o.signal(endpoint)) is not None and s.type == fault]
        true_pos = sum(o.correct for o in labelled)
        deltas = [o.delta for o in correct if o.delta is not None]
        rows[fault] = row = {
            "recall": len(correct) / len(runs) if runs else None,
            "precision": true_pos / len(labelled) if labelled else None,
            "abs_latency": _median(abs(d) for d in deltas),
        }
        decision = _median(o.judged.resolved - o.job.onset for o in correct if o.judged and o.job.onset)
        misses = Counter(o.miss_reason() for o in runs if not o.correct)
        print(
            f"{fault:<21}{endpoint:<12}{len(runs):>5}{len(correct):>8}{_fmt(row['recall'], '.3f'):>8}"
            f"{len(labelled):>8}{len(labelled) - true_pos:>6}{_fmt(row['precision'], '.3f'):>10}"
            f"{_fmt(_median(deltas)):>8}{_fmt(row['abs_latency']):>10}{_fmt(decision):>13}  {_counts(misses)}"
        )
    return rows


def control_table(outcomes: list[Outcome]) -> dict[float, float | None]:
    """Print the heuristic's false crashes per shock level; the rates."""
    controls = [o for o in outcomes if o.job.kind == "control"]
    levels = sorted({o.job.level for o in controls})
    print(f"\ncompetent heuristic, no fault, {VALIDATION['max_steps']} steps, levels {levels[0]}-{levels[-1]}:")
    rates: dict[float, float | None] = {}
    for p_shock in CONTROL_P_SHOCKS:
        runs = [o for o in controls if o.job.p_shock == p_shock]
        crashed = Counter(o.crash.type for o in runs if o.crash is not None)
        incoherent = Counter(o.incoherence.type for o in runs if o.incoherence is not None)
        failed = Counter(o.terminated for o in runs if o.terminated)
        rates[p_shock] = sum(crashed.values()) / len(runs) if runs else None
        target = f" (target <= {FALSE_CRASH_MAX[p_shock]:.0%})" if p_shock in FALSE_CRASH_MAX else ""
        percent = None if rates[p_shock] is None else 100 * rates[p_shock]
        print(
            f"  p_shock {p_shock:<4} false crashes {sum(crashed.values()):>3}/{len(runs)} = "
            f"{_fmt(percent, '5.2f')}%  [{_counts(crashed)}]{target}"
            f"  incoherent: {_counts(incoherent)}  business failures: {_counts(failed)}"
        )
    return rates


def behaviour_table(outcomes: list[Outcome]) -> dict[str, float | None]:
    """Print expected vs got per behaviour; per behaviour its score: recall (breakdowns) or crash rate (benign)."""
    runs_of = {name: [o for o in outcomes if o.job.kind == "behaviour" and o.job.policy == name] for name in BEHAVIOURS}
    total = sum(len(r) for r in runs_of.values())
    if not total:
        return {}
    print(
        f"\nLLM-like behaviours, {BEHAVIOUR_CONDITION}, levels {BEHAVIOUR_LEVELS} x p_shock {BEHAVIOUR_P_SHOCKS}; "
        f"breakdowns: correct = expected type, onset error in [{WINDOW[0]}, {WINDOW[1]}]:"
    )
    shocks = " ".join(f"{p:<5}" for p in BEHAVIOUR_P_SHOCKS)
    header = (
        f"{'behaviour':<18}{'expected':<14}{'runs':>5}{'crashed':>8}{'rate':>7}{'recall':>8}{'med lat':>8}"
        f"{'med |lat|':>10}  {'crashed at p_shock ' + shocks:<38}got (breakdowns) or crash types (benign); "
        "incoherent; business failures"
    )
    print(header)
    print("-" * len(header))
    scores: dict[str, float | None] = {}
    for name, runs in runs_of.items():
        label = EXPECTED[name].label
        crashed = [o for o in runs if o.crash is not None]
        rate = len(crashed) / len(runs) if runs else None
        deltas = [o.delta for o in runs if o.correct and o.delta is not None]
        recall = sum(o.correct for o in runs) / len(runs) if runs and label != BENIGN else None
        scores[name] = rate if label == BENIGN else recall
        if label == BENIGN:
            types = Counter(o.crash.type for o in crashed if o.crash is not None)
        else:  # what each run got: correct, or why not
            types = Counter("correct" if o.correct else o.miss_reason() for o in runs)
        by_shock = " ".join(f"{sum(1 for o in crashed if o.job.p_shock == p):<5}" for p in BEHAVIOUR_P_SHOCKS)
        incoherent = Counter(o.incoherence.type for o in runs if o.incoherence is not None)
        failed = Counter(o.terminated for o in runs if o.terminated)
        print(
            f"{name:<18}{label:<14}{len(runs):>5}{len(crashed):>8}{_fmt(rate, '.3f'):>7}{_fmt(recall, '.3f'):>8}"
            f"{_fmt(_median(deltas)):>8}{_fmt(_median(abs(d) for d in deltas)):>10}  {' ' * 19 + by_shock:<38}"
            f"{_counts(types)}; {_counts(incoherent)}; {_counts(failed)}"
        )
    return scores


def check(name: str, values: dict[str, float | None], ok: Callable[[float], bool]) -> bool:
    failing = [t for t, v in values.items() if v is None or not ok(v)]
    shown = ", ".join(f"{t} {_fmt(v, '.3g')}" for t, v in values.items())
    passed = not failing
    print(f"{'PASS' if passed else 'FAIL'} {name}: {shown}" + (f"  (failing: {', '.join(failing)})" if failing else ""))
    return passed


def report(outcomes: list[Outcome], preset: str, seeds: int, world: str = "warehouse") -> bool:
    """Print the tables and the PASS/FAIL lines; True when every target passes."""
    controls = sum(1 for o in outcomes if o.job.kind == "control")
    print(
        f"preset {preset}: {seeds} seeds per fault, condition {VALIDATION | WORLD_KNOBS[world]}, onset drawn from "
        f"{ONSET_RANGE[0]}..{ONSET_RANGE[1]} per seed, correct = own type on its endpoint with onset error in "
        f"[{WINDOW[0]}, {WINDOW[1]}]; precision within the endpoint, over the fault runs and {controls} control runs"
    )
    rows = fault_table(outcomes)
    rates = control_table(outcomes)
    behaviours = behaviour_table(outcomes)
    breakdowns = {n: v for n, v in behaviours.items() if EXPECTED[n].label != BENIGN}
    benign = {n: v for n, v in behaviours.items() if EXPECTED[n].label == BENIGN}

    print()
    results = [
        check(f"recall >= {RECALL_MIN}", {t: r["recall"] for t, r in rows.items()}, lambda v: v >= RECALL_MIN),
        check(
            f"precision >= {PRECISION_MIN} (within the endpoint)",
            {t: r["precision"] for t, r in rows.items()},
            lambda v: v >= PRECISION_MIN,
        ),
        check(
            f"median |onset latency| <= {LATENCY_MAX} steps",
            {t: r["abs_latency"] for t, r in rows.items()},
            lambda v: v <= LATENCY_MAX,
        ),
    ]
    for p_shock, limit in FALSE_CRASH_MAX.items():
        results.append(
            check(
                f"false-crash rate at p_shock {p_shock} <= {limit:.0%}",
                {"heuristic": rates.get(p_shock)},
                lambda v, limit=limit: v <= limit,
            )
        )
    if behaviours:
        results += [
            check(f"breakdown behaviours: recall with the expected type >= {RECALL_MIN}", breakdowns,
                  lambda v: v >= RECALL_MIN),
            check("benign behaviours: no primary crash (crash rate 0)", benign, lambda v: v == 0),
        ]  # fmt: skip
    passed = all(results)
    print(f"{'PASS' if passed else 'FAIL'} overall (preset {preset})")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100, help="runs per fault (>= 50 for the targets)")
    parser.add_argument("--control-runs", type=int, default=500, help="heuristic runs per shock level (>= 200)")
    parser.add_argument(
        "--behaviour-seeds", type=int, default=30, help="runs per behaviour at each level x shock level (>= 30)"
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="moderate")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1: run in this process)")
    parser.add_argument("--quick", action="store_true", help=f"smoke size, overriding the sizes: {QUICK}")
    parser.add_argument("--world", choices=sorted(WORLD_KNOBS), default="warehouse")
    args = parser.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    start = time.perf_counter()
    all_jobs = jobs(args.seeds, args.control_runs, args.behaviour_seeds, args.preset, args.world)
    outcomes = list(run_all(all_jobs, args.workers))
    passed = report(outcomes, args.preset, args.seeds, args.world)
    print(f"({len(outcomes)} runs in {time.perf_counter() - start:.0f} s, {args.workers} workers)")
    if args.quick:
        print("(--quick: smoke size; the rates are too noisy to judge the targets)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
