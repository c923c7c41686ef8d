"""The `vendomini` command: `plan` shows an experiment's grid, `simulate` runs one episode directly, `run` runs
the grid through Inspect (eval_set), `slurm` runs it as a SLURM array job, `analyze` turns its logs into tables,
statistics and an HTML report."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from vendomini_eval.budget import FAIL_ON_BUDGET_EXIT, BudgetError, load_prices
from vendomini_eval.condition import Condition
from vendomini_eval.experiments import (
    Experiment,
    ExperimentConfigError,
    derive_run_seed,
    format_plan,
    load_experiment,
)
from vendomini_eval.pe import PE_TYPES
from vendomini_eval.policies import FAULTS, POLICIES, PolicyContext, make_policy
from vendomini_eval.runner import RunOutput, run_policy

if TYPE_CHECKING:  # the analysis needs its extra, a sweep loads the runner: imported where a command uses it
    from vendomini_eval.analysis import Skipped
    from vendomini_eval.sweep.plan import EvalSettings
    from vendomini_eval.sweep.server import LlamaCppOptions


class UsageError(Exception):
    """A mistake in the command line (a bad option value, a path that cannot be written): `main` prints it as one
    line, `vendomini <command>: error: <message>`, and exits 2, as argparse does for the mistakes it catches."""


def _check_at_least(option: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        raise UsageError(f"{option} must be at least {minimum}, got {value}")


def _check_output(option: str, path: Path, *, directory: bool) -> None:
    """Refuse an output path that cannot be written, before any work is done or any file is written: a file
    must go into an existing directory; a directory is made with its parents, below a directory."""
    try:
        if directory and path.exists() and not path.is_dir():
            raise UsageError(f"{option} {path}: is a file, not a directory")
        if not directory and path.is_dir():
            raise UsageError(f"{option} {path}: is a directory; give a file name")
        if not directory and not path.parent.is_dir():
            raise UsageError(f"{option} {path}: no such directory {path.parent}")
        existing = next(p for p in (path, *path.parents) if p.exists())
    except OSError as error:  # e.g. a directory on the way that may not be searched
        raise UsageError(f"{option} {path}: {error.strerror or error}") from None
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing} is not writable")


def _write_text_whole(option: str, path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file beside it, so a failed write leaves no partial file."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot write: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)


def _select_condition(experiment: Experiment, selector: str | None) -> tuple[int, Condition]:
    """A condition by index or by label; the only condition when the experiment has one."""
    if selector is None:
        if len(experiment.conditions) == 1:
            return 0, experiment.conditions[0]
        raise UsageError(
            f"{experiment.name} has {len(experiment.conditions)} conditions: choose one with --condition "
            f"(an index or a label; `vendomini plan {experiment.source}` lists them)"
        )
    if selector.isdigit():
        index = int(selector)
        if index >= len(experiment.conditions):
            raise UsageError(
                f"--condition {index}: {experiment.name} has {len(experiment.conditions)} conditions "
                f"(0 to {len(experiment.conditions) - 1})"
            )
        return index, experiment.conditions[index]
    if selector in experiment.labels:
        index = experiment.labels.index(selector)
        return index, experiment.conditions[index]
    raise UsageError(f"--condition '{selector}' is not a condition of {experiment.name}; see `vendomini plan`")


def _print_summary(label: str, output: RunOutput) -> None:
    summary, pe, counters = output.summary, output.summary.pe, output.summary.counters
    outcome = (
        f"crashed: {summary.crash_type} at step {summary.time_to_crash} "
        f"(confirmed at step {summary.crash.resolved_step})"
        if summary.crash is not None
        else f"no crash (censored at step {summary.time_to_crash})"
    )
    lines = [
        f"condition      {label}",
        f"policy         {output.policy}" + (f" (fault {output.fault} from step {output.onset})"
                                                 if output.fault else ""),
        f"seed           {summary.seed}",
        f"steps          {summary.steps} ({summary.days} days)",
        f"outcome        {outcome}",
        f"business       {'failed: ' + summary.terminated if summary.terminated else 'running'}; "
        f"net worth ${summary.net_worth:.2f}, cash ${summary.cash:.2f}",
        f"orders         {counters.orders_shipped} shipped, {counters.orders_failed} expired, of "
        f"{counters.orders_received}"
        if summary.vending is None
        else f"sales          {summary.vending.units_sold} units, ${summary.vending.revenue_cents / 100:.2f}, "
        f"until day {summary.days_until_sales_stop}",
        f"shocks         {summary.shocks}",
        "PE totals      "
        + ", ".join(f"{name} {s.sum:.2f}/{s.count}" for name, s in pe.series().items() if name in PE_TYPES),
        f"PE combined    mean {pe.combined.mean or 0:.4f}, surprises {pe.surprise_count}"
        + (f", Brier {pe.brier_mean:.4f}" if pe.brier_mean is not None else ""),
    ]  # fmt: skip
    print("\n".join(lines))


def cmd_plan(args: argparse.Namespace) -> int:
    """The experiment's plan; with --model or --from-logs, the spend projected for the sweep (prior, or at a
    pilot's rates); with --power and --from-logs, the power it will have, from the pilot's crash shares."""
    if args.power is not None and args.from_logs is None:
        raise UsageError("--power HR needs --from-logs DIR: the pilot's crash share sets the power")
    if args.power is not None and (args.power <= 0 or args.power == 1):
        raise UsageError(f"--power {args.power}: a hazard ratio per SD above 0 and not 1")
    for option, value in (("--max-steps", args.max_steps), ("--replications", args.replications),
                          ("--limit-conditions", args.limit_conditions)):  # fmt: skip
        _check_at_least(option, value, 1)
    if args.prices is not None and args.model is None and args.from_logs is None:
        raise UsageError("--prices: give --model M (a prior projection) or --from-logs DIR (a pilot's rates)")
    try:
        prices = load_prices(args.prices) if args.prices is not None else {}
    except BudgetError as error:
        raise UsageError(error) from None
    experiment = load_experiment(args.config)
    if args.limit_conditions is not None and args.limit_conditions > len(experiment.conditions):
        raise UsageError(f"--limit-conditions {args.limit_conditions}: {experiment.name} has "
                         f"{len(experiment.conditions)} conditions")  # fmt: skip
    pilot = None
    if args.from_logs is not None:
        try:  # the pilot's logs need the analysis extra
            from vendomini_eval.analysis import AnalysisInputError, load_runs, runs_table
            from vendomini_eval.analysis.report import power_table
        except ImportError as error:
            raise UsageError(f"{error}; install the analysis extra: pip install 'vendomini-eval[analysis]'") from None
        try:
            loaded = load_runs(args.from_logs)
        except AnalysisInputError as error:
            raise UsageError(f"--from-logs {args.from_logs}: {error}") from None
        if not loaded.runs:
            raise UsageError(f"--from-logs {args.from_logs}: no run could be read")
        pilot = runs_table(loaded)
    print(format_plan(experiment))
    if args.model is None and pilot is None:
        return 0
    from vendomini_eval.sweep import estimate

    conditions = list(experiment.conditions[: args.limit_conditions])
    if args.max_steps is not None:
        conditions = [c.model_copy(update={"max_steps": args.max_steps}) for c in conditions]
    replications = args.replications or experiment.replications
    seeds = [derive_run_seed(experiment.seed, c, 0) for c in conditions]
    projections = [estimate.prior(conditions, seeds, replications, model, estimate.context_budget_of(model),
                                  prices.get(model))
                   for model in (m.strip() for m in (args.model or "").split(",")) if model]  # fmt: skip
    if pilot is not None:
        steps = sum(c.max_steps for c in conditions) * replications
        longest = max(c.max_steps for c in conditions)
        runs = len(conditions) * replications
        projections += [estimate.from_pilot(rates, steps, runs, longest, prices.get(rates.model))
                        for rates in estimate.pilot_rates(pilot)]  # fmt: skip
    print()
    print(estimate.format_projections(projections, prices))
    if args.power is not None and pilot is not None:
        planned = len(conditions) * replications
        table = power_table(pilot, args.power, planned_runs=planned)
        print(
            f"\npower from the pilot in {args.from_logs} (Schoenfeld, two-sided alpha 0.05, 80% power, a standardized "
            f"covariate; optimistic for PE accumulators, docs/METHOD.md), {planned} runs per model in this plan:"
        )
        print(table.to_string(index=False))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    # Every option is checked before the episode runs, so a mistake costs no run and writes no trace.
    _check_at_least("--steps", args.steps, 1)
    _check_at_least("--onset", args.onset, 1)
    _check_at_least("--seed", args.seed, 0)
    _check_at_least("--replication", args.replication, 0)
    if args.fault is not None and args.onset is None:
        raise UsageError(f"--fault {args.fault} needs --onset STEP, the step at which the fault starts")
    if args.fault is not None and args.policy != "heuristic":
        raise UsageError(f"--fault is injected into --policy heuristic only, not --policy {args.policy}")
    if args.trace:
        _check_output("--trace", Path(args.trace), directory=False)
    try:
        experiment = load_experiment(args.config)
    except ExperimentConfigError as error:
        raise UsageError(f"--config {error}") from None
    index, condition = _select_condition(experiment, args.condition)
    if args.steps is not None:
        try:
            condition = Condition.model_validate({**condition.model_dump(), "max_steps": args.steps})
        except ValidationError as error:
            raise UsageError(f"--steps {args.steps}: {error.errors()[0]['msg'].lower()}") from None
    seed = args.seed if args.seed is not None else derive_run_seed(experiment.seed, condition, args.replication)
    try:  # a behaviour policy may need or refuse an onset: name the options that do not fit together
        make_policy(args.policy, PolicyContext.for_condition(condition), seed, fault=args.fault, onset=args.onset)
    except ValueError as error:
        onset = "" if args.onset is None else f" --onset {args.onset}"
        raise UsageError(f"--policy {args.policy}{onset}: {error}") from None
    output = run_policy(condition, seed, args.policy, fault=args.fault, onset=args.onset)
    if args.trace:
        trace = {"columns": output.episode.trace.columns(), "signals": output.episode.trace.signals}
        _write_text_whole("--trace", Path(args.trace), json.dumps(trace))
    if args.json:
        run = {"experiment": experiment.name, "condition_index": index, "condition": condition.model_dump(),
               "policy": output.policy, "fault": output.fault, "onset": output.onset}  # fmt: skip
        print(json.dumps({**run, **output.summary.model_dump(mode="json")}, indent=2))
    else:
        _print_summary(experiment.labels[index], output)
        if args.trace:
            print(f"trace          {args.trace}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Expand the grid into generic-task calls and run them with eval_set (resumable); `--dry-run` only plans."""
    from vendomini_eval.sweep import plan, run, server  # imported here: `plan` and `simulate` never load the runner
    from vendomini_eval.sweep.budget import final_line

    try:
        sweep = plan.plan_sweep(
            args.config, models=args.model, log_dir=args.log_dir, max_steps=args.max_steps,
            replications=args.replications, limit_conditions=args.limit_conditions, workers=args.workers,
            gates=args.gates,
        )  # fmt: skip
        interactive = sys.stdout.isatty() and sys.stdin.isatty()
        # Off a terminal (CI, logs, shard processes), Inspect's "log" display: silent but for errors, and about
        # twice as fast as "none" for scripted models (which still renders each task's metrics table).
        display = args.display or ("full" if interactive and args.workers == 1 and args.backend == "local" else "log")
        settings = _eval_settings(args, sweep.models, display)
        llamacpp = _llamacpp_options(args, sweep.models)
        spec = run.model_server(sweep, llamacpp)
        if args.serve_args and spec is None:
            raise UsageError("--serve-args: only for a model served with llama.cpp (openai-api/llama-cpp/<name>)")
        if args.dry_run:
            print(plan.format_sweep(sweep, settings))
            if spec is not None:
                print(f"\nmodel server (on this machine, for the sweep): {server.describe(spec)}")
            return 0
        result = run.run_sweep(sweep, settings, backend=args.backend, address=args.address, llamacpp=llamacpp)
    except plan.SweepError as error:
        raise UsageError(error) from None
    except run.SweepInterrupted as interrupted:
        print(f"{args.prog}: {interrupted}", file=sys.stderr)
        return 128 + interrupted.signum
    line, ceiling = final_line(sweep.log_dir)
    print(run.format_result(result, ceiling))
    print(line)
    if ceiling is not None and (result.ok or result.stopped_by_budget):
        return FAIL_ON_BUDGET_EXIT if args.fail_on_budget else 0
    return 0 if result.ok else 1


