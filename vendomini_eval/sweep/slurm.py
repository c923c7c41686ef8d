"""SLURM backend of the grid runner: `vendomini slurm submit` and `vendomini slurm status`.

A sweep becomes one SLURM array job. Each array task is one `Shard` of the grid: one model and some conditions,
run by `python -m vendomini_eval.sweep.shard` with eval_set into its own log dir, `LOGDIR/<model>/shard-<i>-of-<N>`
(eval_set refuses a dir holding other tasks' logs, so concurrent array tasks never share one). The task reads
its line of a JSON-lines manifest (`ArrayTask`) by SLURM_ARRAY_TASK_ID (`sweep.array_task`: model server, shard,
cleanup); the shell side (offline settings) is `slurm/array_task.sh`, shipped as package data and appended to the
`#SBATCH` header.

A model served on the node is loaded once per array task and serves all of its shard's samples: `vllm/<id>` and
`openai-api/vllm/<id>` by vLLM on GPUs, concurrently (vLLM batches them), so a shard should hold many conditions;
`openai-api/llama-cpp/<name>` by llama.cpp on CPUs (`sweep.server`).
Resubmitting the same command submits only the array tasks whose shard is incomplete; eval_set keeps the
finished samples of a task that was killed or requeued mid-run, which array tasks write to the log one by one.

This module plans without Inspect; only reading logs (status, and which tasks a resubmit needs) imports it.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import posixpath
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from vendomini_eval.sweep import server
from vendomini_eval.sweep.plan import TASK, EvalSettings, Frozen, Shard, ShardJob, Sweep, SweepError, plan_sweep
from vendomini_eval.sweep.run import check_log_dir_layout
from vendomini_eval.sweep.server import LlamaCppOptions, ServerKind, ServerSpec
from vendomini_eval.sweep.shard import ShardResult, collect_status

IN_PROCESS_PREFIX = "hf/"
DEFAULT_MAX_ARRAY_SIZE = 1000
"""A common cluster cap on array size (MaxArraySize); check `scontrol show config | grep MaxArraySize`."""
DEFAULT_TIME = "24:00:00"
SERVED_MAX_CONNECTIONS = 64
"""Concurrent requests to a node-served model: vLLM batches them, so one GPU serves many samples at once."""
GPU_CPUS_PER_TASK = 8
SLURM_DIR = "slurm"
"""Below the sweep's log dir: manifests, sbatch scripts and the array tasks' output."""
SUBMITTED_WITH = "# submitted with: "
TIME_FORMAT = re.compile(r"^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2})$")
MEM_FORMAT = re.compile(r"^\d+[KMGT]?$")
NAME_FORMAT = re.compile(r"^[A-Za-z0-9_.,-]+$")
SBATCH_ARG_FORMAT = re.compile(r"^--[a-z][a-z-]*(=\S.*)?$")
OWN_SBATCH_OPTIONS = ("--job-name", "--output", "--open-mode", "--requeue", "--ntasks", "--cpus-per-task", "--time",
                      "--gres", "--mem", "--partition", "--account", "--qos", "--array")  # fmt: skip


class SlurmResources(Frozen):
    """What each array task asks SLURM for (every task of one submission asks the same)."""

    partition: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int = 1
    mem: str | None = None
    time: str = DEFAULT_TIME
    array_parallelism: int | None = None
    """At most this many array tasks run at once (`--array=...%K`)."""
    account: str | None = None
    qos: str | None = None
    sbatch_args: tuple[str, ...] = ()
    """Further sbatch options, each written as one `#SBATCH` line (e.g. `--constraint=a100`)."""


class ArrayTask(Frozen):
    """One line of the manifest: the shard an array task runs, and the model server it starts for it."""

    index: int
    model: str
    serve: str | None
    """What the task's server loads on its node (`vllm serve <hf id>`, llama.cpp <GGUF path>), or None."""
    server: ServerKind = "vllm"
    serve_args: tuple[str, ...] = ()
    tensor_parallel_size: int = 1
    job: ShardJob

    def server_spec(self) -> ServerSpec | None:
        if self.serve is None:
            return None
        return ServerSpec(kind=self.server, model=self.serve, alias=server.served_name(self.model),
                          args=self.serve_args, tensor_parallel_size=self.tensor_parallel_size)  # fmt: skip


