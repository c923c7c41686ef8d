"""The Ray backend of `vendomini run --backend ray [--address ADDR]`: a sweep's shards as Ray tasks.

Each `Shard` becomes one Ray task (one CPU, no automatic retry). The task runs on a worker node exactly what a
local worker runs: the shard process `python -m vendomini_eval.sweep.shard` (`local.start_shard_process`), fed
the same `ShardJob` JSON, and returns its `ShardResult`; the process ends with its Ray task, however that ends.
Samples are not Ray tasks: one Inspect process per shard runs them, as on one machine. The task starts a process
rather than calling `run_shard` itself because Ray reuses its worker processes across tasks while Inspect keeps
process-wide state (loaded models, registry, display, signal handlers); a fresh process per shard is what the
local backend runs and can be stopped with a signal.

The cluster's nodes need vendomini-eval installed as on the driver, and the log dir must be storage every
node sees (a shared file system, or an `s3://` URL): eval_set resumes from it, and a shard that ends without
a report is read back from it. A relative log dir is made absolute on the driver. Ray is imported only here,
and only when a sweep runs on it (`pip install 'vendomini-eval[ray]'`).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vendomini_eval.sweep.local import POLL_S, STOP_GRACE_S, Interrupted, start_shard_process, stop_processes
from vendomini_eval.sweep.plan import EvalSettings, Shard, ShardJob, SweepError
from vendomini_eval.sweep.shard import ShardResult, collect_status

RAY_EXTRA = "pip install 'vendomini-eval[ray]'"
TASK_FAILED_EXIT = 1
"""Exit status reported for a shard whose Ray task failed without a shard process status (worker lost, ...)."""


def import_ray() -> Any:
    """The `ray` module, or SweepError naming the extra that installs it."""
    try:
        import ray
    except ImportError as error:
        raise SweepError(f"--backend ray needs Ray, which is not installed ({error}): {RAY_EXTRA}") from None
    return ray


def run_shards(shards: Sequence[Shard], settings: EvalSettings, address: str | None) -> list[ShardResult]:
    """Run every shard as a Ray task at once and wait for all; stop them on SIGINT/SIGTERM.

    Connects to the cluster at `address` ("auto": the one this node belongs to; None: Ray's default, i.e.
    RAY_ADDRESS, else the cluster last started on this machine, else a new local Ray), unless this process is
    already connected. Raises Interrupted after a signal, once the cancelled tasks have stopped their
    shard processes."""
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # compute nodes are offline: no usage report
    connected_here = not ray.is_initialized()
    if connected_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise SweepError(
                f"--backend ray: cannot connect to Ray at {address or 'the default address'}: {error}"
            ) from None
    stop: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_shard_process)
        pending: dict[Any, int] = {}
        starts: list[float] = []
        for index, shard in enumerate(shards):
            job = ShardJob(shard=_absolute(shard), settings=settings)
            pending[task.remote(job.model_dump_json())] = index
            starts.append(time.monotonic())
            print(f"[{shard.name}] submitted to Ray: {len(shard.expected)} tasks -> {job.shard.log_dir}", flush=True)
        results: dict[int, ShardResult] = {}
        while pending and not stop:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in done:
                index = pending.pop(ref)
                results[index] = _shard_result(ray, ref, shards[index], time.monotonic() - starts[index])
                print(f"[{shards[index].name}] finished: exit {results[index].exit_code} after "
                      f"{results[index].seconds:.1f} s", flush=True)  # fmt: skip
        if stop:
            for ref in pending:  # a KeyboardInterrupt in the task, which stops its shard process first
                ray.cancel(ref)
            if pending:
                ray.wait(list(pending), num_returns=len(pending), timeout=STOP_GRACE_S + 10)
            raise Interrupted(stop[0])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if connected_here:
            ray.shutdown()
    return [results[index] for index in range(len(shards))]


def run_shard_process(job_json: str) -> str:
    """The Ray task: run one shard in its own shard process on this node; its ShardResult as JSON.

    Waits by polling so that Ray's cancellation (a KeyboardInterrupt) arrives while the process runs; the
    process is then stopped like a local shard (SIGTERM, killed after a grace period)."""
    job = ShardJob.model_validate_json(job_json)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vendomini-ray-") as reports:
        report = Path(reports) / f"{job.shard.name}.json"
        process = start_shard_process(job, report)
        print(f"[{job.shard.name}] started (pid {process.pid}) on {os.uname().nodename}", flush=True)
        try:
            while process.poll() is None:
                time.sleep(POLL_S)
        except BaseException:
            stop_processes([process], signal.SIGTERM)
            raise
        result = ShardResult.model_validate_json(report.read_text("utf-8")) if report.is_file() else None
    # No report: the shard failed before it could write one; its logs (on this node's view of the log dir) say
    # which tasks are done.
    result = result or collect_status(job.shard)
    result.exit_code = process.returncode
    result.seconds = time.monotonic() - started
    return result.model_dump_json()


def _shard_result(ray: Any, ref: Any, shard: Shard, seconds: float) -> ShardResult:
    try:
        return ShardResult.model_validate_json(ray.get(ref))
    except ray.exceptions.RayError as error:  # the task itself failed: the logs on shared storage still tell
        print(f"error: [{shard.name}] Ray task failed: {error}", file=sys.stderr, flush=True)
        result = collect_status(_absolute(shard))
        result.exit_code, result.seconds = TASK_FAILED_EXIT, seconds
        return result


def _absolute(shard: Shard) -> Shard:
    """The shard with its log dir made absolute, so a worker whose working directory differs writes the same
    place (a URL is kept as it is)."""
    if "://" in shard.log_dir or os.path.isabs(shard.log_dir):
        return shard
    return shard.model_copy(update={"log_dir": os.path.abspath(shard.log_dir)})
