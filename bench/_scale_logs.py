"""Logs at phase scale for bench/analysis_scale.py: episodes of the direct runner, written by Inspect's log writer.

Each condition is the real task of `vendomini run` (`tasks._build.condition_task`: the same samples, sample and task
metadata, scorers) on the scripted model's name and arguments. Its samples run on the core's direct runner
(`runner.run_policy`) instead of one model turn per step, seeded as the scripted model seeds its policy
(`providers.scripted.policy_seed`), so every step equals that of `--model vendomini/heuristic`. Each sample keeps
what `vendomini_agent` stores (the EpisodeRecord: condition, seed, outcome, the core's summary and compact trace),
is scored by the real scorers, and the log (header from a real `eval` of the same solver on a one-step task;
results recomputed by Inspect from the scores) is written by `inspect_ai.log.write_eval_log`. The samples have no
messages or events: `vendomini analyze` reads neither. tests/test_scale_logs.py checks that such a log gives the
analysis rows of `inspect eval`. A 1,000-step run costs about 0.25 s here, about 10 s through the scripted model
and 0.8 s through `eval` with the `direct_runner` solver (Inspect's per-sample logging of the events).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from inspect_ai import Task, eval, task_with
from inspect_ai.log import (
    EvalDataset,
    EvalLog,
    EvalResults,
    EvalSample,
    EvalStats,
    read_eval_log,
    recompute_metrics,
    write_eval_log,
)
from inspect_ai.model import ModelName
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import store_as

from vendomini_eval.condition import Condition
from vendomini_eval.experiments import load_experiment, task_name
from vendomini_eval.providers.scripted import policy_seed
from vendomini_eval.runner import run_policy
from vendomini_eval.solvers import EpisodeRecord, system_prompt
from vendomini_eval.tasks._build import condition_task

MODEL = "vendomini/heuristic"


@dataclass(frozen=True)
class Family:
    """One model (the scripted heuristic, with a fault or not) over the conditions of an experiment."""

    subdir: str
    replications: int
    model_args: dict[str, Any] = field(default_factory=dict)
    """The scripted model's arguments: fault, onset, seed (`providers.scripted.MODEL_ARGS`)."""


def run_episode(
    record: EpisodeRecord,
    metadata: dict[str, Any],
    user_text: str,
    fault: str | None = None,
    onset: int | None = None,
    seed: int = 0,
) -> None:
    """Run the sample's Episode with the heuristic (with `fault` from `onset`), seeded as the scripted model
    `vendomini/heuristic` with these model arguments seeds it, and keep what `vendomini_agent` keeps in `record`."""
    condition = Condition.model_validate(metadata["condition"])
    run_seed = int(metadata["seed"])
    agent_seed = policy_seed(seed, system_prompt(condition), user_text)
    run = run_policy(condition, run_seed, "heuristic", fault=fault, onset=onset, policy_seed=agent_seed)
    episode = run.episode
    record.condition, record.seed = condition.model_dump(), run_seed
    record.outcome = "crashed" if episode.crash else "terminated" if episode.state.terminated else "censored"
    record.summary = run.summary.model_dump(mode="json")
    record.trace = {"columns": episode.trace.columns(), "signals": episode.trace.signals}


