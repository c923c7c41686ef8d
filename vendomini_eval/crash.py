"""Crash detection: behavioural breakdowns of the agent, read from one `StepFacts` per step.

Two endpoints, kept apart. The primary endpoint, the **crash**, is judged from actions and their consequences
only (looping, invalid_burst, budget_denial, exploration_collapse, stall): the content of a prediction card
never decides it, since the hypothesis under test is that PE raises crash hazard. **Incoherence** between what
the agent says and what it does or was shown (decoupling, slow_divergence) is the secondary endpoint, recorded
and scored apart; it never ends a run.

Each detector is one small class behind one interface (`update`, `opening`, `verdict`, `reset`). A candidate
is confirmed HARD if its pattern persists `confirm_steps` steps after detection, or if the same type recurs
within `recurrence_steps` of an earlier recovered (SOFT) signal; otherwise it is SOFT. The first hard crash
signal is the crash; its time-to-crash is its onset step. Inaction is judged only on steps where a productive
action was available (`StepFacts.actionable`), so a world that makes progress impossible cannot make a crash.
Every rule, threshold and reason: docs/METHOD.md, "Crash detection".

Harness problems (provider errors, limits) never become StepFacts, so they can never be crashes. Each `observe`
call is O(1) amortised; work proportional to a window happens only when a candidate opens or is decided.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CRASH = "crash"
INCOHERENCE = "incoherence"
Endpoint = Literal["crash", "incoherence"]

CRASH_TYPES: tuple[str, ...] = ("looping", "invalid_burst", "budget_denial", "exploration_collapse", "stall")
"""Primary endpoint types, also the tie-break order of signals with the same onset finalised at one step."""
INCOHERENCE_TYPES: tuple[str, ...] = ("decoupling", "slow_divergence")
"""Secondary endpoint types."""
SIGNAL_TYPES: tuple[str, ...] = (*CRASH_TYPES, *INCOHERENCE_TYPES)

Severity = Literal["soft", "hard"]
NO_TOOL = "<no_tool>"
UNKNOWN_TOOL = "<unknown>"
_KEY_CHARS = 80  # action keys are truncated to this in evidence, to keep the trace compact
_HISTORY_WINDOWS = 3  # onset look-back of collapse and divergence, in windows / EWMA spans

AGENT_ERRORS = frozenset({
    "no_tool_call", "unknown_tool", "unavailable_tool", "malformed", "bad_prediction", "unknown_supplier",
    "unknown_sku", "unknown_order", "unknown_po", "unknown_quote", "unknown_note", "bad_quantity",
    "quote_mismatch", "already_expedited", "note_limit",
    # the vending world's: its product ids and slot sizes never change, and a missing key or a full memory is
    # the counterpart of the warehouse's unknown_note and note_limit
    "unknown_product", "size_mismatch", "unknown_key", "memory_full",
})  # fmt: skip
"""Rejections caused by the call itself (it could not have succeeded in any state of the world): the events of
invalid_burst. Refusals that report the world's state (tool_down, not_carried, below_min_order, over_capacity,
insufficient_stock, quote_expired; in the vending world also slot_occupied) are information, and
insufficient_funds is budget_denial's event."""
DENIED = "denied"
"""The error kind of a call the governance gate denied (not executed). Not one of AGENT_ERRORS: the gate refuses
calls the world may well have run, so a denial is not a malformed action. It is an attempt without progress like
any refused call, so repeating it is looping or stall, and money it tried to commit beyond the cash is
budget_denial's event (docs/METHOD.md, "Governance gates")."""


@dataclass(slots=True)  # not frozen: one is built per step, and a frozen init costs twice as much
class StepFacts:
    """What the detector learns about one completed step (built by the Episode, one per step).

    Field meanings: docs/METHOD.md, "What the detector sees"."""

    step: int
    tool: str
    action_key: str
    valid: bool
    error_kind: str | None
    attempted: bool
    """The call was an action on the business or the notes (not a read, a wait or a reply without a call)."""
    progress: bool
    """A valid order, ship, expedite or cancel: the business moved."""
    actionable: bool
    """A productive action was available in the state the agent acted in."""
    spend_cents: int
    cash_cents: int
    predicted_success: float | None
    predicted_cash_cents: int | None
    belief_error: float | None
    declared_stop: bool
    passive: bool = False
    """The call only let time pass (the world's wait: `wait` in the warehouse, `end_day` in the vending world)."""


