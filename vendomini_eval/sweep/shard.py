"""Running one shard with Inspect's eval_set, reading back which of its tasks are complete, and the shard
process every backend starts: `python -m vendomini_eval.sweep.shard --spec FILE|- [--report FILE]`.

With `--exit-with-parent` the job is the first line of stdin and the process stops as soon as stdin closes: the
coordinator holds the pipe's other end, so when it dies by any signal (SIGKILL included) its shards die with it
and never keep writing beside a rerun.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from vendomini_eval.budget import BUDGET_REACHED, FAIL_ON_BUDGET_EXIT, Ledger
from vendomini_eval.experiments import ExperimentConfigError
from vendomini_eval.sweep.plan import Shard, ShardJob, SweepError

ORPHAN_EXIT = 143
"""Exit status of a shard whose coordinator went away (as if stopped by SIGTERM)."""


class ShardResult(BaseModel):
    """What a shard's log directory holds after a run: complete and missing tasks, and why they are missing."""

    shard: Shard
    complete: list[tuple[str, str]] = []
    """(task name, model) pairs with a successful log."""
    failed: list[tuple[str, str, str]] = []
    """(task name, model, why) of the missing pairs: the status or error of their latest log, or "no log"."""
    ceiling: str | None = None
    """The sweep ceiling this shard's process found reached (None: none was)."""
    exit_code: int | None = None
    """The shard process's exit status (None when the shard ran in-process)."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and self.exit_code in (None, 0)

    @property
    def stopped_by_budget(self) -> bool:
        """Tasks are missing, each because a sweep ceiling stopped it (nothing else failed)."""
        return bool(self.failed) and all(BUDGET_REACHED in why for _, _, why in self.failed)


def run_shard(job: ShardJob) -> ShardResult:
    """Run (or resume) one shard in this process with eval_set; the result is read back from its logs."""
    from inspect_ai import eval_set
    from inspect_ai._util.error import PrerequisiteError  # Inspect's user-facing refusals; not exported
    from inspect_ai.model import ModelInfo, get_model, set_model_info

    from vendomini_eval.solvers import budget
    from vendomini_eval.sweep.budget import apply_prices, forget_ceilings, start_ledger
    from vendomini_eval.tasks import vendomini

    shard, settings = job.shard, job.settings
    started = time.monotonic()
    for name, length in settings.context_lengths.items():
        set_model_info(name, ModelInfo(context_length=length))
    apply_prices(settings.prices)
    if settings.ceilings.active:  # without a coordinator's ledger (a SLURM array task), the shard keeps its own
        ledger = Ledger(settings.ledger) if settings.ledger else start_ledger(shard.log_dir, settings.ceilings)
        budget.activate(ledger, settings.ceilings)
    elif settings.ledger is None and "://" not in shard.log_dir:
        forget_ceilings(shard.log_dir)
    try:
        tasks = [vendomini(**condition.task_args) for condition in shard.conditions]
        models = [get_model(name, **settings.model_args.get(name, {})) for name in shard.models]
        eval_set(
            tasks,
            model=models,
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
            **settings.limits(),
            **settings.generate,
        )
    except ValueError as error:  # before any task ran: a model Inspect does not know, bad model args, ...
        raise SweepError(f"{shard.log_dir}: {error}") from None
    except PrerequisiteError as error:  # a log dir holding other tasks' logs, a bad task argument, ...
        raise SweepError(f"{shard.log_dir}: {_plain(str(error.message))}") from None
    finally:
        active = budget.sweep_budget()
        ceiling = None if active is None else active.hit
        budget.deactivate()
    result = collect_status(shard)
    result.ceiling = ceiling
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


def _plain(message: str) -> str:
    """A rich-markup message as plain text."""
    return re.sub(r"\[/?[a-z ]+\]", "", message)


def _exit_when_stdin_closes(name: str) -> None:
    """Stop this process when stdin reaches its end: the coordinator that holds the other end is gone."""
    stdin = sys.stdin.fileno()

    def watch() -> None:
        # The raw descriptor, not sys.stdin: a daemon thread blocked in a buffered read aborts the interpreter
        # at its normal exit.
        while os.read(stdin, 65536):
            pass
        print(f"[{name}] the sweep's coordinator is gone: stopping", file=sys.stderr, flush=True)
        os._exit(ORPHAN_EXIT)  # at once: the finished samples are in the log, the rerun redoes the rest

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one shard from a JSON job. Exit 0 when every task is complete, 1 when some are not, 2 when the
    shard could not run; a stop by a sweep ceiling exits 0 (FAIL_ON_BUDGET_EXIT with `fail_on_budget`)."""
    parser = argparse.ArgumentParser(prog="python -m vendomini_eval.sweep.shard", description=main.__doc__)
    parser.add_argument("--spec", required=True, help="JSON file of a ShardJob, or - for stdin")
    parser.add_argument("--report", help="write the ShardResult (JSON) to this file")
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="the job is stdin's first line; stop when stdin closes"
    )
    args = parser.parse_args(argv)
    if args.exit_with_parent:
        text = sys.stdin.buffer.readline().decode("utf-8")
    else:
        text = sys.stdin.read() if args.spec == "-" else Path(args.spec).read_text(encoding="utf-8")
    job = ShardJob.model_validate_json(text)
    if args.exit_with_parent:
        _exit_when_stdin_closes(job.shard.name)
    try:
        result = run_shard(job)
    except (SweepError, ExperimentConfigError) as error:
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
    if result.ceiling is not None and (result.ok or result.stopped_by_budget):
        return FAIL_ON_BUDGET_EXIT if job.settings.fail_on_budget else 0
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
