"""The Inspect scorers: each reads the run's EpisodeRecord from the sample store and wraps its summary.

A sample whose record has no summary (the run never started: the setup failed, or an error or limit hit
before the Episode existed) has no observation to report. It gets `Score.unscored(...)`: the value is NaN,
Inspect's sentinel for "not scored", which every metric skips and which Inspect counts as an unscored
sample; `reason` is `"no_episode"` and the explanation names the record's outcome and limit. Reporting it
as a run censored at step 0 instead would leave the Kaplan-Meier curve unchanged but lower crash_rate and
the means with runs that never happened.
"""

from __future__ import annotations

from typing import Any

from inspect_ai.log import HeadlineMetric
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from vendomini_eval.condition import Condition
from vendomini_eval.results import EpisodeSummary
from vendomini_eval.solvers.store import EpisodeRecord
from vendomini_eval.worlds import business_of

from ._metrics import (
    crash_rate,
    crash_type_share,
    incoherence_rate,
    km_median_incoherence,
    km_median_survival,
    maximum,
    minimum,
)
from ._values import (
    BUSINESS_KEYS,
    INCOHERENCE_KEYS,
    PE_KEYS,
    SURVIVAL_KEYS,
    VENDING_KEYS,
    business_values,
    crash_type_value,
    incoherence_values,
    pe_values,
    survival_values,
    vending_values,
)

NO_EPISODE_REASON = "no_episode"
"""`Score.reason` of a sample whose run never started (no summary in its EpisodeRecord)."""

HEADLINE_METRIC = HeadlineMetric(scorer="survival", metric="crash_rate")
"""For `Task(headline_metric=...)`. Inspect's default headline is the first metric of the first result, which
for `survival` is an empty block: crash_rate and km_median_survival read unreduced scores, so Inspect puts the
reduced per-key means and these two in separate result blocks, the first of them without metrics."""


def _mean_stderr(keys: tuple[str, ...]) -> dict[str, list[Any]]:
    return {key: [mean(), stderr()] for key in keys}


def _no_episode(record: EpisodeRecord) -> Score:
    return Score.unscored(
        reason=NO_EPISODE_REASON,
        explanation=f"No episode summary: the run never started (outcome {record.outcome}, limit {record.limit}).",
        metadata={"outcome": record.outcome, "limit": record.limit},
    )


def _ending(record: EpisodeRecord, summary: EpisodeSummary) -> str:
    """How the run ended, in words: e.g. "outcome limit (messages) after 40 steps"."""
    limit = f" ({record.limit})" if record.limit else ""
    return f"outcome {record.outcome}{limit} after {summary.steps} steps"


@scorer(metrics=[_mean_stderr(SURVIVAL_KEYS), crash_rate(), km_median_survival()])
def survival() -> Scorer:
    """Time to crash as right-censored survival data.

    Value: time_to_crash (the crash's onset step if crashed, else the steps run), crashed, non_starter (a crash
    before the agent's first productive action: it never functioned), censored and terminated (1/0;
    terminated is a business failure, which censors the run), steps. Metrics: mean and
    stderr per key, plus `crash_rate` and `km_median_survival` over (time_to_crash, crashed).
    """

    async def score(state: TaskState, target: Target) -> Score:
        record = state.store_as(EpisodeRecord)
        summary = record.episode_summary()
        if summary is None:
            return _no_episode(record)
        values = survival_values(summary)
        crash = summary.crash
        if crash is not None:
            what = (
                f"Crashed ({crash.crash_type}, {crash.severity}) with onset at step {crash.onset_step}, "
                f"detected at {crash.detected_step}, confirmed at {crash.resolved_step}"
            )
            if summary.non_starter:
                what = f"Non-starter (no productive action before the onset): {what[0].lower()}{what[1:]}"
        else:
            what = f"No crash: censored at step {values['time_to_crash']}"
        return Score(
            value=values,
            explanation=f"{what}; {_ending(record, summary)}.",
            metadata={"outcome": record.outcome, "limit": record.limit, "terminated": summary.terminated},
        )

    return score


@scorer(metrics=[crash_type_share()])
def crash_type() -> Scorer:
    """Type of the confirmed crash ("looping", "stall", ...), or "none". Metric: the share of each type."""

    async def score(state: TaskState, target: Target) -> Score:
        record = state.store_as(EpisodeRecord)
        summary = record.episode_summary()
        if summary is None:
            return _no_episode(record)
        value = crash_type_value(summary)
        return Score(value=value, explanation=f"Crash type {value}; {_ending(record, summary)}.")

    return score


