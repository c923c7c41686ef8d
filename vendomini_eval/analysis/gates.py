"""What the governance gates decided, from the runs table: decisions by reason per model and condition, and the
one `GATES:` line that `vendomini analyze` prints and the report shows (docs/METHOD.md, "Governance gates")."""

from __future__ import annotations

import json

import pandas as pd  # inspect-evals-lint: ignore[external_dependencies] -- the analysis extra; no task imports it

COLUMNS = ("model", "group", "decision", "reason", "calls", "share", "runs")
DECISION_ORDER = {"deny": 0, "warn": 1, "allow": 2}


def gated(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that ran under a gate (their decision counts are recorded)."""
    if "gate_decisions" not in runs:
        return runs.iloc[:0]
    return runs[runs["gate_decisions"].notna()]


def _counts(part: pd.DataFrame) -> dict[str, int]:
    """Decisions by `<decision>:<reason>`, summed over the runs."""
    counts: dict[str, int] = {}
    for text in part["gate_decisions"]:
        for label, n in json.loads(text).items():
            counts[label] = counts.get(label, 0) + n
    return counts


def gate_decisions(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model and condition (`group`), each decision and reason: the calls, their share of the group's gated
    calls, and the runs they came from. Empty without a gated run."""
    rows = []
    for (model, group), part in gated(runs).groupby(["model", "group"], sort=True):
        counts = _counts(part)
        total = sum(counts.values())
        for label, n in counts.items():
            decision, reason = label.split(":", 1)
            rows.append({"model": model, "group": group, "decision": decision, "reason": reason, "calls": n,
                         "share": n / total if total else float("nan"), "runs": len(part)})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    order = table["decision"].map(DECISION_ORDER)
    return table.assign(_order=order).sort_values(["model", "group", "_order", "calls"], ascending=[
        True, True, True, False]).drop(columns="_order").reset_index(drop=True)  # fmt: skip


def gates_line(runs: pd.DataFrame) -> str | None:
    """`GATES: <calls> gated calls in <runs> runs: <allowed> allowed, <warned> warned, <denied> denied (<share>);
    denied by reason: ...`; None when no run was gated."""
    part = gated(runs)
    if part.empty:
        return None
    allowed, warned, denied = (int(part[f"gate_{name}"].sum()) for name in ("allowed", "warned", "denied"))
    calls = allowed + warned + denied
    reasons = {label.removeprefix("deny:"): n for label, n in _counts(part).items() if label.startswith("deny:")}
    by_reason = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items(), key=lambda item: -item[1]))
    share = f" ({denied / calls:.1%})" if calls else ""
    return (f"GATES: {calls} gated calls in {len(part)} runs: {allowed} allowed, {warned} warned, {denied} denied"
            f"{share}" + (f"; denied by reason: {by_reason}" if by_reason else ""))  # fmt: skip


def denied_share(runs: pd.DataFrame) -> pd.Series:
    """Per gated run, its denied calls over its gated calls (NaN for a run the gate never ruled on)."""
    part = gated(runs)
    calls = part["gate_allowed"] + part["gate_warned"] + part["gate_denied"]
    return (part["gate_denied"] / calls.where(calls > 0)).astype(float)