class SlurmPlan(Frozen):
    sweep: Sweep
    shards_per_model: int
    resources: SlurmResources
    tasks: tuple[ArrayTask, ...]
    manifest: str
    script: str

    @property
    def name(self) -> str:
        return Path(self.manifest).stem


def plan_slurm(
    config: str | Path,
    *,
    models: Sequence[str],
    log_dir: str | Path,
    shards: int = 1,
    max_array_size: int = DEFAULT_MAX_ARRAY_SIZE,
    partition: str | None = None,
    gpus_per_task: int | None = None,
    cpus_per_task: int | None = None,
    mem: str | None = None,
    time: str = DEFAULT_TIME,
    array_parallelism: int | None = None,
    account: str | None = None,
    qos: str | None = None,
    sbatch_args: Sequence[str] = (),
    serve_args: str = "",
    llamacpp: LlamaCppOptions | None = None,
    settings: EvalSettings | None = None,
    max_steps: int | None = None,
    replications: int | None = None,
    limit_conditions: int | None = None,
    gates: str | None = None,
) -> SlurmPlan:
    """Plan the array job: each model's conditions dealt round-robin into `shards` shards, one array task each.
    Raises SweepError naming the option on bad input.

    `gpus_per_task` defaults to 1 when a model needs a GPU (`vllm/` or `hf/`), else 0; a vLLM model runs with
    tensor parallelism over all of them. `max_connections` defaults to SERVED_MAX_CONNECTIONS for vLLM models
    and to Inspect's default for the others; a llama.cpp model (`llamacpp`: how it is served; its `extra_args`
    are `serve_args`) runs one request, sample and task at a time unless told otherwise (LLAMACPP_SERIAL).
    `settings` (model args, generation, limits, concurrency) go to every array task's eval_set."""
    for option, value, minimum in (("--shards", shards, 1), ("--max-array-size", max_array_size, 1),
                                   ("--gpus-per-task", gpus_per_task, 0), ("--cpus-per-task", cpus_per_task, 1),
                                   ("--array-parallelism", array_parallelism, 1)):  # fmt: skip
        if value is not None and value < minimum:
            raise SweepError(f"{option} must be an integer >= {minimum}, got {value}")
    if not models:
        raise SweepError("--model: give at least one model (repeat --model for more)")
    for option, value, pattern in (("--time", time, TIME_FORMAT), ("--mem", mem, MEM_FORMAT),
                                   ("--partition", partition, NAME_FORMAT), ("--account", account, NAME_FORMAT),
                                   ("--qos", qos, NAME_FORMAT)):  # fmt: skip
        if value is not None and not pattern.match(value):
            raise SweepError(f"{option} {value!r} is not a SLURM {option.lstrip('-')} (see `man sbatch`)")
    if "://" in str(log_dir):
        raise SweepError(f"--log-dir {log_dir}: must be a directory on a file system the compute nodes share")
    extra_server_args = server.split_server_args(serve_args)
    for arg in sbatch_args:
        if not SBATCH_ARG_FORMAT.match(arg) or arg.split("=")[0] in OWN_SBATCH_OPTIONS:
            raise SweepError(f"--sbatch-arg {arg!r}: expected one sbatch option --name[=value], not one this command "
                             f"sets itself ({', '.join(OWN_SBATCH_OPTIONS)})")  # fmt: skip
    base_settings = (settings or EvalSettings()).model_copy(update={"display": "log", "log_buffer": 1})
    root = str(Path(log_dir).resolve())  # array tasks run elsewhere: every path absolute
    sweep = plan_sweep(config, models=list(models), log_dir=root, max_steps=max_steps, replications=replications,
                       limit_conditions=limit_conditions, gates=gates)  # fmt: skip
    if shards > len(sweep.conditions):
        raise SweepError(f"--shards {shards} is more than the {len(sweep.conditions)} conditions of a model; use at "
                        f"most {len(sweep.conditions)}")  # fmt: skip
    size = shards * len(sweep.models)
    if size > max_array_size:
        raise SweepError(
            f"--shards {shards} x {len(sweep.models)} models = {size} array tasks, more than --max-array-size "
            f"{max_array_size}; use --shards {max(1, max_array_size // len(sweep.models))} or fewer (more conditions "
            "per shard), or submit the models separately"
        )
    kinds = {model: server.kind_of(model) for model in sweep.models}
    if extra_server_args and {"vllm", "llama.cpp"} <= set(kinds.values()):
        raise SweepError("--serve-args: vLLM and llama.cpp take different arguments; submit their models separately")
    needs_gpu = any(kinds[m] == "vllm" or m.startswith(IN_PROCESS_PREFIX) for m in sweep.models)
    gpus = gpus_per_task if gpus_per_task is not None else int(needs_gpu)
    served = [m for m in sweep.models if kinds[m] == "vllm"]
    if served and gpus < 1:
        raise SweepError(f"--gpus-per-task {gpus}: {served[0]} is served with vLLM on the node and needs a GPU")
    cpus = GPU_CPUS_PER_TASK if gpus else server.LLAMACPP_CPUS_PER_TASK if any(kinds.values()) else 1
    resources = SlurmResources(
        partition=partition, gpus_per_task=gpus, mem=mem, time=time, array_parallelism=array_parallelism,
        account=account, qos=qos, sbatch_args=tuple(sbatch_args),
        cpus_per_task=cpus_per_task if cpus_per_task is not None else cpus,
    )  # fmt: skip
    llamacpp = (llamacpp or LlamaCppOptions()).model_copy(update={"extra_args": extra_server_args})
    specs = {model: server.llamacpp_spec(model, llamacpp) if kind == "llama.cpp"
             else server.vllm_spec(model, extra_server_args, max(1, gpus)) if kind == "vllm" else None
             for model, kind in kinds.items()}  # fmt: skip
    tasks = []
    for model in sweep.models:
        model_dir = posixpath.join(root, model_dir_name(model))
        check_log_dir_layout(model_dir, shards)  # another --shards would run finished conditions again
        spec = specs[model]
        if spec is not None and spec.kind == "llama.cpp":
            settings = server.llamacpp_settings(base_settings, model, llamacpp)
        else:
            connections = base_settings.max_connections or (SERVED_MAX_CONNECTIONS if spec else None)
            settings = base_settings.model_copy(update={"max_connections": connections})
        for k in range(shards):
            shard_dir = posixpath.join(model_dir, f"shard-{k}-of-{shards}")
            shard = Shard(experiment=sweep.experiment, models=(model,), conditions=sweep.conditions[k::shards],
                          log_dir=shard_dir, index=k, count=shards)  # fmt: skip
            tasks.append(
                ArrayTask(
                    index=len(tasks),
                    model=model,
                    serve=spec.model if spec else None,
                    server=spec.kind if spec else "vllm",
                    serve_args=spec.args if spec else (),
                    tensor_parallel_size=max(1, gpus),
                    job=ShardJob(shard=shard, settings=settings),
                )
            )
    # Named by its shards alone: a resubmit with other resources or settings rewrites the same manifest and job.
    digest = hashlib.sha256("\n".join(t.job.shard.model_dump_json() for t in tasks).encode()).hexdigest()[:8]
    stem = posixpath.join(root, SLURM_DIR, f"{sweep.experiment}-{digest}")
    return SlurmPlan(sweep=sweep, shards_per_model=shards, resources=resources, tasks=tuple(tasks),
                     manifest=f"{stem}.jsonl", script=f"{stem}.sbatch")  # fmt: skip