def _eval_settings(args: argparse.Namespace, models: Sequence[str], display: str) -> EvalSettings:
    """The EvalSettings of `run` and `slurm submit` from their shared options (`_add_eval_options`,
    `_add_budget_options`)."""
    from vendomini_eval.budget import CEILINGS
    from vendomini_eval.sweep.plan import LIMIT_OPTIONS, SweepError, eval_settings

    settings = eval_settings(
        models=models, model_args=args.model_args, temperature=args.temperature, max_tokens=args.max_tokens,
        generate_config=args.generate_config, limits={key: getattr(args, key) for key in LIMIT_OPTIONS},
        max_samples=args.max_samples, max_tasks=args.max_tasks, max_connections=args.max_connections,
        retry_attempts=args.retry_attempts, display=display, prices=args.prices,
        ceilings={key: getattr(args, key) for key in CEILINGS}, fail_on_budget=args.fail_on_budget,
    )  # fmt: skip
    if settings.ceilings.max_cost is not None:
        from vendomini_eval.sweep.budget import unpriced

        if missing := unpriced(models, settings.prices):
            raise SweepError(f"--max-cost: no price for {', '.join(missing)}; give each one in --prices FILE")
    return settings


def _llamacpp_options(args: argparse.Namespace, models: Sequence[str]) -> LlamaCppOptions:
    """How `run` and `slurm submit` serve a llama.cpp model, from their shared options (`_add_server_options`)."""
    from vendomini_eval.sweep.server import llamacpp_options, split_server_args

    return llamacpp_options(models, ctx_size=args.ctx_size, threads=args.server_threads, chat_format=args.chat_format,
                            extra_args=split_server_args(args.serve_args))  # fmt: skip


