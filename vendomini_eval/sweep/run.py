"""Running a planned sweep on a backend (local processes or a Ray cluster), one sweep per log dir at a time,
and the end-of-run report. Every backend runs the same `Shard`s through `run_shards(shards, settings)`;
SLURM (`vendomini_eval.sweep.slurm`) submits them as an array job instead of waiting for them. A model served
with llama.cpp gets its server on this machine for the length of the sweep (`sweep.server`)."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from vendomini_eval.budget import FAIL_ON_BUDGET_EXIT
from vendomini_eval.sweep import budget, local, server
from vendomini_eval.sweep.plan import SHARD_DISPLAYS, EvalSettings, Sweep, SweepError
from vendomini_eval.sweep.server import LlamaCppOptions, ServerSpec
from vendomini_eval.sweep.shard import ShardResult, collect_status

Backend = Literal["local", "ray"]
"""Where the shards run: processes on this machine, or Ray tasks on a Ray cluster (`sweep.ray_cluster`)."""
LOCK_FILE = ".vendomini-sweep.lock"
SERVER_OUTPUT = "model-server.log"
"""The llama.cpp server's output, in the sweep's log dir."""
SHARD_DIR = re.compile(r"^shard-(\d+)-of-(\d+)$")


class SweepInterrupted(RuntimeError):
    """A signal stopped the sweep (its shards stopped too); `status` is what its logs hold."""

    def __init__(self, signum: int, status: list[ShardResult]) -> None:
        self.signum = signum
        self.status = status
        complete = sum(len(r.complete) for r in status)
        total = sum(len(r.shard.expected) for r in status)
        super().__init__(
            f"interrupted by {signal.Signals(signum).name}: {complete}/{total} tasks complete, {total - complete} "
            "not (finished samples of those are kept); rerun the same command to resume"
        )


class SweepResult(BaseModel):
    sweep: Sweep
    shards: list[ShardResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(shard.ok for shard in self.shards)

    @property
    def stopped_by_budget(self) -> bool:
        """A sweep ceiling, and nothing else, left tasks unfinished."""
        stopped = [shard for shard in self.shards if not shard.ok]
        return bool(stopped) and all(shard.stopped_by_budget and shard.exit_code in (None, 0, FAIL_ON_BUDGET_EXIT)
                                     for shard in stopped)  # fmt: skip

    @property
    def complete(self) -> int:
        return sum(len(shard.complete) for shard in self.shards)


def model_server(sweep: Sweep, llamacpp: LlamaCppOptions | None = None) -> ServerSpec | None:
    """The llama.cpp server the sweep needs on this machine, checked (SweepError names the option), or None.
    vLLM models are left to Inspect's vllm provider, which starts its own server."""
    served = [model for model in sweep.models if server.kind_of(model) == "llama.cpp"]
    if len(served) > 1:  # the providers read one base URL from the environment
        raise SweepError(f"--model: one llama.cpp model per run ({', '.join(served)}); run the others separately")
    return server.llamacpp_spec(served[0], llamacpp or LlamaCppOptions()) if served else None


def run_sweep(
    sweep: Sweep,
    settings: EvalSettings | None = None,
    backend: Backend = "local",
    address: str | None = None,
    llamacpp: LlamaCppOptions | None = None,
) -> SweepResult:
    """Run (or resume) a sweep on `backend`; with ray, each shard is a Ray task on the cluster at `address`.
    A llama.cpp model is served on this machine (`llamacpp`: how) while the shards run in processes of their
    own, the only ones given its URL and key.

    Raises SweepError when another live sweep holds the log dir, or it holds a run with another shard layout
    (mixing would duplicate samples); SweepInterrupted when a signal stopped the sweep."""
    settings = settings or EvalSettings()
    spec = model_server(sweep, llamacpp)
    if spec is not None and backend != "local":
        raise SweepError(f"--backend {backend}: {spec.alias} is served with llama.cpp on this machine; use --backend "
                         "local (or `vendomini slurm submit` for a cluster)")  # fmt: skip
    if spec is not None:
        model = next(m for m in sweep.models if server.kind_of(m) == "llama.cpp")
        settings = server.llamacpp_settings(settings, model, llamacpp or LlamaCppOptions())
    if address is not None and backend != "ray":
        raise SweepError("--address is the Ray cluster's address: it goes with --backend ray")
    sharers = "Ray tasks" if backend == "ray" else f"{sweep.workers} processes" if sweep.workers > 1 else None
    if sharers and settings.display not in SHARD_DISPLAYS:  # every shard writes to this terminal
        raise SweepError(f"display {settings.display!r} cannot be shared by {sharers}; use one of "
                         f"{', '.join(SHARD_DISPLAYS)}")  # fmt: skip
    if backend == "ray":
        from vendomini_eval.sweep import ray_cluster

        ray_cluster.import_ray()  # a missing extra is named before anything is written
    check_log_dir_layout(sweep.log_dir, sweep.workers)
    started = time.monotonic()
    shards = sweep.shards()
    with sweep_lock(sweep.log_dir) as lock_fd, contextlib.ExitStack() as stack:
        if settings.ceilings.active:  # after the lock: the ledger starts from logs no other sweep is writing
            ledger = budget.start_ledger(sweep.log_dir, settings.ceilings)
            ledger.close()
            settings = settings.model_copy(update={"ledger": str(ledger.path)})
        elif "://" not in sweep.log_dir:
            budget.forget_ceilings(sweep.log_dir)
        try:
            environment = None
            if spec is not None:  # after the lock: a second sweep on the log dir starts no server
                output = Path(sweep.log_dir) / SERVER_OUTPUT
                environment = stack.enter_context(server.serve(spec, log=_log, output=output))
            if backend == "ray":
                results = ray_cluster.run_shards(shards, settings, address)
            else:
                results = local.run_shards(shards, settings, keep_fds=[lock_fd] if lock_fd is not None else [],
                                           environment=environment)  # fmt: skip
        except (local.Interrupted, server.Stopped) as interrupted:
            stack.close()  # the server is stopped before the logs are read
            raise SweepInterrupted(interrupted.signum, [collect_status(shard) for shard in shards]) from None
        except server.ServerFailed as error:
            raise SweepError(f"{error} (its output: {Path(sweep.log_dir) / SERVER_OUTPUT})") from None
    return SweepResult(sweep=sweep, shards=results, seconds=time.monotonic() - started)


