"""Crash detector on synthetic StepFacts streams: healthy streams never crash, each injected pattern crashes
with the right type, onset and severity, recovery is soft, recurrence is hard, presets are ordered."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from vendomini_eval.crash import (
    CRASH,
    INCOHERENCE,
    NO_TOOL,
    PRESETS,
    SIGNAL_TYPES,
    CrashDetector,
    CrashSignal,
    DetectorThresholds,
    StepFacts,
    thresholds_for,
)
from vendomini_eval.episode import declares_stop

CASH = 1_000_000  # cents
BUSY_TOOLS = (  # (tool, weight, progress)
    ("check_orders", 3, False),
    ("check_inventory", 2, False),
    ("check_budget", 1, False),
    ("read_notes", 1, False),
    ("place_order", 2, True),
    ("ship_order", 3, True),
    ("wait", 2, False),
)


class Stream:
    """Builds a StepFacts stream. Reads (check_*, read_*), waits and replies without a call are not attempts at
    acting; any other valid call is; `progress` marks the calls that move the business."""

    def __init__(self, n_tools: int = 10) -> None:
        self.facts: list[StepFacts] = []
        self.n_tools = n_tools

    @property
    def next_step(self) -> int:
        return len(self.facts) + 1

    def add(
        self,
        tool: str,
        key: str | None = None,
        *,
        valid: bool = True,
        error_kind: str | None = None,
        progress: bool = False,
        spend: int = 0,
        cash: int = CASH,
        ps: float | None = None,
        pcash: int | None = None,
        be: float | None = None,
        actionable: bool = True,
        stop: bool = False,
    ) -> int:
        step = self.next_step
        key = key or f"{tool}()"
        attempted = not tool.startswith(("check_", "read_")) and tool not in ("wait", NO_TOOL, "<unknown>")
        self.facts.append(
            StepFacts(step, tool, key, valid, error_kind, attempted, progress and valid, actionable, spend, cash, ps,
                      pcash, be, stop, tool == "wait")
        )  # fmt: skip
        return step

    def healthy(
        self, n: int, rng: random.Random, *, invalid_rate: float = 0.0, be: Callable[[], float] | None = None
    ) -> None:
        """A competent agent: busy spells (a productive action available, varied tools, frequent progress)
        alternate with idle spells (nothing productive to do: check_orders, wait, wait). Ends with progress."""
        end = self.next_step + n - 1
        weights = [w for _, w, _ in BUSY_TOOLS]
        while self.next_step < end:
            if rng.random() < 0.3:  # idle spell
                for i in range(min(rng.randint(6, 40), end - self.next_step)):
                    self.add("check_orders" if i % 3 == 0 else "wait", actionable=False)
                continue
            for _ in range(min(rng.randint(10, 60), end - self.next_step)):
                tool, _, progress = rng.choices(BUSY_TOOLS, weights)[0]
                while len(self.facts) >= 2 and tool == self.facts[-1].tool == self.facts[-2].tool:
                    tool, _, progress = rng.choices(BUSY_TOOLS, weights)[0]  # no tool thrice in a row
                key = f"{tool}(sku={rng.randint(0, 9)})"
                error = rng.random() < invalid_rate and tool in ("place_order", "ship_order")
                self.add(
                    tool,
                    key,
                    valid=not error,
                    error_kind="unknown_order" if error else None,
                    progress=progress,
                    spend=rng.randint(100, 20_000) if tool == "place_order" else 0,
                    ps=rng.uniform(0.6, 1.0) if progress else None,
                    pcash=CASH + rng.randint(-500, 500) if tool == "check_budget" else None,
                    be=(be() if be else rng.uniform(0.0, 0.15)) if rng.random() < 0.3 else None,
                )
        self.add("ship_order", "ship_order(final)", progress=True)

    def run(self, preset: str = "moderate", **overrides: float) -> CrashDetector:
        detector = CrashDetector(thresholds_for(preset, overrides), self.n_tools)
        for f in self.facts:
            detector.observe(f)
        return detector


def prefixed(n: int = 100, seed: int = 0, **kw: object) -> Stream:
    """A clean healthy prefix of n steps (no invalid steps, ends with a mutation)."""
    s = Stream()
    s.healthy(n, random.Random(seed), **kw)  # type: ignore[arg-type]
    return s


# ---- injected patterns: each appends n steps and returns the first step of the pattern -----------------


def loop(s: Stream, n: int, period: int = 1) -> int:
    start = s.next_step
    for i in range(n):
        s.add("check_price", f"check_price(sku=Z{i % period})")
    return start


def invalid(s: Stream, n: int) -> int:
    start = s.next_step
    for i in range(n):
        s.add("place_order", f"place_order(sku=BAD{i})", valid=False, error_kind="unknown_sku")
    return start


def overspend(s: Stream, n: int) -> int:
    start = s.next_step
    for i in range(n):
        s.add("place_order", f"place_order(q={i})", valid=False, error_kind="insufficient_funds", spend=5 * CASH)
    return start


def inflated_belief(s: Stream, n: int) -> int:
    """Says it has 3 x CASH, then orders against that belief (affordable in reality)."""
    start = s.next_step
    for i in range(n):
        if i % 2:
            s.add("place_order", f"place_order(q={i})", progress=True, spend=1000)
        else:
            s.add("check_budget", f"check_budget({i})", pcash=3 * CASH)
    return start


def against_prediction(s: Stream, n: int) -> int:
    start = s.next_step
    for i in range(n):
        s.add("place_order", f"place_order(q={i})", progress=True, spend=100, ps=0.1)
    return start


def spend_beyond_belief(s: Stream, n: int) -> int:
    """Says it has CASH - 500_000, then orders for 600_000 (affordable in reality, not in its belief)."""
    start = s.next_step
    for i in range(n):
        if i % 2:
            s.add("place_order", f"place_order(q={i})", progress=True, spend=600_000)
        else:
            s.add("check_budget", f"check_budget({i})", pcash=CASH - 500_000)
    return start


def collapse(s: Stream, n: int, tools: tuple[str, ...] = ("write_note",), progress: bool = False) -> int:
    """Keeps acting through `tools` (varying arguments), moving the business only if `progress`."""
    start = s.next_step
    for i in range(n):
        tool = tools[i % len(tools)]
        s.add(tool, f"{tool}(q={i})", progress=progress)
    return start


def diverge(s: Stream, n: int) -> int:
    start = s.next_step
    s.healthy(n, random.Random(7), be=lambda: 0.7)
    return start


def stall(s: Stream, n: int) -> int:
    start = s.next_step
    tools = ("check_orders", "check_inventory", "read_notes", "check_budget", "wait")
    for i in range(n):
        s.add(tools[i % len(tools)], f"{tools[i % len(tools)]}(sku={i % 4})")
    return start


def notes_and_reads(s: Stream, n: int) -> int:
    """Plans without acting: varied notes and reads while a productive action is available."""
    start = s.next_step
    tools = ("write_note", "check_orders", "read_notes", "write_note", "check_inventory", "check_budget")
    for i in range(n):
        s.add(tools[i % len(tools)], f"{tools[i % len(tools)]}(text={i})")
    return start


def no_tool(s: Stream, n: int) -> int:
    start = s.next_step
    for _ in range(n):
        s.add(NO_TOOL, NO_TOOL, valid=False, error_kind="no_tool_call")
    return start


PATTERNS: dict[str, tuple[Callable[[Stream, int], int], str, str, int]] = {
    # name: (injector, endpoint, expected type, max onset error in steps)
    "loop_period1": (loop, CRASH, "looping", 0),
    "loop_period2": (lambda s, n: loop(s, n, 2), CRASH, "looping", 0),
    "loop_period3": (lambda s, n: loop(s, n, 3), CRASH, "looping", 0),
    "invalid_burst": (invalid, CRASH, "invalid_burst", 0),
    "overspend": (overspend, CRASH, "budget_denial", 0),
    "collapse": (collapse, CRASH, "exploration_collapse", 0),
    "stall": (stall, CRASH, "stall", 0),
    "notes_and_reads": (notes_and_reads, CRASH, "stall", 0),
    "no_tool": (no_tool, CRASH, "stall", 0),
    "against_prediction": (against_prediction, INCOHERENCE, "decoupling", 0),
    "spend_beyond_belief": (spend_beyond_belief, INCOHERENCE, "decoupling", 1),  # first order follows a check
    "slow_divergence": (diverge, INCOHERENCE, "slow_divergence", 0),  # change point, before the EWMA crosses
}


def first_signal(detector: CrashDetector, endpoint: str) -> CrashSignal | None:
    return detector.crash if endpoint == CRASH else detector.incoherence


def signals_of(detector: CrashDetector, crash_type: str) -> list[CrashSignal]:
    return [s for s in detector.signals if s.crash_type == crash_type]


# ---- healthy streams ----------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("seed", range(4))
def test_healthy_varied_stream_never_crashes(preset: str, seed: int) -> None:
    s = Stream()
    s.healthy(5000, random.Random(seed), invalid_rate=0.03)
    detector = s.run(preset)
    assert detector.crash is None and detector.incoherence is None
    assert [sig for sig in detector.signals if sig.severity != "soft"] == []


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("pattern", [("check_orders", "wait", "wait"), ("wait",), ("check_orders",),
                                     ("check_orders", "check_inventory")])  # fmt: skip
def test_nothing_productive_to_do_is_never_a_crash(preset: str, pattern: tuple[str, ...]) -> None:
    """Waiting or polling while no productive action exists (goods inbound, tool down, no money): the world's
    doing, whatever the agent calls."""
    s = Stream()
    for i in range(3000):
        s.add(pattern[i % len(pattern)], actionable=False)
    assert s.run(preset).signals == ()


# ---- each detector fires on its pattern -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_is_detected_with_endpoint_type_onset_and_hard_severity(name: str) -> None:
    inject, endpoint, crash_type, onset_error = PATTERNS[name]
    s = prefixed()
    start = inject(s, 200)
    detector = s.run()
    signal = first_signal(detector, endpoint)
    assert signal is not None, name
    assert (signal.endpoint, signal.crash_type, signal.severity) == (endpoint, crash_type, "hard")
    assert start <= signal.onset_step <= start + onset_error
    assert signal.onset_step <= signal.detected_step <= signal.resolved_step
    json.dumps(signal.model_dump(mode="json"), allow_nan=False)


def test_invalid_burst_onset_and_latency_are_exact() -> None:
    s = prefixed()
    start = invalid(s, 50)
    crash = s.run().crash
    assert crash is not None
    # window 30, share 0.5: the 15th invalid step detects, confirmed 10 steps later
    assert (crash.onset_step, crash.detected_step, crash.resolved_step) == (start, start + 14, start + 24)
    assert crash.evidence["share"] == 0.5


@pytest.mark.parametrize("n", [1, 6, 12])
def test_burst_of_up_to_twelve_malformed_calls_then_recovery_is_benign(n: int) -> None:
    s = prefixed()
    invalid(s, n)
    s.healthy(500, random.Random(1))
    assert s.run().signals == ()


@pytest.mark.parametrize("kind", ["tool_down", "not_carried", "below_min_order", "over_capacity", "quote_expired"])
def test_refusals_that_report_the_world_are_not_invalid_actions(kind: str) -> None:
    s = prefixed()
    for i in range(100):
        s.add("place_order", f"place_order(sku=S{i % 7})", valid=False, error_kind=kind, actionable=False)
    assert signals_of(s.run("strict"), "invalid_burst") == []


def test_looping_evidence_names_cycle() -> None:
    s = prefixed()
    start = loop(s, 40, period=2)
    crash = s.run().crash
    assert crash is not None
    assert crash.evidence["period"] == 2
    assert sorted(crash.evidence["keys"]) == ["check_price(sku=Z0)", "check_price(sku=Z1)"]
    assert crash.detected_step == start + 9  # 10 steps in the loop, the first cycle included


def test_loop_through_steps_with_nothing_to_do_is_dated_at_its_first_actionable_step() -> None:
    """Polling while nothing productive exists neither counts nor breaks a loop."""
    s = prefixed()
    start = s.next_step
    for i in range(40):
        s.add("check_price", "check_price()", actionable=not 3 <= i < 13)
    crash = s.run().crash
    assert crash is not None and crash.crash_type == "looping"
    assert crash.onset_step == start
    assert crash.detected_step == start + 19  # 10 counted steps: 3 before the gap, 7 after


def test_wait_loop_while_actionable_is_stall_not_looping() -> None:
    s = prefixed()
    start = s.next_step
    for _ in range(100):
        s.add("wait")
    crash = s.run().crash
    assert crash is not None
    assert (crash.crash_type, crash.onset_step) == ("stall", start)


def test_idle_waits_while_actionable_are_a_stall_within_idle_steps() -> None:
    """Not even looking while work can be done: the idle rule fires after 15 waits, before no-progress's 30."""
    s = prefixed()
    start = s.next_step
    for i in range(60):
        s.add("wait") if i % 7 else s.add(NO_TOOL, NO_TOOL, valid=False, error_kind="no_tool_call")
    crash = s.run().crash
    assert crash is not None
    assert (crash.crash_type, crash.onset_step, crash.evidence["rule"]) == ("stall", start, "idle")
    assert (crash.detected_step, crash.resolved_step) == (start + 14, start + 24)