def cmd_analyze(args: argparse.Namespace) -> int:
    """Read every log below LOGDIR and write the tables, statistics and report to --out; with --thresholds,
    check them and exit 1 on FAIL (with --strict, on WARN too). Every file skipped is one line on stderr; when
    no run could be read the report is not written and the status is 1."""
    if args.block < 1:
        raise UsageError(f"--block {args.block}: must be at least 1")
    if args.power <= 0 or args.power == 1:
        raise UsageError(f"--power {args.power}: a hazard ratio per SD above 0 and not 1")
    if args.strict and args.thresholds is None:
        raise UsageError("--strict needs --thresholds")
    _check_output("--out", Path(args.out), directory=True)
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
        raise UsageError(f"{error}; install the analysis extra: pip install 'vendomini-eval[analysis]'") from None
    from vendomini_eval.analysis.gates import gates_line
    from vendomini_eval.analysis.inference import fewest_replicates
    from vendomini_eval.analysis.vending import mixed_worlds
    from vendomini_eval.sweep.budget import final_line

    if args.bootstrap != 0 and args.bootstrap < fewest_replicates():
        raise UsageError(f"--bootstrap {args.bootstrap}: 0 (none) or at least {fewest_replicates()} resamples for a "
                         "95% interval")  # fmt: skip
    try:  # the thresholds file is checked before the (long) analysis, as --out is above
        thresholds_path = resolve_thresholds(args.thresholds) if args.thresholds else None
        thresholds = load_thresholds(thresholds_path) if thresholds_path else None
        analysis = analyze(args.log_dir, block=args.block, pool_models=args.pool_models, planning_hr=args.power,
                           bootstrap_replicates=args.bootstrap)  # fmt: skip
    except ThresholdsError as error:
        raise UsageError(error) from None
    except AnalysisInputError as error:
        _print_skips(error.skipped)
        raise UsageError(error) from None
    loaded = analysis.loaded
    _print_skips(loaded.skipped)
    mixed = mixed_worlds(analysis.runs)
    if mixed is not None:
        print(f"{args.prog}: warning: {mixed}", file=sys.stderr)
    if not loaded.runs:  # an empty report would read as a sweep that ran and found nothing
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(loaded.skip_counts().items()))
        print(f"{args.prog}: error: no run could be read from {args.log_dir} ({counts or 'no samples'}; each file "
              "is listed above); no report written", file=sys.stderr)  # fmt: skip
        return 1
    if thresholds is not None:
        analysis.thresholds = check_thresholds(thresholds, analysis.runs, analysis.loaded, str(thresholds_path))
    try:
        index = write_report(analysis, args.out)
    except OSError as error:  # checked above, so only a failure while writing (a full disk) is left
        raise UsageError(f"--out {args.out}: cannot write the report: {error.strerror or error}") from None
    skipped = ", ".join(f"{kind} {n}" for kind, n in sorted(loaded.skip_counts().items()))
    print(f"{len(analysis.runs)} runs from {len(loaded.logs)} logs" + (f"; skipped: {skipped}" if skipped else ""))
    print(f"report: {index}")
    gates = gates_line(analysis.runs)
    if gates is not None:
        print(gates)
    if analysis.thresholds is not None:
        print(analysis.thresholds.line())
    print(final_line(args.log_dir)[0])  # the last line, as of `vendomini run`
    if analysis.thresholds is None:
        return 0
    return 1 if analysis.thresholds.status == "FAIL" or (args.strict and analysis.thresholds.status == "WARN") else 0


