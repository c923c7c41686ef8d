"""Scorers and metrics (scorers/, installed as vendomini_eval.scorers).

Layers: the Kaplan-Meier estimator against hand computations; the metrics on hand-built SampleScore lists;
each scorer on a hand-built TaskState whose store holds a hand-built EpisodeRecord (crashed, censored,
terminated, limit, no summary); a real Episode's summary through the store; and one end-to-end eval
through Inspect (mockllm, offline) that checks what reaches the log's results.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.log import read_eval_log
from inspect_ai.model import ModelName
from inspect_ai.scorer import SampleScore, Score, Scorer, Target
from inspect_ai.solver import Generate, Solver, TaskState, solver

from vendomini_eval.condition import Condition
from vendomini_eval.crash import CRASH_TYPES, CrashSignal
from vendomini_eval.pe import PE_COLUMNS, PESeriesTotals, PESummary
from vendomini_eval.results import CounterTotals, EpisodeSummary
from vendomini_eval.runner import run_policy
from vendomini_eval.scorers import (
    BUSINESS_KEYS,
    CRASH_TYPE_LABELS,
    HEADLINE_METRIC,
    INCOHERENCE_KEYS,
    NO_EPISODE_REASON,
    PE_KEYS,
    SURVIVAL_KEYS,
    business,
    crash_rate,
    crash_type,
    crash_type_share,
    incoherence,
    incoherence_rate,
    kaplan_meier,
    km_median,
    km_median_incoherence,
    km_median_survival,
    prediction_errors,
    survival,
    vendomini_scorers,
)
from vendomini_eval.solvers.store import EpisodeRecord

# ----- hand-built records ---------------------------------------------------------------------------------


def pe_series(total: float, count: int, fast: float = 0.0, medium: float = 0.0, slow: float = 0.0) -> PESeriesTotals:
    return PESeriesTotals(sum=total, count=count, mean=total / count if count else None, ewma_fast=fast,
                          ewma_medium=medium, ewma_slow=slow)  # fmt: skip


def make_summary(
    *,
    steps: int,
    crash: CrashSignal | None = None,
    incoherence: CrashSignal | None = None,
    terminated: str | None = None,
    truncated: bool = False,
    net_worth: float = 1000.0,
    cash: float = 500.0,
    shipped: int = 3,
    failed: int = 1,
    brier_mean: float | None = 0.04,
    brier_count: int = 5,
    surprises: int = 2,
    predictions_made: int = 40,
    actions_without_card: int = 3,
    non_starter: bool = False,
) -> dict[str, Any]:
    """A run summary as the solver stores it (JSON)."""
    pe = PESummary(
        steps=steps,
        surprise_count=surprises,
        brier_mean=brier_mean,
        brier_count=brier_count,
        temporal=pe_series(0.5, 2),
        quantity=pe_series(0.0, 0),
        cost=pe_series(0.3, 3),
        causal=pe_series(1.0, 5),
        combined=pe_series(1.8, 10, fast=0.2, medium=0.1, slow=0.05),
    )
    summary = EpisodeSummary(
        seed=7,
        steps=steps,
        days=steps,
        crashed=crash is not None,
        crash_type=crash.crash_type if crash else None,
        time_to_crash=crash.onset_step if crash else steps,
        censored=crash is None,
        crash=crash,
        non_starter=crash is not None and non_starter,
        first_progress_step=None if non_starter else 3,
        incoherent=incoherence is not None,
        incoherence_type=incoherence.crash_type if incoherence else None,
        time_to_incoherence=incoherence.onset_step if incoherence else steps,
        incoherence=incoherence,
        terminated=terminated,
        truncated=truncated,
        net_worth=net_worth,
        cash=cash,
        counters=CounterTotals(orders_received=shipped + failed, orders_shipped=shipped, orders_failed=failed),
        shocks=0,
        shocks_void=0,
        pe=pe,
        unresolved_predictions=0,
        predictions_made=predictions_made,
        actions_without_card=actions_without_card,
        signals=(crash is not None) + (incoherence is not None),
    )
    return summary.model_dump(mode="json")


LOOPING = CrashSignal(crash_type="looping", endpoint="crash", onset_step=40, detected_step=49, resolved_step=59,
                      severity="hard", evidence={"period": 1})  # fmt: skip
DECOUPLING = CrashSignal(crash_type="decoupling", endpoint="incoherence", onset_step=120, detected_step=124,
                         resolved_step=134, severity="hard", evidence={"stated_success": 0.1})  # fmt: skip


def make_trace(steps: int) -> dict[str, Any]:
    """Columnar trace whose combined EWMAs at step t are (t/1000, t/2000, t/4000): easy to check by hand."""
    columns: dict[str, list[Any]] = {name: [0.0] * steps for name in PE_COLUMNS}
    columns["step"] = list(range(1, steps + 1))
    columns["pe_combined_ewma_fast"] = [t / 1000 for t in range(1, steps + 1)]
    columns["pe_combined_ewma_medium"] = [t / 2000 for t in range(1, steps + 1)]
    columns["pe_combined_ewma_slow"] = [t / 4000 for t in range(1, steps + 1)]
    return {"columns": columns, "signals": []}


RECORDS: dict[str, dict[str, Any]] = {
    "crashed": {
        "outcome": "crashed",
        "summary": make_summary(steps=59, crash=LOOPING),
        "trace": make_trace(59),
    },
    "non_starter": {
        "outcome": "non_starter",
        "summary": make_summary(steps=59, crash=LOOPING, non_starter=True),
        "trace": make_trace(59),
    },
    "censored": {
        "outcome": "censored",
        "summary": make_summary(
            steps=500, incoherence=DECOUPLING, truncated=True, net_worth=1500.25, cash=800.5, shipped=40, failed=2
        ),
    },
    "terminated": {
        "outcome": "terminated",
        "summary": make_summary(steps=87, terminated="bankrupt", net_worth=-20.0, cash=-150.75, shipped=5, failed=9),
        "trace": make_trace(87),
    },
    "limit": {
        "outcome": "limit",
        "limit": "message",
        "summary": make_summary(
            steps=30, brier_mean=None, brier_count=0, surprises=0, predictions_made=0, actions_without_card=30
        ),
    },
    "no_summary": {"outcome": "error", "limit": "provider error: 503"},
}


def task_state(record: dict[str, Any], sample_id: str = "s") -> TaskState:
    state = TaskState(ModelName("mockllm/model"), sample_id, 1, "", [])
    stored = state.store_as(EpisodeRecord)
    for name, value in record.items():
        setattr(stored, name, value)
    return state


def run_scorer(scorer: Scorer, case: str) -> Score:
    return asyncio.run(scorer(task_state(RECORDS[case], case), Target("")))


# ----- Kaplan-Meier ---------------------------------------------------------------------------------------


def test_km_curve_mixed_with_censoring_by_hand() -> None:
    # crashes at 2, 4, 5, 8; censored at 3 and 6.
    # t=2: 6 at risk, 1 crash: 5/6. t=4: at risk {4,5,6,8}: 5/6 * 3/4 = 0.625.
    # t=5: at risk {5,6,8}: 0.625 * 2/3 = 0.41667. t=8: at risk {8}: 0.
    times, survival_curve = kaplan_meier([2, 3, 4, 5, 6, 8], [1, 0, 1, 1, 0, 1])
    assert times.tolist() == [2, 4, 5, 8]
    assert survival_curve.tolist() == pytest.approx([5 / 6, 0.625, 0.625 * 2 / 3, 0.0])
    assert km_median([2, 3, 4, 5, 6, 8], [1, 0, 1, 1, 0, 1]) == 5.0  # the naive median of all times is 4.5


def test_km_censored_at_a_crash_time_is_still_at_risk() -> None:
    # t=3: 4 at risk (the run censored at 3 included), 1 crash: 0.75. t=6: at risk {6, 9}: 0.75 / 2.
    times, survival_curve = kaplan_meier([3, 3, 6, 9], [1, 0, 1, 0])
    assert times.tolist() == [3, 6]
    assert survival_curve.tolist() == pytest.approx([0.75, 0.375])
    assert km_median([3, 3, 6, 9], [1, 0, 1, 0]) == 6.0


def test_km_all_crash() -> None:
    assert km_median([5, 10, 15, 20], [1, 1, 1, 1]) == 10.0  # S(10) = 0.5 exactly: the left end (lifelines)
    assert km_median([9, 3, 7], [True, True, True]) == 7.0  # S = 2/3, 1/3; order of input is irrelevant
    assert km_median([4, 4, 4], [1, 1, 1]) == 4.0


def test_km_median_undefined_is_nan() -> None:
    assert math.isnan(km_median([10, 20, 30], [0, 0, 0]))  # no crash at all
    assert math.isnan(km_median([1, 5, 5, 5], [1, 0, 0, 0]))  # S stays at 0.75
    assert math.isnan(km_median([], []))
    times, survival_curve = kaplan_meier([10, 20], [0, 0])
    assert times.size == 0 and survival_curve.size == 0


@pytest.mark.parametrize(
    ("times", "events"),
    [([1, 2], [1]), ([1, -1], [1, 1]), ([1, math.nan], [1, 0]), ([1, 2], [1, 2])],
)
def test_km_rejects_bad_input(times: list[float], events: list[int]) -> None:
    with pytest.raises(ValueError):
        kaplan_meier(times, events)


# ----- metrics on hand-built SampleScore lists ------------------------------------------------------------


def survival_scores(pairs: list[tuple[int, int]]) -> list[SampleScore]:
    return [
        SampleScore(
            score=Score(value={"time_to_crash": t, "crashed": e, "censored": 1 - e, "terminated": 0, "steps": t}),
            sample_id=i,
        )
        for i, (t, e) in enumerate(pairs)
    ]


def test_crash_rate() -> None:
    assert crash_rate()(survival_scores([(5, 1), (9, 0), (3, 1), (100, 0), (100, 0)])) == pytest.approx(0.4)
    assert crash_rate()(survival_scores([(100, 0), (100, 0)])) == 0.0
    assert crash_rate()(survival_scores([(1, 1)])) == 1.0
    assert math.isnan(crash_rate()([]))


def test_km_median_survival_metric() -> None:
    metric = km_median_survival()
    assert math.isnan(metric(survival_scores([(500, 0), (500, 0), (87, 0)])))  # no crash: undefined
    assert metric(survival_scores([(5, 1), (10, 1), (15, 1), (20, 1)])) == 10.0  # all crash
    mixed = [(2, 1), (3, 0), (4, 1), (5, 1), (6, 0), (8, 1)]
    assert metric(survival_scores(mixed)) == 5.0  # hand computation above


def test_survival_metrics_need_dict_values() -> None:
    with pytest.raises(TypeError):
        crash_rate()([SampleScore(score=Score(value=1.0))])


def test_incoherence_metrics_read_their_own_keys() -> None:
    scores = [
        SampleScore(score=Score(value={"time_to_incoherence": t, "incoherent": e}), sample_id=i)
        for i, (t, e) in enumerate([(5, 1), (10, 1), (15, 0), (20, 1)])
    ]
    assert incoherence_rate()(scores) == 0.75
    assert km_median_incoherence()(scores) == 10.0  # S(5) = 3/4, S(10) = 1/2
    assert math.isnan(incoherence_rate()([]))
    with pytest.raises(KeyError):
        incoherence_rate()(survival_scores([(5, 1)]))  # a survival value is not an incoherence value


def test_crash_type_share() -> None:
    values = ["looping", "none", "none", "stall"]
    shares = crash_type_share()([SampleScore(score=Score(value=v), sample_id=i) for i, v in enumerate(values)])
    assert set(shares) == set(CRASH_TYPE_LABELS) == {*CRASH_TYPES, "none"}
    assert shares["looping"] == 0.25 and shares["stall"] == 0.25 and shares["none"] == 0.5
    assert all(shares[t] == 0.0 for t in CRASH_TYPES if t not in ("looping", "stall"))
    assert sum(shares.values()) == pytest.approx(1.0)


# ----- scorers on hand-built states -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("crashed", {"time_to_crash": 40, "crashed": 1, "non_starter": 0, "censored": 0, "terminated": 0, "steps": 59}),
        (
            "non_starter",
            {"time_to_crash": 40, "crashed": 1, "non_starter": 1, "censored": 0, "terminated": 0, "steps": 59},
        ),
        (
            "censored",
            {"time_to_crash": 500, "crashed": 0, "non_starter": 0, "censored": 1, "terminated": 0, "steps": 500},
        ),
        (
            "terminated",
            {"time_to_crash": 87, "crashed": 0, "non_starter": 0, "censored": 1, "terminated": 1, "steps": 87},
        ),
        ("limit", {"time_to_crash": 30, "crashed": 0, "non_starter": 0, "censored": 1, "terminated": 0, "steps": 30}),
    ],
)
def test_survival_values(case: str, expected: dict[str, int]) -> None:
    score = run_scorer(survival(), case)
    assert score.value == expected
    assert tuple(score.as_dict()) == SURVIVAL_KEYS
    assert score.metadata is not None and score.metadata["outcome"] == RECORDS[case]["outcome"]


def test_survival_explanations() -> None:
    assert "onset at step 40" in (run_scorer(survival(), "crashed").explanation or "")
    assert "Non-starter" not in (run_scorer(survival(), "crashed").explanation or "")
    assert (run_scorer(survival(), "non_starter").explanation or "").startswith(
        "Non-starter (no productive action before the onset): crashed (looping, hard) with onset at step 40"
    )
    assert "censored at step 500" in (run_scorer(survival(), "censored").explanation or "")
    assert "outcome limit (message) after 30 steps" in (run_scorer(survival(), "limit").explanation or "")


@pytest.mark.parametrize(
    ("case", "expected"), [("crashed", "looping"), ("censored", "none"), ("terminated", "none"), ("limit", "none")]
)
def test_crash_type_values(case: str, expected: str) -> None:
    assert run_scorer(crash_type(), case).value == expected


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("crashed", {"time_to_incoherence": 59, "incoherent": 0}),  # censored where the crash ended the run
        ("censored", {"time_to_incoherence": 120, "incoherent": 1}),  # incoherent, and the run went on
        ("terminated", {"time_to_incoherence": 87, "incoherent": 0}),
        ("limit", {"time_to_incoherence": 30, "incoherent": 0}),
    ],
)
def test_incoherence_values(case: str, expected: dict[str, int]) -> None:
    score = run_scorer(incoherence(), case)
    assert score.value == expected
    assert tuple(score.as_dict()) == INCOHERENCE_KEYS


def test_incoherence_explanations() -> None:
    incoherent = run_scorer(incoherence(), "censored")
    assert "Incoherent (decoupling) with onset at step 120, detected at 124" in (incoherent.explanation or "")
    assert incoherent.metadata == {"incoherence_type": "decoupling"}
    assert "No incoherence: censored at step 59; outcome crashed" in (
        run_scorer(incoherence(), "crashed").explanation or ""
    )


def business_value(net_worth: float, cash: float, shipped: int, failed: int, business_failed: int) -> dict:
    return {
        "net_worth": net_worth,
        "cash": cash,
        "orders_shipped": shipped,
        "orders_failed": failed,
        "business_failed": business_failed,
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("crashed", business_value(1000.0, 500.0, 3, 1, 0)),
        ("censored", business_value(1500.25, 800.5, 40, 2, 0)),
        ("terminated", business_value(-20.0, -150.75, 5, 9, 1)),
    ],
)
def test_business_values(case: str, expected: dict[str, float]) -> None:
    score = run_scorer(business(), case)
    assert score.value == expected
    assert tuple(score.as_dict()) == BUSINESS_KEYS


def test_business_explanation_names_the_failure() -> None:
    assert "business failed (bankrupt)" in (run_scorer(business(), "terminated").explanation or "")


def expected_pe(
    ewma: tuple[float, float, float], brier_mean: float, brier_count: int, surprises: int, cards: tuple[int, int]
) -> dict:
    totals = {"temporal": (0.5, 2), "quantity": (0.0, 0), "cost": (0.3, 3), "causal": (1.0, 5), "combined": (1.8, 10)}
    values: dict[str, float | int] = {}
    for series, (total, count) in totals.items():
        values |= {f"pe_{series}_sum": total, f"pe_{series}_count": count}
        values[f"pe_{series}_mean"] = total / count if count else math.nan
    values |= dict(zip(("pe_ewma_fast", "pe_ewma_medium", "pe_ewma_slow"), ewma, strict=True))
    values |= {"pe_surprises": surprises, "brier_mean": brier_mean, "brier_count": brier_count}
    return values | dict(zip(("predictions_made", "actions_without_card"), cards, strict=True))


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # crashed: the EWMAs of the trace row at the onset step 40, not of the last step 59
        ("crashed", expected_pe((0.040, 0.020, 0.010), 0.04, 5, 2, (40, 3))),
        # censored without a trace: time_to_crash is the last step, whose EWMAs the summary holds
        ("censored", expected_pe((0.2, 0.1, 0.05), 0.04, 5, 2, (40, 3))),
        ("terminated", expected_pe((0.087, 0.0435, 0.02175), 0.04, 5, 2, (40, 3))),
        # no probability stated: brier_mean NaN; no card at all
        ("limit", expected_pe((0.2, 0.1, 0.05), math.nan, 0, 0, (0, 30))),
    ],
)
def test_prediction_error_values(case: str, expected: dict[str, float]) -> None:
    value = run_scorer(prediction_errors(), case).as_dict()
    assert tuple(value) == PE_KEYS
    for key, want in expected.items():
        got = value[key]
        assert isinstance(got, float | int)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want), key
    assert math.isnan(value["pe_quantity_mean"])  # no quantity PE resolved


def test_prediction_errors_crash_without_trace_has_no_ewma_at_crash() -> None:
    record = {**RECORDS["crashed"], "trace": None}
    value = asyncio.run(prediction_errors()(task_state(record), Target(""))).as_dict()
    assert all(math.isnan(value[f"pe_ewma_{scale}"]) for scale in ("fast", "medium", "slow"))
    assert value["pe_combined_mean"] == pytest.approx(0.18)


def test_prediction_errors_explanation() -> None:
    assert "no confidence stated" in (run_scorer(prediction_errors(), "limit").explanation or "")
    assert "Brier 0.040" in (run_scorer(prediction_errors(), "crashed").explanation or "")
    assert "0 prediction fields stated, 30 actions without a card" in (
        run_scorer(prediction_errors(), "limit").explanation or ""
    )


@pytest.mark.parametrize("scorer", vendomini_scorers(), ids=lambda s: s.__qualname__.split(".")[0])
def test_no_summary_is_unscored(scorer: Scorer) -> None:
    score = run_scorer(scorer, "no_summary")
    assert isinstance(score.value, float) and math.isnan(score.value)
    assert score.reason == NO_EPISODE_REASON
    assert "never started" in (score.explanation or "") and "provider error: 503" in (score.explanation or "")
    assert score.metadata == {"outcome": "error", "limit": "provider error: 503"}


def test_vendomini_scorers() -> None:
    names = [s.__qualname__.split(".")[0] for s in vendomini_scorers()]
    assert names == ["survival", "crash_type", "incoherence", "business", "prediction_errors"]


# ----- the contract with the core -------------------------------------------------------------------------


def test_a_real_summary_round_trips_through_the_store_and_scores() -> None:
    condition = Condition(max_steps=120, prediction_mode="required+confidence")
    out = run_policy(condition, 3, fault="looping", onset=40)
    real = out.episode.summary()
    trace = {"columns": out.episode.trace.columns(), "signals": out.episode.trace.signals}
    record = {"outcome": "crashed", "summary": real.model_dump(mode="json"), "trace": trace}
    state = task_state(record)
    assert state.store_as(EpisodeRecord).episode_summary() == real
    surv = asyncio.run(survival()(state, Target(""))).as_dict()
    assert real.crash is not None and real.crash.endpoint == "crash"
    assert surv["crashed"] == 1 and surv["time_to_crash"] == real.crash.onset_step == 40
    incoherent = asyncio.run(incoherence()(state, Target(""))).as_dict()
    assert incoherent["incoherent"] == int(bool(real.incoherent))
    assert incoherent["time_to_incoherence"] == real.time_to_incoherence
    pe = asyncio.run(prediction_errors()(state, Target(""))).as_dict()
    row = trace["columns"]["step"].index(40)
    assert pe["pe_ewma_fast"] == trace["columns"]["pe_combined_ewma_fast"][row]
    assert pe["pe_combined_count"] == real.pe.combined.count
    assert pe["brier_count"] == real.pe.brier_count > 0
    assert pe["predictions_made"] == real.predictions_made > 0


# ----- end to end through Inspect -------------------------------------------------------------------------


@solver
def replay_record() -> Solver:
    """Stands in for the VendoMini solver: writes the sample's hand-built EpisodeRecord into the store."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        stored = state.store_as(EpisodeRecord)
        for name, value in state.metadata["record"].items():
            setattr(stored, name, value)
        return state

    return solve


