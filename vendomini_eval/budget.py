"""What a sweep spends and may spend: model prices, sweep ceilings, the ledger that a sweep's processes share,
and the BUDGET line. Plain Python: never imports inspect_ai (`sweep/budget.py` reads spend from logs).

Tokens are Inspect's `total_tokens` per call (input and output, as the provider reports them); a call is one
model generation (Inspect's turn); cost is US dollars from the model's prices, unknown (None, never 0) when a
model has none. Semantics of the ceilings: docs/METHOD.md, "Sweep budgets".
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vendomini_eval.files import display_path

LEDGER_FILE = ".vendomini-spend.json"
"""The ledger of a running sweep, in its log dir (for a SLURM array task, in its shard's)."""
CEILINGS = ("max_total_tokens", "max_cost", "max_calls")
BUDGET_REACHED = "sweep budget reached"
FAIL_ON_BUDGET_EXIT = 4
"""Exit status of `vendomini run` (and of a shard or SLURM array task) stopped by a ceiling with --fail-on-budget."""
"""How the error of a task stopped by a ceiling begins (`vendomini run` tells such a stop from a failure by it)."""


class BudgetError(ValueError):
    """A prices file or a ceiling is invalid; the message names the option or file and the key (one line)."""


class Price(BaseModel):
    """A model's prices in US dollars per million tokens, in the fields of Inspect's `ModelCost`. A cache price
    not given is the input price: caching is assumed to save nothing until it is priced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    input_cache_read: float | None = Field(None, ge=0)
    input_cache_write: float | None = Field(None, ge=0)

    def model_cost(self) -> dict[str, float]:
        """The four prices, as Inspect's `ModelCost` takes them."""
        read = self.input if self.input_cache_read is None else self.input_cache_read
        write = self.input if self.input_cache_write is None else self.input_cache_write
        return {"input": self.input, "output": self.output, "input_cache_read": read, "input_cache_write": write}

    def cost(self, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0) -> float:
        """Dollars for these tokens, as Inspect computes a call's cost (each kind of token at its own price)."""
        p = self.model_cost()
        return (input_tokens * p["input"] + output_tokens * p["output"] + cache_read * p["input_cache_read"]
                + cache_write * p["input_cache_write"]) / 1_000_000  # fmt: skip


def load_prices(path: str | Path, option: str = "--prices") -> dict[str, Price]:
    """A prices file: YAML or JSON, model name -> {input, output[, input_cache_read, input_cache_write]} in
    dollars per million tokens (Inspect's `--model-cost-config` format)."""
    where = f"{option} {display_path(path)}"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise BudgetError(f"{where}: cannot read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise BudgetError(f"{where}: not YAML or JSON: {' '.join(str(error).split())}") from None
    if not isinstance(data, dict) or not data:
        raise BudgetError(f"{where}: expected a mapping of model name to prices, e.g. "
                          "openai/gpt-4o: {input: 2.5, output: 10}")  # fmt: skip
    prices = {}
    for model, value in data.items():
        try:
            prices[str(model)] = Price.model_validate(value)
        except ValidationError as error:
            first = error.errors()[0]
            key = ".".join(str(part) for part in (model, *first["loc"]))
            raise BudgetError(f"{where}: {key}: {first['msg'].lower()}") from None
    return prices


class Ceilings(BaseModel):
    """Sweep ceilings: when one is reached no new sample starts and running ones end as `limit` (budget)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_total_tokens: int | None = Field(None, gt=0)
    max_cost: float | None = Field(None, gt=0)
    max_calls: int | None = Field(None, gt=0)

    @property
    def active(self) -> bool:
        return any(getattr(self, name) is not None for name in CEILINGS)


@dataclass(frozen=True)
class Usage:
    """A run's model usage, summed over the models it called (Inspect's `ModelUsage` per model). A count a
    provider does not report is None; `cost` is None unless every model's cost is known (never 0 for unknown)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost: float | None = None
    """US dollars, where Inspect knows the model's prices."""
    calls: int | None = None
    """Model calls (Inspect's turns: top-level generations)."""
    total_time: float | None = None
    """Seconds from the sample's start to its end."""
    working_time: float | None = None
    """Seconds of that the sample worked (not waiting on rate limits or concurrency)."""

    @classmethod
    def of(cls, model_usage: dict[str, Any], calls: int | None, total_time: float | None,
           working_time: float | None) -> Usage:  # fmt: skip
        usages = list(model_usage.values())

        def total(name: str) -> Any:
            values = [getattr(u, name) for u in usages]
            return None if not values or any(v is None for v in values) else sum(values)

        return cls(input_tokens=total("input_tokens"), output_tokens=total("output_tokens"),
                   total_tokens=total("total_tokens"), cache_read_tokens=total("input_tokens_cache_read"),
                   cache_write_tokens=total("input_tokens_cache_write"), reasoning_tokens=total("reasoning_tokens"),
                   cost=total("total_cost"), calls=calls, total_time=total_time,
                   working_time=working_time)  # fmt: skip


@dataclass(frozen=True)
class Spend:
    """Usage summed over runs or calls. `cost` is None when some call's cost is unknown; a token count is None
    when some call did not report it."""

    tokens: int | None = 0
    calls: int = 0
    cost: float | None = 0.0
    input_tokens: int | None = 0
    output_tokens: int | None = 0
    cache_read_tokens: int | None = 0
    runs: int = 0

    @classmethod
    def of(cls, usage: Usage) -> Spend:
        """One run's spend. Cached reads a provider did not report count as none; without any usage record (a log
        written without a model) the tokens and cost are unknown."""
        cached = None if usage.input_tokens is None else usage.cache_read_tokens or 0
        return cls(tokens=usage.total_tokens, calls=usage.calls or 0, cost=usage.cost, input_tokens=usage.input_tokens,
                   output_tokens=usage.output_tokens, cache_read_tokens=cached, runs=1)  # fmt: skip

    def __add__(self, other: Spend) -> Spend:
        def plus(a: Any, b: Any) -> Any:
            return None if a is None or b is None else a + b

        return Spend(tokens=plus(self.tokens, other.tokens), calls=self.calls + other.calls,
                     cost=plus(self.cost, other.cost), input_tokens=plus(self.input_tokens, other.input_tokens),
                     output_tokens=plus(self.output_tokens, other.output_tokens),
                     cache_read_tokens=plus(self.cache_read_tokens, other.cache_read_tokens),
                     runs=self.runs + other.runs)  # fmt: skip


def reached(ceilings: Ceilings, spend: Spend) -> str | None:
    """The first ceiling the spend has reached, or None. An unknown count under its ceiling counts as reached:
    a ceiling that cannot be checked must not be overrun."""
    if ceilings.max_total_tokens is not None and (spend.tokens is None or spend.tokens >= ceilings.max_total_tokens):
        return "max_total_tokens"
    if ceilings.max_cost is not None and (spend.cost is None or spend.cost >= ceilings.max_cost):
        return "max_cost"
    if ceilings.max_calls is not None and spend.calls >= ceilings.max_calls:
        return "max_calls"
    return None


def budget_line(spend: Spend, ceilings: Ceilings | None = None, hit: str | None = None, scope: str = "") -> str:
    """One line: runs, tokens (with input, cached and output), calls, cost, each ceiling with how much of it
    the spend used, and `REACHED <ceiling>` when `hit` names the ceiling that stopped the sweep. `scope` says
    what the ceilings applied to, when not the whole sweep (e.g. "per array task")."""
    ceilings = ceilings or Ceilings()

    def count(value: int | None) -> str:
        return "unknown" if value is None else f"{value:,}"

    cost = "unknown" if spend.cost is None else f"${spend.cost:,.2f}"
    parts = [f"BUDGET: {spend.runs:,} runs, {count(spend.tokens)} tokens ({count(spend.input_tokens)} in, "
             f"{count(spend.cache_read_tokens)} cached, {count(spend.output_tokens)} out), "
             f"{spend.calls:,} calls, cost {cost}"]  # fmt: skip
    used = {"max_total_tokens": spend.tokens, "max_cost": spend.cost, "max_calls": spend.calls}
    limits = []
    for name in CEILINGS:
        limit = getattr(ceilings, name)
        if limit is None:
            continue
        value = used[name]
        share = "?" if value is None else f"{100 * value / limit:.0f}%"
        shown = f"${limit:,.2f}" if name == "max_cost" else f"{limit:,}"
        limits.append(f"{name} {shown} ({share} used)")
    parts.append(f"ceilings{' ' + scope if scope else ''}: " + (", ".join(limits) if limits else "none"))
    if hit is not None:
        parts.append(f"REACHED {hit}")
    return "; ".join(parts)


class Ledger:
    """A sweep's running spend in a JSON file under an exclusive lock, so that every process of the sweep (its
    shards) adds its calls to one total and sees the others'. `start` writes the spend the logs already record
    and the ceilings (which `vendomini analyze` reports); each call then adds its own."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self.ceilings = Ceilings()

    @classmethod
    def start(cls, path: str | Path, spend: Spend, ceilings: Ceilings) -> Ledger:
        ledger = cls(path)
        ledger.ceilings = ceilings
        ledger._update(lambda _: spend, write=True)
        return ledger

    def read(self) -> Spend:
        return self._update(lambda spend: spend)

    def add(self, tokens: int | None, cost: float | None, calls: int = 1) -> Spend:
        """Add one call's usage and return the sweep's total."""
        call = Spend(tokens=tokens, calls=calls, cost=cost, input_tokens=None, output_tokens=None,
                     cache_read_tokens=None)  # fmt: skip
        return self._update(lambda spend: spend + call)

    def _update(self, change: Any, write: bool = False) -> Spend:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            raw = os.pread(self._fd, 1 << 16, 0)
            data = json.loads(raw) if raw else {}
            if not write:
                self.ceilings = Ceilings.model_validate(data.get("ceilings", {}))
            current = _spend_from(data)
            new = change(current)
            if write or new is not current:
                data = json.dumps({**_spend_to(new), "ceilings": self.ceilings.model_dump()}).encode()
                os.ftruncate(self._fd, 0)
                os.pwrite(self._fd, data, 0)
            return new
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _spend_to(spend: Spend) -> dict[str, Any]:
    return {"tokens": spend.tokens, "calls": spend.calls, "cost": spend.cost}


def _spend_from(data: Mapping[str, Any]) -> Spend:
    return Spend(tokens=data.get("tokens"), calls=int(data.get("calls", 0)), cost=data.get("cost"),
                 input_tokens=None, output_tokens=None, cache_read_tokens=None)  # fmt: skip