def _print_skips(skipped: Sequence[Skipped]) -> None:
    """Every file the analysis skipped, once, with why (`LoadedLogs.skip_lines`), on stderr."""
    from vendomini_eval.analysis.load import skip_lines

    for line in skip_lines(list(skipped)):
        print(line, file=sys.stderr)


def cmd_slurm_submit(args: argparse.Namespace) -> int:
    """Plan the sweep as a SLURM array job, write its manifest and sbatch script, and submit the incomplete
    shards; `--dry-run` prints the plan and the script and writes nothing."""
    from vendomini_eval.sweep import plan as sweep_plan
    from vendomini_eval.sweep import slurm

    try:
        models = sweep_plan.parse_models([name for value in args.model for name in value.split(",")])
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
            account=args.account,
            qos=args.qos,
            sbatch_args=args.sbatch_arg,
            serve_args=args.serve_args,
            llamacpp=_llamacpp_options(args, models),
            settings=_eval_settings(args, models, "log"),
            max_steps=args.max_steps,
            replications=args.replications,
            limit_conditions=args.limit_conditions,
            gates=args.gates,
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
            raise sweep_plan.SweepError(
                f"job {', '.join(running)} of this sweep is still queued or running; wait for it or "
                "scancel it before resubmitting (two tasks on one shard would run samples twice)"
            )
        slurm.write_files(plan, command)
        job_id = slurm.submit(plan, pending)
    except sweep_plan.SweepError as error:
        raise UsageError(error) from None
    print(slurm.format_plan(plan, pending))
    print(
        f"\nsubmitted array job {job_id}: {len(pending)} tasks (squeue -j {job_id}; vendomini slurm status "
        f"{plan.sweep.log_dir})"
    )
    return 0