def model_dir_name(model: str) -> str:
    """A model's folder in the sweep's log dir: its Inspect name with `/` as `--` (one level per model)."""
    return model.replace("/", "--")


# ---------------------------------------------------------------------------------------------------------
# Rendering


def array_task_template() -> str:
    """The array task's shell body (`slurm/array_task.sh`, installed as vendomini_eval.slurm_scripts)."""
    try:
        return importlib.resources.files("vendomini_eval.slurm_scripts").joinpath("array_task.sh").read_text("utf-8")
    except ModuleNotFoundError:  # a checkout installed before the package map had slurm/
        return (Path(__file__).resolve().parent.parent / "slurm" / "array_task.sh").read_text("utf-8")


def manifest_text(plan: SlurmPlan) -> str:
    return "".join(task.model_dump_json() + "\n" for task in plan.tasks)


def render_script(plan: SlurmPlan, command: str) -> str:
    """The sbatch script: the `#SBATCH` header, where to find the manifest and Python, then the template.

    Nothing secret is written: API keys reach the tasks through the environment sbatch passes on."""
    resources = plan.resources
    output = posixpath.join(posixpath.dirname(plan.script), f"{plan.name}-%A_%a.out")
    options = [
        f"--job-name={job_name(plan)}",
        f"--output={output}",
        "--open-mode=append",  # a requeued task appends to its output
        "--requeue",  # safe: eval_set keeps finished samples
        "--ntasks=1",
        f"--cpus-per-task={resources.cpus_per_task}",
        f"--time={resources.time}",
    ]
    if resources.gpus_per_task:
        options.append(f"--gres=gpu:{resources.gpus_per_task}")
    if resources.mem:
        options.append(f"--mem={resources.mem}")
    if resources.partition:
        options.append(f"--partition={resources.partition}")
    if resources.account:
        options.append(f"--account={resources.account}")
    if resources.qos:
        options.append(f"--qos={resources.qos}")
    options.extend(resources.sbatch_args)
    body = array_task_template()
    body = body.split("\n", 1)[1] if body.startswith("#!") else body
    lines = ["#!/usr/bin/env bash", *(f"#SBATCH {option}" for option in options), SUBMITTED_WITH + command,
             f"export VENDOMINI_MANIFEST={shlex.quote(plan.manifest)}",
             f"export VENDOMINI_PYTHON=${{VENDOMINI_PYTHON:-{shlex.quote(sys.executable)}}}"]  # fmt: skip
    return "\n".join(lines) + "\n" + body


