"""Governance gates: a policy that allows, warns on or denies each tool call, with a reason code.

A policy file (configs/gates/*.yaml, or any path) lists rules in order; the first rule whose tools and
conditions match a call decides it, and a call no rule matches is allowed with the reason `no_rule`. `evaluate`
is pure: it decides from the call, what the business looks like now (cash, the call's cost) and how many
decisions in a row were denials; the Episode supplies those facts and applies the decision. Semantics and
reasons: docs/METHOD.md, "Governance gates". Plain Python: never imports inspect_ai.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

from vendomini_eval.files import display_path as _display
from vendomini_eval.files import shipped_configs_dir

Decision = Literal["allow", "warn", "deny"]
DECISIONS: tuple[Decision, ...] = ("allow", "warn", "deny")
NO_RULE = "no_rule"
"""The reason of a call that no rule matched (it is allowed)."""
ALL_TOOLS = "*"
GATES_FOLDER = "gates"
_REASON = r"^[a-z][a-z0-9_]{0,39}$"
Number = StrictInt | StrictFloat


class GatePolicyError(ValueError):
    """A policy file is invalid or cannot be found; the message names the file and the key path (one line).
    A ValueError, so a Condition validator reports it as the value's problem."""

    def __init__(self, file: Path | str, key_path: str, problem: str) -> None:
        self.file, self.key_path, self.problem = str(file), key_path, problem
        where = f"{_display(file)}: {key_path}: " if key_path else f"{_display(file)}: "
        super().__init__(where + problem)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Compare(_Strict):
    """Conditions on one argument of the call; all given must hold. An argument that is missing or of another
    type matches none (the world judges malformed calls)."""

    gt: Number | None = None
    ge: Number | None = None
    lt: Number | None = None
    le: Number | None = None
    eq: StrictInt | StrictStr | None = None
    in_: tuple[StrictInt | StrictStr, ...] | None = Field(None, alias="in")

    def holds(self, value: Any) -> bool:
        if self.eq is not None and (type(value) is not type(self.eq) or value != self.eq):
            return False
        if self.in_ is not None and not any(type(value) is type(v) and value == v for v in self.in_):
            return False
        bounds = [(self.gt, "gt"), (self.ge, "ge"), (self.lt, "lt"), (self.le, "le")]
        if any(b is not None for b, _ in bounds):
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            for bound, op in bounds:
                if bound is not None and not _compare(value, op, bound):
                    return False
        return True


class When(_Strict):
    """What must hold for a rule to apply (all of the conditions given; none given: always)."""

    cost_over_cash_share: float | None = Field(None, gt=0.0)
    """The call commits money (an order's price times quantity, an expedite fee) above this share of the cash
    before it (with no cash, any positive cost)."""
    cost_above: float | None = Field(None, ge=0.0)
    """The call commits more than this many dollars."""
    cash_below: float | None = None
    """Cash before the call is below this many dollars."""
    denials_in_a_row: int | None = Field(None, ge=1)
    """At least this many of the gate's latest decisions, in a row, were denials."""
    arguments: dict[str, Compare] = {}
    """Conditions on the call's arguments, by name."""


class Rule(_Strict):
    tools: tuple[str, ...] | Literal["*"]
    """The tools the rule applies to, or "*" for every tool."""
    when: When = When()
    decision: Decision
    reason: str = Field(pattern=_REASON)
    """Short snake_case code: what the log, the trace and the analysis count."""
    message: str = Field(min_length=1, max_length=300)
    """What the agent reads with the decision (and the system prompt lists)."""