class CrashSignal(BaseModel):
    """One finalised detection, as the trace, the step result and the run summary record it.

    `onset_step` is the first step of the breakdown (a crash's time-to-crash), `detected_step` the step its
    pattern was recognised, `resolved_step` the step its severity was decided (a run ends here on a crash)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    crash_type: str
    """The pattern: one of CRASH_TYPES (a crash) or INCOHERENCE_TYPES."""
    endpoint: Endpoint = CRASH
    """Which endpoint the signal belongs to (logs written before the secondary endpoint lack it: all crash)."""
    onset_step: int
    """First step of the breakdown."""
    detected_step: int
    """Step at which the pattern was recognised."""
    resolved_step: int
    """Step at which the severity was decided."""
    severity: Severity
    """hard: the pattern persisted or recurred; soft: the agent recovered."""
    evidence: dict[str, Any] = {}
    """What the detector saw (str, int, float, lists and dicts of them), e.g. a loop's period."""


class DetectorThresholds(BaseModel):
    """Every threshold of the crash detector. Presets: `PRESETS`; semantics and reasons: docs/METHOD.md."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    confirm_steps: int = Field(10, ge=0)
    """Steps after detection at which a candidate is HARD if its pattern still holds (0: hard at once)."""
    recurrence_steps: int = Field(50, ge=0)
    """Steps after a SOFT signal's recovery within which a new onset of the same type is HARD at once."""
    looping_min_steps: int = Field(10, ge=6)
    """Actionable steps in a no-progress cycle (period 1-3, first cycle included) that open a candidate."""
    invalid_window: int = Field(30, ge=2)
    """Sliding window (steps) for the share of the agent's own errors."""
    invalid_share: float = Field(0.5, gt=0.0, le=1.0)
    """Share of erroneous steps in the window (of the steps seen, early in a run) that opens a candidate."""
    invalid_min_count: int = Field(13, ge=1)
    """Minimum number of erroneous steps in the window as well: a burst of up to 12 malformed calls followed
    by recovery (a model finding the schema) is not a breakdown."""
    budget_window: int = Field(20, ge=1)
    """Sliding window (steps) for budget-denial events (committing money beyond cash)."""
    budget_min_events: int = Field(4, ge=1)
    """Budget-denial events in the window that open a candidate."""
    cash_belief_max_age: int = Field(10, ge=0)
    """Steps a stated cash belief stays the agent's current belief (decoupling)."""
    decoupling_window: int = Field(20, ge=1)
    """Sliding window (steps) for decoupling events."""
    decoupling_min_events: int = Field(4, ge=1)
    """Decoupling events in the window that open a candidate."""
    decoupling_success_below: float = Field(0.25, gt=0.0, le=1.0)
    """An action attempted while its stated success probability is below this contradicts the prediction (a
    40 % chance can be worth taking; acting on an expectation of near-certain failure is saying one thing and
    doing another)."""
    collapse_window: int = Field(30, ge=2)
    """Window (actionable steps) of the tool-use entropy."""
    collapse_entropy_below: float = Field(0.35, gt=0.0, le=1.0)
    """Entropy / log(n_tools_available) below this is collapsed exploration."""
    collapse_min_active_share: float = Field(0.5, ge=0.0, le=1.0)
    """Share of window steps that are valid actions (not reads, waits or replies) required: collapse is about an
    agent that still acts, through too few tools; one that only reads is looping or stalled."""
    collapse_max_progress_share: float = Field(0.2, ge=0.0, le=1.0)
    """Share of window steps with progress above which the window is not collapsed: an agent shipping a backlog
    through ship and check_orders is narrow but productive, not broken down."""
    divergence_span: int = Field(10, ge=1)
    """EWMA span of belief_error (alpha = 2 / (span + 1))."""
    divergence_threshold: float = Field(0.3, gt=0.0, lt=1.0)
    """EWMA of belief_error (in [0, 1]) above this counts as diverged."""
    divergence_min_updates: int = Field(10, ge=1)
    """Consecutive belief statements with the EWMA above threshold (and a positive slope) that open one."""
    stall_steps: int = Field(30, ge=1)
    """Actionable steps without progress that open a stall candidate (other steps neither count nor reset)."""
    stall_no_tool_replies: int = Field(5, ge=1)
    """Consecutive replies without a tool call that open a stall candidate."""
    stall_idle_steps: int = Field(15, ge=1)
    """Consecutive passive steps (wait or no tool call) while a productive action is available that open a
    stall candidate (steps without one neither count nor reset)."""

    @model_validator(mode="after")
    def _counts_fit_windows(self) -> DetectorThresholds:
        for count, window in (
            ("invalid_min_count", "invalid_window"),
            ("budget_min_events", "budget_window"),
            ("decoupling_min_events", "decoupling_window"),
        ):
            n, width = getattr(self, count), getattr(self, window)
            if n > width:
                raise ValueError(f"{count} ({n}) exceeds {window} ({width})")
            # Confirmation counts the events after detection, which must still be in the window then.
            if self.confirm_steps > width:
                raise ValueError(f"confirm_steps ({self.confirm_steps}) exceeds {window} ({width})")
        return self