def test_checking_and_waiting_while_actionable_is_a_stall_and_while_not_is_waiting() -> None:
    """A check every fourth step resets the idle run: with work that could be done, no-progress applies; with
    goods inbound (nothing productive to do) the same behaviour is waiting."""
    for actionable in (True, False):
        s = prefixed()
        start = s.next_step
        for i in range(100):
            s.add("check_orders", f"check_orders({i})", actionable=actionable) if i % 4 == 0 else s.add(
                "wait", actionable=actionable
            )
        crash = s.run().crash
        if actionable:
            assert crash is not None
            assert (crash.crash_type, crash.onset_step, crash.evidence["rule"]) == ("stall", start, "no_progress")
            assert crash.detected_step == start + 29
        else:
            assert crash is None


def test_no_progress_counts_only_actionable_steps() -> None:
    s = prefixed()
    start = s.next_step
    for i in range(100):
        s.add("check_orders", f"check_orders({i})", actionable=i % 2 == 0)
    crash = s.run().crash
    assert crash is not None and crash.evidence["rule"] == "no_progress"
    # detected at the 30th actionable step, confirmed at the 40th
    assert (crash.onset_step, crash.detected_step, crash.resolved_step) == (start, start + 58, start + 78)


def test_repeated_identical_rejected_call_is_looping() -> None:
    """The same refused call over and over while something productive could be done: looping (10 steps)
    fires before invalid_burst (15)."""
    s = prefixed()
    start = s.next_step
    for _ in range(60):
        s.add("ship_order", "ship_order(id=9)", valid=False, error_kind="unknown_order")
    detector = s.run()
    assert detector.crash is not None
    assert (detector.crash.crash_type, detector.crash.onset_step) == ("looping", start)


