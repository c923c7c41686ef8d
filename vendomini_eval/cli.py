"""The `vendomini` command: `plan` shows an experiment's grid, `simulate` runs one episode directly, `run` runs
the grid through Inspect (eval_set), `slurm` runs it as a SLURM array job, `analyze` turns its logs into tables,
statistics and an HTML report."""

from __future__ import annotations

import argparse
import json
import shlex
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
from vendomini_eval.policies import FAULTS, POLICIES, PolicyContext, make_policy
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
    try:  # the policy, fault and onset must fit together (e.g. a fault needs its onset): say which does not
        make_policy(args.policy, PolicyContext.for_condition(condition), seed, fault=args.fault, onset=args.onset)
    except ValueError as error:
        raise SystemExit(f"vendomini simulate: {error}") from None
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
        display = args.display or ("full" if interactive and args.workers == 1 and args.backend == "local" else "log")
        settings = grid.eval_settings(
            max_samples=args.max_samples, max_tasks=args.max_tasks, retry_attempts=args.retry_attempts,
            display=display,
        )  # fmt: skip
        result = grid.run_sweep(sweep, settings, backend=args.backend, address=args.address)
    except grid.GridError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except grid.SweepInterrupted as interrupted:
        print(f"interrupted ({interrupted}): rerun the same command to resume", file=sys.stderr)
        return 128 + interrupted.signum
    print(grid.format_result(result))
    return 0 if result.ok else 1


