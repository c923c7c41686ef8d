"""The grid runner behind `vendomini run`: an experiment's conditions as Inspect tasks, run with `eval_set`.

Each condition of the experiment becomes one task, made by calling the phase's `@task` function
(`tasks/phaseN.py`) with that condition's arguments, so a task here is the task that
`inspect eval vendomini_eval/phaseN -T ...` runs: same name, arguments, samples, seeds and scores. The tasks
run on every model with `inspect_ai.eval_set`, which makes a sweep resumable: rerunning the same command
keeps every finished log and runs only what is missing (a killed run's finished samples are kept too).

A `Shard` is the unit of work: some conditions of one phase, every model, one log directory. One shard
runs in-process; `workers > 1` deals the conditions round-robin into that many shards and runs each in its
own process (`python -m vendomini_eval.grid --spec -`) on `LOGDIR/shard-<i>-of-<N>`, because one Inspect
process saturates one core near 100 scripted turns/s. A SLURM or Ray backend reuses the same `Shard`
(its JSON is the job's input). Inspect is imported only by the functions that run tasks or read logs:
planning, `vendomini run --dry-run` and the parent of a sharded run never import it.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import os
import posixpath
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from vendomini_eval.condition import Condition
from vendomini_eval.experiments import (
    Experiment,
    ExperimentConfigError,
    condition_for,
    condition_slug,
    load_experiment,
)

if TYPE_CHECKING:
    from inspect_ai import Task

PHASES = ("phase1", "phase2", "phase3", "phase4", "phase5")
"""The phase tasks (`vendomini_eval.tasks.<phase>.<phase>`) a grid can be run as."""
RUN_PARAMETERS = ("replications", "seed")
"""Task parameters that are not condition fields."""
SHARD_DIR = re.compile(r"^shard-(\d+)-of-(\d+)$")
DEFAULT_LOG_ROOT = "logs"
DEFAULT_RETRY_ATTEMPTS = 1
"""eval_set retries of a failed task. Scripted models fail only on a bug, which a retry repeats."""
STOP_GRACE_S = 30.0
"""How long shard processes get to stop after the runner forwards a signal, before they are killed."""
POLL_S = 0.2
Display = Literal["full", "rich", "plain", "log", "none"]
SHARD_DISPLAYS = ("plain", "log", "none")
"""Displays that several processes can share one terminal with."""
Backend = Literal["local", "ray"]
"""Where the shards run: processes on this machine, or Ray tasks on a Ray cluster (`vendomini_eval.ray_backend`)."""


class GridError(ValueError):
    """The sweep cannot be planned or run as asked (bad option, unrunnable config, log-dir conflict)."""


class SweepInterrupted(RuntimeError):
    """A sharded sweep was stopped by a signal; its shard processes were stopped too."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionTask(Frozen):
    """One condition of the grid as a call of the phase's task function."""

    index: int
    """Position of the condition in the experiment's grid order."""
    label: str
    """The experiment's `condition_label` (what `vendomini plan` lists)."""
    task_name: str
    """Name of the Inspect task (and of its logs), e.g. `phase1_p_shock-0.3__pe_mag-high__...`."""
    task_args: dict[str, Any]
    """Arguments of the phase's `@task` function: the phase's grid axes, plus what differs from the phase."""


class Shard(Frozen):
    """Some conditions of one phase, run on every model into one log directory by one eval_set call."""

    phase: str
    models: tuple[str, ...]
    conditions: tuple[ConditionTask, ...]
    log_dir: str
    index: int = 0
    count: int = 1

    @property
    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    @property
    def expected(self) -> list[tuple[str, str]]:
        """The (task name, model) pairs this shard must complete."""
        return [(c.task_name, model) for c in self.conditions for model in self.models]

    def tasks(self) -> list[Task]:
        """The Inspect tasks, made by the phase's `@task` function exactly as `inspect eval -T` makes them."""
        task_function = phase_task_function(self.phase)
        tasks = [task_function(**condition.task_args) for condition in self.conditions]
        for task, condition in zip(tasks, self.conditions, strict=True):
            if task.name != condition.task_name:  # the plan and the task code disagree: a bug, not user error
                raise GridError(f"{self.phase}{condition.task_args} made task {task.name}, not {condition.task_name}")
        return tasks