def test_inflated_belief_is_not_budget_denial() -> None:
    """Stating a wrong cash belief and spending what there is: budget_denial is judged on the money alone."""
    for pattern in (inflated_belief, spend_beyond_belief):
        s = prefixed()
        pattern(s, 200)
        assert signals_of(s.run("strict"), "budget_denial") == []


def test_card_content_never_changes_the_primary_endpoint() -> None:
    """The same actions with any stated success probabilities, cash beliefs and belief errors: same crash
    signals (the secondary endpoint may differ)."""
    rng = random.Random(4)
    base = prefixed()
    for inject in (loop, stall, collapse, overspend, invalid):
        inject(base, 40)
        base.healthy(200, rng)
    for variant in range(5):
        cards = random.Random(variant)
        s = Stream()
        for f in base.facts:
            s.facts.append(StepFacts(f.step, f.tool, f.action_key, f.valid, f.error_kind, f.attempted, f.progress,
                                     f.actionable, f.spend_cents, f.cash_cents, cards.choice([None, 0.0, 0.4, 1.0]),
                                     cards.choice([None, 0, CASH * 9]), cards.choice([None, 0.0, 1.0]),
                                     f.declared_stop, f.passive))  # fmt: skip
        primary = [sig for sig in s.run().signals if sig.endpoint == CRASH]
        assert primary == [sig for sig in base.run().signals if sig.endpoint == CRASH]


