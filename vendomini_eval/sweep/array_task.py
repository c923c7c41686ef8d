"""One SLURM array task (`python -m vendomini_eval.sweep.array_task`, which `slurm/array_task.sh` runs): the shard
on line SLURM_ARRAY_TASK_ID + 1 of the manifest VENDOMINI_MANIFEST, with its model server started on the node
first when the model needs one (`server.serve`: vLLM or llama.cpp), and stopped on any exit.

The shard runs in a child process that alone gets the server's URL and key. Exit status: 0 when every task of
the shard has a successful log (or a spend ceiling stopped it), 1 when some have not, 2 when the shard could not
run, 3 when the model server did not come up, 4 when a ceiling stopped it with --fail-on-budget, 128 + N after
signal N (SIGTERM: scancel, the time limit, a requeue).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from vendomini_eval.sweep import local, server
from vendomini_eval.sweep.slurm import ArrayTask

NO_SHARD = 2
NO_SERVER = 3


def main() -> int:
    index = int(os.environ["SLURM_ARRAY_TASK_ID"])
    manifest = Path(os.environ["VENDOMINI_MANIFEST"])

    def log(message: str) -> None:
        print(f"vendomini[{index}]: {message}", file=sys.stderr, flush=True)

    lines = manifest.read_text("utf-8").splitlines()
    if index >= len(lines) or not lines[index].strip():
        log(f"no line {index + 1} in {manifest}")
        return NO_SHARD
    task = ArrayTask.model_validate_json(lines[index])
    log(f"{task.model}: {task.job.shard.log_dir}")
    spec = task.server_spec()
    try:
        if spec is None:
            return _run_shard(task, {}, log)
        with server.serve(spec, log=log) as environment:
            return _run_shard(task, environment, log)
    except server.ServerFailed as error:
        log(str(error))
        return NO_SERVER
    except server.Stopped as stopped:
        return 128 + stopped.signum


def _run_shard(task: ArrayTask, environment: dict[str, str], log: Callable[[str], None]) -> int:
    """The shard in a child process (it stops when this process is gone); its exit status."""
    with server.signals_raise():  # a signal stops the shard here, then the server in `serve`
        process = local.start_shard_process(task.job, environment=environment)
        log(f"shard pid {process.pid}")
        try:
            status = process.wait()
            return status if status >= 0 else 128 - status  # killed by a signal: the shell's 128 + N
        finally:
            local.stop_processes([process])


if __name__ == "__main__":
    sys.exit(main())