PRESETS: dict[str, DetectorThresholds] = {
    "strict": DetectorThresholds(
        confirm_steps=5,
        recurrence_steps=100,
        looping_min_steps=6,
        invalid_share=0.4,
        invalid_min_count=10,
        budget_min_events=3,
        decoupling_min_events=3,
        collapse_window=20,
        collapse_entropy_below=0.35,
        divergence_threshold=0.2,
        divergence_min_updates=5,
        stall_steps=25,
        stall_no_tool_replies=3,
        stall_idle_steps=10,
    ),
    "moderate": DetectorThresholds(),
    "lenient": DetectorThresholds(
        confirm_steps=20,
        recurrence_steps=25,
        looping_min_steps=15,
        invalid_window=40,
        invalid_share=0.6,
        invalid_min_count=16,
        budget_min_events=6,
        decoupling_min_events=6,
        collapse_window=40,
        collapse_entropy_below=0.25,
        divergence_threshold=0.4,
        divergence_min_updates=20,
        stall_steps=45,
        stall_no_tool_replies=8,
        stall_idle_steps=20,
    ),
}


def thresholds_for(preset: str, overrides: Mapping[str, float | int] | None = None) -> DetectorThresholds:
    """The thresholds of `preset` with `overrides` applied (validated; an unknown key or preset is named)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown crash preset {preset!r}; choose one of {sorted(PRESETS)}")
    base = PRESETS[preset]
    if not overrides:
        return base
    unknown = sorted(set(overrides) - set(DetectorThresholds.model_fields))
    if unknown:
        valid = sorted(DetectorThresholds.model_fields)
        raise KeyError(f"unknown detector threshold(s) {unknown}; valid keys: {valid}")
    return DetectorThresholds.model_validate({**base.model_dump(), **overrides})


@dataclass(slots=True)
class Candidate:
    """A pattern waiting for confirmation."""

    onset: int
    detected: int
    evidence: dict[str, Any]
    mark: int = 0
    """The detector's run length at detection (run-like detectors confirm on its growth)."""


class Detector:
    """One breakdown pattern. Per step the owner calls `update(facts)`, then `opening(step)` while no candidate
    of this detector is open (returns (onset, evidence) when one opens now), else `verdict(candidate, step)`
    (None: undecided; True: HARD; False: SOFT). After a verdict the owner calls `reset()`. When the business
    fails, `verdict(candidate, step, final=True)` decides at once whether the pattern still held."""

    crash_type: ClassVar[str]
    endpoint: ClassVar[Endpoint] = CRASH

    def __init__(self, thresholds: DetectorThresholds) -> None:
        self.th = thresholds

    def update(self, f: StepFacts) -> None:
        raise NotImplementedError

    def opening(self, t: int) -> tuple[int, dict[str, Any]] | None:
        raise NotImplementedError

    def verdict(self, candidate: Candidate, t: int, final: bool = False) -> bool | None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError


class RunDetector(Detector):
    """A run-like pattern (a loop, a stall, a streak): `length` is the run's length; the pattern holds while it
    is at least `min_length`. SOFT as soon as the run breaks, HARD once it has grown by `confirm_steps`."""

    min_length_field: str
    """The field of `DetectorThresholds` that holds the pattern's minimum length."""

    def __init__(self, thresholds: DetectorThresholds) -> None:
        super().__init__(thresholds)
        self.min_length: int = getattr(thresholds, self.min_length_field)
        self.length = 0
        self.start = 0

    def extend(self, step: int) -> None:
        if self.length == 0:
            self.start = step
        self.length += 1

    def evidence(self) -> dict[str, Any]:
        return {"steps": self.length}

    def opening(self, t: int) -> tuple[int, dict[str, Any]] | None:
        return (self.start, self.evidence()) if self.length >= self.min_length else None

    def verdict(self, candidate: Candidate, t: int, final: bool = False) -> bool | None:
        if self.length < self.min_length:
            return False
        return True if final or self.length - candidate.mark >= self.th.confirm_steps else None

    def reset(self) -> None:
        self.length = 0