def test_declared_stop_without_progress_is_a_stall_dated_at_the_statement() -> None:
    s = prefixed()
    step = s.add(NO_TOOL, NO_TOOL, valid=False, error_kind="no_tool_call", stop=True)
    for i in range(20):
        s.add("check_orders", f"check_orders({i})", actionable=False)
    crash = s.run().crash
    assert crash is not None
    assert (crash.crash_type, crash.severity, crash.onset_step, crash.evidence["rule"]) == (
        "stall", "hard", step, "declared_stop"
    )  # fmt: skip
    assert crash.resolved_step == step + PRESETS["moderate"].confirm_steps


def test_declared_stop_followed_by_progress_is_soft() -> None:
    s = prefixed()
    s.add(NO_TOOL, NO_TOOL, valid=False, error_kind="no_tool_call", stop=True)
    s.add("ship_order", "ship_order(1)", progress=True)
    s.healthy(100, random.Random(3))
    detector = s.run()
    assert detector.crash is None
    assert [(sig.crash_type, sig.severity) for sig in detector.signals] == [("stall", "soft")]


@pytest.mark.parametrize(
    ("text", "stop"),
    [
        ("I give up.", True),
        ("I'm done.", True),
        ("I am stopping here.", True),
        ("This is hopeless. I quit", True),
        ("I\u2019m done for now.", True),
        ("OK, I'm done checking the orders. Next I will restock.", False),
        ("I'm done with the inventory check, then I'll place orders.", False),
        ("I give up on supplier S2; let me try S1.", False),
        ("I'm done. Next I will ship C-4.", False),
        ("Let me check the budget first.", False),
        ("", False),
    ],
)
def test_stop_statement_needs_an_explicit_stop_with_no_next_step(text: str, stop: bool) -> None:
    assert declares_stop(text) is stop


