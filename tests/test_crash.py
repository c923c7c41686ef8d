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
    CRASH_TYPES,
    NO_TOOL,
    PRESETS,
    CrashDetector,
    CrashSignal,
    DetectorThresholds,
    StepFacts,
    thresholds_for,
)

CASH = 1_000_000  # cents
BUSY_TOOLS = (  # (tool, weight, mutating, info_only)
    ("check_orders", 3, False, True),
    ("check_inventory", 2, False, True),
    ("check_budget", 1, False, True),
    ("read_notes", 1, False, True),
    ("place_order", 2, True, False),
    ("ship_order", 3, True, False),
    ("wait", 2, False, False),
)


class Stream:
    """Builds a StepFacts stream. The digest changes whenever the world does (a mutation or a wait), so
    identical calls with nothing in between return identical digests, as in the real Episode."""

    def __init__(self, n_tools: int = 10) -> None:
        self.facts: list[StepFacts] = []
        self.version = 0
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
        mutated: bool = False,
        digest: str | None = None,
        spend: int = 0,
        cash: int = CASH,
        ps: float | None = None,
        pcash: int | None = None,
        be: float | None = None,
        pending: bool = True,
        stop: bool = False,
    ) -> int:
        step = self.next_step
        self.version += mutated or tool == "wait"
        key = key or f"{tool}()"
        info_only = tool.startswith(("check_", "read_"))
        digest = digest or f"v{self.version}:{key}"
        self.facts.append(
            StepFacts(
                step,
                tool,
                key,
                valid,
                error_kind,
                mutated,
                digest,
                spend,
                cash,
                ps,
                pcash,
                be,
                pending,
                stop,
                self.n_tools,
                info_only,
            )
        )
        return step

    def healthy(
        self, n: int, rng: random.Random, *, invalid_rate: float = 0.0, be: Callable[[], float] | None = None
    ) -> None:
        """A competent agent: busy spells (pending work, varied tools, frequent progress) alternate with idle
        spells (no pending work: check_orders, wait, wait). Ends with a mutation."""
        end = self.next_step + n - 1
        weights = [w for _, w, _, _ in BUSY_TOOLS]
        while self.next_step < end:
            if rng.random() < 0.3:  # idle spell
                for i in range(min(rng.randint(6, 40), end - self.next_step)):
                    self.add("check_orders" if i % 3 == 0 else "wait", pending=False)
                continue
            for _ in range(min(rng.randint(10, 60), end - self.next_step)):
                tool, _, mutating, _ = rng.choices(BUSY_TOOLS, weights)[0]
                while len(self.facts) >= 2 and tool == self.facts[-1].tool == self.facts[-2].tool:
                    tool, _, mutating, _ = rng.choices(BUSY_TOOLS, weights)[0]  # no tool thrice in a row
                key = f"{tool}(sku={rng.randint(0, 9)})"
                error = rng.random() < invalid_rate and tool in ("place_order", "ship_order")
                self.add(
                    tool,
                    key,
                    valid=not error,
                    error_kind="out_of_stock" if error else None,
                    mutated=mutating and not error,
                    spend=rng.randint(100, 20_000) if tool == "place_order" else 0,
                    ps=rng.uniform(0.6, 1.0) if mutating else None,
                    pcash=CASH + rng.randint(-500, 500) if tool == "check_budget" else None,
                    be=(be() if be else rng.uniform(0.0, 0.15)) if rng.random() < 0.3 else None,
                )
        self.add("ship_order", "ship_order(final)", mutated=True)

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
        key = f"check_price(sku=Z{i % period})"
        s.add("check_price", key, digest=f"same:{key}")
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
            s.add("place_order", f"place_order(q={i})", mutated=True, spend=1000)
        else:
            s.add("check_budget", f"check_budget({i})", pcash=3 * CASH)
    return start


def against_prediction(s: Stream, n: int) -> int:
    start = s.next_step
    for i in range(n):
        s.add("place_order", f"place_order(q={i})", mutated=True, spend=100, ps=0.1)
    return start


def spend_beyond_belief(s: Stream, n: int) -> int:
    """Says it has CASH - 500_000, then orders for 600_000 (affordable in reality, not in its belief)."""
    start = s.next_step
    for i in range(n):
        if i % 2:
            s.add("place_order", f"place_order(q={i})", mutated=True, spend=600_000)
        else:
            s.add("check_budget", f"check_budget({i})", pcash=CASH - 500_000)
    return start


def collapse(s: Stream, n: int, tools: tuple[str, ...] = ("place_order",)) -> int:
    start = s.next_step
    for i in range(n):
        tool = tools[i % len(tools)]
        s.add(tool, f"{tool}(q={i})", mutated=tool != "wait", spend=100 if tool == "place_order" else 0)
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