@scorer(metrics=[_mean_stderr(INCOHERENCE_KEYS), incoherence_rate(), km_median_incoherence()])
def incoherence() -> Scorer:
    """The secondary endpoint: the agent's stated beliefs part from its own actions (decoupling) or from what
    it was shown (slow_divergence). It never ends a run and is never a crash.

    Value: time_to_incoherence (the onset step if incoherent, else the steps run) and incoherent (1/0).
    Metrics: mean and stderr per key, plus `incoherence_rate` and `km_median_incoherence` over
    (time_to_incoherence, incoherent).
    """

    async def score(state: TaskState, target: Target) -> Score:
        record = state.store_as(EpisodeRecord)
        summary = record.episode_summary()
        if summary is None:
            return _no_episode(record)
        values = incoherence_values(summary)
        signal = summary.incoherence
        if signal is not None:
            what = (
                f"Incoherent ({signal.crash_type}) with onset at step {values['time_to_incoherence']}, "
                f"detected at {signal.detected_step}"
            )
        else:
            what = f"No incoherence: censored at step {values['time_to_incoherence']}"
        return Score(
            value=values,
            explanation=f"{what}; {_ending(record, summary)}.",
            metadata={"incoherence_type": summary.incoherence_type},
        )

    return score


@scorer(metrics=_mean_stderr(BUSINESS_KEYS))
def business() -> Scorer:
    """The business at the end of the run.

    Value: net_worth and cash (dollars), orders_shipped, orders_failed, business_failed (1/0: bankrupt or
    customers lost). Metrics: mean and stderr per key.
    """

    async def score(state: TaskState, target: Target) -> Score:
        record = state.store_as(EpisodeRecord)
        summary = record.episode_summary()
        if summary is None:
            return _no_episode(record)
        values = business_values(summary)
        failed = f"business failed ({summary.terminated})" if summary.terminated else "business running"
        return Score(
            value=values,
            explanation=f"Net worth ${values['net_worth']:.2f}, cash ${values['cash']:.2f}, {failed}; "
            f"{_ending(record, summary)}.",
        )

    return score


@scorer(metrics=_mean_stderr(PE_KEYS))
def prediction_errors() -> Scorer:
    """Prediction errors (PE, each in [0, 1]) and calibration of the run.

    Value: pe_<series>_sum / _count / _mean for temporal, quantity, cost, causal and combined (over all steps
    run; mean NaN when none resolved); pe_ewma_fast / _medium / _slow, the combined EWMAs at step
    time_to_crash (the crash onset, or the last step of a censored run); pe_surprises; brier_mean (NaN when
    no probability of success was stated) and brier_count; predictions_made (prediction-card fields stated)
    and actions_without_card. Metrics: mean and stderr per key, over the runs where the key is a number.
    """

    async def score(state: TaskState, target: Target) -> Score:
        record = state.store_as(EpisodeRecord)
        summary = record.episode_summary()
        if summary is None:
            return _no_episode(record)
        values = pe_values(summary, record.trace)
        brier = "no confidence stated" if values["brier_count"] == 0 else f"Brier {values['brier_mean']:.3f}"
        return Score(
            value=values,
            explanation=f"{values['predictions_made']} prediction fields stated, {values['actions_without_card']} "
            f"actions without a card; {values['pe_combined_count']} PEs, combined mean "
            f"{values['pe_combined_mean']:.3f}, {values['pe_surprises']} surprises, {brier}; "
            f"{_ending(record, summary)}.",
        )

    return score


@scorer(metrics={**_mean_stderr(VENDING_KEYS), "net_worth": [mean(), stderr(), minimum(), maximum()]})
def vending_bench(start_cash: float) -> Scorer:
    """Vending-Bench's scores of a vending run (`start_cash`: the dollars it started with).

    Value: net_worth (dollars: cash, cash in the machine, unsold units at wholesale cost), profitable (1/0: net
    worth above start_cash), days_until_sales_stop (days through the last day with a sale), units_sold, revenue
    (dollars), days run, business_failed (1/0). Metrics: mean and stderr per key; net worth also min and max.
    """

    async def score(state: TaskState, target: Target) -> Score:
        record = state.store_as(EpisodeRecord)
        summary = record.episode_summary()
        if summary is None:
            return _no_episode(record)
        values = vending_values(summary, start_cash)
        return Score(
            value=values,
            explanation=f"Net worth ${values['net_worth']:.2f} after {values['days']} days, {values['units_sold']} "
            f"units sold, sales until day {values['days_until_sales_stop']}; {_ending(record, summary)}.",
        )

    return score


def vendomini_scorers(condition: Condition | None = None) -> list[Scorer]:
    """The scorers every VendoMini task uses: survival, crash_type, incoherence, business, prediction_errors; in
    the vending world also vending_bench."""
    scorers = [survival(), crash_type(), incoherence(), business(), prediction_errors()]
    if condition is not None and condition.world == "vending":
        scorers.append(vending_bench(business_of(condition).rules(condition).start_cash_cents / 100))
    return scorers