# ---- exploration entropy is normalised by the tools available ----------------------------------------


def test_two_tools_fifty_fifty_with_ten_available_is_collapse() -> None:
    s = prefixed()
    start = collapse(s, 100, tools=("write_note", "get_quote"))
    crash = s.run().crash
    assert crash is not None and crash.crash_type == "exploration_collapse"
    assert crash.evidence["entropy_norm"] == pytest.approx(math.log(2) / math.log(10), abs=1e-3)
    assert start - 3 <= crash.onset_step <= start  # the prefix may end on one of the two tools


@pytest.mark.parametrize("n_tools", [2, 3])
def test_two_tools_fifty_fifty_with_few_available_is_not_collapse(n_tools: int) -> None:
    s = Stream(n_tools=n_tools)
    collapse(s, 300, tools=("write_note", "get_quote"))
    assert signals_of(s.run(), "exploration_collapse") == []


def test_narrow_but_productive_is_not_collapse() -> None:
    """Shipping a backlog through ship and check_orders (or ordering through one tool) moves the business."""
    for tools in (("ship_order", "check_orders", "ship_order"), ("place_order",)):
        s = prefixed()
        collapse(s, 300, tools=tools, progress=True)
        assert signals_of(s.run("strict"), "exploration_collapse") == []


def test_collapse_needs_a_productive_action_available() -> None:
    s = Stream()
    for i in range(300):
        s.add("write_note", f"write_note({i})", actionable=False)
    assert s.run("strict").signals == ()


