"""The sweep's ceilings as the solver meets them: every sample of this process shares one `SweepBudget`.

Before each model call the solver asks `exhausted()`. A sample that has made calls then ends as `limit`
(`budget`), scored as it stands: truncated, never a crash. A sample that has made none has not started: it
waits until the running samples of this process have ended, then raises `BudgetReached`. That fails its task
(`fail_on_error`), so the samples not yet run stay unrun in a resumable log, and a rerun with a higher ceiling
runs them. After each call the solver adds its usage to the ledger that all the sweep's processes share.
"""

from __future__ import annotations

import logging

import anyio
from inspect_ai.model import ModelOutput

from vendomini_eval.budget import BUDGET_REACHED, Ceilings, Ledger, reached

LIMIT = "budget"
"""`EpisodeRecord.limit` of a run ended by a sweep ceiling."""
_POLL_S = 0.05


class BudgetReached(RuntimeError):
    """A sample was not started because a sweep ceiling was reached."""


class SweepBudget:
    def __init__(self, ledger: Ledger, ceilings: Ceilings) -> None:
        self.ledger, self.ceilings = ledger, ceilings
        self.running = 0
        """Samples of this process that have made calls and not yet ended."""
        self.hit: str | None = None

    def exhausted(self) -> str | None:
        """The ceiling the sweep has reached (the ledger holds every process's calls), or None."""
        if self.hit is None:
            self.hit = reached(self.ceilings, self.ledger.read())
        return self.hit

    def record(self, output: ModelOutput) -> None:
        usage = output.usage
        tokens = None if usage is None else usage.total_tokens
        cost = None if usage is None else usage.total_cost
        self.hit = reached(self.ceilings, self.ledger.add(tokens, cost))

    async def refuse(self) -> None:
        """Wait for this process's running samples to end as `limit`, then refuse this one."""
        while self.running > 0:
            await anyio.sleep(_POLL_S)
        raise BudgetReached(f"{BUDGET_REACHED}: {self.hit}; the samples not started stay unrun (rerun with a "
                            "higher ceiling to run them)")  # fmt: skip


class _OneLineStops(logging.Filter):
    """Inspect logs a failed task with its traceback; a task stopped by a ceiling did not fail: one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BudgetReached):
            record.msg, record.args, record.exc_info = f"{record.getMessage()}: {error}", (), None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_budget: SweepBudget | None = None
_filter = _OneLineStops()


def activate(ledger: Ledger, ceilings: Ceilings) -> None:
    """Make the sweep's ceilings apply to every sample this process runs (a shard process runs one sweep)."""
    global _budget
    _budget = SweepBudget(ledger, ceilings)
    logging.getLogger().addFilter(_filter)


def deactivate() -> None:
    global _budget
    if _budget is not None:
        _budget.ledger.close()
    _budget = None
    logging.getLogger().removeFilter(_filter)


def sweep_budget() -> SweepBudget | None:
    return _budget