def no_tool(s: Stream, n: int) -> int:
    start = s.next_step
    for _ in range(n):
        s.add(NO_TOOL, NO_TOOL, valid=False, error_kind="no_tool_call")
    return start


PATTERNS: dict[str, tuple[Callable[[Stream, int], int], str, int]] = {
    # name: (injector, expected crash type, max onset error in steps)
    "loop_period1": (loop, "looping", 0),
    "loop_period2": (lambda s, n: loop(s, n, 2), "looping", 0),
    "loop_period3": (lambda s, n: loop(s, n, 3), "looping", 0),
    "invalid_burst": (invalid, "invalid_burst", 0),
    "overspend": (overspend, "budget_denial", 0),
    "inflated_belief": (inflated_belief, "budget_denial", 1),  # first order follows the stated belief
    "against_prediction": (against_prediction, "decoupling", 0),
    "spend_beyond_belief": (spend_beyond_belief, "decoupling", 1),  # first order follows a budget check
    "collapse": (collapse, "exploration_collapse", 0),
    "slow_divergence": (diverge, "slow_divergence", 0),  # change point of the errors, before the EWMA crosses
    "stall": (stall, "stall", 0),
    "no_tool": (no_tool, "stall", 0),
}


def signals_of(detector: CrashDetector, crash_type: str) -> list[CrashSignal]:
    return [s for s in detector.signals if s.crash_type == crash_type]


# ---- healthy streams ----------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("seed", range(4))
def test_healthy_varied_stream_never_crashes(preset: str, seed: int) -> None:
    s = Stream()
    s.healthy(5000, random.Random(seed), invalid_rate=0.03)
    detector = s.run(preset)
    assert detector.crash is None
    assert [sig for sig in detector.signals if sig.severity != "soft"] == []


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("pattern", [("check_orders", "wait", "wait"), ("wait",), ("check_orders", "wait")])
def test_idle_pattern_without_pending_work_is_neither_looping_nor_stall(preset: str, pattern: tuple[str, ...]) -> None:
    s = Stream()
    for i in range(3000):
        s.add(pattern[i % len(pattern)], pending=False)
    assert s.run(preset).signals == ()


def test_repeated_check_with_news_is_not_looping() -> None:
    s = prefixed()
    for i in range(100):
        s.add("check_orders", digest=f"new orders {i}", pending=False)
    assert signals_of(s.run(), "looping") == []


# ---- each detector fires on its pattern -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_crashes_with_type_onset_and_hard_severity(name: str) -> None:
    inject, crash_type, onset_error = PATTERNS[name]
    s = prefixed()
    start = inject(s, 200)
    crash = s.run().crash
    assert crash is not None, name
    assert crash.crash_type == crash_type
    assert crash.severity == "hard"
    assert start <= crash.onset_step <= start + onset_error
    assert crash.onset_step <= crash.detected_step <= crash.resolved_step
    json.dumps(crash.to_dict())


def test_invalid_burst_onset_and_latency_are_exact() -> None:
    s = prefixed()
    start = invalid(s, 50)
    crash = s.run().crash
    assert crash is not None
    # window 20, share 0.5: the 10th invalid step detects, confirmed 10 steps later
    assert (crash.onset_step, crash.detected_step, crash.resolved_step) == (start, start + 9, start + 19)
    assert crash.evidence["share"] == 0.5


def test_looping_evidence_names_cycle() -> None:
    s = prefixed()
    start = loop(s, 40, period=2)
    crash = s.run().crash
    assert crash is not None
    assert crash.evidence["period"] == 2
    assert sorted(crash.evidence["keys"]) == ["check_price(sku=Z0)", "check_price(sku=Z1)"]
    assert crash.detected_step == start + 9  # 10 steps in the loop, the first cycle included


def test_wait_loop_with_pending_work_is_stall_not_looping() -> None:
    s = prefixed()
    start = s.next_step
    for _ in range(100):
        s.add("wait")
    crash = s.run().crash
    assert crash is not None
    assert (crash.crash_type, crash.onset_step) == ("stall", start)


def test_idle_waits_with_pending_work_are_a_stall_within_idle_steps() -> None:
    """Not even looking while work is pending: the idle rule fires after 15 waits, before no-progress's 30."""
    s = prefixed()
    start = s.next_step
    for i in range(60):
        s.add("wait") if i % 7 else s.add(NO_TOOL, NO_TOOL, valid=False, error_kind="no_tool_call")
    crash = s.run().crash
    assert crash is not None
    assert (crash.crash_type, crash.onset_step, crash.evidence["rule"]) == ("stall", start, "idle")
    assert (crash.detected_step, crash.resolved_step) == (start + 14, start + 24)