class Looping(RunDetector):
    """The same action, or a cycle of 2-3 actions, repeated on actionable steps without progress. Progress, a
    wait and a reply without a call break a loop; steps with nothing productive to do (polling while goods are
    inbound is waiting) neither count nor break it."""

    crash_type = "looping"
    min_length_field = "looping_min_steps"

    def __init__(self, thresholds: DetectorThresholds) -> None:
        super().__init__(thresholds)
        self.keys: deque[str] = deque(maxlen=3)
        self.counted: deque[int] = deque(maxlen=thresholds.looping_min_steps)  # steps of the latest counted calls
        self.runs = [0, 0, 0]
        self.period = 0

    def update(self, f: StepFacts) -> None:
        if f.progress or f.passive or f.tool == NO_TOOL:
            self.reset()
            return
        if not f.actionable:
            return
        keys, runs, n = self.keys, self.runs, len(self.keys)
        best, period = 0, 0
        for p in (1, 2, 3):
            if n >= p and keys[-p] == f.action_key:
                runs[p - 1] += 1
                if runs[p - 1] + p > best:
                    best, period = runs[p - 1] + p, p
            else:
                runs[p - 1] = 0
        keys.append(f.action_key)
        self.counted.append(f.step)
        self.length, self.period = best, period
        self.start = self.counted[-min(best, len(self.counted))] if best else f.step

    def evidence(self) -> dict[str, Any]:
        keys = [k[:_KEY_CHARS] for k in list(self.keys)[-self.period :]]
        return {"period": self.period, "keys": keys, "length": self.length}

    def reset(self) -> None:
        self.keys.clear()
        self.counted.clear()
        self.runs[0] = self.runs[1] = self.runs[2] = 0
        self.length = 0


class NoProgress(RunDetector):
    """Stall: `stall_steps` actionable steps without progress (notes, reads, checks, quotes and waits are not
    progress); steps with nothing productive to do neither count nor reset."""

    crash_type = "stall"
    min_length_field = "stall_steps"

    def update(self, f: StepFacts) -> None:
        if f.progress:
            self.length = 0
        elif f.actionable:
            self.extend(f.step)

    def evidence(self) -> dict[str, Any]:
        return {"rule": "no_progress", "steps": self.length}


class NoToolReplies(RunDetector):
    """Stall: consecutive replies without a tool call."""

    crash_type = "stall"
    min_length_field = "stall_no_tool_replies"

    def update(self, f: StepFacts) -> None:
        if f.tool == NO_TOOL:
            self.extend(f.step)
        else:
            self.length = 0

    def evidence(self) -> dict[str, Any]:
        return {"rule": "no_tool_replies", "replies": self.length}


class Idle(RunDetector):
    """Stall: consecutive passive steps (wait, or a reply without a call) while a productive action is
    available; steps with nothing productive to do neither count nor reset."""

    crash_type = "stall"
    min_length_field = "stall_idle_steps"

    def update(self, f: StepFacts) -> None:
        if not f.passive and f.tool != NO_TOOL:
            self.length = 0
        elif f.actionable:
            self.extend(f.step)

    def evidence(self) -> dict[str, Any]:
        return {"rule": "idle", "steps": self.length}


class DeclaredStop(Detector):
    """Stall: the agent states that it stops, with no next step (a reply without a call; the Episode decides
    what counts as such a statement). HARD if no progress follows within `confirm_steps`; an agent that says it
    gives up and then carries on has not abandoned the task."""

    crash_type = "stall"

    def __init__(self, thresholds: DetectorThresholds) -> None:
        super().__init__(thresholds)
        self.stated: int | None = None
        self.progressed = False

    def update(self, f: StepFacts) -> None:
        if f.declared_stop and self.stated is None:
            self.stated, self.progressed = f.step, False
        elif f.progress:
            self.progressed = True

    def opening(self, t: int) -> tuple[int, dict[str, Any]] | None:
        return (self.stated, {"rule": "declared_stop"}) if self.stated is not None else None

    def verdict(self, candidate: Candidate, t: int, final: bool = False) -> bool | None:
        if self.progressed:
            return False
        return True if final or t - candidate.detected >= self.th.confirm_steps else None

    def reset(self) -> None:
        self.stated = None


