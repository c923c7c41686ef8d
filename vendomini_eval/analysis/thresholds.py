"""The thresholds check of `vendomini analyze --thresholds FILE`: limits on the analysed runs that gate CI.

A thresholds file (configs/thresholds.yaml is the shipped example) is a list of named checks. A check selects
runs (by model label, with `*` as a wildcard, and by run-table columns such as `p_shock`) and sets limits on
them: `min_runs`, `max_crash_rate`, `min_crash_rate`, `max_denied_share` (each gated run's denied calls over
its gated calls); or it limits `max_skipped`, the logs and samples the
analysis had to leave out. A missed limit counts at the check's `level`: `fail` (the default) or `warn`. A
check that selects no run cannot be judged and warns, whatever its level, unless it sets `min_runs`.

The overall result is FAIL when a `fail` check missed, else WARN when any check missed or warned, else OK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd  # inspect-evals-lint: ignore[external_dependencies] -- the analysis extra; no task imports it
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vendomini_eval.analysis.gates import denied_share
from vendomini_eval.analysis.load import LoadedLogs
from vendomini_eval.experiments import shipped_configs_dir

Level = Literal["fail", "warn"]
Status = Literal["OK", "WARN", "FAIL"]
Scalar = str | int | float | bool


class ThresholdsError(ValueError):
    """A thresholds file that cannot be read or does not validate; the message names the file and key."""


class Check(BaseModel):
    """One named check: which runs it looks at and the limits they must meet."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    level: Level = "fail"
    model: str | None = None
    """Model label the runs must have, `*` matching any text: `vendomini/heuristic`, `vendomini/heuristic[fault=*`."""
    where: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    """Run-table column -> the value (or any of the values) it must have: `{p_shock: 0.0}`."""
    min_runs: int | None = Field(default=None, ge=0)
    max_crash_rate: float | None = Field(default=None, ge=0, le=1)
    min_crash_rate: float | None = Field(default=None, ge=0, le=1)
    max_skipped: int | None = Field(default=None, ge=0)
    """Logs and samples left out of the analysis (unfinished or unreadable logs, errored samples, retries)."""
    max_denied_share: float | None = Field(default=None, ge=0, le=1)
    """The most a gated run may have had denied, as a share of its gated calls: every selected run must meet it."""

    @model_validator(mode="after")
    def _has_a_limit(self) -> Check:
        limits = (self.min_runs, self.max_crash_rate, self.min_crash_rate, self.max_skipped, self.max_denied_share)
        if all(limit is None for limit in limits):
            raise ValueError("a check needs a limit: min_runs, max_crash_rate, min_crash_rate, max_skipped or "
                             "max_denied_share")  # fmt: skip
        if self.max_skipped is not None and (self.model is not None or self.where):
            raise ValueError("max_skipped counts the whole log directory: it takes no model or where")
        return self


class Thresholds(BaseModel):
    """A thresholds file: its checks, in the order they are reported."""

    model_config = ConfigDict(extra="forbid")

    checks: list[Check] = Field(min_length=1)


@dataclass(frozen=True)
class CheckResult:
    name: str
    level: Level
    status: Status
    runs: int
    observed: str
    reason: str


@dataclass(frozen=True)
class ThresholdsResult:
    source: str
    status: Status
    checks: list[CheckResult]

    def line(self) -> str:
        """One line: `thresholds OK: 4 checks met` or the status and each missed check's reason."""
        missed = [c for c in self.checks if c.status != "OK"]
        if not missed:
            return f"thresholds {self.status}: {len(self.checks)} checks met ({self.source})"
        reasons = "; ".join(f"{c.status} {c.name}: {c.reason}" for c in missed)
        return f"thresholds {self.status}: {reasons} ({self.source})"

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([vars(c) for c in self.checks], columns=list(CheckResult.__dataclass_fields__))