def job_name(plan: SlurmPlan) -> str:
    return f"vendomini-{plan.name}"


def array_spec(indices: Sequence[int], parallelism: int | None) -> str:
    """`0-3,7,9-11%K`: the array indices as ranges, with the parallelism limit."""
    ranges: list[list[int]] = []
    for index in sorted(indices):
        if ranges and index == ranges[-1][1] + 1:
            ranges[-1][1] = index
        else:
            ranges.append([index, index])
    text = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
    return text + (f"%{parallelism}" if parallelism else "")


def format_plan(plan: SlurmPlan, pending: Sequence[int]) -> str:
    """The plan: the sweep, the array and its resources, then one row per manifest line."""
    sweep, resources = plan.sweep, plan.resources
    samples = len(sweep.conditions) * sweep.replications
    gpus = resources.gpus_per_task
    gpu_text = f"{gpus} GPU{'s' if gpus > 1 else ''} (--gres=gpu:{gpus})" if gpus else "no GPU"
    rows = [
        ("experiment", f"{sweep.experiment}  ({sweep.source}), task {TASK}"),
        ("conditions", f"{len(sweep.conditions)} x {sweep.replications} replications = {samples} samples per model"),
        ("models", ", ".join(sweep.models)),
        ("shards", f"{plan.shards_per_model} per model; array size {len(plan.tasks)} "
                   f"({len(pending)} to submit: --array={array_spec(pending, resources.array_parallelism) or '-'})"),
        ("per task", f"{resources.cpus_per_task} CPUs, {gpu_text}, mem {resources.mem or 'partition default'}, "
                     f"time {resources.time}, partition {resources.partition or 'default'}"),
        ("log dir", sweep.log_dir),
        ("manifest", plan.manifest),
        ("script", plan.script),
    ]  # fmt: skip
    width = max(len(key) for key, _ in rows)
    lines = [f"{key:<{width}}  {value}" for key, value in rows]
    lines.append("")
    lines.append("index  model / shard: conditions, samples; how the model runs")
    for task in plan.tasks:
        shard = task.job.shard
        settings = task.job.settings
        spec = task.server_spec()
        how = (server.describe(spec) if spec
               else "in-process" if task.model.startswith(IN_PROCESS_PREFIX) else "direct")  # fmt: skip
        connections = f", max connections {settings.max_connections}" if settings.max_connections else ""
        mark = "" if task.index in pending else "  (complete)"
        lines.append(f"{task.index:>5}  {task.model} / {shard.name}: {len(shard.conditions)} conditions, "
                     f"{len(shard.conditions) * sweep.replications} samples; {how}{connections}{mark}")  # fmt: skip
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Submitting and status (these read logs: they import Inspect)