@solver
def direct_runner(fault: str | None = None, onset: int | None = None, seed: int = 0) -> Solver:
    """`run_episode` as a solver (the header template's eval)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        run_episode(store_as(EpisodeRecord), state.metadata, state.input_text, fault, onset, seed)
        state.completed = True
        return state

    return solve


def template(config: str, model_args: dict[str, Any]) -> EvalLog:
    """The header of a real `eval` of the direct runner on a one-step, one-sample task of `config`: the spec
    (scorers, metrics, config, packages, model and its arguments) and the plan every log of the family shares."""
    task = condition_task(config, condition=0, replications=1, max_steps=1)
    task = task_with(task, solver=direct_runner(**model_args))
    with tempfile.TemporaryDirectory() as scratch:  # not among the logs analysed
        [log] = eval(task, model=MODEL, model_args=model_args, log_dir=scratch, display="none")
        if log.status != "success":
            raise RuntimeError(f"template eval failed: {log.error}")
        return read_eval_log(log.location, header_only=True)


async def _sample(task: Task, index: int, model_args: dict[str, Any], scorer_names: list[str]) -> EvalSample:
    sample = task.dataset[index]
    assert isinstance(sample.input, str) and sample.id is not None
    started, clock = _now(), time.perf_counter()
    state = TaskState(ModelName(MODEL), sample.id, 1, sample.input, [], metadata=dict(sample.metadata or {}))
    run_episode(state.store_as(EpisodeRecord), state.metadata, sample.input, **model_args)
    state.completed = True
    scores = {name: await scorer(state, state.target) for name, scorer in zip(scorer_names, task.scorer or [],
                                                                          strict=True)}  # fmt: skip
    seconds = time.perf_counter() - clock
    return EvalSample(id=sample.id, epoch=1, input=sample.input, target="", metadata=state.metadata,
                      store=dict(state.store.items()), scores=scores, started_at=started, completed_at=_now(),
                      total_time=round(seconds, 3), working_time=round(seconds, 3))  # fmt: skip


def write_logs(log_dir: Path, config: str, indices: list[int], replications: int, max_steps: int | None,
               model_args: dict[str, Any], header: EvalLog | None = None) -> int:  # fmt: skip
    """Run these conditions and write one log each, `LOG_DIR/<task>.eval` (whole or not at all); returns the
    runs written. `header`: the family's `template` (made here when not given)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    header = header or template(config, model_args)
    names = [scorer.name for scorer in header.eval.scorers or []]
    written = 0
    for i in indices:
        task = condition_task(config, condition=i, replications=replications, max_steps=max_steps)
        started = _now()
        samples = [asyncio.run(_sample(task, k, model_args, names)) for k in range(len(task.dataset))]
        spec = header.eval.model_copy(update={
            "eval_id": _uuid(), "run_id": _uuid(), "created": started, "task": task.name, "task_id": _uuid(),
            "task_display_name": task.name, "task_version": task.version, "metadata": task.metadata,
            "dataset": EvalDataset(name=task.dataset.name, samples=len(samples), sample_ids=[s.id for s in samples],
                                   shuffled=False)})  # fmt: skip
        log = EvalLog(status="success", eval=spec, plan=header.plan, samples=samples,
                      results=EvalResults(total_samples=len(samples), completed_samples=len(samples)),
                      stats=EvalStats(started_at=started, completed_at=_now()))  # fmt: skip
        recompute_metrics(log)  # Inspect's metrics over the real scores, as at the end of an eval
        path = log_dir / f"{task.name}.eval"
        partial = path.with_suffix(".partial")
        write_eval_log(log, str(partial), format="eval")
        os.replace(partial, path)  # a killed run leaves no log that looks finished
        written += len(samples)
    return written


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _uuid() -> str:
    return uuid.uuid4().hex[:22]


def finished_tasks(log_dir: Path) -> set[str]:
    """Tasks with a finished log in `log_dir`: a rerun skips them."""
    done = set()
    for path in sorted(log_dir.glob("*.eval")) if log_dir.is_dir() else []:
        try:
            header = read_eval_log(str(path), header_only=True)
        except Exception:  # a log cut short by a killed run: its task runs again
            continue
        if header.status == "success":
            done.add(header.eval.task)
    return done


def _job(job: tuple[Path, str, list[int], int, int | None, dict[str, Any], EvalLog]) -> int:
    return write_logs(*job)


def generate(log_dir: Path, config: str, families: list[Family], max_steps: int | None = None,
             conditions: int | None = None, workers: int = os.cpu_count() or 1,
             chunk_runs: int = 150) -> float:  # fmt: skip
    """Log each family over the first `conditions` conditions of `config` (default: all) into LOGDIR/<subdir>,
    skipping those already logged; `workers` processes, about `chunk_runs` runs per job. Returns seconds."""
    experiment = load_experiment(config)
    axes = list(experiment.grid)
    names = [task_name(experiment.name, c, axes) for c in experiment.conditions[:conditions]]
    jobs = []
    for family in families:
        out = log_dir / family.subdir
        for partial in out.glob("*.partial"):  # left by a killed run
            partial.unlink()
        done = finished_tasks(out)
        todo = [i for i, name in enumerate(names) if name not in done]
        if not todo:
            continue
        chunk, header = max(1, chunk_runs // family.replications), template(config, family.model_args)
        jobs += [(out, config, todo[k : k + chunk], family.replications, max_steps, family.model_args, header)
                 for k in range(0, len(todo), chunk)]  # fmt: skip
    start = time.perf_counter()
    if jobs:
        print(f"generating {len(jobs)} chunks of about {chunk_runs} runs on {workers} processes", flush=True)
        # spawn: a fresh process per worker, none inheriting Inspect's state from this one
        with get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for k, runs in enumerate(pool.imap_unordered(_job, jobs), 1):
                print(f"  chunk {k}/{len(jobs)}: {runs} runs, {time.perf_counter() - start:.0f} s", flush=True)
    return time.perf_counter() - start
