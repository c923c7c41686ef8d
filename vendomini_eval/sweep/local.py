"""The local backend: a sweep's shards in this process (one shard) or one process each on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vendomini_eval.sweep.plan import EvalSettings, Shard, ShardJob
from vendomini_eval.sweep.shard import ShardResult, collect_status, run_shard

STOP_GRACE_S = 30.0
"""How long shard processes get to stop after a signal is forwarded, before they are killed."""
POLL_S = 0.2
SHARD_COMMAND = [sys.executable, "-m", "vendomini_eval.sweep.shard", "--spec", "-", "--exit-with-parent"]


class Interrupted(Exception):
    """A signal stopped the sweep; its shard processes are stopped."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def run_shards(
    shards: Sequence[Shard],
    settings: EvalSettings,
    keep_fds: Sequence[int] = (),
    environment: Mapping[str, str] | None = None,
) -> list[ShardResult]:
    """Run every shard: one in this process, several in one process each, all at once. Raises Interrupted
    after SIGINT/SIGTERM once the shard processes are stopped. `keep_fds` are inherited by the shard
    processes (the sweep's lock, so that it is held until the last of them has ended). `environment` is added
    to the shard processes' only (a model server's URL and key): with it, even one shard runs in a process."""
    if len(shards) == 1 and environment is None:
        return [_run_in_process(ShardJob(shard=shards[0], settings=settings))]
    return _run_shard_processes(shards, settings, keep_fds, environment or {})


def _run_in_process(job: ShardJob) -> ShardResult:
    """Run the shard here; SIGTERM and SIGHUP stop it as Ctrl-C does (Inspect cancels, the log is closed)."""

    received: list[int] = []

    def interrupt(signum: int, _frame: Any) -> None:
        received.append(signum)
        raise KeyboardInterrupt  # what Inspect cancels a run on

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    started = time.monotonic()
    try:
        result = run_shard(job)
    except KeyboardInterrupt:
        raise Interrupted(received[0] if received else signal.SIGINT) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:  # Inspect cancelled the run and returned: the sweep was still stopped
        raise Interrupted(received[0])
    result.seconds = time.monotonic() - started
    return result


def start_shard_process(
    job: ShardJob,
    report: Path | None = None,
    keep_fds: Sequence[int] = (),
    environment: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a shard process on `job` (with `environment` added to this one's); it writes its ShardResult to
    `report` and exits when this process (which keeps its stdin open) is gone."""
    process = subprocess.Popen(
        [*SHARD_COMMAND, *(["--report", str(report)] if report is not None else [])],
        stdin=subprocess.PIPE,
        start_new_session=True,  # a terminal's Ctrl-C reaches the coordinator only, which forwards it once
        pass_fds=tuple(keep_fds),
        env={**os.environ, **environment} if environment else None,
    )
    assert process.stdin is not None
    process.stdin.write(job.model_dump_json().encode() + b"\n")
    process.stdin.flush()  # and kept open: its end is the shard's signal to stop
    return process


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], signum: int = signal.SIGTERM) -> None:
    """Send `signum` to the running processes, wait STOP_GRACE_S for them, then kill what is left."""
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


def _run_shard_processes(
    shards: Sequence[Shard], settings: EvalSettings, keep_fds: Sequence[int], environment: Mapping[str, str]
) -> list[ShardResult]:
    """Each process writes its ShardResult to a JSON file, so this process never imports Inspect (its import
    would delay the start of the shards); only a shard that exits without a report has its logs read here."""
    processes: list[subprocess.Popen[bytes]] = []
    starts: list[float] = []
    ends: dict[int, float] = {}
    stop: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with tempfile.TemporaryDirectory(prefix="vendomini-shards-") as reports:
        report_paths = [Path(reports) / f"{shard.name}.json" for shard in shards]
        try:
            for shard, report in zip(shards, report_paths, strict=True):
                job = ShardJob(shard=shard, settings=settings)
                processes.append(start_shard_process(job, report, keep_fds, environment))
                starts.append(time.monotonic())
                print(f"[{shard.name}] started (pid {processes[-1].pid}): {len(shard.expected)} tasks -> "
                      f"{shard.log_dir}", flush=True)  # fmt: skip
            while len(ends) < len(processes) and not stop:
                for i, process in enumerate(processes):
                    if i not in ends and process.poll() is not None:
                        ends[i] = time.monotonic()
                        print(f"[{shards[i].name}] finished: exit {process.returncode} after "
                              f"{ends[i] - starts[i]:.1f} s", flush=True)  # fmt: skip
                time.sleep(POLL_S)
        finally:
            # SIGTERM, whatever stopped us: a shard then ends at once and quietly (Inspect's own interrupt
            # handling would print a closing status that does not know the sweep was stopped).
            stop_processes(processes)
            for process in processes:
                if process.stdin is not None:
                    process.stdin.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if stop:
            raise Interrupted(stop[0])
        results = []
        for i, (shard, report) in enumerate(zip(shards, report_paths, strict=True)):
            result = ShardResult.model_validate_json(report.read_text("utf-8")) if report.is_file() else None
            result = result or collect_status(shard)
            result.exit_code = processes[i].returncode
            result.seconds = ends[i] - starts[i]
            results.append(result)
    return results
