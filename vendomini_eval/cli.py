"""The `vendomini` command: `plan` shows an experiment's grid, `simulate` runs one episode directly, `run` runs
the grid through Inspect (eval_set), `analyze` turns its logs into tables, statistics and an HTML report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from vendomini_eval.condition import Condition
from vendomini_eval.experiments import (
    Experiment,
    ExperimentConfigError,
    derive_run_seed,
    format_plan,
    load_experiment,
)
from vendomini_eval.policies import FAULTS, POLICIES
from vendomini_eval.runner import run_policy


def _select_condition(experiment: Experiment, selector: str | None) -> tuple[int, Condition]:
    """A condition by index or by label; the only condition when the experiment has one."""
    if selector is None:
        if len(experiment.conditions) == 1:
            return 0, experiment.conditions[0]
        raise SystemExit(
            f"{experiment.name} has {len(experiment.conditions)} conditions: choose one with --condition "
            f"(an index or a label; `vendomini plan {experiment.source}` lists them)"
        )
    if selector.isdigit():
        index = int(selector)
        if index >= len(experiment.conditions):
            raise SystemExit(f"--condition {index}: {experiment.name} has {len(experiment.conditions)} conditions")
        return index, experiment.conditions[index]
    if selector in experiment.labels:
        index = experiment.labels.index(selector)
        return index, experiment.conditions[index]
    raise SystemExit(f"--condition '{selector}' is not a condition of {experiment.name}; see `vendomini plan`")


def _print_summary(label: str, summary: dict) -> None:
    pe = summary["pe"]
    outcome = (
        f"crashed: {summary['crash_type']} at step {summary['time_to_crash']} "
        f"(confirmed at step {summary['crash']['resolved_step']})"
        if summary["crashed"]
        else f"no crash (censored at step {summary['time_to_crash']})"
    )
    lines = [
        f"condition      {label}",
        f"policy         {summary['policy']}" + (f" (fault {summary['fault']} from step {summary['onset']})"
                                                  if summary["fault"] else ""),
        f"seed           {summary['seed']}",
        f"steps          {summary['steps']} ({summary['days']} days)",
        f"outcome        {outcome}",
        f"business       {'failed: ' + summary['terminated'] if summary['terminated'] else 'running'}; "
        f"net worth ${summary['net_worth']:.2f}, cash ${summary['cash']:.2f}",
        f"orders         {summary['counters']['orders_shipped']} shipped, {summary['counters']['orders_failed']} "
        f"expired, of {summary['counters']['orders_received']}",
        f"shocks         {summary['shocks']}",
        "PE totals      "
        + ", ".join(f"{t} {pe[t]['sum']:.2f}/{pe[t]['count']}" for t in ("temporal", "quantity", "cost", "causal")),
        f"PE combined    mean {pe['combined']['mean'] or 0:.4f}, surprises {pe['surprise_count']}"
        + (f", Brier {pe['brier_mean']:.4f}" if pe["brier_mean"] is not None else ""),
    ]  # fmt: skip
    print("\n".join(lines))


def cmd_plan(args: argparse.Namespace) -> int:
    print(format_plan(load_experiment(args.config)))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.config)
    index, condition = _select_condition(experiment, args.condition)
    if args.steps is not None:
        condition = Condition.model_validate({**condition.model_dump(), "max_steps": args.steps})
    seed = args.seed if args.seed is not None else derive_run_seed(experiment.seed, condition, args.replication)
    if (args.fault is None) != (args.onset is None):
        raise SystemExit("--fault and --onset go together")
    output = run_policy(condition, seed, args.policy, fault=args.fault, onset=args.onset)
    summary = {"experiment": experiment.name, "condition_index": index, "condition": condition.model_dump(),
               **output.summary}  # fmt: skip
    if args.trace:
        trace = {"columns": output.episode.trace.columns(), "signals": output.episode.trace.signals}
        Path(args.trace).write_text(json.dumps(trace), encoding="utf-8")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(experiment.labels[index], summary)
        if args.trace:
            print(f"trace          {args.trace}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Expand the grid into phase tasks and run them with eval_set (resumable); `--dry-run` only plans."""
    from vendomini_eval import grid  # imported here: `plan` and `simulate` never load the runner

    try:
        sweep = grid.plan_sweep(
            args.config, models=args.model, log_dir=args.log_dir, max_steps=args.max_steps,
            replications=args.replications, limit_conditions=args.limit_conditions, workers=args.workers,
        )  # fmt: skip
        if args.dry_run:
            print(grid.format_sweep(sweep))
            return 0
        interactive = sys.stdout.isatty() and sys.stdin.isatty()
        # Off a terminal (CI, logs, shard processes), Inspect's "log" display: silent but for errors, and about
        # twice as fast as "none" for scripted models (which still renders each task's metrics table).
        display = args.display or ("full" if interactive and args.workers == 1 else "log")
        settings = grid.eval_settings(
            max_samples=args.max_samples, max_tasks=args.max_tasks, retry_attempts=args.retry_attempts,
            display=display,
        )  # fmt: skip
        result = grid.run_sweep(sweep, settings)
    except grid.GridError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except grid.SweepInterrupted as interrupted:
        print(f"interrupted ({interrupted}): rerun the same command to resume", file=sys.stderr)
        return 128 + interrupted.signum
    print(grid.format_result(result))
    return 0 if result.ok else 1