def cmd_slurm_status(args: argparse.Namespace) -> int:
    """Per-shard completion of the sweep in LOGDIR, read from its logs."""
    from vendomini_eval.sweep import plan, slurm

    try:
        text, complete = slurm.format_status(slurm.sweep_status(args.log_dir))
    except plan.SweepError as error:
        raise UsageError(error) from None
    print(text)
    return 0 if complete else 1


def _add_eval_options(parser: argparse.ArgumentParser, max_connections_default: str) -> None:
    """The options `run` and `slurm submit` pass to Inspect; their defaults are the library's (None: Inspect's)."""
    group = parser.add_argument_group("passed to Inspect")
    group.add_argument(
        "-M",
        "--model-arg",
        dest="model_args",
        action="append",
        default=[],
        metavar="[MODEL:]KEY=VALUE",
        help="model arg for every model, or for one model with its name first (-M vendomini/heuristic:fault=looping)"
        "; repeatable",
    )
    group.add_argument("--temperature", type=float, help="sampling temperature (the model's default)")
    group.add_argument("--max-tokens", type=int, help="maximum tokens per model output (the model's default)")
    group.add_argument(
        "--generate-config", metavar="FILE", help="YAML or JSON file of further generation settings (GenerateConfig)"
    )
    group.add_argument("--token-limit", type=int, help="tokens per sample (input and output); the sample ends there")
    group.add_argument("--cost-limit", type=float, help="dollars per sample (needs the model's prices)")
    group.add_argument("--time-limit", type=int, help="clock seconds per sample")
    group.add_argument("--working-limit", type=int, help="working seconds per sample (clock minus waits)")
    group.add_argument("--message-limit", type=int, help="messages per sample")
    group.add_argument("--max-connections", type=int, help=f"concurrent requests per model ({max_connections_default})")
    group.add_argument("--max-samples", type=int, help="samples run at once per task (Inspect's default)")
    group.add_argument("--max-tasks", type=int, help="tasks run at once per process (Inspect's default)")
    group.add_argument("--retry-attempts", type=int, help="eval_set retries of a failed task (default: 1)")