@contextlib.contextmanager
def sweep_lock(log_dir: str) -> Iterator[int | None]:
    """Hold the log dir for one sweep: an exclusive lock on LOGDIR/.vendomini-sweep.lock, which names its
    holder (pid, host, start). The kernel releases it when the holder and the shard processes that inherited
    it have all ended, however they ended, so a lock left behind by a killed sweep is simply taken over.
    Yields the lock's file descriptor (None for a URL log dir, which cannot be locked)."""
    if "://" in log_dir:
        yield None
        return
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    path = Path(log_dir) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepError(f"{log_dir} is in use by a live sweep ({_holder(path)}); wait for it to end or stop "
                             "it, or use another --log-dir") from None  # fmt: skip
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield fd
    finally:
        os.close(fd)


def _log(message: str) -> None:
    print(f"vendomini: {message}", file=sys.stderr, flush=True)


def _holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text("utf-8"))
        return f"pid {holder['pid']} on {holder['host']}, since {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"see {path}"


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
        raise SweepError(
            f"{log_dir} holds a sweep run with --workers {', '.join(map(str, other))} "
            f"(shard-*-of-{other[0]}); rerun with that --workers to resume it, or use another --log-dir"
        )
    if workers > 1 and own_logs:
        raise SweepError(
            f"{log_dir} holds logs of a sweep run with --workers 1; rerun with --workers 1 to resume it, or use "
            "another --log-dir"
        )


def format_result(result: SweepResult, ceiling: str | None = None) -> str:
    """The end-of-run report: tasks complete per shard, what failed, where the logs are and how to view them.
    `ceiling`: the sweep ceiling that stopped the sweep, if one did."""
    sweep = result.sweep
    budget_stop = ceiling is not None and result.stopped_by_budget
    lines = []
    for shard_result in result.shards:
        shard = shard_result.shard
        status = "ok" if shard_result.ok else "stopped by the sweep budget" if budget_stop else "FAILED"
        exit_text = "" if shard_result.exit_code is None else f", exit {shard_result.exit_code}"
        lines.append(
            f"{shard.name}: {len(shard_result.complete)}/{len(shard.expected)} tasks complete{exit_text} [{status}]"
            f" -> {shard.log_dir}"
        )
        for task_name, model, why in shard_result.failed:
            lines.append(f"  missing {task_name} on {model}: {why}")
    failed_shards = [f"{r.shard.name} (exit {r.exit_code})" for r in result.shards if r.exit_code not in (None, 0)]
    verdict = "complete"
    if budget_stop:
        verdict = f"STOPPED at the sweep ceiling {ceiling}; rerun with a higher ceiling to resume"
    elif ceiling is not None and result.ok:
        verdict = f"complete; the sweep ceiling {ceiling} was reached: the runs then running ended as truncated (limit)"
    elif not result.ok:
        verdict = "INCOMPLETE" + (f"; failed: {', '.join(failed_shards)}, see above" if failed_shards else "")
        verdict += "; rerun the same command to resume"
    lines.append(f"{sweep.experiment}: {result.complete}/{sweep.task_count} tasks in {result.seconds:.1f} s: {verdict}")
    lines.append(f"logs: {sweep.log_dir}")
    lines.append(f"view: inspect view --log-dir {sweep.log_dir}")
    return "\n".join(lines)