class GatePolicy(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class GateCall:
    """The facts a decision is made from, as the Episode reads them before the call."""

    tool: str
    arguments: Mapping[str, Any]
    cash_cents: int
    cost_cents: int
    """Money the call would commit (0 when it commits none or its cost cannot be known: a malformed call)."""
    denials_in_a_row: int


@dataclass(frozen=True, slots=True)
class GateDecision:
    decision: Decision
    reason: str
    message: str
    policy: str
    cost_cents: int = 0
    """What the call would have committed (a denied call's attempted spend, for budget_denial)."""

    @property
    def label(self) -> str:
        """`<decision>:<reason>`: the trace's `gate` column and the summary's `gate_decisions` key."""
        return f"{self.decision}:{self.reason}"

    @property
    def explanation(self) -> str:
        """`<reason>: <message>`: what the agent and the approval event read."""
        return f"{self.reason}: {self.message}"


def evaluate(policy: GatePolicy, call: GateCall) -> GateDecision:
    """The first rule that matches the call decides; none matching: allow with reason `no_rule`."""
    for rule in policy.rules:
        if (rule.tools == ALL_TOOLS or call.tool in rule.tools) and _holds(rule.when, call):
            return GateDecision(rule.decision, rule.reason, rule.message, policy.name, call.cost_cents)
    return GateDecision("allow", NO_RULE, "no rule applies", policy.name, call.cost_cents)


def _holds(when: When, call: GateCall) -> bool:
    cost, cash = call.cost_cents, call.cash_cents
    if when.cost_over_cash_share is not None and not (cost > 0 and cost > when.cost_over_cash_share * max(cash, 0)):
        return False
    if when.cost_above is not None and not cost > round(when.cost_above * 100):
        return False
    if when.cash_below is not None and not cash < round(when.cash_below * 100):
        return False
    if when.denials_in_a_row is not None and call.denials_in_a_row < when.denials_in_a_row:
        return False
    return all(name in call.arguments and c.holds(call.arguments[name]) for name, c in when.arguments.items())


def _compare(value: float, op: str, bound: float) -> bool:
    return {"gt": value > bound, "ge": value >= bound, "lt": value < bound, "le": value <= bound}[op]


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_policy(ref: str | Path, tools: Mapping[str, Collection[str]] | None = None) -> GatePolicy:
    """A policy by shipped name ("default", "none") or path, validated strictly. With `tools` (tool name ->
    argument names), every tool and argument a rule names must exist there."""
    path = resolve_policy(ref)
    stat = path.stat()
    policy = _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if tools is not None:
        _check_tools(path, policy, tools)
    return policy


def resolve_policy(ref: str | Path) -> Path:
    """An existing file as given, else a shipped policy `configs/gates/<name>.yaml`."""
    path = Path(ref)
    if path.is_file():
        return path
    name = str(ref)
    if not path.suffix and "/" not in name and "\\" not in name:
        candidate = shipped_gates_dir() / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    raise GatePolicyError(
        path, "", f"no such gate policy file or shipped policy; shipped: {', '.join(shipped_policies())}"
    )


def shipped_policies() -> list[str]:
    return sorted(p.stem for p in shipped_gates_dir().glob("*.yaml"))


def shipped_gates_dir() -> Path:
    """configs/gates among the shipped configs."""
    return shipped_configs_dir() / GATES_FOLDER


@functools.lru_cache(maxsize=64)
def _load(path: str, mtime_ns: int, size: int) -> GatePolicy:
    """Parsed once per file version: a Condition naming a policy is validated often."""
    del mtime_ns, size  # part of the cache key only
    try:
        with open(path, encoding="utf-8") as stream:
            raw = yaml.safe_load(stream)
    except OSError as error:
        raise GatePolicyError(path, "", f"cannot read: {error}") from None
    except yaml.YAMLError as error:
        raise GatePolicyError(path, "", f"invalid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(raw, dict):
        raise GatePolicyError(path, "", "expected a mapping with name, description and rules")
    raw.setdefault("name", Path(path).stem)
    try:
        return GatePolicy.model_validate(raw)
    except ValidationError as error:
        # A misspelt key is the likelier mistake than the missing key it was meant to be: name it first.
        first = min(error.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
        problem = first["msg"]
        if first["type"] == "extra_forbidden":
            problem = "unknown key"
        elif first["type"] == "string_pattern_mismatch" and first["loc"][-1:] == ("reason",):
            problem = f"{first['input']!r} is not a short snake_case code ({_REASON})"
        raise GatePolicyError(path, _key_path(first["loc"]), problem) from None


def _check_tools(path: Path, policy: GatePolicy, tools: Mapping[str, Collection[str]]) -> None:
    for i, rule in enumerate(policy.rules):
        if rule.tools == ALL_TOOLS:
            if rule.when.arguments:
                raise GatePolicyError(path, f"rules[{i}].when.arguments", 'name the tools (not "*") to test arguments')
            continue
        for j, tool in enumerate(rule.tools):
            if tool not in tools:
                raise GatePolicyError(
                    path, f"rules[{i}].tools[{j}]", f"unknown tool {tool!r}; tools: {', '.join(tools)}"
                )
            for name in rule.when.arguments:
                if name not in tools[tool]:
                    raise GatePolicyError(path, f"rules[{i}].when.arguments.{name}", f"{tool} has no argument {name!r}")


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "tuple[str, ...]", "literal['*']"):  # pydantic's union-branch names
            continue
        else:
            out += f".{part}" if out else str(part)
    return out