def test_waiting_for_a_delivery_while_checking_is_not_idle() -> None:
    """A check every fourth step (the competent wait for goods) resets the idle run: only no-progress applies."""
    s = prefixed()
    start = s.next_step
    for i in range(100):
        s.add("check_orders", f"check_orders({i})") if i % 4 == 0 else s.add("wait")
    crash = s.run().crash
    assert crash is not None
    assert (crash.crash_type, crash.onset_step, crash.evidence["rule"]) == ("stall", start, "no_progress")
    assert crash.detected_step == start + 29


def test_repeated_identical_rejected_call_is_looping() -> None:
    """Looping and invalid_burst tie (detection, confirmation, onset); CRASH_TYPES order decides."""
    s = prefixed()
    start = s.next_step
    for _ in range(60):
        s.add("ship_order", "ship_order(id=9)", valid=False, error_kind="unknown_order", digest="err")
    detector = s.run()
    assert detector.crash is not None
    assert (detector.crash.crash_type, detector.crash.onset_step) == ("looping", start)
    assert detector.signals[1].crash_type == "invalid_burst"


def test_inflated_belief_without_spending_is_not_budget_denial() -> None:
    """Stating a drifting cash belief is slow_divergence's business; budget_denial needs money committed."""
    s = prefixed()
    for i in range(200):
        s.add("check_budget", f"check_budget({i})", pcash=3 * CASH, pending=False)
    assert signals_of(s.run("strict"), "budget_denial") == []


def test_repeated_check_with_news_while_work_is_pending_is_looping() -> None:
    """With work pending, news does not excuse repetition (shocks change the world every day)."""
    s = prefixed()
    start = s.next_step
    for i in range(50):
        s.add("check_catalogue", digest=f"prices moved {i}")
    crash = s.run().crash
    assert crash is not None
    assert (crash.crash_type, crash.onset_step) == ("looping", start)


def test_declared_stop_is_abandon_at_once() -> None:
    s = prefixed()
    step = s.add("wait", stop=True)
    detector = CrashDetector(PRESETS["moderate"], 10)
    for f in s.facts[:-1]:
        assert detector.observe(f) == []
    (signal,) = detector.observe(s.facts[-1])
    assert (signal.crash_type, signal.severity, signal.onset_step, signal.resolved_step) == (
        "stall",
        "abandon",
        step,
        step,
    )
    assert detector.crash is signal


# ---- exploration entropy is normalised by the tools available ----------------------------------------


def test_two_tools_fifty_fifty_with_ten_available_is_collapse() -> None:
    s = prefixed()
    start = collapse(s, 100, tools=("ship_order", "place_order"))
    crash = s.run().crash
    assert crash is not None and crash.crash_type == "exploration_collapse"
    assert crash.evidence["entropy_norm"] == pytest.approx(math.log(2) / math.log(10), abs=1e-3)
    assert start - 3 <= crash.onset_step <= start  # the prefix may end on one of the two tools


@pytest.mark.parametrize("n_tools", [2, 3])
def test_two_tools_fifty_fifty_with_few_available_is_not_collapse(n_tools: int) -> None:
    s = Stream(n_tools=n_tools)
    collapse(s, 300, tools=("ship_order", "place_order"))
    assert signals_of(s.run(), "exploration_collapse") == []


def test_collapse_needs_pending_work() -> None:
    s = Stream()
    for i in range(300):
        s.add("ship_order", f"ship_order({i})", mutated=True, pending=False)
    assert s.run("strict").signals == ()


def _collapse_then_idle_world(detect_offset: int | None) -> tuple[Stream, int]:
    """A healthy prefix, then one tool for 120 steps; work stops being pending `detect_offset` steps in."""
    s = prefixed()
    start = s.next_step
    for i in range(120):
        pending = detect_offset is None or i <= detect_offset
        s.add("place_order", f"place_order(q={i})", mutated=True, spend=100, pending=pending)
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


def test_collapse_onset_reaches_back_before_the_window() -> None:
    """One tool from `start` on while nothing is pending; the candidate opens only once work is pending again,
    and is dated at the start of the one-tool run, more than a window before detection."""
    s = prefixed()
    start = s.next_step
    for i in range(150):
        s.add("place_order", f"place_order(q={i})", mutated=True, spend=100, pending=i >= 60)
    crash = s.run().crash
    assert crash is not None and crash.crash_type == "exploration_collapse"
    assert crash.onset_step == start
    assert crash.detected_step - crash.onset_step > PRESETS["moderate"].collapse_window


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
    crash = s.run().crash
    assert crash is not None and crash.crash_type == "slow_divergence"
    assert start <= crash.onset_step <= above
    assert crash.onset_step < crash.evidence["crossed_step"]