class EvalSettings(Frozen):
    """How eval_set runs a shard (operational options: they do not enter task identity or results)."""

    max_samples: int | None = None
    """Samples run at once per task (Inspect's default: the model's max_connections)."""
    max_tasks: int | None = None
    """Tasks run at once (Inspect's default: the greater of 10 and the number of models)."""
    max_connections: int | None = None
    """Concurrent requests to a model (Inspect's default: the provider's); a served model batches them."""
    log_buffer: int | None = None
    """Samples buffered before they are written to the log (Inspect's default: 10). 1 keeps every finished sample
    of a task that is killed mid-run (a SLURM requeue or preemption), for eval_set to reuse."""
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS
    display: Display = "log"
    log_level: str | None = None


def eval_settings(
    *,
    max_samples: int | None = None,
    max_tasks: int | None = None,
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    display: Display = "log",
) -> EvalSettings:
    """EvalSettings from command-line options, with GridError naming the option that is out of range."""
    for option, value, minimum in (("--max-samples", max_samples, 1), ("--max-tasks", max_tasks, 1),
                                   ("--retry-attempts", retry_attempts, 0)):  # fmt: skip
        if value is not None and value < minimum:
            raise GridError(f"{option} must be an integer >= {minimum}, got {value}")
    return EvalSettings(max_samples=max_samples, max_tasks=max_tasks, retry_attempts=retry_attempts, display=display)


class Sweep(Frozen):
    """A planned sweep: the experiment's conditions (as phase-task calls), the models, the log layout."""

    experiment: str
    source: str
    phase: str
    models: tuple[str, ...]
    conditions: tuple[ConditionTask, ...]
    total_conditions: int
    """Conditions in the experiment (more than `conditions` when --limit-conditions cut the grid)."""
    replications: int
    max_steps: tuple[int, ...]
    """The distinct max_steps of the conditions."""
    log_dir: str
    workers: int = 1

    @property
    def task_count(self) -> int:
        return len(self.conditions) * len(self.models)

    def shards(self) -> list[Shard]:
        """The conditions dealt round-robin into `workers` shards (condition i goes to shard i mod workers),
        each with every model. One worker: one shard on the log dir itself."""
        if self.workers == 1:
            return [Shard(phase=self.phase, models=self.models, conditions=self.conditions, log_dir=self.log_dir)]
        return [
            Shard(
                phase=self.phase,
                models=self.models,
                conditions=self.conditions[index :: self.workers],
                log_dir=posixpath.join(self.log_dir, f"shard-{index}-of-{self.workers}"),
                index=index,
                count=self.workers,
            )
            for index in range(self.workers)
        ]