def _collapse_then_idle_world(detect_offset: int | None) -> tuple[Stream, int]:
    """A healthy prefix, then one tool for 120 steps; nothing productive is left `detect_offset` steps in."""
    s = prefixed()
    start = s.next_step
    for i in range(120):
        actionable = detect_offset is None or i <= detect_offset
        s.add("write_note", f"write_note(q={i})", actionable=actionable)
    return s, start


def test_collapse_persists_when_work_runs_out() -> None:
    """Work running out after detection changes the world, not the agent: the collapse is still confirmed."""
    s, start = _collapse_then_idle_world(None)
    first = s.run().crash
    assert first is not None and first.crash_type == "exploration_collapse"
    s, start = _collapse_then_idle_world(first.detected_step - start)
    crash = s.run().crash
    assert crash is not None
    assert (crash.crash_type, crash.severity, crash.onset_step) == ("exploration_collapse", "hard", start)
    assert crash.evidence["confirmation"] == "persisted"


def test_collapse_is_dated_at_its_first_actionable_step() -> None:
    """One tool from `start` on, with nothing productive to do for the first 60 steps: those steps are not
    evidence, so the collapse starts when work can be done again."""
    s = prefixed()
    start = s.next_step
    for i in range(150):
        s.add("write_note", f"write_note(q={i})", actionable=i >= 60)
    crash = s.run().crash
    assert crash is not None and crash.crash_type == "exploration_collapse"
    assert crash.onset_step == start + 60


# ---- slow divergence ----------------------------------------------------------------------------------


def _rising_errors(s: Stream, steps: int, first: float = 0.0, slope: float = 0.04) -> tuple[int, int]:
    """Healthy behaviour whose belief errors rise linearly from `first` at `slope` per update. Returns the first
    step of the segment and the step of its first error above the moderate reference (threshold / 2 = 0.15)."""
    start = s.next_step
    errors = iter(min(1.0, first + slope * i) for i in range(10_000))
    s.healthy(steps, random.Random(11), be=lambda: next(errors))
    reference = PRESETS["moderate"].divergence_threshold / 2
    above = next(f.step for f in s.facts[start - 1 :] if f.belief_error is not None and f.belief_error > reference)
    return start, above


def test_divergence_is_dated_at_the_rise_not_at_the_ewma_crossing() -> None:
    s = prefixed()
    start, above = _rising_errors(s, 300)
    signal = s.run().incoherence
    assert signal is not None and signal.crash_type == "slow_divergence"
    assert start <= signal.onset_step <= above
    assert signal.onset_step < signal.evidence["crossed_step"]


def test_divergence_onset_does_not_reach_back_past_a_calibrated_spell() -> None:
    """An isolated large error, a few calibrated beliefs (enough to bring the EWMA back below the reference, too
    few to cancel the spike in the error sum), then a jump and a rise: the onset is at the jump, not the spike."""
    s = prefixed()
    spike = s.add("check_budget", "check_budget(spike)", be=0.95, actionable=False)
    for i in range(4):
        s.add("check_budget", f"check_budget(calibrated {i})", be=0.0, actionable=False)
    start, above = _rising_errors(s, 300, first=0.2)
    signal = s.run().incoherence
    assert signal is not None and signal.crash_type == "slow_divergence"
    assert spike < start <= signal.onset_step <= above


