"""`vendomini_gate`: the condition's governance gate (vendomini_eval/gates.py) as an Inspect approver.

The approver decides nothing itself: it asks the live Episode of the sample (`Episode.review`, through the run
the solver makes active) and turns the decision into an Inspect `Approval`, so every gated call has an approval
event in the log: allow and warn approve, deny rejects; the explanation is `<reason code>: <message>` and the
metadata holds the decision, the reason and the policy. The solver hands the same decision to the step, which
records it in the trace and the summary (docs/METHOD.md, "Governance gates").
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Protocol

from inspect_ai.approval import Approval, ApprovalPolicy, Approver, approver
from inspect_ai.model import ChatMessage
from inspect_ai.tool import ToolCall, ToolCallView

from vendomini_eval.gates import GateDecision

APPROVER = "vendomini_gate"


class GateReviewer(Protocol):
    def review_call(self, call: ToolCall) -> GateDecision | None:
        """The gate's decision on the call in the episode's current state (None: not gated)."""
        ...


# Set by the solver for its sample: Inspect runs each sample in its own task, so each sees its own run.
_ACTIVE: ContextVar[GateReviewer | None] = ContextVar("vendomini_gate_reviewer", default=None)


def activate(reviewer: GateReviewer) -> Token[GateReviewer | None]:
    return _ACTIVE.set(reviewer)


def deactivate(token: Token[GateReviewer | None]) -> None:
    _ACTIVE.reset(token)


def approval(decision: GateDecision) -> Approval:
    return Approval(
        decision="reject" if decision.decision == "deny" else "approve",
        explanation=decision.explanation,
        metadata={"gate": decision.decision, "reason": decision.reason, "policy": decision.policy},
    )


@approver(name=APPROVER)
def vendomini_gate() -> Approver:
    """Apply the sample's gate policy (the condition's `gates`) to each tool call."""

    async def approve(message: str, call: ToolCall, view: ToolCallView, history: list[ChatMessage]) -> Approval:
        reviewer = _ACTIVE.get()
        if reviewer is None:
            raise RuntimeError(f"{APPROVER} approves the calls of the vendomini_agent solver only")
        decision = reviewer.review_call(call)
        if decision is None:
            return Approval(decision="approve", explanation="ungated: the condition has no gate")
        return approval(decision)

    return approve


def gate_approval() -> list[ApprovalPolicy]:
    """The task's approval policy: the gate on every tool."""
    return [ApprovalPolicy(approver=vendomini_gate(), tools="*")]
