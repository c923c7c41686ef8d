"""Crash detection: behavioural breakdowns of the agent, read from one `StepFacts` per step.

Seven detectors (looping, invalid_burst, budget_denial, decoupling, exploration_collapse, slow_divergence,
stall) each raise a candidate when their pattern appears. A candidate is confirmed HARD if the pattern still
holds `confirm_steps` steps after detection, or if the same crash type recurs within `recurrence_steps` of an
earlier recovered (SOFT) signal; otherwise it is SOFT. A declared stop is an immediate ABANDON. The first hard
or abandon signal is the crash; its time-to-crash is its onset step. Every rule, threshold and the reason for
it: docs/METHOD.md, "Crash detection".

Harness problems (provider errors, limits) never become StepFacts, so they can never be crashes. Each
`observe` call is O(1) amortised (deques with running counts); work proportional to a window happens only when
a candidate opens.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CRASH_TYPES: tuple[str, ...] = (
    "looping",
    "invalid_burst",
    "budget_denial",
    "decoupling",
    "exploration_collapse",
    "slow_divergence",
    "stall",
)
"""Crash types, also the tie-break order when two signals with the same onset are finalised at one step."""

Severity = Literal["soft", "hard", "abandon"]
NO_TOOL = "<no_tool>"
UNKNOWN_TOOL = "<unknown>"
WAIT = "wait"
_NON_ACTIONS = frozenset({WAIT, NO_TOOL, UNKNOWN_TOOL})
_KEY_CHARS = 80  # action keys are truncated to this in evidence, to keep the trace compact
_HISTORY_WINDOWS = 3  # onset look-back of collapse and divergence, in windows / EWMA spans


@dataclass(slots=True)  # not frozen: one is built per step, and a frozen init costs twice as much
class StepFacts:
    """What the detector learns about one completed step (built by the Episode, one per step).

    Field meanings: docs/METHOD.md, "Crash detection"; `cash_cents` is cash after the step, and cash after the
    previous step is taken as cash before this one."""

    step: int
    tool: str
    action_key: str
    valid: bool
    error_kind: str | None
    mutated: bool
    result_digest: str
    spend_cents: int
    cash_cents: int
    predicted_success: float | None
    predicted_cash_cents: int | None
    belief_error: float | None
    pending_work: bool
    declared_stop: bool
    n_tools_available: int
    info_only: bool


@dataclass(frozen=True, slots=True)
class CrashSignal:
    """One finalised detection.

    `onset_step` is the first step of the breakdown (a crash's time-to-crash), `detected_step` the step its
    pattern was recognised, `resolved_step` the step its severity was decided (a run ends here on a crash)."""

    crash_type: str
    onset_step: int
    detected_step: int
    resolved_step: int
    severity: Severity
    evidence: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (evidence holds only str, int, float, lists and dicts of them)."""
        return {
            "crash_type": self.crash_type,
            "onset_step": self.onset_step,
            "detected_step": self.detected_step,
            "resolved_step": self.resolved_step,
            "severity": self.severity,
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrashSignal:
        """Inverse of `to_dict` (for reading traces back from logs)."""
        return cls(**{**data, "evidence": dict(data.get("evidence", {}))})


class DetectorThresholds(BaseModel):
    """Every threshold of the crash detector. Presets: `PRESETS`; semantics: docs/METHOD.md."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    confirm_steps: int = Field(10, ge=0)
    """Steps after detection at which a candidate is HARD if its pattern still holds (0: hard at once)."""
    recurrence_steps: int = Field(50, ge=0)
    """Steps after a SOFT signal's recovery within which a new onset of the same type is HARD at once."""
    looping_min_steps: int = Field(10, ge=6)
    """Steps in a no-progress cycle (period 1-3, first cycle included) that open a looping candidate."""
    invalid_window: int = Field(20, ge=2)
    """Sliding window (steps) for the invalid-action share."""
    invalid_share: float = Field(0.5, gt=0.0, le=1.0)
    """Share of invalid steps in the window (of the steps seen, early in a run) that opens a candidate."""
    invalid_min_count: int = Field(6, ge=1)
    """Minimum number of invalid steps in the window as well (stops 2 of 3 early steps from firing)."""
    budget_window: int = Field(20, ge=1)
    """Sliding window (steps) for budget-denial events."""
    budget_min_events: int = Field(4, ge=1)
    """Budget-denial events in the window that open a candidate."""
    budget_belief_rel_tol: float = Field(0.5, ge=0.0)
    """Committing money while the current stated cash belief exceeds actual cash by this fraction of |cash|
    ..."""
    budget_belief_abs_tol_cents: int = Field(2000, ge=0)
    """... plus this many cents."""
    cash_belief_max_age: int = Field(10, ge=0)
    """Steps a stated cash belief stays the agent's current belief (budget_denial and decoupling)."""
    decoupling_window: int = Field(20, ge=1)
    """Sliding window (steps) for decoupling events."""
    decoupling_min_events: int = Field(4, ge=1)
    """Decoupling events in the window that open a candidate."""
    decoupling_success_below: float = Field(0.5, gt=0.0, le=1.0)
    """An action taken while its stated success probability is below this contradicts the prediction."""
    collapse_window: int = Field(30, ge=2)
    """Window (steps) of the tool-use entropy."""
    collapse_entropy_below: float = Field(0.35, gt=0.0, le=1.0)
    """Entropy / log(n_tools_available) below this is collapsed exploration."""
    collapse_pending_share: float = Field(0.8, ge=0.0, le=1.0)
    """Share of window steps with pending work required (collapse only counts while there is work)."""
    collapse_min_active_share: float = Field(0.5, ge=0.0, le=1.0)
    """Share of window steps that are valid tool uses other than wait required (the entropy is over those: a
    window mostly waiting is stall's business, one mostly rejected is invalid_burst's)."""
    divergence_span: int = Field(10, ge=1)
    """EWMA span of belief_error in resolved beliefs (alpha = 2 / (span + 1))."""
    divergence_threshold: float = Field(0.3, gt=0.0, lt=1.0)
    """EWMA of belief_error (in [0, 1]) above this counts as diverged."""
    divergence_min_updates: int = Field(10, ge=1)
    """Consecutive belief updates with the EWMA above threshold (and a positive run slope) that open one."""
    stall_steps: int = Field(30, ge=1)
    """Steps with pending work and no world-changing action that open a stall candidate."""
    stall_no_tool_replies: int = Field(5, ge=1)
    """Consecutive replies without a tool call that open a stall candidate."""
    stall_idle_steps: int = Field(15, ge=1)
    """Consecutive passive steps (wait or no tool call) with pending work that open a stall candidate: the agent
    neither acts nor even looks at the business (steps without pending work neither count nor reset)."""

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
        return self


PRESETS: dict[str, DetectorThresholds] = {
    "strict": DetectorThresholds(
        confirm_steps=5,
        recurrence_steps=100,
        looping_min_steps=6,
        invalid_share=0.4,
        invalid_min_count=4,
        budget_min_events=3,
        budget_belief_rel_tol=0.25,
        budget_belief_abs_tol_cents=1000,
        decoupling_min_events=3,
        collapse_window=20,
        collapse_entropy_below=0.35,
        collapse_pending_share=0.7,
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
        invalid_share=0.6,
        invalid_min_count=8,
        budget_min_events=6,
        budget_belief_rel_tol=1.0,
        budget_belief_abs_tol_cents=5000,
        decoupling_min_events=6,
        collapse_window=40,
        collapse_entropy_below=0.25,
        collapse_pending_share=0.9,
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


class _EventWindow:
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


class _Pending:
    """A candidate waiting for confirmation."""

    __slots__ = ("crash_type", "detected", "evidence", "onset", "post_events")

    def __init__(self, crash_type: str, onset: int, detected: int, evidence: dict[str, Any]) -> None:
        self.crash_type, self.onset, self.detected, self.evidence = crash_type, onset, detected, evidence
        self.post_events = 0  # events after detection (window-count detectors)


# Detector slot -> crash type: one slot per detector, except stall's three counted rules (each with its own candidate).
_SLOT_TYPE = {**{t: t for t in CRASH_TYPES}, "stall_no_tool": "stall", "stall_idle": "stall"}


class CrashDetector:
    """Watches the step stream of one run: call `observe(facts)` once per step, in step order.

    `n_tools_available` (the size of the condition's tool set) normalises the exploration entropy; with fewer
    than 2 tools that detector is off. The detector keeps working after the crash (continue_after_crash)."""

    def __init__(self, thresholds: DetectorThresholds, n_tools_available: int) -> None:
        th = self.thresholds = thresholds
        self.n_tools_available = n_tools_available
        self._signals: list[CrashSignal] = []
        self._crash: CrashSignal | None = None
        self._pending: dict[str, _Pending | None] = dict.fromkeys(_SLOT_TYPE)
        self._last_soft: dict[str, tuple[int, int]] = {}  # crash type -> (recovered step, onset)
        self._prev_cash: int | None = None
        # looping: last 3 (key, digest) since the last progress/wait/no-tool step; runs per period 1..3
        self._hist: deque[tuple[str, str]] = deque(maxlen=3)
        self._runs = [0, 0, 0]
        self._loop_len = 0
        self._loop_period = 0
        # count-window detectors
        self._windows = {
            "invalid_burst": _EventWindow(th.invalid_window, th.invalid_min_count, th.invalid_share, True),
            "budget_denial": _EventWindow(
                th.budget_window, th.budget_min_events, th.budget_min_events / th.budget_window, False
            ),
            "decoupling": _EventWindow(
                th.decoupling_window,
                th.decoupling_min_events,
                th.decoupling_min_events / th.decoupling_window,
                False,
            ),
        }
        self._belief_offset: int | None = None  # stated cash belief - actual cash, at the step it was stated
        self._belief_step = 0
        self._belief_far_above = False
        # exploration collapse: window of (tool or None if not a valid non-wait use, pending); counts of the
        # chosen tools and the running sum of c*log(c) over them
        w = th.collapse_window
        self._tools: deque[tuple[str | None, bool]] = deque()
        self._tool_counts: dict[str, int] = {}
        self._n_chosen = 0
        self._clogc = [0.0] + [c * math.log(c) for c in range(1, w + 1)]
        self._sum_clogc = 0.0
        self._window_pending = 0
        self._log_tools = math.log(n_tools_available) if n_tools_available >= 2 else 0.0
        # (step, tool) of the chosen steps, longer than the window: a collapse is dated at the start of its run
        # even when the run began before the window (e.g. while no work was pending)
        self._chosen: deque[tuple[int, str]] = deque(maxlen=_HISTORY_WINDOWS * w)
        # slow divergence: EWMA, streak above threshold, online least-squares slope of belief_error on step
        self._alpha = 2.0 / (th.divergence_span + 1)
        self._ewma: float | None = None
        self._div_streak = 0
        self._div_start = 0
        self._div_reference = th.divergence_threshold / 2
        self._div_hist: deque[tuple[int, float, float]] = deque(
            maxlen=th.divergence_min_updates + _HISTORY_WINDOWS * th.divergence_span
        )
        self._n_beliefs = 0
        self._mean_x = self._mean_y = self._cxy = self._m2x = 0.0
        # stall
        self._last_mutation = -(10**9)
        self._stall = 0
        self._stall_start = 0
        self._no_tool_run = 0
        self._no_tool_start = 0
        self._idle_run = 0
        self._idle_start = 0

    @property
    def crash(self) -> CrashSignal | None:
        """The first hard or abandon signal (None while the run is uncrashed)."""
        return self._crash

    @property
    def signals(self) -> tuple[CrashSignal, ...]:
        """All finalised signals, soft and hard, in the order they were finalised."""
        return tuple(self._signals)

    def observe(self, f: StepFacts) -> list[CrashSignal]:
        """Update every detector with one step; return the signals finalised at this step."""
        th, t, out = self.thresholds, f.step, []
        if f.declared_stop:
            out.append(CrashSignal("stall", t, t, t, "abandon", {"rule": "declared_stop"}))
        self._update_looping(f)
        budget_kind, decoupling_kind = self._money_events(f)
        self._update_collapse(t, f.tool if f.valid and f.tool != WAIT else None, f.pending_work)
        if f.belief_error is not None:
            self._update_divergence(t, f.belief_error)
        if f.mutated:
            self._stall = 0
            self._last_mutation = t
        elif f.pending_work:
            if self._stall == 0:
                self._stall_start = t
            self._stall += 1
        if f.tool == NO_TOOL:
            if self._no_tool_run == 0:
                self._no_tool_start = t
            self._no_tool_run += 1
        else:
            self._no_tool_run = 0
        if f.tool != WAIT and f.tool != NO_TOOL:
            self._idle_run = 0
        elif f.pending_work:
            if self._idle_run == 0:
                self._idle_start = t
            self._idle_run += 1
        self._prev_cash = f.cash_cents

        self._run_slot("looping", t, self._loop_len >= th.looping_min_steps, out)
        self._run_slot("stall", t, self._stall >= th.stall_steps, out)
        self._run_slot("stall_no_tool", t, self._no_tool_run >= th.stall_no_tool_replies, out)
        self._run_slot("stall_idle", t, self._idle_run >= th.stall_idle_steps, out)
        self._run_slot("slow_divergence", t, self._divergence_holds(), out)
        self._count_slot("invalid_burst", t, None if f.valid else (f.error_kind or "invalid"), out)
        self._count_slot("budget_denial", t, budget_kind, out)
        self._count_slot("decoupling", t, decoupling_kind, out)
        self._collapse_slot(t, out)

        if out:
            out.sort(key=lambda s: (s.onset_step, CRASH_TYPES.index(s.crash_type)))
            self._signals.extend(out)
            if self._crash is None:
                self._crash = next((s for s in out if s.severity != "soft"), None)
        return out

    # ---- per-detector state updates -------------------------------------------------------------------

    def _update_looping(self, f: StepFacts) -> None:
        # Progress, waiting (time passes: stall's business) and no-tool replies (stall/invalid) break loops.
        if f.mutated or f.tool == WAIT or f.tool == NO_TOOL:
            self._hist.clear()
            self._runs[0] = self._runs[1] = self._runs[2] = 0
            self._loop_len = 0
            return
        key, digest, pending = f.action_key, f.result_digest, f.pending_work
        hist, runs, n = self._hist, self._runs, len(self._hist)
        best, period = 0, 0
        for p in (1, 2, 3):
            # News (a new digest) breaks a loop only while idle: with work pending, repeating a call without
            # acting is a loop whatever it returns (the world changes daily; shocks must not hide loops).
            if n >= p and hist[-p][0] == key and (pending or hist[-p][1] == digest):
                runs[p - 1] += 1
                if runs[p - 1] + p > best:
                    best, period = runs[p - 1] + p, p
            else:
                runs[p - 1] = 0
        hist.append((key, digest))
        self._loop_len, self._loop_period = best, period

    def _money_events(self, f: StepFacts) -> tuple[str | None, str | None]:
        th, prev, spend, t = self.thresholds, self._prev_cash, f.spend_cents, f.step
        # The belief held before this step (for decoupling), then this step's statement, if any.
        offset = self._belief_offset if t - self._belief_step <= th.cash_belief_max_age else None
        if f.predicted_cash_cents is not None:
            self._belief_offset, self._belief_step = f.predicted_cash_cents - f.cash_cents, t
            self._belief_far_above = self._belief_offset > (
                th.budget_belief_rel_tol * abs(f.cash_cents) + th.budget_belief_abs_tol_cents
            )
        budget = None
        if f.error_kind == "insufficient_funds" or (spend > 0 and prev is not None and spend > prev):
            budget = "spend_above_cash"
        elif spend > 0 and self._belief_far_above and t - self._belief_step <= th.cash_belief_max_age:
            budget = "belief_above_cash"  # commits money while believing in far more cash than there is
        decoupling = None
        acted = f.mutated or spend > 0 or not (f.info_only or f.tool in _NON_ACTIONS)
        if acted and f.predicted_success is not None and f.predicted_success < th.decoupling_success_below:
            decoupling = "acted_against_prediction"
        elif budget is None and spend > 0 and offset is not None and prev is not None and spend > prev + offset:
            # Spends more than it believes it has (belief rolled forward by actual cash changes), though the
            # money is there: spending beyond real cash or on an inflated belief is budget_denial's business.
            decoupling = "spent_beyond_belief"
        return budget, decoupling

    def _update_collapse(self, step: int, tool: str | None, pending: bool) -> None:
        tools, counts, clogc = self._tools, self._tool_counts, self._clogc
        if len(tools) == self.thresholds.collapse_window:
            old, old_pending = tools.popleft()
            self._window_pending -= old_pending
            if old is not None:
                c = counts[old]
                self._sum_clogc += clogc[c - 1] - clogc[c]
                self._n_chosen -= 1
                if c == 1:
                    del counts[old]
                else:
                    counts[old] = c - 1
        tools.append((tool, pending))
        self._window_pending += pending
        if tool is not None:
            c = counts.get(tool, 0)
            self._sum_clogc += clogc[c + 1] - clogc[c]
            counts[tool] = c + 1
            self._n_chosen += 1
            self._chosen.append((step, tool))

    def _collapse_entropy(self) -> float:
        """Entropy of the chosen tools in the window / log(tools available), clamped to [0, 1]."""
        n = self._n_chosen
        if n == 0:
            return 0.0
        h = math.log(n) - self._sum_clogc / n
        return min(1.0, max(0.0, h / self._log_tools))

    def _collapse_holds(self, t: int, need_pending: bool = True) -> bool:
        # A window without any world-changing action, or mostly waiting, is a stall (the more specific type);
        # collapse is about an agent that still acts, through too few tools.
        th, n = self.thresholds, len(self._tools)
        return (
            self._log_tools > 0.0
            and n == th.collapse_window
            and t - self._last_mutation < n
            and (not need_pending or self._window_pending >= th.collapse_pending_share * n)
            and self._n_chosen >= th.collapse_min_active_share * n
            and self._collapse_entropy() < th.collapse_entropy_below
        )

    def _reset_collapse(self) -> None:
        self._tools.clear()
        self._tool_counts.clear()
        self._sum_clogc = 0.0
        self._window_pending = 0
        self._n_chosen = 0
        self._chosen.clear()

    def _update_divergence(self, step: int, error: float) -> None:
        self._ewma = error if self._ewma is None else self._ewma + self._alpha * (error - self._ewma)
        self._div_hist.append((step, error, self._ewma))
        self._n_beliefs += 1  # Welford-style running covariance: stable for long runs
        dx = step - self._mean_x
        self._mean_x += dx / self._n_beliefs
        self._mean_y += (error - self._mean_y) / self._n_beliefs
        self._cxy += dx * (error - self._mean_y)
        self._m2x += dx * (step - self._mean_x)
        if self._ewma > self.thresholds.divergence_threshold:
            if self._div_streak == 0:
                self._div_start = step
            self._div_streak += 1
        else:
            self._div_streak = 0

    def _divergence_slope(self) -> float:
        return self._cxy / self._m2x if self._m2x > 0.0 else 0.0

    def _divergence_onset(self) -> int:
        """Change point of the belief errors (CUSUM): the update s maximising sum(error - reference) over the
        updates from s on (earliest on ties), with reference = threshold / 2, halfway between calibrated and
        diverged. s is searched back to the last update that left the EWMA at or below the reference (the
        last calibrated state) and through the unbroken run of above-reference errors just before it, and is
        never later than the EWMA's crossing. Errors that rise from a calibrated level give the first step of
        the rise; the crossing lags it by the EWMA's delay."""
        reference, calibrated = self._div_reference, False
        best_score, best_step, score = -math.inf, self._div_start, 0.0
        for step, error, ewma in reversed(self._div_hist):
            if calibrated and error <= reference:
                break
            score += error - reference
            if score >= best_score:
                best_score, best_step = score, step
            calibrated = calibrated or ewma <= reference
        return min(best_step, self._div_start)

    def _divergence_holds(self) -> bool:
        return self._div_streak >= self.thresholds.divergence_min_updates and self._divergence_slope() > 0.0

    # ---- candidates and confirmation ----------------------------------------------------------------------

    def _run_slot(self, slot: str, t: int, holds: bool, out: list[CrashSignal]) -> None:
        """Run-like patterns (a loop, a stall, a streak): recovered as soon as the run breaks."""
        pending = self._pending[slot]
        if pending is not None:
            if not holds:
                out.append(self._finalise(slot, pending, "soft", t, "recovered"))
            elif t - pending.detected >= self.thresholds.confirm_steps:
                out.append(self._finalise(slot, pending, "hard", t, "persisted"))
        elif holds:
            self._open(slot, t, *self._run_onset(slot, t), out)

    def _run_onset(self, slot: str, t: int) -> tuple[int, dict[str, Any]]:
        """Onset (first step of the run) and evidence of a run-like candidate."""
        th = self.thresholds
        if slot == "looping":
            p = self._loop_period
            keys = [k[:_KEY_CHARS] for k, _ in list(self._hist)[-p:]]
            return t - self._loop_len + 1, {"period": p, "keys": keys, "length": self._loop_len}
        if slot == "stall":
            return self._stall_start, {"rule": "no_progress", "steps": self._stall}
        if slot == "stall_no_tool":
            return self._no_tool_start, {"rule": "no_tool_replies", "replies": self._no_tool_run}
        if slot == "stall_idle":
            return self._idle_start, {"rule": "idle", "steps": self._idle_run}
        return self._divergence_onset(), {
            "crossed_step": self._div_start,
            "ewma": round(self._ewma or 0.0, 4),
            "threshold": th.divergence_threshold,
            "updates_above": self._div_streak,
            "slope_per_step": round(self._divergence_slope(), 6),
        }

    def _count_slot(self, slot: str, t: int, kind: str | None, out: list[CrashSignal]) -> None:
        """Event-rate patterns: HARD if events keep coming at >= the trigger rate over the confirm steps."""
        window = self._windows[slot]
        window.push(t, kind)
        pending = self._pending[slot]
        if pending is not None:
            pending.post_events += kind is not None
            r = self.thresholds.confirm_steps
            if t - pending.detected >= r:
                hard = pending.post_events >= window.rate * r - 1e-9
                severity: Severity = "hard" if hard else "soft"
                out.append(self._finalise(slot, pending, severity, t, "persisted" if hard else "recovered"))
        elif window.triggered(t):
            evidence: dict[str, Any] = {"window": window.width, "events": len(window.events)}
            evidence["kinds"] = window.kinds()
            if window.share:
                evidence["share"] = round(len(window.events) / window.steps_seen(t), 3)
            self._open(slot, t, window.onset(t), evidence, out)

    def _collapse_slot(self, t: int, out: list[CrashSignal]) -> None:
        """Entropy pattern: HARD if the window is still collapsed `confirm_steps` after detection."""
        pending = self._pending["exploration_collapse"]
        if pending is not None:
            if t - pending.detected >= self.thresholds.confirm_steps:
                # Work running out is a change of the world, not a recovery: persistence needs only the
                # agent's side of the pattern (low entropy over enough active steps, still acting).
                holds = self._collapse_holds(t, need_pending=False)
                severity: Severity = "hard" if holds else "soft"
                how = "persisted" if holds else "recovered"
                out.append(self._finalise("exploration_collapse", pending, severity, t, how))
        elif self._collapse_holds(t):
            # Onset: first chosen step of the trailing run whose chosen tools all belong to those of the
            # window's recent half (waits and rejected calls inside the run are skipped over; the run may
            # reach back before the window).
            tools = [tool for tool, _ in self._tools]
            recent = {tool for tool in tools[len(tools) // 2 :] if tool is not None}
            onset = t
            for step, tool in reversed(self._chosen):
                if tool not in recent:
                    break
                onset = step
            evidence = {
                "window": len(tools),
                "entropy_norm": round(self._collapse_entropy(), 4),
                "n_tools_available": self.n_tools_available,
                "tools": dict(self._tool_counts),
            }
            self._open("exploration_collapse", t, onset, evidence, out)

    def _open(self, slot: str, t: int, onset: int, evidence: dict[str, Any], out: list[CrashSignal]) -> None:
        crash_type = _SLOT_TYPE[slot]
        pending = _Pending(crash_type, onset, t, evidence)
        last = self._last_soft.get(crash_type)
        if last is not None and onset - last[0] <= self.thresholds.recurrence_steps:
            # Recurrence: dated at this episode's onset (the agent did function again after the first one).
            evidence.update(first_onset=last[1], recovered_step=last[0])
            out.append(self._finalise(slot, pending, "hard", t, "recurred"))
        elif self.thresholds.confirm_steps == 0:
            out.append(self._finalise(slot, pending, "hard", t, "immediate"))
        else:
            self._pending[slot] = pending

    def _finalise(self, slot: str, p: _Pending, severity: Severity, t: int, how: str) -> CrashSignal:
        self._pending[slot] = None
        if severity == "soft":
            self._last_soft[p.crash_type] = (t, p.onset)
        else:
            self._last_soft.pop(p.crash_type, None)
        # A finalised episode is over: its detector starts afresh (so a lagging window cannot re-fire on the
        # same events, and a persisting pattern after a crash gives a new signal only after a new full run).
        if slot == "looping":
            self._hist.clear()
            self._runs[0] = self._runs[1] = self._runs[2] = 0
            self._loop_len = 0
        elif slot == "stall":
            self._stall = 0
        elif slot == "stall_no_tool":
            self._no_tool_run = 0
        elif slot == "stall_idle":
            self._idle_run = 0
        elif slot == "slow_divergence":
            self._div_streak = 0
            self._div_hist.clear()
        elif slot == "exploration_collapse":
            self._reset_collapse()
        else:
            self._windows[slot].reset()
        evidence = {**p.evidence, "confirmation": how}
        return CrashSignal(p.crash_type, p.onset, p.detected, t, severity, evidence)
