"""Planning a sweep (no Inspect import): an experiment's conditions as calls of the generic task, dealt into
shards, with the options every backend passes to Inspect.

Each condition runs as `vendomini_eval/vendomini -T config=<experiment> -T condition=<index>` (plus
`-T max_steps=` / `-T replications=` when overridden): the very task `inspect eval` runs, with the same name,
samples, seeds and scores. A `Shard` is the unit of work of every backend: some conditions, every model, one
log directory, run by one `eval_set` call (`vendomini_eval.sweep.shard`).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from vendomini_eval.budget import CEILINGS, BudgetError, Ceilings, Price, load_prices
from vendomini_eval.condition import Condition
from vendomini_eval.experiments import (
    Experiment,
    ExperimentConfigError,
    condition_for,
    condition_label,
    condition_values,
    labelled_axes,
    load_experiment,
    resolve_config,
    task_name,
)

TASK = "vendomini_eval/vendomini"
"""The registry name of the generic task every sweep runs."""
DEFAULT_LOG_ROOT = "logs"
DEFAULT_RETRY_ATTEMPTS = 1
"""eval_set retries of a failed task. Scripted models fail only on a bug, which a retry repeats."""
Display = Literal["full", "rich", "plain", "log", "none"]
SHARD_DISPLAYS = ("plain", "log", "none")
"""Displays that several processes can share one terminal with."""
GENERATE_OPTIONS = ("temperature", "max_tokens")
"""Generation settings with their own option; any other goes in a --generate-config file."""
LIMIT_OPTIONS = ("token_limit", "cost_limit", "time_limit", "working_limit", "message_limit")
"""Per-sample limits (Inspect's): a sample that reaches one ends there and is scored as it stands."""
_MODEL_ARG = re.compile(r"^(?:(?P<model>[^=]+):)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$", re.S)


class SweepError(ValueError):
    """The sweep cannot be planned or run as asked (bad option, unrunnable config, log-dir conflict)."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionTask(Frozen):
    """One condition of the grid as a call of the generic task."""

    index: int
    """Position of the condition in the experiment's grid order."""
    label: str
    """The experiment's `condition_label` (what `vendomini plan` lists)."""
    task_name: str
    """Name of the Inspect task (and of its logs), e.g. `phase1_p_shock-0.3__pe_mag-high__...`."""
    task_args: dict[str, Any]
    """Arguments of the generic task: config and condition, and what the sweep overrides."""


class EvalSettings(Frozen):
    """How eval_set runs a shard: the models' arguments, generation settings, limits and concurrency. Every
    default is Inspect's (None), but for the retries."""

    model_args: dict[str, dict[str, Any]] = {}
    """Model args (`-M`) of each model of the sweep, by model name."""
    generate: dict[str, Any] = {}
    """Generation settings (GenerateConfig fields: temperature, max_tokens, ...)."""
    token_limit: int | None = None
    cost_limit: float | None = None
    time_limit: int | None = None
    working_limit: int | None = None
    message_limit: int | None = None
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
    context_lengths: dict[str, int] = {}
    """Context window (tokens) of served models that Inspect cannot look up (llama.cpp's), by model name: the
    agent sizes its conversation window from it, and the server refuses a prompt over it."""
    display: Display = "log"
    log_level: str | None = None
    prices: dict[str, Price] = {}
    """Model prices (`--prices`) given to Inspect, which prices each call with them."""
    ceilings: Ceilings = Ceilings()
    """Sweep ceilings (`--max-total-tokens`, `--max-cost`, `--max-calls`); see `vendomini_eval.budget`."""
    ledger: str | None = None
    """The sweep's ledger file (set by the coordinator); None: a shard keeps its own in its log dir (SLURM)."""
    fail_on_budget: bool = False
    """Exit non-zero (FAIL_ON_BUDGET_EXIT) when a ceiling stops the sweep; otherwise such a stop exits 0."""

    def limits(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in LIMIT_OPTIONS if getattr(self, name) is not None}


class Shard(Frozen):
    """Some conditions of one experiment, run on every model into one log directory by one eval_set call."""

    experiment: str
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


class ShardJob(Frozen):
    """The input of a shard process: the shard and how to run it (JSON)."""

    shard: Shard
    settings: EvalSettings


class Sweep(Frozen):
    """A planned sweep: the experiment's conditions (as generic-task calls), the models, the log layout."""

    experiment: str
    source: str
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
            return [Shard(experiment=self.experiment, models=self.models, conditions=self.conditions,
                          log_dir=self.log_dir)]  # fmt: skip
        return [
            Shard(
                experiment=self.experiment,
                models=self.models,
                conditions=self.conditions[index :: self.workers],
                log_dir=posixpath.join(self.log_dir, f"shard-{index}-of-{self.workers}"),
                index=index,
                count=self.workers,
            )
            for index in range(self.workers)
        ]


def plan_sweep(
    config: str | Path,
    *,
    models: str | Sequence[str] | None = None,
    log_dir: str | Path | None = None,
    max_steps: int | None = None,
    replications: int | None = None,
    limit_conditions: int | None = None,
    workers: int = 1,
    gates: str | None = None,
) -> Sweep:
    """Plan the sweep of an experiment: its conditions as generic-task calls, on which models, into which log
    directories. Raises SweepError (or ExperimentConfigError) on bad input.

    Args:
      config: Experiment YAML, or a shipped name such as "phase1".
      models: Inspect models, a list or a comma-separated string (default: the experiment's `models`).
      log_dir: Log directory of the sweep (default: logs/<experiment name>).
      max_steps: Override every condition's max_steps.
      replications: Override the experiment's replications (samples per task).
      limit_conditions: Run only the first N conditions in grid order (quick tries).
      workers: Processes to shard the conditions over.
      gates: A governance gate policy (shipped name or YAML) for every condition; its tasks are named with it.
    """
    for option, value in (("--max-steps", max_steps), ("--replications", replications),
                          ("--limit-conditions", limit_conditions), ("--workers", workers)):  # fmt: skip
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SweepError(f"{option} must be an integer >= 1, got {value!r}")
    experiment = load_experiment(config)
    model_names = parse_models(models) if models is not None else tuple(experiment.models)
    n_conditions = len(experiment.conditions) if limit_conditions is None else limit_conditions
    if n_conditions > len(experiment.conditions):
        raise SweepError(
            f"--limit-conditions {limit_conditions}: {experiment.name} has {len(experiment.conditions)} conditions"
        )
    reps = replications if replications is not None else experiment.replications
    gates = _gates_argument(gates)
    conditions = [
        _condition_task(experiment, config_argument(config), index, max_steps, reps, gates)
        for index in range(n_conditions)
    ]
    if workers > len(conditions):
        raise SweepError(f"--workers {workers} is more than the {len(conditions)} conditions to run; use at most "
                         f"{len(conditions)}")  # fmt: skip
    steps = {max_steps} if max_steps is not None else {c.max_steps for c in experiment.conditions[:n_conditions]}
    return Sweep(
        experiment=experiment.name,
        source=_shown(experiment.source),
        models=model_names,
        conditions=tuple(conditions),
        total_conditions=len(experiment.conditions),
        replications=reps,
        max_steps=tuple(sorted(steps)),
        log_dir=str(log_dir) if log_dir is not None else posixpath.join(DEFAULT_LOG_ROOT, experiment.name),
        workers=workers,
    )


def config_argument(config: str | Path) -> str:
    """The generic task's `config`: a shipped config's name as given, else the file's absolute path (shard
    processes, Ray workers and SLURM array tasks may run in another directory)."""
    path = resolve_config(config)
    return str(config) if not Path(config).is_file() else str(path.resolve())


def _gates_argument(gates: str | None) -> str | None:
    """The generic task's `gates`: a shipped policy's name as given, else the file's absolute path (shards may run
    in another directory); checked here so that a bad policy stops the sweep before anything runs."""
    if gates is None:
        return None
    try:
        Condition(gates=gates)
    except ValidationError as error:
        raise SweepError(f"--gates {gates}: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    return str(Path(gates).resolve()) if Path(gates).is_file() else gates


def _condition_task(
    experiment: Experiment, config: str, index: int, max_steps: int | None, replications: int, gates: str | None
) -> ConditionTask:
    args: dict[str, Any] = {"config": config, "condition": index}
    overrides: dict[str, Any] = {}
    if max_steps is not None:
        args["max_steps"] = overrides["max_steps"] = max_steps
    if gates is not None:
        args["gates"] = overrides["gates"] = gates
    if replications != experiment.replications:
        args["replications"] = replications
    condition = experiment.conditions[index]
    if overrides:
        try:
            condition = condition_for(experiment, {**condition_values(experiment, index), **overrides})
        except ExperimentConfigError as error:
            option = "--max-steps" if error.key_path == "max_steps" else "--gates"
            raise SweepError(f"{option} {overrides.get(error.key_path)}: {error.problem}") from None
    axes = labelled_axes(list(experiment.grid), condition)
    return ConditionTask(index=index, label=condition_label(condition, axes), task_args=args,
                         task_name=task_name(experiment.name, condition, axes))  # fmt: skip


def parse_models(models: str | Sequence[str]) -> tuple[str, ...]:
    """Inspect model names from `a,b` or a list: each `provider/name`, none empty, none twice."""
    items = models.split(",") if isinstance(models, str) else list(models)
    names = tuple(str(item).strip() for item in items)
    if not names or any(not name for name in names):
        raise SweepError(f"--model {_as_text(models)!r}: empty model name; give comma-separated provider/model names")
    for name in names:
        provider, _, model = name.partition("/")
        if not provider or not model:
            raise SweepError(
                f"--model: {name!r} is not an Inspect model name (provider/model, e.g. vendomini/heuristic)"
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SweepError(f"--model: {', '.join(duplicates)} given twice")
    return names


def parse_model_args(items: Sequence[str], models: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`-M key=value` for every model, `-M MODEL:key=value` for one (MODEL as given to --model); each model's
    args, by name. Values are read as YAML scalars (`30` is an int, `true` a bool), as Inspect's -M does."""
    import yaml

    args: dict[str, dict[str, Any]] = {model: {} for model in models}
    for item in items:
        match = _MODEL_ARG.match(item)
        if match is None:
            raise SweepError(f"-M {item!r}: expected key=value, or MODEL:key=value for one model")
        model, key, text = match.group("model"), match.group("key"), match.group("value")
        if model is not None and model not in args:
            raise SweepError(f"-M {item!r}: {model} is not a model of this sweep ({', '.join(models)})")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            value = text
        for name in [model] if model is not None else models:
            args[name][key] = value
    return args


def eval_settings(
    *,
    models: Sequence[str],
    model_args: Sequence[str] = (),
    temperature: float | None = None,
    max_tokens: int | None = None,
    generate_config: str | Path | None = None,
    limits: Mapping[str, float | int | None] | None = None,
    max_samples: int | None = None,
    max_tasks: int | None = None,
    max_connections: int | None = None,
    retry_attempts: int | None = None,
    display: Display = "log",
    prices: str | Path | None = None,
    ceilings: Mapping[str, float | int | None] | None = None,
    fail_on_budget: bool = False,
) -> EvalSettings:
    """EvalSettings from command-line options, with SweepError naming the option that is wrong."""
    retry_attempts = DEFAULT_RETRY_ATTEMPTS if retry_attempts is None else retry_attempts
    limits = {key: value for key, value in (limits or {}).items() if value is not None}
    for key in limits:
        if key not in LIMIT_OPTIONS:
            raise SweepError(f"unknown limit {key}; limits: {', '.join(LIMIT_OPTIONS)}")
    checks = [("--max-samples", max_samples, 1), ("--max-tasks", max_tasks, 1), ("--retry-attempts", retry_attempts, 0),
              ("--max-connections", max_connections, 1), ("--max-tokens", max_tokens, 1),
              *((f"--{key.replace('_', '-')}", value, 1) for key, value in limits.items())]  # fmt: skip
    for option, value, minimum in checks:
        if value is not None and value < minimum:
            raise SweepError(f"{option} must be >= {minimum}, got {value}")
    if temperature is not None and temperature < 0:
        raise SweepError(f"--temperature must be >= 0, got {temperature}")
    generate = read_generate_config(generate_config) if generate_config is not None else {}
    generate.update({key: value for key, value in (("temperature", temperature), ("max_tokens", max_tokens))
                     if value is not None})  # fmt: skip
    ceilings = {key: value for key, value in (ceilings or {}).items() if value is not None}
    for key, value in ceilings.items():
        if key not in CEILINGS:
            raise SweepError(f"unknown ceiling {key}; ceilings: {', '.join(CEILINGS)}")
        if value <= 0:
            raise SweepError(f"--{key.replace('_', '-')} must be > 0, got {value}")
    try:
        price_list = load_prices(prices) if prices is not None else {}
    except BudgetError as error:
        raise SweepError(str(error)) from None
    return EvalSettings(model_args=parse_model_args(model_args, models), generate=generate, **limits,
                        max_samples=max_samples, max_tasks=max_tasks, max_connections=max_connections,
                        retry_attempts=retry_attempts, display=display, prices=price_list,
                        ceilings=Ceilings(**ceilings), fail_on_budget=fail_on_budget)  # fmt: skip


def read_generate_config(path: str | Path) -> dict[str, Any]:
    """Generation settings from a YAML or JSON file, checked against Inspect's GenerateConfig (imports Inspect:
    only when the option is given)."""
    import yaml
    from inspect_ai.model import GenerateConfig
    from pydantic import ValidationError

    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise SweepError(f"--generate-config {path}: cannot read it: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise SweepError(f"--generate-config {path}: not YAML or JSON: {str(error).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise SweepError(f"--generate-config {path}: expected a mapping of GenerateConfig fields")
    unknown = sorted(set(values) - set(GenerateConfig.model_fields))
    if unknown:
        raise SweepError(f"--generate-config {path}: {', '.join(map(str, unknown))} is not a GenerateConfig field")
    try:
        GenerateConfig.model_validate(values)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise SweepError(f"--generate-config {path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    return values


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


def inspect_eval_command(task_args: Mapping[str, Any], models: Sequence[str], settings: EvalSettings) -> str:
    """The `inspect eval` command that runs the same task (one condition) on its own: a model's own -M args are
    shown when one model is given."""
    model_args = settings.model_args.get(models[0], {}) if len(models) == 1 else {}
    parts = [f"inspect eval {TASK} --model {','.join(models)}"]
    parts += [f"-T {key}={_arg_text(value)}" for key, value in task_args.items()]
    parts += [f"-M {key}={_arg_text(value)}" for key, value in model_args.items()]
    parts += [f"--{key.replace('_', '-')} {_arg_text(value)}" for key, value in settings.generate.items()
              if key in GENERATE_OPTIONS]  # fmt: skip
    parts += [f"--{key.replace('_', '-')} {value}" for key, value in settings.limits().items()]
    return " ".join(parts)


def format_sweep(sweep: Sweep, settings: EvalSettings | None = None) -> str:
    """What `vendomini run --dry-run` prints: the sweep, then each shard's log dir and tasks."""
    settings = settings or EvalSettings()
    shards = sweep.shards()
    conditions = f"{len(sweep.conditions)}" + (
        f" (first {len(sweep.conditions)} of {sweep.total_conditions})"
        if len(sweep.conditions) < sweep.total_conditions
        else ""
    )
    layout = "" if sweep.workers == 1 else f"  ({sweep.workers} shards, one process each)"
    rows = [
        ("experiment", f"{sweep.experiment}  ({sweep.source})"),
        ("task", TASK),
        ("models", ", ".join(sweep.models)),
        ("conditions", conditions),
        ("replications", str(sweep.replications)),
        ("max_steps", ", ".join(map(str, sweep.max_steps))),
        ("tasks", f"{sweep.task_count}  ({len(sweep.conditions)} conditions x {len(sweep.models)} models), "
                  f"{sweep.task_count * sweep.replications} samples"),
        ("log dir", sweep.log_dir + layout),
    ]  # fmt: skip
    rows += [(f"-M ({model})", " ".join(f"{k}={_arg_text(v)}" for k, v in args.items()))
             for model, args in settings.model_args.items() if args]  # fmt: skip
    if settings.generate:
        rows.append(("generate", " ".join(f"{k}={_arg_text(v)}" for k, v in settings.generate.items())))
    if settings.limits():
        rows.append(("limits", " ".join(f"{k}={v}" for k, v in settings.limits().items())))
    if settings.ceilings.active:
        rows.append(("ceilings", " ".join(f"{k}={v}" for k, v in settings.ceilings.model_dump().items()
                                          if v is not None)))  # fmt: skip
    if settings.prices:
        rows.append(("prices", ", ".join(sorted(settings.prices))))
    width = max(len(key) for key, _ in rows)
    lines = [f"{key:<{width}}  {value}" for key, value in rows]
    for shard in shards:
        lines.append("")
        lines.append(
            f"{shard.name}: {len(shard.conditions)} conditions x {len(shard.models)} models = "
            f"{len(shard.expected)} tasks -> {shard.log_dir}"
        )
        # one `inspect eval` runs the task on every model, as eval_set does
        lines.extend(f"  {c.index:>3}  {inspect_eval_command(c.task_args, shard.models, settings)}"
                     for c in shard.conditions)  # fmt: skip
    return "\n".join(lines)


def _arg_text(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text if re.fullmatch(r"[A-Za-z0-9_.+/:-]+", text) else json.dumps(text)
