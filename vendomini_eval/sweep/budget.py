"""A sweep's spend as its logs record it, and model prices handed to Inspect (which prices every call).

`recorded_spend` reads only the logs' sample summaries (tokens, cost and turns per sample), never the samples,
so it is cheap enough to run at every start and end of a sweep. A sample that a retry or a resume reused is
in two logs under one uuid and counts once; a sample that ran twice (its first run failed) counts twice: both
runs were paid for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vendomini_eval.budget import LEDGER_FILE, Ceilings, Ledger, Price, Spend, Usage, budget_line, reached


def recorded_spend(log_dir: str | Path) -> Spend:
    """Tokens, calls and cost of every sample in the `.eval` logs below `log_dir` (none: a zero spend)."""
    from inspect_ai.log import list_eval_logs, read_eval_log_sample_summaries

    spend, seen = Spend(), set()
    if not Path(log_dir).is_dir():
        return spend
    for info in list_eval_logs(str(log_dir), recursive=True):
        try:
            summaries = read_eval_log_sample_summaries(info.name)
        except Exception:  # an unreadable log holds no usage to count; `vendomini analyze` names it
            continue
        for summary in summaries:
            key = summary.uuid or f"{info.name}#{summary.id}#{summary.epoch}"
            never_called = not summary.model_usage and not summary.turn_count
            if key in seen or (summary.error is not None and never_called):  # refused before its first call
                continue
            seen.add(key)
            usage = Usage.of(summary.model_usage, summary.turn_count, summary.total_time, summary.working_time)
            spend = spend + Spend.of(usage)
    return spend


def start_ledger(log_dir: str | Path, ceilings: Ceilings) -> Ledger:
    """The ledger of a sweep starting (or resuming) in `log_dir`, holding what its logs already record."""
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    return Ledger.start(Path(log_dir) / LEDGER_FILE, recorded_spend(log_dir), ceilings)


def apply_prices(prices: Mapping[str, Price]) -> None:
    """Give Inspect the prices, so that it prices each call (`ModelUsage.total_cost`), for any model name:
    Inspect's own `set_model_cost` takes only models its database knows."""
    from inspect_ai.model import ModelCost, ModelInfo, get_model_info, set_model_info

    for name, price in prices.items():
        info = get_model_info(name) or ModelInfo()
        set_model_info(name, info.model_copy(update={"cost": ModelCost(**price.model_cost())}))


def unpriced(models: Sequence[str], prices: Mapping[str, Price]) -> list[str]:
    """The models with no price in `prices` nor in Inspect's model data."""
    from inspect_ai.model import get_model_info

    missing = []
    for model in models:
        info = None if model in prices else get_model_info(model)
        if model not in prices and (info is None or info.cost is None):
            missing.append(model)
    return missing


def final_line(log_dir: str | Path) -> tuple[str, str | None]:
    """The BUDGET line of the sweep in `log_dir`, and the ceiling that stopped it (None: none did). The counts
    are the logs'; the ceilings and whether one was reached are the ledger's, which also counted the calls of
    samples that a stop cut off before their log was written. A SLURM sweep keeps a ledger per array task."""
    spend = recorded_spend(log_dir)
    root = Path(log_dir) / LEDGER_FILE
    paths = [root] if root.is_file() else sorted(Path(log_dir).glob(f"*/*/{LEDGER_FILE}"))
    if not paths:
        return budget_line(spend), None
    ceilings, hits = Ceilings(), []
    for path in paths:
        ledger = Ledger(path)
        try:
            spent = ledger.read()  # reads the ceilings too
            hits.append(reached(ledger.ceilings, spent))
        finally:
            ledger.close()
        ceilings = ledger.ceilings
    hit = next((h for h in hits if h is not None), None)
    scope = "" if paths == [root] else f"per array task ({sum(h is not None for h in hits)} of {len(paths)} reached)"
    return budget_line(spend, ceilings, hit, scope), hit


def forget_ceilings(log_dir: str | Path) -> None:
    """A sweep run without ceilings drops the ledger of an earlier run with them (its ceilings no longer hold)."""
    (Path(log_dir) / LEDGER_FILE).unlink(missing_ok=True)