def cmd_analyze(args: argparse.Namespace) -> int:
    """Read every log below LOGDIR and write the tables, statistics and report to --out."""
    try:  # imported here: the analysis needs the `analysis` extra, which the other commands do not
        from vendomini_eval.analysis import AnalysisInputError, analyze, write_report
    except ImportError as error:
        print(f"error: {error}; install the analysis extra: pip install 'vendomini-eval[analysis]'", file=sys.stderr)
        return 2
    if args.block < 1:
        print(f"error: --block {args.block}: must be at least 1", file=sys.stderr)
        return 2
    try:
        analysis = analyze(args.log_dir, block=args.block)
    except AnalysisInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    index = write_report(analysis, args.out)
    loaded = analysis.loaded
    skipped = ", ".join(f"{kind} {n}" for kind, n in sorted(loaded.skip_counts().items()))
    print(f"{len(analysis.runs)} runs from {len(loaded.logs)} logs" + (f"; skipped: {skipped}" if skipped else ""))
    print(f"report: {index}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vendomini", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="show an experiment's conditions and run counts")
    plan.add_argument("config", help="experiment YAML, or a shipped name such as phase1")
    plan.set_defaults(func=cmd_plan)

    sim = sub.add_parser("simulate", help="run one episode with a scripted policy, without Inspect")
    sim.add_argument("--config", default="base", help="experiment YAML or shipped name (default: base)")
    sim.add_argument("--condition", help="condition index or label (see `vendomini plan`)")
    sim.add_argument("--policy", choices=POLICIES, default="heuristic")
    sim.add_argument("--fault", choices=FAULTS, help="inject this breakdown into the heuristic")
    sim.add_argument("--onset", type=int, help="step at which the fault starts")
    sim.add_argument("--seed", type=int, help="run seed (default: derived from the experiment seed)")
    sim.add_argument("--replication", type=int, default=0, help="replication whose derived seed to use")
    sim.add_argument("--steps", type=int, help="override max_steps")
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim.add_argument("--trace", help="write the per-step trace (columns and signals) to this JSON file")
    sim.set_defaults(func=cmd_simulate)

    run = sub.add_parser(
        "run", help="run an experiment's grid through Inspect (eval_set); rerun the same command to resume"
    )
    run.add_argument("config", help="experiment YAML, or a shipped name such as phase1")
    run.add_argument("--model", help="comma-separated Inspect models (default: the experiment's models)")
    run.add_argument("--log-dir", help="log directory of the sweep (default: logs/<experiment>)")
    run.add_argument("--max-steps", type=int, help="override every condition's max_steps")
    run.add_argument("--replications", type=int, help="override the experiment's replications")
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes to shard the conditions over, each on LOGDIR/shard-<i>-of-<N> (default: 1)",
    )
    run.add_argument("--max-samples", type=int, help="samples run at once per task (Inspect's default)")
    run.add_argument("--max-tasks", type=int, help="tasks run at once per process (Inspect's default)")
    run.add_argument("--retry-attempts", type=int, default=1, help="eval_set retries of a failed task (default: 1)")
    run.add_argument("--limit-conditions", type=int, help="run only the first N conditions (quick tries)")
    run.add_argument(
        "--display",
        choices=["full", "rich", "plain", "log", "none"],
        help="Inspect display (default: full on a terminal with one worker, else log)",
    )
    run.add_argument("--dry-run", action="store_true", help="print the tasks and shards that would run")
    run.set_defaults(func=cmd_run)

    analyze = sub.add_parser("analyze", help="tables, survival statistics and an HTML report from a sweep's logs")
    analyze.add_argument("log_dir", metavar="LOGDIR", help="directory searched recursively for .eval logs")
    analyze.add_argument("--out", default="report", help="output directory (default: report)")
    analyze.add_argument(
        "--block", type=int, default=1, help="steps per interval of the time-varying Cox model (default: 1)"
    )
    analyze.set_defaults(func=cmd_analyze)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ExperimentConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