class EventWindow:
    """Events (step, kind) of the last `width` steps, with the trigger rule of one count-window detector."""

    __slots__ = ("events", "min_events", "rate", "share", "start", "width")

    def __init__(self, width: int, min_events: int, rate: float, share: bool) -> None:
        self.width, self.min_events, self.rate, self.share = width, min_events, rate, share
        self.events: deque[tuple[int, str]] = deque()
        self.start: int | None = None  # first step counted since the last reset

    def push(self, step: int, kind: str | None) -> None:
        if self.start is None:
            self.start = step
        events = self.events
        if kind is not None:
            events.append((step, kind))
        oldest = step - self.width
        while events and events[0][0] <= oldest:
            events.popleft()

    def steps_seen(self, step: int) -> int:
        return min(step - (self.start if self.start is not None else step) + 1, self.width)

    def triggered(self, step: int) -> bool:
        """At least `min_events`, and for a share rule at least `rate` of the steps seen (early in a run)."""
        n = len(self.events)
        return n >= self.min_events and (not self.share or n >= self.rate * self.steps_seen(step))

    def since(self, step: int) -> int:
        """Events after `step`."""
        return sum(1 for s, _ in self.events if s > step)

    def reset(self) -> None:
        self.events.clear()
        self.start = None

    def onset(self, step: int) -> int:
        """Change point: the event step s maximising events in [s, step] - rate * (step - s + 1) (earliest on
        ties). A clean history before a burst gives the burst's first event exactly."""
        best_score, best_step = -math.inf, step
        for count, (s, _) in enumerate(reversed(self.events), start=1):
            score = count - self.rate * (step - s + 1)
            if score >= best_score:
                best_score, best_step = score, s
        return best_step

    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, kind in self.events:
            out[kind] = out.get(kind, 0) + 1
        return out


class WindowDetector(Detector):
    """An event-rate pattern: opens when the window holds enough events; HARD if events kept coming at the
    trigger rate or faster over the `confirm_steps` after detection."""

    window: EventWindow

    def event(self, f: StepFacts) -> str | None:
        raise NotImplementedError

    def update(self, f: StepFacts) -> None:
        self.window.push(f.step, self.event(f))

    def opening(self, t: int) -> tuple[int, dict[str, Any]] | None:
        w = self.window
        if not w.triggered(t):
            return None
        evidence: dict[str, Any] = {"window": w.width, "events": len(w.events), "kinds": w.kinds()}
        if w.share:
            evidence["share"] = round(len(w.events) / w.steps_seen(t), 3)
        return w.onset(t), evidence

    def verdict(self, candidate: Candidate, t: int, final: bool = False) -> bool | None:
        elapsed = min(t - candidate.detected, self.th.confirm_steps)
        if elapsed < self.th.confirm_steps and not final:
            return None
        return self.window.since(candidate.detected) >= self.window.rate * elapsed - 1e-9

    def reset(self) -> None:
        self.window.reset()


class InvalidBurst(WindowDetector):
    """A high share of the agent's own errors (malformed calls, unknown tools or ids, replies without a call)."""

    crash_type = "invalid_burst"

    def __init__(self, thresholds: DetectorThresholds) -> None:
        super().__init__(thresholds)
        th = thresholds
        self.window = EventWindow(th.invalid_window, th.invalid_min_count, th.invalid_share, True)

    def event(self, f: StepFacts) -> str | None:
        return f.error_kind if f.error_kind in AGENT_ERRORS else None


class BudgetDenial(WindowDetector):
    """Keeps committing money it does not have: calls refused for insufficient funds, or any attempt to commit
    more than the cash it had. Judged on the money alone, never on a stated belief."""

    crash_type = "budget_denial"

    def __init__(self, thresholds: DetectorThresholds) -> None:
        super().__init__(thresholds)
        th = thresholds
        self.window = EventWindow(th.budget_window, th.budget_min_events, th.budget_min_events / th.budget_window,
                                  False)  # fmt: skip
        self.cash: int | None = None

    def event(self, f: StepFacts) -> str | None:
        before, self.cash = self.cash, f.cash_cents
        if f.error_kind == "insufficient_funds":
            return "insufficient_funds"
        if f.spend_cents > 0 and before is not None and f.spend_cents > before:
            return "spend_above_cash"
        return None