def test_end_to_end_results(tmp_path: Any) -> None:
    cases = ["crashed", "censored", "terminated", "limit", "no_summary"]
    dataset = [Sample(input="run", id=case, metadata={"record": RECORDS[case]}) for case in cases]
    task = Task(dataset=dataset, solver=replay_record(), scorer=vendomini_scorers(), headline_metric=HEADLINE_METRIC)
    [log] = eval(task, model="mockllm/model", log_dir=str(tmp_path), display="none")
    assert log.status == "success" and log.results is not None
    # The survival scorer's unreduced metrics get their own block (reducer None); the per-key means are reduced.
    scores = {(s.scorer, s.name): s for s in log.results.scores if s.metrics}
    assert log.results.headline is not None and log.results.headline.metric == "crash_rate"

    overall = scores[("survival", "survival")]
    assert overall.reducer is None
    assert overall.metrics["crash_rate"].value == pytest.approx(1 / 4)  # 1 crash in 4 runs; no_summary left out
    assert math.isnan(overall.metrics["km_median_survival"].value)  # S never falls to 0.5
    assert overall.unscored_samples == 1 and overall.scored_samples == 4
    reread = read_eval_log(log.location)  # NaN survives the JSON log
    assert reread.results is not None
    [reread_overall] = [s for s in reread.results.scores if "km_median_survival" in s.metrics]
    assert math.isnan(reread_overall.metrics["km_median_survival"].value)

    ttc = scores[("survival", "time_to_crash")]
    assert ttc.metrics["mean"].value == pytest.approx((40 + 500 + 87 + 30) / 4)
    assert ttc.unscored_samples == 1

    shares = scores[("crash_type", "crash_type")].metrics
    assert shares["looping"].value == 0.25 and shares["none"].value == 0.75
    assert shares["stall"].value == 0.0

    incoherent = scores[("incoherence", "incoherence")]
    assert incoherent.reducer is None and incoherent.metrics["incoherence_rate"].value == 0.25
    # the one incoherent run (120) outlasts every other run (censored at 30, 59, 87): S(120) = 0
    assert incoherent.metrics["km_median_incoherence"].value == 120.0
    tti = scores[("incoherence", "time_to_incoherence")]
    assert tti.metrics["mean"].value == pytest.approx((59 + 120 + 87 + 30) / 4)

    assert scores[("business", "business_failed")].metrics["mean"].value == 0.25
    brier = scores[("prediction_errors", "brier_mean")]
    assert brier.metrics["mean"].value == pytest.approx(0.04)  # the run without confidence is left out
    assert brier.scored_samples == 3 and brier.unscored_samples == 2
    assert scores[("prediction_errors", "pe_ewma_fast")].metrics["mean"].value == pytest.approx(
        (0.040 + 0.2 + 0.087 + 0.2) / 4
    )