def cmd_analyze(args: argparse.Namespace) -> int:
    """Read every log below LOGDIR and write the tables, statistics and report to --out; with --thresholds,
    check them and exit 1 on FAIL (with --strict, on WARN too)."""
    try:  # imported here: the analysis needs the `analysis` extra, which the other commands do not
        from vendomini_eval.analysis import (
            AnalysisInputError,
            ThresholdsError,
            analyze,
            check_thresholds,
            load_thresholds,
            resolve_thresholds,
            write_report,
        )
    except ImportError as error:
        print(f"error: {error}; install the analysis extra: pip install 'vendomini-eval[analysis]'", file=sys.stderr)
        return 2
    if args.block < 1:
        print(f"error: --block {args.block}: must be at least 1", file=sys.stderr)
        return 2
    if args.strict and args.thresholds is None:
        print("error: --strict needs --thresholds", file=sys.stderr)
        return 2
    try:  # the thresholds file is checked before the (long) analysis
        thresholds_path = resolve_thresholds(args.thresholds) if args.thresholds else None
        thresholds = load_thresholds(thresholds_path) if thresholds_path else None
        analysis = analyze(args.log_dir, block=args.block)
    except (AnalysisInputError, ThresholdsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if thresholds is not None:
        analysis.thresholds = check_thresholds(thresholds, analysis.runs, analysis.loaded, str(thresholds_path))
    index = write_report(analysis, args.out)
    loaded = analysis.loaded
    skipped = ", ".join(f"{kind} {n}" for kind, n in sorted(loaded.skip_counts().items()))
    print(f"{len(analysis.runs)} runs from {len(loaded.logs)} logs" + (f"; skipped: {skipped}" if skipped else ""))
    print(f"report: {index}")
    if analysis.thresholds is None:
        return 0
    print(analysis.thresholds.line())
    return 1 if analysis.thresholds.status == "FAIL" or (args.strict and analysis.thresholds.status == "WARN") else 0


def cmd_slurm_submit(args: argparse.Namespace) -> int:
    """Plan the sweep as a SLURM array job, write its manifest and sbatch script, and submit the incomplete
    shards; `--dry-run` prints the plan and the script and writes nothing."""
    from vendomini_eval import grid, slurm

    models = [name for value in args.model for name in value.split(",")]
    try:
        plan = slurm.plan_slurm(
            args.config,
            models=models,
            log_dir=args.log_dir,
            shards=args.shards,
            max_array_size=args.max_array_size,
            partition=args.partition,
            gpus_per_task=args.gpus_per_task,
            cpus_per_task=args.cpus_per_task,
            mem=args.mem,
            time=args.time,
            array_parallelism=args.array_parallelism,
            serve_args=args.serve_args,
            max_connections=args.max_connections,
            max_samples=args.max_samples,
            max_tasks=args.max_tasks,
            retry_attempts=args.retry_attempts,
            max_steps=args.max_steps,
            replications=args.replications,
            limit_conditions=args.limit_conditions,
        )
        pending = slurm.incomplete(plan)
        command = shlex.join(["vendomini", *(a for a in args.argv if a != "--dry-run")])
        if args.dry_run:
            print(slurm.format_plan(plan, pending))
            print(f"\n{plan.script}:")
            print(slurm.render_script(plan, command), end="")
            return 0
        if not pending:
            print(f"every shard is complete; nothing to submit (vendomini slurm status {plan.sweep.log_dir})")
            return 0
        running = slurm.active_jobs(slurm.job_name(plan))
        if running:
            raise grid.GridError(
                f"job {', '.join(running)} of this sweep is still queued or running; wait for it or "
                "scancel it before resubmitting (two tasks on one shard would run samples twice)"
            )
        slurm.write_files(plan, command)
        job_id = slurm.submit(plan, pending)
    except grid.GridError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(slurm.format_plan(plan, pending))
    print(
        f"\nsubmitted array job {job_id}: {len(pending)} tasks (squeue -j {job_id}; vendomini slurm status "
        f"{plan.sweep.log_dir})"
    )
    return 0


def cmd_slurm_status(args: argparse.Namespace) -> int:
    """Per-shard completion of the sweep in LOGDIR, read from its logs."""
    from vendomini_eval import grid, slurm

    try:
        text, complete = slurm.format_status(slurm.sweep_status(args.log_dir))
    except grid.GridError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text)
    return 0 if complete else 1


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
    sim.add_argument("--onset", type=int, help="step at which the fault (or a breakdown behaviour) starts")
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
    run.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="where the shards run: processes here, or Ray tasks on a Ray cluster (the `ray` extra; default: local)",
    )
    run.add_argument(
        "--address",
        help="with --backend ray: the Ray cluster's address, HOST:PORT or auto (default: Ray's: RAY_ADDRESS, else "
        "the cluster last started here, else a new local Ray)",
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
    analyze.add_argument(
        "--thresholds",
        metavar="FILE",
        help="check the runs against this thresholds YAML (or the shipped `thresholds`): prints OK / WARN / FAIL, "
        "exits 1 on FAIL",
    )
    analyze.add_argument("--strict", action="store_true", help="with --thresholds, exit 1 on WARN as well")
    analyze.set_defaults(func=cmd_analyze)

    slurm = sub.add_parser("slurm", help="run an experiment's grid as a SLURM array job (see slurm/README.md)")
    slurm_sub = slurm.add_subparsers(dest="slurm_command", required=True)
    submit = slurm_sub.add_parser(
        "submit", help="submit the grid as an array job; rerun the same command to submit only incomplete shards"
    )
    submit.add_argument("config", help="experiment YAML, or a shipped name such as phase1")
    submit.add_argument(
        "--model",
        action="append",
        required=True,
        help="Inspect model (repeat, or comma-separate): vllm/<hf id> and openai-api/vllm/<hf id> "
        "are served on the node, hf/<hf id> loads in-process, others are API models",
    )
    submit.add_argument("--log-dir", required=True, help="log directory on a file system the compute nodes share")
    submit.add_argument(
        "--shards",
        type=int,
        default=1,
        help="array tasks per model, each loading the model once for its conditions (default: 1)",
    )
    submit.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    submit.add_argument(
        "--gpus-per-task",
        type=int,
        help="GPUs per array task, the served model's tensor parallel size (default: 1 for vllm/ "
        "and hf/ models, else 0)",
    )
    submit.add_argument("--cpus-per-task", type=int, help="CPUs per array task (default: 8 with GPUs, else 1)")
    submit.add_argument("--mem", help="memory per array task, e.g. 64G (default: the partition's)")
    submit.add_argument("--time", default="24:00:00", help="time limit per array task (default: 24:00:00)")
    submit.add_argument("--array-parallelism", type=int, help="array tasks run at once at most (--array=...%%K)")
    submit.add_argument(
        "--max-array-size",
        type=int,
        default=1000,
        help="the cluster's MaxArraySize: more array tasks are refused (default: 1000)",
    )
    submit.add_argument(
        "--serve-args",
        default="",
        help='extra arguments of the model server, e.g. "--max-model-len 32768 '
        '--enable-auto-tool-choice --tool-call-parser hermes"',
    )
    submit.add_argument(
        "--max-connections",
        type=int,
        help="concurrent requests per model (default: 64 for served models, else Inspect's)",
    )
    submit.add_argument("--max-samples", type=int, help="samples run at once per task (Inspect's default)")
    submit.add_argument("--max-tasks", type=int, help="tasks run at once per array task (Inspect's default)")
    submit.add_argument("--retry-attempts", type=int, default=1, help="eval_set retries of a failed task (default: 1)")
    submit.add_argument("--max-steps", type=int, help="override every condition's max_steps")
    submit.add_argument("--replications", type=int, help="override the experiment's replications")
    submit.add_argument("--limit-conditions", type=int, help="run only the first N conditions (quick tries)")
    submit.add_argument("--dry-run", action="store_true", help="print the plan and the sbatch script; submit nothing")
    submit.set_defaults(func=cmd_slurm_submit)
    status = slurm_sub.add_parser("status", help="per-shard completion of a SLURM sweep, read from its logs")
    status.add_argument("log_dir", metavar="LOGDIR", help="the --log-dir of `vendomini slurm submit`")
    status.set_defaults(func=cmd_slurm_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by `slurm submit` for resuming
    try:
        return args.func(args)
    except ExperimentConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