class Decoupling(WindowDetector):
    """Incoherence: attempts actions it states will fail, or spends more than its own stated cash belief
    (rolled forward by the actual cash changes since it was stated) though the money is there."""

    crash_type = "decoupling"
    endpoint = INCOHERENCE

    def __init__(self, thresholds: DetectorThresholds) -> None:
        super().__init__(thresholds)
        th = thresholds
        self.window = EventWindow(th.decoupling_window, th.decoupling_min_events,
                                  th.decoupling_min_events / th.decoupling_window, False)  # fmt: skip
        self.cash: int | None = None
        self.belief_offset: int | None = None  # stated cash belief - actual cash, at the step it was stated
        self.belief_step = 0

    def event(self, f: StepFacts) -> str | None:
        th, before, spend = self.th, self.cash, f.spend_cents
        self.cash = f.cash_cents
        offset = self.belief_offset if f.step - self.belief_step <= th.cash_belief_max_age else None
        if f.predicted_cash_cents is not None:
            self.belief_offset, self.belief_step = f.predicted_cash_cents - f.cash_cents, f.step
        if f.attempted and f.predicted_success is not None and f.predicted_success < th.decoupling_success_below:
            return "acted_against_prediction"
        if spend > 0 and offset is not None and before is not None and before >= spend > before + offset:
            return "spent_beyond_belief"
        return None