class ShardResult(BaseModel):
    """What a shard's log directory holds after a run: complete and missing tasks, and why they are missing."""

    shard: Shard
    complete: list[tuple[str, str]] = []
    """(task name, model) pairs with a successful log."""
    failed: list[tuple[str, str, str]] = []
    """(task name, model, why) of the missing pairs: the status or error of their latest log, or "no log"."""
    exit_code: int | None = None
    """The shard process's exit status (None when the shard ran in-process)."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and self.exit_code in (None, 0)


class SweepResult(BaseModel):
    sweep: Sweep
    shards: list[ShardResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(shard.ok for shard in self.shards)

    @property
    def complete(self) -> int:
        return sum(len(shard.complete) for shard in self.shards)


# ---------------------------------------------------------------------------------------------------------
# Planning


def plan_sweep(
    config: str | Path,
    *,
    models: str | Sequence[str] | None = None,
    log_dir: str | Path | None = None,
    max_steps: int | None = None,
    replications: int | None = None,
    limit_conditions: int | None = None,
    workers: int = 1,
) -> Sweep:
    """Plan the sweep of an experiment: which phase task runs its conditions, with which arguments, on which
    models, into which log directories. Raises GridError (or ExperimentConfigError) on bad input.

    Args:
      config: Experiment YAML, or a shipped name such as "phase1".
      models: Inspect models, a list or a comma-separated string (default: the experiment's `models`).
      log_dir: Log directory of the sweep (default: logs/<experiment name>).
      max_steps: Override every condition's max_steps.
      replications: Override the experiment's replications (samples per task).
      limit_conditions: Run only the first N conditions in grid order (quick tries).
      workers: Processes to shard the conditions over.
    """
    for option, value in (("--max-steps", max_steps), ("--replications", replications),
                          ("--limit-conditions", limit_conditions), ("--workers", workers)):  # fmt: skip
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise GridError(f"{option} must be an integer >= 1, got {value!r}")
    experiment = load_experiment(config)
    model_names = parse_models(models) if models is not None else tuple(experiment.models)
    n_conditions = len(experiment.conditions) if limit_conditions is None else limit_conditions
    if n_conditions > len(experiment.conditions):
        raise GridError(
            f"--limit-conditions {limit_conditions}: {experiment.name} has {len(experiment.conditions)} conditions"
        )
    targets = list(experiment.conditions[:n_conditions])
    if max_steps is not None:
        targets = [_with_max_steps(c, max_steps) for c in targets]
    reps = replications if replications is not None else experiment.replications
    phase, conditions = phase_conditions(experiment, targets, reps)
    if workers > len(conditions):
        raise GridError(f"--workers {workers} is more than the {len(conditions)} conditions to run; use at most "
                        f"{len(conditions)}")  # fmt: skip
    return Sweep(
        experiment=experiment.name,
        source=_shown(experiment.source),
        phase=phase,
        models=model_names,
        conditions=tuple(conditions),
        total_conditions=len(experiment.conditions),
        replications=reps,
        max_steps=tuple(sorted({c.max_steps for c in targets})),
        log_dir=str(log_dir) if log_dir is not None else posixpath.join(DEFAULT_LOG_ROOT, experiment.name),
        workers=workers,
    )


def parse_models(models: str | Sequence[str]) -> tuple[str, ...]:
    """Inspect model names from `a,b` or a list: each `provider/name`, none empty, none twice."""
    items = models.split(",") if isinstance(models, str) else list(models)
    names = tuple(str(item).strip() for item in items)
    if not names or any(not name for name in names):
        raise GridError(f"--model {_as_text(models)!r}: empty model name; give comma-separated provider/model names")
    for name in names:
        provider, _, model = name.partition("/")
        if not provider or not model:
            raise GridError(
                f"--model: {name!r} is not an Inspect model name (provider/model, e.g. vendomini/heuristic)"
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise GridError(f"--model: {', '.join(duplicates)} given twice")
    return names


def phase_conditions(
    experiment: Experiment, targets: Sequence[Condition], replications: int
) -> tuple[str, list[ConditionTask]]:
    """The phase task that reproduces every target condition exactly, and its arguments per condition.

    An experiment named after a phase runs as that phase; any other experiment (a custom grid) runs as the
    first phase whose task can express all its conditions: its axes are task parameters and what they
    leave at the phase default equals the experiment's value. Otherwise GridError says what differs.
    """
    candidates = [experiment.name] if experiment.name in PHASES else list(PHASES)
    problems = []
    for phase in candidates:
        phase_experiment, parameters = load_experiment(phase), task_parameters(phase)
        try:
            return phase, [
                _condition_task(experiment, phase_experiment, parameters, index, target, replications)
                for index, target in enumerate(targets)
            ]
        except _CannotExpress as error:
            problems.append(f"{phase}: {error}")
    raise GridError(
        f"{experiment.source}: no phase task can run these conditions exactly (a phase task takes its grid axes, "
        "max_steps and crash_threshold; any other value must be the phase's): " + "; ".join(problems)
    )


def phase_task_function(phase: str) -> Any:
    """The `@task` function of a phase (imports Inspect)."""
    if phase not in PHASES:
        raise GridError(f"unknown phase {phase!r}; phases: {', '.join(PHASES)}")
    return getattr(importlib.import_module(f"vendomini_eval.tasks.{phase}"), phase)


def task_parameters(phase: str) -> tuple[str, ...]:
    """The parameter names of a phase's `@task` function, read from its source file.

    Parsed, not imported (as Inspect itself finds `@task` functions), so that planning and `--dry-run` do not
    import Inspect and a sharded run does not pay for that import before its shard processes start."""
    spec = importlib.util.find_spec("vendomini_eval.tasks")  # imports vendomini_eval only, not .tasks
    locations = list(spec.submodule_search_locations or []) if spec else []
    source = next((Path(p) / f"{phase}.py" for p in locations if (Path(p) / f"{phase}.py").is_file()), None)
    if source is None:
        raise GridError(f"no task file {phase}.py in vendomini_eval.tasks ({', '.join(locations) or 'not found'})")
    for node in ast.parse(source.read_text(encoding="utf-8"), filename=str(source)).body:
        if isinstance(node, ast.FunctionDef) and node.name == phase:
            arguments = node.args
            return tuple(a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs))
    raise GridError(f"{source} defines no function {phase}")


class _CannotExpress(Exception):
    """A phase task cannot reproduce a condition."""


def _condition_task(
    experiment: Experiment,
    phase_experiment: Experiment,
    parameters: Sequence[str],
    index: int,
    target: Condition,
    replications: int,
) -> ConditionTask:
    """The task arguments that make the phase task build exactly `target`, or _CannotExpress."""
    fields = [name for name in parameters if name not in RUN_PARAMETERS]
    label = experiment.labels[index]
    missing = [axis for axis in experiment.grid if axis not in fields]
    if missing:
        raise _CannotExpress(f"grid axis {', '.join(missing)} is not a parameter of the task")
    unknown = [name for name in fields if name not in Condition.model_fields]
    if unknown:  # a task parameter that is not a condition field: the convention of tasks/ changed
        raise _CannotExpress(f"task parameter {', '.join(unknown)} is not a condition field")
    # The phase's axes always (what a reader of the log wants to see), other fields only where they differ.
    args: dict[str, Any] = {name: getattr(target, name) for name in fields if name in phase_experiment.grid}
    try:
        default = condition_for(phase_experiment, args)
        for name in fields:
            if name not in args and getattr(default, name) != getattr(target, name):
                args[name] = getattr(target, name)
        built = condition_for(phase_experiment, args)
    except ExperimentConfigError as error:
        raise _CannotExpress(f"condition {index} ({label}): {error.problem}") from None
    if built != target:
        theirs, ours = built.model_dump(), target.model_dump()
        differs = ", ".join(
            f"{key} (task: {theirs[key]!r}, config: {ours[key]!r})" for key in ours if theirs[key] != ours[key]
        )
        raise _CannotExpress(f"condition {index} ({label}) would differ in {differs}")
    if replications != phase_experiment.replications:
        args["replications"] = replications
    if experiment.seed != phase_experiment.seed:
        args["seed"] = experiment.seed
    slug = condition_slug(built, list(phase_experiment.grid))  # as tasks/_phase.py names the task
    return ConditionTask(index=index, label=label, task_name=f"{phase_experiment.name}_{slug}", task_args=args)


def _with_max_steps(condition: Condition, max_steps: int) -> Condition:
    try:
        return Condition.model_validate({**condition.model_dump(), "max_steps": max_steps})
    except ValueError as error:
        raise GridError(f"--max-steps {max_steps}: {error}") from None


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it, else as it is."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _as_text(models: str | Sequence[str]) -> str:
    return models if isinstance(models, str) else ",".join(map(str, models))


# ---------------------------------------------------------------------------------------------------------
# Formatting


def inspect_eval_command(phase: str, task_args: dict[str, Any], model: str | None = None) -> str:
    """The `inspect eval` command that runs the same task (one condition) on its own."""
    model_part = f" --model {model}" if model else ""
    return f"inspect eval vendomini_eval/{phase}{model_part}" + "".join(
        f" -T {key}={_arg_text(value)}" for key, value in task_args.items()
    )


def format_sweep(sweep: Sweep) -> str:
    """What `vendomini run --dry-run` prints: the sweep, then each shard's log dir and tasks."""
    shards = sweep.shards()
    conditions = f"{len(sweep.conditions)}" + (
        f" (first {len(sweep.conditions)} of {sweep.total_conditions})"
        if len(sweep.conditions) < sweep.total_conditions
        else ""
    )
    layout = "" if sweep.workers == 1 else f"  ({sweep.workers} shards, one process each)"
    rows = [
        ("experiment", f"{sweep.experiment}  ({sweep.source})"),
        ("task", f"{sweep.phase}  (vendomini_eval/{sweep.phase}, tasks/{sweep.phase}.py)"),
        ("models", ", ".join(sweep.models)),
        ("conditions", conditions),
        ("replications", str(sweep.replications)),
        ("max_steps", ", ".join(map(str, sweep.max_steps))),
        ("tasks", f"{sweep.task_count}  ({len(sweep.conditions)} conditions x {len(sweep.models)} models), "
                  f"{sweep.task_count * sweep.replications} samples"),
        ("log dir", sweep.log_dir + layout),
    ]  # fmt: skip
    width = max(len(key) for key, _ in rows)
    lines = [f"{key:<{width}}  {value}" for key, value in rows]
    for shard in shards:
        lines.append("")
        lines.append(
            f"{shard.name}: {len(shard.conditions)} conditions x {len(shard.models)} models = "
            f"{len(shard.expected)} tasks -> {shard.log_dir}"
        )
        models = ",".join(shard.models)  # one `inspect eval` runs the task on every model, as eval_set does
        lines.extend(
            f"  {c.index:>3}  {inspect_eval_command(shard.phase, c.task_args)} --model {models}"
            for c in shard.conditions
        )
    return "\n".join(lines)


def format_result(result: SweepResult) -> str:
    """The end-of-run report: tasks complete per shard, what failed, where the logs are and how to view them."""
    sweep = result.sweep
    lines = []
    for shard_result in result.shards:
        shard = shard_result.shard
        status = "ok" if shard_result.ok else "FAILED"
        exit_text = "" if shard_result.exit_code is None else f", exit {shard_result.exit_code}"
        lines.append(
            f"{shard.name}: {len(shard_result.complete)}/{len(shard.expected)} tasks complete{exit_text} [{status}]"
            f" -> {shard.log_dir}"
        )
        for task_name, model, why in shard_result.failed:
            lines.append(f"  missing {task_name} on {model}: {why}")
    failed_shards = [f"{r.shard.name} (exit {r.exit_code})" for r in result.shards if r.exit_code not in (None, 0)]
    verdict = "complete"
    if not result.ok:
        verdict = "INCOMPLETE" + (f"; failed: {', '.join(failed_shards)}, see above" if failed_shards else "")
        verdict += "; rerun the same command to resume"
    lines.append(f"{sweep.experiment}: {result.complete}/{sweep.task_count} tasks in {result.seconds:.1f} s: {verdict}")
    lines.append(f"logs: {sweep.log_dir}")
    lines.append(f"view: inspect view --log-dir {sweep.log_dir}")
    return "\n".join(lines)


def _arg_text(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text if re.fullmatch(r"[A-Za-z0-9_.+-]+", text) else json.dumps(text)


# ---------------------------------------------------------------------------------------------------------
# Running


def run_sweep(
    sweep: Sweep, settings: EvalSettings | None = None, backend: Backend = "local", address: str | None = None
) -> SweepResult:
    """Run (or resume) a sweep: in-process for one worker, else one process per shard, all at once; with the
    ray backend, each shard as a Ray task on the cluster at `address` (see `vendomini_eval.ray_backend`).

    Raises GridError when the log dir holds a run with another shard layout (mixing would duplicate
    samples), and SweepInterrupted when SIGINT/SIGTERM stopped a sharded run (shards stopped first).
    """
    settings = settings or EvalSettings()
    if address is not None and backend != "ray":
        raise GridError("--address is the Ray cluster's address: it goes with --backend ray")
    check_log_dir_layout(sweep.log_dir, sweep.workers)
    started = time.monotonic()
    if backend == "ray":
        from vendomini_eval.ray_backend import run_shards_on_ray

        if settings.display not in SHARD_DISPLAYS:  # Ray forwards every shard's output to this terminal
            raise GridError(f"display {settings.display!r} cannot be shared by Ray tasks; use one of "
                            f"{', '.join(SHARD_DISPLAYS)}")  # fmt: skip
        shard_results = run_shards_on_ray(sweep.shards(), settings, address)
    elif sweep.workers == 1:
        shard_results = [run_shard(sweep.shards()[0], settings)]
    else:
        if settings.display not in SHARD_DISPLAYS:
            raise GridError(f"display {settings.display!r} cannot be shared by {sweep.workers} processes; use "
                            f"one of {', '.join(SHARD_DISPLAYS)}")  # fmt: skip
        shard_results = _run_shard_processes(sweep.shards(), settings)
    return SweepResult(sweep=sweep, shards=shard_results, seconds=time.monotonic() - started)


def run_shard(shard: Shard, settings: EvalSettings) -> ShardResult:
    """Run (or resume) one shard in this process with eval_set; the result is read back from its logs."""
    from inspect_ai import eval_set

    started = time.monotonic()
    try:
        eval_set(
            shard.tasks(),
            model=list(shard.models),
            log_dir=shard.log_dir,
            retry_attempts=settings.retry_attempts,
            retry_wait=1,  # only used with retry_immediate=False; keeps a retry from sleeping 30 s
            fail_on_error=True,  # a sample error is a harness error: fail the task and show it
            max_samples=settings.max_samples,
            max_tasks=settings.max_tasks,
            max_connections=settings.max_connections,
            log_buffer=settings.log_buffer,
            display=settings.display,
            log_level=settings.log_level,
        )
    except ValueError as error:  # before any task ran: a model Inspect does not know, bad model args, ...
        raise GridError(f"{shard.log_dir}: {error}") from None
    except Exception as error:
        # eval_set's refusals (a log dir holding other tasks' logs, ...) are PrerequisiteError, which
        # inspect_ai does not export; its message is meant for users.
        if type(error).__name__ != "PrerequisiteError":
            raise
        raise GridError(f"{shard.log_dir}: {_plain(str(error))}") from None
    result = collect_status(shard)
    result.seconds = time.monotonic() - started
    return result


def collect_status(shard: Shard) -> ShardResult:
    """Which of the shard's (task, model) pairs have a successful log in its log dir, and why the others not."""
    from inspect_ai.log import list_eval_logs, read_eval_log

    result = ShardResult(shard=shard)
    expected = set(shard.expected)
    latest: dict[tuple[str, str], tuple[str, str]] = {}  # pair -> (status or error, log started)
    successes: set[tuple[str, str]] = set()
    if os.path.isdir(shard.log_dir) or "://" in shard.log_dir:
        for info in list_eval_logs(shard.log_dir, recursive=False):
            header = read_eval_log(info.name, header_only=True)
            pair = (header.eval.task, str(header.eval.model))
            if pair not in expected:
                continue
            if header.status == "success":
                successes.add(pair)
            why = header.status + (f": {header.error.message}" if header.error else "")
            if pair not in latest or header.eval.created > latest[pair][1]:
                latest[pair] = (why, header.eval.created)
    result.complete = [pair for pair in shard.expected if pair in successes]
    result.failed = [(*pair, latest.get(pair, ("no log", ""))[0]) for pair in shard.expected if pair not in successes]
    return result


def check_log_dir_layout(log_dir: str, workers: int) -> None:
    """Refuse a log dir that holds a sweep run with another number of workers: eval_set would not see those
    logs (or would see them twice), so the sweep would rerun finished tasks and mix duplicates into the dir."""
    if "://" in log_dir or not os.path.isdir(log_dir):
        return
    root = Path(log_dir)
    layouts = sorted({int(m.group(2)) for p in root.iterdir() if p.is_dir() and (m := SHARD_DIR.match(p.name))})
    other = [count for count in layouts if count != workers]
    own_logs = [p for p in root.iterdir() if p.is_file() and p.suffix in (".eval", ".json") and p.name != "logs.json"
                and p.name != "eval-set.json"]  # fmt: skip
    if other:
        raise GridError(
            f"{log_dir} holds a sweep run with --workers {', '.join(map(str, other))} "
            f"(shard-*-of-{other[0]}); rerun with that --workers to resume it, or use another --log-dir"
        )
    if workers > 1 and own_logs:
        raise GridError(
            f"{log_dir} holds logs of a sweep run with --workers 1; rerun with --workers 1 to resume it, or use "
            "another --log-dir"
        )


def _run_shard_processes(shards: list[Shard], settings: EvalSettings) -> list[ShardResult]:
    """Run every shard in its own process at once; stop them all on SIGINT/SIGTERM.

    Each process writes its ShardResult to a JSON file, so this process never imports Inspect (its import
    would delay the start of the shards); only a shard that exits without a report has its logs read here."""
    processes: list[subprocess.Popen[bytes]] = []
    starts: list[float] = []
    ends: dict[int, float] = {}
    stop: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    with tempfile.TemporaryDirectory(prefix="vendomini-shards-") as reports:
        report_paths = [Path(reports) / f"{shard.name}.json" for shard in shards]
        try:
            for shard, report in zip(shards, report_paths, strict=True):
                job = ShardJob(shard=shard, settings=settings).model_dump_json()
                process = subprocess.Popen(
                    [sys.executable, "-m", "vendomini_eval.grid", "--spec", "-", "--report", str(report)],
                    stdin=subprocess.PIPE,
                    # Own session: a terminal's Ctrl-C reaches the runner only, which forwards it once.
                    start_new_session=True,
                )
                assert process.stdin is not None
                process.stdin.write(job.encode())
                process.stdin.close()
                processes.append(process)
                starts.append(time.monotonic())
                print(f"[{shard.name}] started (pid {process.pid}): {len(shard.expected)} tasks -> {shard.log_dir}",
                      flush=True)  # fmt: skip
            while len(ends) < len(processes) and not stop:
                for i, process in enumerate(processes):
                    if i not in ends and process.poll() is not None:
                        ends[i] = time.monotonic()
                        print(f"[{shards[i].name}] finished: exit {process.returncode} after "
                              f"{ends[i] - starts[i]:.1f} s", flush=True)  # fmt: skip
                time.sleep(POLL_S)
        finally:
            if stop or len(ends) < len(processes):
                _stop_processes(processes, stop[0] if stop else signal.SIGTERM)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if stop:
            raise SweepInterrupted(stop[0])
        results = []
        for i, (shard, report) in enumerate(zip(shards, report_paths, strict=True)):
            result = ShardResult.model_validate_json(report.read_text("utf-8")) if report.is_file() else None
            result = result or collect_status(shard)
            result.exit_code = processes[i].returncode
            result.seconds = ends[i] - starts[i]
            results.append(result)
    return results


def _stop_processes(processes: Sequence[subprocess.Popen[bytes]], signum: int) -> None:
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(signum)
    deadline = time.monotonic() + STOP_GRACE_S
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _plain(message: str) -> str:
    """A rich-markup message as plain text."""
    return re.sub(r"\[/?[a-z ]+\]", "", message)


# ---------------------------------------------------------------------------------------------------------
# Shard process: python -m vendomini_eval.grid --spec FILE|-


class ShardJob(Frozen):
    """The input of a shard process: the shard and how to run it (JSON)."""

    shard: Shard
    settings: EvalSettings


def main(argv: Sequence[str] | None = None) -> int:
    """Run one shard from a JSON job (`--spec -` reads stdin). Exit 0 when every task is complete, 1 when some
    are not, 2 when the shard could not run."""
    parser = argparse.ArgumentParser(prog="python -m vendomini_eval.grid", description=main.__doc__)
    parser.add_argument("--spec", required=True, help="JSON file of a ShardJob, or - for stdin")
    parser.add_argument("--report", help="write the ShardResult (JSON) to this file")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.spec == "-" else Path(args.spec).read_text(encoding="utf-8")
    job = ShardJob.model_validate_json(text)
    try:
        result = run_shard(job.shard, job.settings)
    except (GridError, ExperimentConfigError) as error:
        print(f"error: [{job.shard.name}] {error}", file=sys.stderr)
        return 2
    except Exception as error:  # reported with the shard named; the traceback is Inspect's or ours
        print(f"error: [{job.shard.name}] {type(error).__name__}: {error}", file=sys.stderr)
        raise
    if args.report:
        Path(args.report).write_text(result.model_dump_json(), encoding="utf-8")
    print(f"[{job.shard.name}] {len(result.complete)}/{len(job.shard.expected)} tasks complete in "
          f"{result.seconds:.1f} s -> {job.shard.log_dir}", flush=True)  # fmt: skip
    for task_name, model, why in result.failed:
        print(f"[{job.shard.name}] missing {task_name} on {model}: {why}", flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