def test_divergence_onset_does_not_reach_back_past_a_calibrated_spell() -> None:
    """An isolated large error, a few calibrated beliefs (enough to bring the EWMA back below the reference, too
    few to cancel the spike in the error sum), then a jump and a rise: the onset is at the jump, not the spike."""
    s = prefixed()
    spike = s.add("check_budget", "check_budget(spike)", be=0.95, pending=False)
    for i in range(4):
        s.add("check_budget", f"check_budget(calibrated {i})", be=0.0, pending=False)
    start, above = _rising_errors(s, 300, first=0.2)
    crash = s.run().crash
    assert crash is not None and crash.crash_type == "slow_divergence"
    assert spike < start <= crash.onset_step <= above


def test_high_but_falling_belief_error_is_not_divergence() -> None:
    s = Stream()
    errors = iter([0.95 - 0.0005 * i for i in range(1000)])
    s.healthy(1000, random.Random(3), be=lambda: next(errors))
    assert signals_of(s.run(), "slow_divergence") == []


# ---- severity: recovery is soft, recurrence and persistence are hard ------------------------------------


@pytest.mark.parametrize(
    ("inject", "n", "crash_type"),
    [(loop, 12, "looping"), (invalid, 12, "invalid_burst"), (overspend, 5, "budget_denial")],
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
    soft, hard = detector.signals
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
    assert later and all(sig.crash_type in CRASH_TYPES for sig in later)
    assert detector.crash is detector.signals[0]


def test_confirm_steps_zero_is_hard_at_detection() -> None:
    s = prefixed()
    loop(s, 30)
    crash = s.run(confirm_steps=0).crash
    assert crash is not None and crash.resolved_step == crash.detected_step


# ---- presets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_strict_fires_earlier_than_lenient(name: str) -> None:
    inject, crash_type, _ = PATTERNS[name]
    if name == "collapse":  # lenient needs entropy < 0.25: use one tool
        inject = collapse
    resolved = {}
    for preset in ("strict", "moderate", "lenient"):
        s = prefixed()
        inject(s, 300)
        crash = s.run(preset).crash
        assert crash is not None and crash.crash_type == crash_type, (name, preset)
        resolved[preset] = crash.resolved_step
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
    st.booleans(),  # mutated
    st.integers(0, 1),  # digest variant
    st.sampled_from([0, 100, 10 * CASH]),  # spend
    st.sampled_from([None, 0.1, 0.9]),  # predicted success
    st.sampled_from([None, CASH, 5 * CASH]),  # predicted cash
    st.sampled_from([None, 0.0, 0.9]),  # belief error
    st.booleans(),  # pending
    st.integers(0, 50).map(lambda i: i == 0),  # declared stop, rarely
)


@settings(max_examples=60, deadline=None)
@given(st.lists(fact_rows, min_size=1, max_size=400), st.sampled_from(sorted(PRESETS)))
def test_signal_invariants_on_arbitrary_streams(rows: list[tuple], preset: str) -> None:
    s = Stream()
    for tool, k, valid, mutated, d, spend, ps, pcash, be, pending, stop in rows:
        s.add(
            tool,
            f"{tool}({k})",
            valid=valid,
            error_kind=None if valid else "malformed",
            mutated=mutated and valid,
            digest=f"d{d}",
            spend=spend,
            ps=ps,
            pcash=pcash,
            be=be,
            pending=pending,
            stop=stop,
        )
    a, b = s.run(preset), s.run(preset)
    assert a.signals == b.signals  # deterministic
    for sig in a.signals:
        assert sig.crash_type in CRASH_TYPES and sig.severity in ("soft", "hard", "abandon")
        assert 1 <= sig.onset_step <= sig.detected_step <= sig.resolved_step <= len(rows)
        assert CrashSignal.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig
    first_hard = next((sig for sig in a.signals if sig.severity != "soft"), None)
    assert a.crash is first_hard


def test_observe_is_cheap() -> None:
    """The simulation targets >= 20,000 steps/s; the detector measures ~3-4 us/step (bound here: 50 us)."""
    s = Stream()
    s.healthy(20_000, random.Random(5), invalid_rate=0.03)
    detector = CrashDetector(PRESETS["moderate"], 10)
    start = time.perf_counter()
    for f in s.facts:
        detector.observe(f)
    assert time.perf_counter() - start < 1.0