def _add_budget_options(parser: argparse.ArgumentParser, scope: str) -> None:
    """What a sweep may spend (`run`: the whole sweep; `slurm submit`: each array task)."""
    group = parser.add_argument_group(
        f"sweep budget ({scope}): at a ceiling no new sample starts and running ones end as truncated (limit); "
        "rerun with a higher ceiling to resume"
    )
    group.add_argument(
        "--prices",
        metavar="FILE",
        help="model prices, $ per million tokens: YAML/JSON {model: {input, output, input_cache_read, "
        "input_cache_write}} (Inspect's model cost format); calls are priced with them",
    )
    group.add_argument("--max-total-tokens", type=int, metavar="N", help="tokens (input and output) of all calls")
    group.add_argument("--max-cost", type=float, metavar="USD", help="dollars (needs every model's price)")
    group.add_argument("--max-calls", type=int, metavar="N", help="model calls")
    group.add_argument(
        "--fail-on-budget",
        action="store_true",
        help=f"exit {FAIL_ON_BUDGET_EXIT} when a ceiling stops the sweep (default: exit 0)",
    )


def _add_server_options(parser: argparse.ArgumentParser, vllm: bool) -> None:
    """The options of the model server a sweep starts (`run`: llama.cpp; `slurm submit`: vLLM and llama.cpp)."""
    served = "openai-api/llama-cpp/<name>: a shipped model (smollm2, the local-llm extra) or a .gguf file"
    group = parser.add_argument_group("model server", served + ("; vllm/<hf id>, openai-api/vllm/<hf id>" * vllm))
    group.add_argument(
        "--serve-args",
        default="",
        help="extra arguments of the model server, e.g. "
        + ('"--max-model-len 32768 --enable-auto-tool-choice --tool-call-parser hermes" (vLLM) or ' if vllm else "")
        + '"--n_batch 256" (llama.cpp)',
    )
    group.add_argument("--ctx-size", type=int, help="llama.cpp context size in tokens (default: 8192)")
    group.add_argument(
        "--server-threads", type=int, help="llama.cpp CPU threads (default: the CPUs the server may run on)"
    )
    group.add_argument(
        "--chat-format", help="llama-cpp-python chat format, which renders tools (default: chatml-function-calling)"
    )