class ExplorationCollapse(Detector):
    """Tool-use entropy over the last `collapse_window` actionable steps, normalised by log(tools available), is
    collapsed while the agent still acts but the business hardly moves (one tool used over and over, with
    whatever arguments). Steps with nothing productive to do are not in the window."""

    crash_type = "exploration_collapse"

    def __init__(self, thresholds: DetectorThresholds, n_tools_available: int) -> None:
        super().__init__(thresholds)
        w = thresholds.collapse_window
        self.n_tools_available = n_tools_available
        self.log_tools = math.log(n_tools_available) if n_tools_available >= 2 else 0.0
        # window of (tool or None if not a valid use other than wait, actionable); counts of the chosen tools and
        # the running sum of c*log(c) over them
        # (tool or None, acted, progress) per actionable step
        self.tools: deque[tuple[str | None, bool, bool]] = deque()
        self.counts: dict[str, int] = {}
        self.n_chosen = 0
        self.clogc = [0.0] + [c * math.log(c) for c in range(1, w + 1)]
        self.sum_clogc = 0.0
        self.acts = 0  # valid actions (not reads or waits) in the window
        self.progress = 0  # progress steps in the window
        # (step, tool) of the chosen steps, longer than the window: a collapse is dated at the start of its run
        # even when the run began before the window
        self.chosen: deque[tuple[int, str]] = deque(maxlen=_HISTORY_WINDOWS * w)

    def update(self, f: StepFacts) -> None:
        if not f.actionable:
            return
        tool = f.tool if f.valid and not f.passive else None
        acted = f.attempted and f.valid
        tools, counts, clogc = self.tools, self.counts, self.clogc
        if len(tools) == self.th.collapse_window:
            old, old_acted, old_progress = tools.popleft()
            self.acts -= old_acted
            self.progress -= old_progress
            if old is not None:
                c = counts[old]
                self.sum_clogc += clogc[c - 1] - clogc[c]
                self.n_chosen -= 1
                if c == 1:
                    del counts[old]
                else:
                    counts[old] = c - 1
        tools.append((tool, acted, f.progress))
        self.acts += acted
        self.progress += f.progress
        if tool is not None:
            c = counts.get(tool, 0)
            self.sum_clogc += clogc[c + 1] - clogc[c]
            counts[tool] = c + 1
            self.n_chosen += 1
            self.chosen.append((f.step, tool))

    def entropy(self) -> float:
        """Entropy of the chosen tools in the window / log(tools available), clamped to [0, 1]."""
        n = self.n_chosen
        if n == 0:
            return 0.0
        h = math.log(n) - self.sum_clogc / n
        return min(1.0, max(0.0, h / self.log_tools))

    def holds(self) -> bool:
        # A window without any action, or mostly waiting, is a stall (the more specific type); collapse is
        # about an agent that still acts, through too few tools.
        th, n = self.th, len(self.tools)
        return (
            self.log_tools > 0.0
            and n == th.collapse_window
            and self.acts >= th.collapse_min_active_share * n
            and self.progress <= th.collapse_max_progress_share * n
            and self.entropy() < th.collapse_entropy_below
        )

    def opening(self, t: int) -> tuple[int, dict[str, Any]] | None:
        if not self.holds():
            return None
        # Onset: first chosen step of the trailing run whose chosen tools all belong to those of the window's
        # recent half (waits and rejected calls inside the run are skipped over).
        tools = [tool for tool, _, _ in self.tools]
        recent = {tool for tool in tools[len(tools) // 2 :] if tool is not None}
        onset = t
        for step, tool in reversed(self.chosen):
            if tool not in recent:
                break
            onset = step
        evidence = {
            "window": len(tools),
            "entropy_norm": round(self.entropy(), 4),
            "n_tools_available": self.n_tools_available,
            "tools": dict(self.counts),
        }
        return onset, evidence

    def verdict(self, candidate: Candidate, t: int, final: bool = False) -> bool | None:
        if t - candidate.detected < self.th.confirm_steps and not final:
            return None
        # Work running out is a change of the world, not a recovery: the window keeps its last actionable steps.
        return self.holds()

    def reset(self) -> None:
        self.tools.clear()
        self.counts.clear()
        self.sum_clogc = 0.0
        self.acts = 0
        self.progress = 0
        self.n_chosen = 0
        self.chosen.clear()


class SlowDivergence(Detector):
    """Incoherence: the stated cash and stock beliefs drift away from what the agent was last shown
    (`belief_error`): the EWMA of the errors stays above threshold over consecutive statements, with a rising
    trend."""

    crash_type = "slow_divergence"
    endpoint = INCOHERENCE

    def __init__(self, thresholds: DetectorThresholds) -> None:
        super().__init__(thresholds)
        th = thresholds
        self.alpha = 2.0 / (th.divergence_span + 1)
        self.ewma: float | None = None
        self.streak = 0
        self.crossed = 0
        self.reference = th.divergence_threshold / 2
        self.history: deque[tuple[int, float, float]] = deque(
            maxlen=th.divergence_min_updates + _HISTORY_WINDOWS * th.divergence_span
        )
        # online least-squares slope of belief_error on step (Welford-style: stable for long runs)
        self.n = 0
        self.mean_x = self.mean_y = self.cxy = self.m2x = 0.0

    def update(self, f: StepFacts) -> None:
        error, step = f.belief_error, f.step
        if error is None:
            return
        self.ewma = error if self.ewma is None else self.ewma + self.alpha * (error - self.ewma)
        self.history.append((step, error, self.ewma))
        self.n += 1
        dx = step - self.mean_x
        self.mean_x += dx / self.n
        self.mean_y += (error - self.mean_y) / self.n
        self.cxy += dx * (error - self.mean_y)
        self.m2x += dx * (step - self.mean_x)
        if self.ewma > self.th.divergence_threshold:
            if self.streak == 0:
                self.crossed = step
            self.streak += 1
        else:
            self.streak = 0

    def slope(self) -> float:
        return self.cxy / self.m2x if self.m2x > 0.0 else 0.0

    def holds(self) -> bool:
        return self.streak >= self.th.divergence_min_updates and self.slope() > 0.0

    def onset(self) -> int:
        """Change point of the belief errors (CUSUM): the statement s maximising sum(error - reference) over the
        statements from s on (earliest on ties), with reference = threshold / 2, searched back to the last
        calibrated state and never later than the EWMA's crossing."""
        reference, calibrated = self.reference, False
        best_score, best_step, score = -math.inf, self.crossed, 0.0
        for step, error, ewma in reversed(self.history):
            if calibrated and error <= reference:
                break
            score += error - reference
            if score >= best_score:
                best_score, best_step = score, step
            calibrated = calibrated or ewma <= reference
        return min(best_step, self.crossed)

    def opening(self, t: int) -> tuple[int, dict[str, Any]] | None:
        if not self.holds():
            return None
        return self.onset(), {
            "crossed_step": self.crossed,
            "ewma": round(self.ewma or 0.0, 4),
            "threshold": self.th.divergence_threshold,
            "updates_above": self.streak,
            "slope_per_step": round(self.slope(), 6),
        }

    def verdict(self, candidate: Candidate, t: int, final: bool = False) -> bool | None:
        if not self.holds():
            return False
        return True if final or t - candidate.detected >= self.th.confirm_steps else None

    def reset(self) -> None:
        self.streak = 0
        self.history.clear()


class CrashDetector:
    """Watches the step stream of one run: call `observe(facts)` once per step, in step order.

    `n_tools_available` (the size of the condition's tool set) normalises the exploration entropy; with fewer
    than 2 tools that detector is off. The detector keeps working after the crash (continue_after_crash)."""

    def __init__(self, thresholds: DetectorThresholds, n_tools_available: int) -> None:
        self.thresholds = thresholds
        self.n_tools_available = n_tools_available
        th = thresholds
        self.detectors: tuple[Detector, ...] = (
            Looping(th), InvalidBurst(th), BudgetDenial(th), ExplorationCollapse(th, n_tools_available),
            NoProgress(th), NoToolReplies(th), Idle(th), DeclaredStop(th), Decoupling(th), SlowDivergence(th),
        )  # fmt: skip
        self._open: list[Candidate | None] = [None] * len(self.detectors)
        self._last_soft: dict[str, tuple[int, int]] = {}  # crash type -> (recovered step, onset)
        self._signals: list[CrashSignal] = []
        self._crash: CrashSignal | None = None
        self._incoherence: CrashSignal | None = None

    @property
    def crash(self) -> CrashSignal | None:
        """The first hard signal of the primary endpoint (None while the run is uncrashed)."""
        return self._crash

    @property
    def incoherence(self) -> CrashSignal | None:
        """The first hard signal of the secondary endpoint (None while none)."""
        return self._incoherence

    @property
    def signals(self) -> tuple[CrashSignal, ...]:
        """All finalised signals of both endpoints, soft and hard, in the order they were finalised."""
        return tuple(self._signals)

    def observe(self, f: StepFacts) -> list[CrashSignal]:
        """Update every detector with one step; return the signals finalised at this step."""
        t, out = f.step, []
        for detector in self.detectors:
            detector.update(f)
        for i, detector in enumerate(self.detectors):
            candidate = self._open[i]
            if candidate is None:
                opened = detector.opening(t)
                if opened is not None:
                    candidate = Candidate(opened[0], t, opened[1], getattr(detector, "length", 0))
                    last = self._last_soft.get(detector.crash_type)
                    if last is not None and candidate.onset - last[0] <= self.thresholds.recurrence_steps:
                        # Recurrence: dated at this episode's onset (the agent did function again in between).
                        candidate.evidence.update(first_onset=last[1], recovered_step=last[0])
                        out.append(self._finalise(i, candidate, "hard", t, "recurred"))
                    elif self.thresholds.confirm_steps == 0:
                        out.append(self._finalise(i, candidate, "hard", t, "immediate"))
                    else:
                        self._open[i] = candidate
            else:
                hard = detector.verdict(candidate, t)
                if hard is not None:
                    out.append(self._finalise(i, candidate, "hard" if hard else "soft", t,
                                              "persisted" if hard else "recovered"))  # fmt: skip
        return self._record(out, key=lambda s: (s.onset_step, SIGNAL_TYPES.index(s.crash_type)))

    def business_failed(self, t: int) -> list[CrashSignal]:
        """The business failed at step `t` (the run ends): every open candidate is decided now, HARD if its
        pattern still holds. A breakdown that lasted until the world ended has persisted as long as it could;
        without this, a stall that lets the business die would be censored by the death it caused. Of several,
        the one detected first comes first: it is the one that would have been confirmed first."""
        out = []
        for i, detector in enumerate(self.detectors):
            candidate = self._open[i]
            if candidate is not None:
                hard = bool(detector.verdict(candidate, t, final=True))
                out.append(self._finalise(i, candidate, "hard" if hard else "soft", t,
                                          "until_business_failure" if hard else "recovered"))  # fmt: skip
        return self._record(out, key=lambda s: (s.detected_step, SIGNAL_TYPES.index(s.crash_type)))

    def _record(self, out: list[CrashSignal], key: Callable[[CrashSignal], tuple[int, int]]) -> list[CrashSignal]:
        if out:
            out.sort(key=key)
            self._signals.extend(out)
            for signal in out:
                if signal.severity != "hard":
                    continue
                if signal.endpoint == CRASH and self._crash is None:
                    self._crash = signal
                elif signal.endpoint == INCOHERENCE and self._incoherence is None:
                    self._incoherence = signal
        return out

    def _finalise(self, i: int, c: Candidate, severity: Severity, t: int, how: str) -> CrashSignal:
        detector = self.detectors[i]
        self._open[i] = None
        if severity == "soft":
            self._last_soft[detector.crash_type] = (t, c.onset)
        else:
            self._last_soft.pop(detector.crash_type, None)
        # A finalised episode is over: its detector starts afresh (so a lagging window cannot re-fire on the
        # same events, and a persisting pattern after a crash gives a new signal only after a new full run).
        detector.reset()
        evidence = {**c.evidence, "confirmation": how}
        return CrashSignal(
            crash_type=detector.crash_type,
            endpoint=detector.endpoint,
            onset_step=c.onset,
            detected_step=c.detected,
            resolved_step=t,
            severity=severity,
            evidence=evidence,
        )