def resolve_thresholds(path_or_name: str | Path) -> Path:
    """An existing file as given, else a shipped file by name: `thresholds` is configs/thresholds.yaml."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = shipped_configs_dir() / f"{path_or_name}.yaml"
    if not path.suffix and len(path.parts) == 1 and shipped.is_file():
        return shipped
    raise ThresholdsError(f"{path_or_name}: no such file (the shipped example is named `thresholds`)")


def load_thresholds(path: str | Path) -> Thresholds:
    """Read and validate a thresholds file; every problem is a ThresholdsError naming the file and key path."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ThresholdsError(f"{path}: {error}") from error
    try:
        return Thresholds.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{_key_path(e['loc'])}: {e['msg']}" for e in error.errors())
        raise ThresholdsError(f"{path}: {problems}") from error


def check_thresholds(thresholds: Thresholds, runs: pd.DataFrame, loaded: LoadedLogs, source: str) -> ThresholdsResult:
    """Every check against the runs table and the skips of the analysis."""
    results = [_check(check, runs, loaded) for check in thresholds.checks]
    status: Status = "OK"
    if any(r.status == "FAIL" for r in results):
        status = "FAIL"
    elif any(r.status == "WARN" for r in results):
        status = "WARN"
    return ThresholdsResult(source=source, status=status, checks=results)


def _check(check: Check, runs: pd.DataFrame, loaded: LoadedLogs) -> CheckResult:
    missed: Status = "FAIL" if check.level == "fail" else "WARN"
    if check.max_skipped is not None:
        skipped = len(loaded.skipped)
        ok = skipped <= check.max_skipped
        return CheckResult(check.name, check.level, "OK" if ok else missed, len(runs), f"{skipped} skipped",
                           "" if ok else f"{skipped} skipped > {check.max_skipped}")  # fmt: skip
    selected, why_none = _select(check, runs)
    n = len(selected)
    crashes = int(selected["crashed"].sum()) if n else 0
    observed = f"{crashes}/{n} crashed" if n else "no run"
    reasons = []
    if check.min_runs is not None and n < check.min_runs:
        reasons.append(f"{n} runs < {check.min_runs}" + (f" ({why_none})" if why_none else ""))
    if n and check.max_crash_rate is not None and crashes / n > check.max_crash_rate:
        reasons.append(f"crash rate {crashes / n:.3g} ({crashes}/{n}) > {check.max_crash_rate}")
    if n and check.min_crash_rate is not None and crashes / n < check.min_crash_rate:
        reasons.append(f"crash rate {crashes / n:.3g} ({crashes}/{n}) < {check.min_crash_rate}")
    if n and check.max_denied_share is not None:
        shares = denied_share(selected).dropna()
        over = shares[shares > check.max_denied_share]
        observed += f", {len(over)}/{len(shares)} gated runs over the denied share"
        if shares.empty:
            reasons.append(f"no gated run among the {n} selected: the denied share cannot be judged")
        elif len(over):
            reasons.append(f"{len(over)} of {len(shares)} gated runs denied more than {check.max_denied_share} of "
                           f"their gated calls (highest {over.max():.3g})")  # fmt: skip
    if reasons:
        return CheckResult(check.name, check.level, missed, n, observed, "; ".join(reasons))
    if n == 0 and check.min_runs is None:  # nothing to judge: say so rather than pass silently
        return CheckResult(check.name, check.level, "WARN", 0, observed, f"no run selected ({why_none})")
    return CheckResult(check.name, check.level, "OK", n, observed, "")


def _select(check: Check, runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The runs the check looks at, and why there are none when there are none."""
    selected = runs
    if check.model is not None and len(selected):
        pattern = re.compile(".*".join(re.escape(part) for part in check.model.split("*")))
        selected = selected[selected["model"].map(lambda label: pattern.fullmatch(str(label)) is not None)]
        if selected.empty:
            return selected, f"no run of model {check.model}"
    for column, wanted in check.where.items():
        if column not in runs:
            return runs.iloc[0:0], f"no column {column} in the runs table"
        values = wanted if isinstance(wanted, list) else [wanted]
        selected = selected[selected[column].isin(values)]
    return selected, "" if len(selected) else "no run matches " + _describe(check)


def _describe(check: Check) -> str:
    parts = [f"model {check.model}"] if check.model else []
    parts += [f"{column}={value}" for column, value in check.where.items()]
    return ", ".join(parts) or "(all runs)"


def _key_path(loc: tuple[int | str, ...]) -> str:
    """`('checks', 1, 'max_crash_rat')` -> `checks[1].max_crash_rat`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"