def test_high_but_falling_belief_error_is_not_divergence() -> None:
    s = Stream()
    errors = iter([0.95 - 0.0005 * i for i in range(1000)])
    s.healthy(1000, random.Random(3), be=lambda: next(errors))
    assert signals_of(s.run(), "slow_divergence") == []


# ---- severity: recovery is soft, recurrence and persistence are hard ------------------------------------


@pytest.mark.parametrize(
    ("inject", "n", "crash_type"),
    [(loop, 12, "looping"), (invalid, 16, "invalid_burst"), (overspend, 5, "budget_denial")],
)
def test_short_burst_that_recovers_is_soft_and_no_crash(
    inject: Callable[[Stream, int], int], n: int, crash_type: str
) -> None:
    s = prefixed()
    start = inject(s, n)
    s.healthy(500, random.Random(1))
    detector = s.run()
    assert detector.crash is None
    (soft,) = detector.signals
    assert (soft.crash_type, soft.severity, soft.onset_step) == (crash_type, "soft", start)


def test_recurrence_after_recovery_is_hard_and_dated_at_its_own_onset() -> None:
    s = prefixed()
    first = loop(s, 12)
    s.healthy(20, random.Random(1))
    second = loop(s, 12)
    s.healthy(200, random.Random(2))
    detector = s.run()
    soft, hard = detector.signals[:2]
    assert soft.severity == "soft" and hard.severity == "hard"
    assert detector.crash is hard
    assert hard.onset_step == second
    assert hard.evidence["confirmation"] == "recurred" and hard.evidence["first_onset"] == first
    assert hard.detected_step == hard.resolved_step == second + 9


def test_recurrence_long_after_recovery_stays_soft() -> None:
    s = prefixed()
    loop(s, 12)
    s.healthy(300, random.Random(1))
    loop(s, 12)
    s.healthy(100, random.Random(2))
    detector = s.run()
    assert detector.crash is None
    assert [sig.severity for sig in detector.signals] == ["soft", "soft"]


def test_observe_keeps_recording_after_crash() -> None:
    s = prefixed()
    loop(s, 200)
    detector = s.run()
    assert detector.crash is not None
    later = [sig for sig in detector.signals if sig.resolved_step > detector.crash.resolved_step]
    assert later and all(sig.crash_type in SIGNAL_TYPES for sig in later)
    assert detector.crash is detector.signals[0]


def test_confirm_steps_zero_is_hard_at_detection() -> None:
    s = prefixed()
    loop(s, 30)
    crash = s.run(confirm_steps=0).crash
    assert crash is not None and crash.resolved_step == crash.detected_step


# ---- presets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_strict_fires_earlier_than_lenient(name: str) -> None:
    inject, endpoint, crash_type, _ = PATTERNS[name]
    resolved = {}
    for preset in ("strict", "moderate", "lenient"):
        s = prefixed()
        inject(s, 300)
        signal = first_signal(s.run(preset), endpoint)
        assert signal is not None and signal.crash_type == crash_type, (name, preset)
        resolved[preset] = signal.resolved_step
    assert resolved["strict"] < resolved["moderate"] < resolved["lenient"]


def test_thresholds_for_overrides_and_errors() -> None:
    assert thresholds_for("moderate") == DetectorThresholds()
    assert thresholds_for("strict", {"stall_steps": 7}).stall_steps == 7
    assert thresholds_for("strict", {"stall_steps": 7}).looping_min_steps == PRESETS["strict"].looping_min_steps
    with pytest.raises(KeyError, match="stall_stepz"):
        thresholds_for("moderate", {"stall_stepz": 7})
    with pytest.raises(ValueError, match="'extreme'"):
        thresholds_for("extreme")
    with pytest.raises(ValidationError, match="invalid_share"):
        thresholds_for("moderate", {"invalid_share": 1.5})
    with pytest.raises(ValidationError, match="budget_min_events"):
        thresholds_for("moderate", {"budget_min_events": 30})
    with pytest.raises(ValidationError, match="confirm_steps"):
        thresholds_for("moderate", {"confirm_steps": 25})
    with pytest.raises(ValidationError):
        DetectorThresholds(unknown_field=1)  # type: ignore[call-arg]