def incomplete(plan: SlurmPlan) -> list[int]:
    """Array indices whose shard has a (task, model) pair without a successful log."""
    return [task.index for task in plan.tasks if collect_status(task.job.shard).failed]


def write_files(plan: SlurmPlan, command: str) -> None:
    Path(plan.manifest).parent.mkdir(parents=True, exist_ok=True)
    Path(plan.manifest).write_text(manifest_text(plan), encoding="utf-8")
    Path(plan.script).write_text(render_script(plan, command), encoding="utf-8")


def active_jobs(name: str) -> list[str]:
    """Job ids of this user's pending or running jobs with this name (a resubmit must not run a shard twice)."""
    result = _slurm(["squeue", "--noheader", "--me", f"--name={name}", "--format=%i"])
    return result.split()


def submit(plan: SlurmPlan, indices: Sequence[int]) -> str:
    """sbatch the script for these array indices; the job id."""
    spec = array_spec(indices, plan.resources.array_parallelism)
    return _slurm(["sbatch", "--parsable", f"--array={spec}", plan.script]).split(";")[0].strip()


def _slurm(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    except FileNotFoundError:
        raise SweepError(f"{command[0]} not found: run this on a SLURM login node") from None
    if result.returncode != 0:
        raise SweepError(f"{' '.join(command)} failed (exit {result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def read_manifests(log_dir: str | Path) -> list[tuple[Path, list[ArrayTask]]]:
    """Every manifest of a sweep's log dir, with its array tasks."""
    manifests = sorted((Path(log_dir) / SLURM_DIR).glob("*.jsonl"))
    if not manifests:
        raise SweepError(f"{log_dir}: no SLURM manifest in {Path(log_dir) / SLURM_DIR} (is it the --log-dir of "
                        "`vendomini slurm submit`?)")  # fmt: skip
    return [
        (path, [ArrayTask.model_validate_json(line) for line in path.read_text("utf-8").splitlines() if line.strip()])
        for path in manifests
    ]


def sweep_status(log_dir: str | Path) -> list[tuple[Path, list[tuple[ArrayTask, ShardResult]]]]:
    return [
        (path, [(task, collect_status(task.job.shard)) for task in tasks]) for path, tasks in read_manifests(log_dir)
    ]


def format_status(status: list[tuple[Path, list[tuple[ArrayTask, ShardResult]]]]) -> tuple[str, bool]:
    """Per-shard completion of every submission in the log dir, and whether all are complete."""
    lines = []
    total = complete = 0
    for manifest, results in status:
        script = manifest.with_suffix(".sbatch")
        command = next((line.removeprefix(SUBMITTED_WITH) for line in script.read_text("utf-8").splitlines()
                        if line.startswith(SUBMITTED_WITH)), None) if script.is_file() else None  # fmt: skip
        done = [task.index for task, result in results if not result.failed]
        lines.append(f"{manifest.name}: {len(done)}/{len(results)} array tasks complete")
        for task, result in results:
            shard = task.job.shard
            state = "complete" if not result.failed else "INCOMPLETE"
            lines.append(f"  {task.index:>4}  {task.model} / {shard.name}: {len(result.complete)}/"
                         f"{len(shard.expected)} tasks [{state}] -> {shard.log_dir}")  # fmt: skip
            lines.extend(f"        missing {name}: {why}" for name, _, why in result.failed)
            total += len(shard.expected)
            complete += len(result.complete)
        if len(done) < len(results) and command:
            lines.append(f"  resume (submits only the incomplete array tasks): {command}")
    ok = complete == total
    lines.append(f"{complete}/{total} tasks complete" + ("" if ok else "; INCOMPLETE"))
    return "\n".join(lines), ok