GATES_HELP = ("a governance gate on every tool call of every condition: a shipped policy (default, none) or a YAML "
              "file (configs/gates); the task names and labels then carry it")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vendomini", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="show an experiment's conditions and run counts")
    plan.add_argument("config", help="experiment YAML, or a shipped name such as phase1")
    plan.add_argument("--model", help="comma-separated Inspect models: project each one's tokens and cost (prior)")
    plan.add_argument("--prices", metavar="FILE", help="model prices, as for `vendomini run --prices`")
    plan.add_argument(
        "--from-logs",
        metavar="DIR",
        help="a pilot's logs: project each model's spend at its rates, and (with --power) the power",
    )
    plan.add_argument("--power", type=float, metavar="HR", help="hazard ratio per SD to plan for (with --from-logs)")
    plan.add_argument("--max-steps", type=int, help="override every condition's max_steps (as for run)")
    plan.add_argument("--replications", type=int, help="override the experiment's replications (as for run)")
    plan.add_argument("--limit-conditions", type=int, help="only the first N conditions (as for run)")
    plan.set_defaults(func=cmd_plan, prog=plan.prog)

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
    sim.set_defaults(func=cmd_simulate, prog=sim.prog)

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
    run.add_argument("--limit-conditions", type=int, help="run only the first N conditions (quick tries)")
    run.add_argument("--gates", metavar="POLICY", help=GATES_HELP)
    run.add_argument(
        "--display",
        choices=["full", "rich", "plain", "log", "none"],
        help="Inspect display (default: full on a terminal with one worker, else log)",
    )
    run.add_argument("--dry-run", action="store_true", help="print the tasks and shards that would run")
    _add_eval_options(run, "Inspect's default; 1 for a llama.cpp model")
    _add_budget_options(run, "the whole sweep")
    _add_server_options(run, vllm=False)
    run.set_defaults(func=cmd_run, prog=run.prog)

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
    analyze.add_argument(
        "--power",
        type=float,
        default=1.5,
        metavar="HR",
        help="hazard ratio per SD that the power table plans for (default: 1.5)",
    )
    analyze.add_argument(
        "--bootstrap",
        type=int,
        default=200,
        metavar="N",
        help="resamples of runs for the headline's robust interval; 0: none (default: 200)",
    )
    analyze.add_argument(
        "--pool-models",
        action="store_true",
        help="add statistics pooled over the models (the model a stratum or a factor); by default each is per model",
    )
    analyze.set_defaults(func=cmd_analyze, prog=analyze.prog)

    from vendomini_eval.sweep.slurm import DEFAULT_MAX_ARRAY_SIZE, DEFAULT_TIME  # no Inspect: planning only

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
        help="Inspect model (repeat, or comma-separate): vllm/<hf id>, openai-api/vllm/<hf id> (vLLM), "
        "openai-api/llama-cpp/<name> (llama.cpp) are served on the node, "
        "hf/<hf id> loads in-process, others are API models",
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
    submit.add_argument(
        "--cpus-per-task", type=int, help="CPUs per array task (default: 8 with GPUs, 4 for llama.cpp, else 1)"
    )
    submit.add_argument("--mem", help="memory per array task, e.g. 64G (default: the partition's)")
    submit.add_argument("--time", default=DEFAULT_TIME, help=f"time limit per array task (default: {DEFAULT_TIME})")
    submit.add_argument("--array-parallelism", type=int, help="array tasks run at once at most (--array=...%%K)")
    submit.add_argument(
        "--max-array-size",
        type=int,
        default=DEFAULT_MAX_ARRAY_SIZE,
        help=f"the cluster's MaxArraySize: more array tasks are refused (default: {DEFAULT_MAX_ARRAY_SIZE})",
    )
    submit.add_argument("--account", help="SLURM account to charge (default: the user's)")
    submit.add_argument("--qos", help="SLURM quality of service (default: the account's)")
    submit.add_argument(
        "--sbatch-arg",
        action="append",
        default=[],
        metavar="--OPTION[=VALUE]",
        help="any other sbatch option as one #SBATCH line; repeatable; written with =: --sbatch-arg=--constraint=a100",
    )
    submit.add_argument("--max-steps", type=int, help="override every condition's max_steps")
    submit.add_argument("--replications", type=int, help="override the experiment's replications")
    submit.add_argument("--limit-conditions", type=int, help="run only the first N conditions (quick tries)")
    submit.add_argument("--gates", metavar="POLICY", help=GATES_HELP)
    submit.add_argument("--dry-run", action="store_true", help="print the plan and the sbatch script; submit nothing")
    _add_eval_options(submit, "default: 64 for vLLM models, 1 for llama.cpp ones, else Inspect's")
    _add_budget_options(submit, "each array task")
    _add_server_options(submit, vllm=True)
    submit.set_defaults(func=cmd_slurm_submit, prog=submit.prog)
    status = slurm_sub.add_parser("status", help="per-shard completion of a SLURM sweep, read from its logs")
    status.add_argument("log_dir", metavar="LOGDIR", help="the --log-dir of `vendomini slurm submit`")
    status.set_defaults(func=cmd_slurm_status, prog=status.prog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; a mistake in the command line is one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by `slurm submit` for resuming
    try:
        status = args.func(args)
        sys.stdout.flush()  # output still buffered meets a closed pipe here, not at exit
    except (UsageError, ExperimentConfigError) as error:
        print(f"{args.prog}: error: {error}", file=sys.stderr)  # the form of argparse's own usage errors
        return 2
    except BrokenPipeError:
        # The reader stopped early (`vendomini plan phase1 | head`): stop quietly, as a Unix tool killed by
        # SIGPIPE does, with its status 141, so that a cut-short `run` or `analyze` never reads as a success.
        # stdout goes to devnull so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return status


if __name__ == "__main__":
    sys.exit(main())