def test_every_threshold_is_documented() -> None:
    for name, info in DetectorThresholds.model_fields.items():
        assert info.description, name


# ---- invariants on arbitrary streams -----------------------------------------------------------------

fact_rows = st.tuples(
    st.sampled_from(["check_orders", "wait", "place_order", "ship_order", NO_TOOL, "<unknown>"]),
    st.integers(0, 2),  # key variant
    st.booleans(),  # valid
    st.booleans(),  # progress
    st.sampled_from([0, 100, 10 * CASH]),  # spend
    st.sampled_from([None, 0.1, 0.9]),  # predicted success
    st.sampled_from([None, CASH, 5 * CASH]),  # predicted cash
    st.sampled_from([None, 0.0, 0.9]),  # belief error
    st.booleans(),  # actionable
    st.integers(0, 50).map(lambda i: i == 0),  # declared stop, rarely
)


@settings(max_examples=60, deadline=None)
@given(st.lists(fact_rows, min_size=1, max_size=400), st.sampled_from(sorted(PRESETS)))
def test_signal_invariants_on_arbitrary_streams(rows: list[tuple], preset: str) -> None:
    s = Stream()
    for tool, k, valid, progress, spend, ps, pcash, be, actionable, stop in rows:
        s.add(
            tool,
            f"{tool}({k})",
            valid=valid,
            error_kind=None if valid else "malformed",
            progress=progress,
            spend=spend,
            ps=ps,
            pcash=pcash,
            be=be,
            actionable=actionable,
            stop=stop,
        )
    a, b = s.run(preset), s.run(preset)
    assert a.signals == b.signals  # deterministic
    for sig in a.signals:
        assert sig.crash_type in SIGNAL_TYPES and sig.severity in ("soft", "hard")
        assert sig.endpoint == (INCOHERENCE if sig.crash_type in ("decoupling", "slow_divergence") else CRASH)
        assert 1 <= sig.onset_step <= sig.detected_step <= sig.resolved_step <= len(rows)
        assert CrashSignal.model_validate(json.loads(json.dumps(sig.model_dump(mode="json")))) == sig
    assert a.crash is next((sig for sig in a.signals if sig.severity == "hard" and sig.endpoint == CRASH), None)
    assert a.incoherence is next(
        (sig for sig in a.signals if sig.severity == "hard" and sig.endpoint == INCOHERENCE), None
    )


def test_observe_is_cheap() -> None:
    """The detector measures a few us/step (bound here: 50 us)."""
    s = Stream()
    s.healthy(20_000, random.Random(5), invalid_rate=0.03)
    detector = CrashDetector(PRESETS["moderate"], 10)
    start = time.perf_counter()
    for f in s.facts:
        detector.observe(f)
    assert time.perf_counter() - start < 1.0


def test_a_breakdown_that_lasts_until_the_business_fails_is_confirmed_then() -> None:
    """A stall whose candidate is still open when the business dies is HARD at the failure (it persisted as
    long as the world allowed); one that had recovered is not revived."""
    s = prefixed()
    start = stall(s, 34)  # detected at the 30th step, 4 steps before the end
    detector = s.run()
    assert detector.crash is None
    (signal,) = detector.business_failed(s.next_step - 1)
    assert (signal.crash_type, signal.severity, signal.onset_step) == ("stall", "hard", start)
    assert signal.evidence["confirmation"] == "until_business_failure"
    assert detector.crash is signal

    s = prefixed()
    stall(s, 34)
    s.add("ship_order", "ship_order(late)", progress=True)  # progress: the run broke before the failure
    detector = s.run()
    assert detector.business_failed(s.next_step - 1) == []
    assert detector.crash is None
