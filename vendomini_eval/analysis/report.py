"""`vendomini analyze`: logs in, tables, statistics, figures and a self-contained HTML report out.

Writes to the output directory: runs.csv/.parquet, steps.csv/.parquet, intervals.parquet (the time-varying
Cox input), summary.csv (one row per experiment x condition x model), the statistics as CSV (incoherence.csv:
the secondary endpoint by model), vending_bench.csv (when there are vending runs), thresholds.csv (when checked),
figures/ (each figure as PNG and SVG) and index.html, which embeds its figures as base64 PNG so it can be mailed
alone.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd  # inspect-evals-lint: ignore[external_dependencies] -- the analysis extra; no task imports it

from vendomini_eval.analysis import competing, inference, stats
from vendomini_eval.analysis.gates import gate_decisions, gates_line
from vendomini_eval.analysis.load import LoadedLogs, load_runs
from vendomini_eval.analysis.paired import paired_observability
from vendomini_eval.analysis.tables import condition_columns, runs_table, steps_table, write_table
from vendomini_eval.analysis.thresholds import ThresholdsResult
from vendomini_eval.analysis.vending import CAVEAT, SOURCES, mixed_worlds, published_table, vending_bench_table

GROUP_KEYS = ("experiment", "condition_label", "model")
HEADLINE_COVARIATE = "pe_combined_cum"
ADJUSTMENT = (*stats.SHOCK_EXPOSURE, *stats.BUSINESS_STATE)
"""What the headline's adjusted PE effect holds fixed: the shocks and blocked steps so far, and the business's
cash and goods (the adjustment under which the negative control, an agent that cannot respond to PE, shows no
PE effect: bench/negative_control.py)."""
"""The PE covariate of the per-model headline: the accumulated PE, the quantity the study's hypothesis names."""
PLANNING_HR = 1.5
"""The hazard ratio per SD that the power table plans for by default (`--power HR`)."""
POOLED = "(all models)"
"""The `model` of a row pooled over the models (`--pool-models`)."""
MAX_PAGE_ROWS = 24
"""Rows a table may have on the page; a longer one (a row per condition of a big grid) is linked as CSV."""
FIGURES = (
    ("incidence", "Cumulative incidence by model"),
    ("dose_response", "Crash rate by p_shock per model"),
    ("heatmap", "Crash rate over the two main factors per model"),
    ("pe_aligned", "PE trajectories aligned to the crash onset"),
    ("km", "Kaplan-Meier curves by condition (crash-specific)"),
    ("crash_types", "Crash-type mix by condition"),
)
"""The report's figures, in the order shown: before any table."""
MAX_KM_CURVES = 24
"""KM curves drawn in one figure; more groups than this are listed in the table only."""


@dataclass
class Analysis:
    """Everything the report shows, as tables."""

    loaded: LoadedLogs
    runs: pd.DataFrame
    steps: pd.DataFrame
    intervals: pd.DataFrame
    summary: pd.DataFrame
    km: pd.DataFrame
    km_fits: dict[str, Any]
    logrank: pd.DataFrame
    cox: pd.DataFrame
    ph_test: pd.DataFrame
    dose_rates: pd.DataFrame
    dose_trend: pd.DataFrame
    tv_cox: pd.DataFrame
    pe_adjusted: pd.DataFrame
    """Per model: the headline covariate's hazard ratio adjusted for ADJUSTMENT, within conditions."""
    crash_types: pd.DataFrame
    aligned: pd.DataFrame
    incoherence: pd.DataFrame
    incidence: pd.DataFrame
    """Aalen-Johansen cumulative incidence of crash and business failure (competing) per model and per group."""
    incidence_summary: pd.DataFrame
    block: int
    factors: list[str] = field(default_factory=list)
    """The condition columns that vary across the runs, in the grid's order."""
    power: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per model: the smallest hazard ratio per SD detectable at 80% power, and the runs a planned one needs."""
    headline: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per model (`headline`): what the report opens with."""
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per experiment, model and observability arm: the within-seed comparison with full observability."""
    gates: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Governance gate decisions by reason, per model and condition (`gates.gate_decisions`)."""
    vending_bench: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The vending runs in Vending-Bench's measures, per model and condition (`vending.vending_bench_table`);
    empty without a vending run."""
    bootstrap_replicates: int = inference.BOOTSTRAP_REPLICATES
    pool_models: bool = False
    """Rows pooled over the models were asked for (`--pool-models`)."""
    figures: dict[str, bytes] = field(default_factory=dict)
    thresholds: ThresholdsResult | None = None
    """The thresholds check, when one was asked for (`check_thresholds`); shown at the top of the report."""


def analyze(log_dir: str | Path, block: int = 1, pool_models: bool = False, planning_hr: float = PLANNING_HR,
            bootstrap_replicates: int = inference.BOOTSTRAP_REPLICATES) -> Analysis:  # fmt: skip
    """Load the logs below `log_dir` and compute every table and statistic of the report. Every statistic is
    per model; `pool_models` adds rows pooled over the models, with the model as a stratum or a factor.
    `planning_hr` is the hazard ratio per SD the power table plans for; `bootstrap_replicates` resamples of runs
    give the headline's robust interval (0: none)."""
    loaded = load_runs(log_dir)
    runs, steps = runs_table(loaded), steps_table(loaded)
    if runs.empty:
        runs["group"] = pd.Series(dtype=str)
    else:
        runs["group"] = _group_labels(runs)
    names: list[str] = []
    for run in loaded.runs:
        names.extend(n for n in condition_columns(run.record.get("condition") or {}) if n not in names)

    rates = stats.crash_rates(runs, GROUP_KEYS) if len(runs) else pd.DataFrame()
    km, km_fits = stats.kaplan_meier(runs, ["group"]) if len(runs) else (pd.DataFrame(), {})
    tables = survival_statistics(runs, steps, names, block=block, pool_models=pool_models)
    analysis = Analysis(
        loaded=loaded, runs=runs, steps=steps, summary=_summary(runs, rates, km), km=km, km_fits=km_fits,
        crash_types=stats.crash_type_mix(runs, ["group"]) if len(runs) else pd.DataFrame(),
        aligned=stats.aligned_trajectories(runs, steps), incoherence=incoherence_by_model(runs),
        incidence=_incidence(runs), incidence_summary=_incidence_summary(runs), block=block, pool_models=pool_models,
        power=power_table(runs, planning_hr), paired=paired_observability(runs), gates=gate_decisions(runs),
        vending_bench=vending_bench_table(runs),
        factors=stats.grid_factors(runs, names) if len(runs) else [],
        bootstrap_replicates=bootstrap_replicates, **tables,
    )  # fmt: skip
    analysis.headline = headline(analysis)  # it reads the tables above
    return analysis


def headline(analysis: Analysis) -> pd.DataFrame:
    """One row per model: runs, crash incidence by the last step (competing business failure), business
    failures, the hazard ratio per SD of the accumulated PE within the model's conditions (`headline_pe_fit`;
    with its note when not estimable), and mean net worth."""
    runs = analysis.runs
    if runs.empty:
        return pd.DataFrame()
    incidence = analysis.incidence_summary
    incidence = incidence[incidence["model"].notna()].set_index("model") if "model" in incidence else None
    tv = analysis.tv_cox
    rows = []
    for model, part in runs.groupby("model", sort=True):
        row: dict[str, Any] = {"model": model, "conditions": part["condition_label"].nunique(), "runs": len(part),
                               "crashes": int(part["crashed"].sum()),
                               "non_starters": int(non_starters(part).sum())}  # fmt: skip
        if incidence is not None and model in incidence.index:
            row.update({key: incidence.loc[model, key] for key in ("cif_crash", "cif_crash_lo", "cif_crash_hi",
                                                                 "business_failures")})  # fmt: skip
        pe = headline_pe_fit(tv, model)
        if len(pe):
            row.update(pe_hr_per_sd=pe["hr_per_sd"].iloc[0], pe_hr_per_sd_lo=pe["hr_per_sd_lo"].iloc[0],
                       pe_hr_per_sd_hi=pe["hr_per_sd_hi"].iloc[0], pe_note=pe["note"].iloc[0])  # fmt: skip
            adjusted = analysis.pe_adjusted
            adjusted = adjusted[adjusted["model"] == model] if not adjusted.empty else adjusted
            if len(adjusted):
                row.update(pe_hr_per_sd_adjusted=adjusted["hr_per_sd"].iloc[0],
                           pe_hr_per_sd_adjusted_lo=adjusted["hr_per_sd_lo"].iloc[0],
                           pe_hr_per_sd_adjusted_hi=adjusted["hr_per_sd_hi"].iloc[0],
                           pe_adjusted_note=adjusted["note"].iloc[0])  # fmt: skip
            own = _of_model(analysis.intervals, model)
            if analysis.bootstrap_replicates and pe["note"].iloc[0] == "" and HEADLINE_COVARIATE in own:
                boot = inference.bootstrap_hazard_ratio(own, HEADLINE_COVARIATE, strata=pe["strata"].iloc[0] or None,
                                                        replicates=analysis.bootstrap_replicates, seed=0)  # fmt: skip
                row.update(pe_hr_per_sd_boot_lo=boot.hr_per_sd_lo, pe_hr_per_sd_boot_hi=boot.hr_per_sd_hi,
                           pe_note=boot.note)  # fmt: skip
        row["mean_net_worth"] = float(part["net_worth"].mean())
        row.update(total_tokens=known_sum(part["total_tokens"]), cost_usd=known_sum(part["cost_usd"]),
                   calls=known_sum(part["calls"]))  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def headline_pe_fit(tv_cox: pd.DataFrame, model: str) -> pd.DataFrame:
    """The model's time-varying Cox row of HEADLINE_COVARIATE that the headline shows: within conditions (the
    condition a stratum) when the model ran several, else across its runs. Across conditions, a condition whose
    agent states no cards (its PE sums stay 0: no prediction, not a perfect one) and crashes at another rate
    would make a PE effect out of the prediction protocol alone."""
    if tv_cox.empty:
        return tv_cox
    rows = tv_cox[(tv_cox["model"] == model) & (tv_cox["covariate"] == HEADLINE_COVARIATE)]
    within = rows[rows["strata"] == "group"]
    return within if len(within) else rows[rows["strata"] == ""]


def power_table(runs: pd.DataFrame, planning_hr: float = PLANNING_HR, planned_runs: int | None = None) -> pd.DataFrame:
    """Per model, from its observed crashes (Schoenfeld's approximation, two-sided alpha 0.05, 80% power, a
    covariate of unit variance per SD): the smallest hazard ratio per SD it can detect, and the runs it would
    need for `planning_hr` at its observed crash share. With `planned_runs` (a pilot's logs, a plan's runs per
    model): the crashes expected at that share and the smallest hazard ratio they can detect."""
    rows = []
    for model, part in runs.groupby("model", sort=True) if len(runs) else []:
        crashes = int(part["crashed"].sum())
        share = crashes / len(part)
        rows.append({"model": model, "runs": len(part), "crashes": crashes,
                     "min_detectable_hr_per_sd": inference.minimum_detectable_hr(crashes) if crashes else math.nan,
                     "planning_hr_per_sd": planning_hr,
                     "crashes_needed": math.ceil(inference.schoenfeld_events(planning_hr)),
                     "runs_needed": math.ceil(inference.runs_needed(planning_hr, share)) if share else math.nan,
                     })  # fmt: skip
        if planned_runs is not None:
            expected = planned_runs * share
            rows[-1].update(planned_runs=planned_runs, expected_crashes=round(expected, 1),
                            planned_min_detectable_hr_per_sd=inference.minimum_detectable_hr(expected) if expected
                            else math.nan)  # fmt: skip
    return pd.DataFrame(rows)


def _incidence(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return pd.DataFrame(columns=["model", *competing.CURVE_COLUMNS])
    causes = competing.CAUSES
    return _concat([competing.cumulative_incidence(runs, ["model"], causes),
                    competing.cumulative_incidence(runs, ["group"], causes)])  # fmt: skip


def _incidence_summary(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return pd.DataFrame(columns=["model", *competing.SUMMARY_COLUMNS])
    return _concat([competing.incidence_summary(runs, ["model"]), competing.incidence_summary(runs, ["group"])])


def survival_statistics(
    runs: pd.DataFrame, steps: pd.DataFrame, names: Sequence[str], block: int = 1, pool_models: bool = False
) -> dict[str, pd.DataFrame]:
    """The tests and models of the report, each per model (a `model` column names it): log-rank and Cox PH on
    the grid factors per experiment, the dose-response, and the time-varying Cox on the PE accumulators (across
    the model's conditions, and within them: the condition as a stratum). Two models with different crash
    rates and PE levels would otherwise make a PE effect out of the model alone. With `pool_models`, rows
    pooled over the models are added, marked `model` = POOLED: the model a factor (Cox, dose trend) or a
    stratum (time-varying Cox); the log-rank, which has no strata here, stays per model."""
    logrank, cox, ph, dose_rates, dose_trend, tv_cox, adjusted = [], [], [], [], [], [], []
    covariates = [c for c in stats.TV_COVARIATES if c in steps]
    controls = list(ADJUSTMENT) if covariates and len(steps) and {"shock", "cash_cents"} <= set(steps) else []
    # Only the columns the intervals read, without a copy: the steps table with the exposure added, or merged,
    # would be copied whole (gigabytes at phase-2 size).
    needed = {name: steps[name].to_numpy() for name in ["run_id", "step", *covariates] if name in steps}
    if controls:  # what the world did to the run so far, lagged into the intervals as the PE is
        for exposure in (stats.shock_exposure(steps), stats.business_state(steps)):  # not joined: a copy of both
            needed.update({name: exposure[name].to_numpy() for name in controls if name in exposure})
        del exposure
    # A non-starter never functioned: it did not break down after accumulating PE, so the PE models leave it out.
    started = runs[~non_starters(runs)] if len(runs) else runs
    intervals = stats.pe_intervals(started, pd.DataFrame(needed, copy=False), [*covariates, *controls],
                                   block=block) if covariates and len(started) else pd.DataFrame(
        columns=["run_id", "start", "stop", "event"])  # fmt: skip
    del needed
    if len(runs):  # each interval's group and model by its run (a merge would copy the intervals)
        row = pd.Index(runs["run_id"]).get_indexer(intervals["run_id"])
        for name in ("group", "model"):
            intervals[name] = runs[name].to_numpy()[row]
    for (experiment, model), part in runs.groupby(["experiment", "model"], sort=True) if len(runs) else []:
        factors = stats.grid_factors(part, names)
        logrank.append(_with_q(stats.logrank_by_factor(part, factors)).assign(experiment=experiment, model=model))
        cox_table, ph_table = stats.cox_conditions(part, factors)
        cox.append(_with_q(cox_table).assign(experiment=experiment, model=model))
        ph.append(ph_table.assign(experiment=experiment, model=model))
    for model, part in runs.groupby("model", sort=True) if len(runs) else []:
        model_rates, model_trend = stats.dose_response(part)
        dose_rates.append(model_rates.assign(model=model))
        dose_trend.append(model_trend.assign(model=model))
        if covariates:
            own = _of_model(intervals, model)
            tv_cox.append(stats.time_varying_cox(own, covariates).assign(model=model))
            if part["group"].nunique() > 1:  # the PE effect within conditions as well
                tv_cox.append(stats.time_varying_cox(own, covariates, strata="group").assign(model=model))
            if controls and HEADLINE_COVARIATE in own:
                strata = "group" if part["group"].nunique() > 1 else None
                fit = stats.adjusted_time_varying_cox(own, HEADLINE_COVARIATE, controls, strata=strata)
                adjusted.append(fit.iloc[:1].assign(model=model, strata=strata or ""))
    if pool_models and len(runs) and runs["model"].nunique() > 1:
        for experiment, part in runs.groupby("experiment", sort=True):
            cox_table, ph_table = stats.cox_conditions(part, stats.grid_factors(part, names))  # model: a factor
            cox.append(cox_table.assign(experiment=experiment, model=POOLED))
            ph.append(ph_table.assign(experiment=experiment, model=POOLED))
        dose_trend.append(stats.dose_response(runs)[1].assign(model=POOLED))  # the model a covariate
        if covariates:
            tv_cox.append(stats.time_varying_cox(intervals, covariates, strata="model").assign(model=POOLED))
            tv_cox.append(stats.time_varying_cox(intervals, covariates, strata="group").assign(model=POOLED))
    return {"intervals": intervals if covariates else intervals.iloc[:0], "logrank": _concat(logrank),
            "cox": _concat(cox), "ph_test": _concat(ph), "dose_rates": _concat(dose_rates),
            "dose_trend": _concat(dose_trend), "tv_cox": _concat(tv_cox),
            "pe_adjusted": _concat(adjusted)}  # fmt: skip


def write_report(analysis: Analysis, out_dir: str | Path) -> Path:
    """Write the tables, figures and index.html; returns the path of index.html."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(analysis.runs, out, "runs")
    # The big tables (half a minute at phase-2 size) are written by Arrow, which releases the GIL: in a thread,
    # beside the rest (the figures above all).
    with ThreadPoolExecutor(1) as pool:
        written = [pool.submit(write_table, analysis.steps, out, "steps"),
                   pool.submit(analysis.intervals.to_parquet, out / "intervals.parquet", index=False)]  # fmt: skip
        analysis.summary.to_csv(out / "summary.csv", index=False)
        for name in ("km", "logrank", "cox", "ph_test", "dose_rates", "dose_trend", "tv_cox", "crash_types",
                     "aligned", "incoherence", "incidence", "incidence_summary", "power", "pe_adjusted", "headline",
                     "paired", "gates"):  # fmt: skip
            getattr(analysis, name).to_csv(out / f"{name}.csv", index=False)
        if not analysis.vending_bench.empty:
            analysis.vending_bench.to_csv(out / "vending_bench.csv", index=False)
        if analysis.thresholds is not None:
            analysis.thresholds.table().to_csv(out / "thresholds.csv", index=False)
        analysis.figures = _figures(analysis, out / "figures")
        path = out / "index.html"
        path.write_text(_html(analysis), encoding="utf-8")
        for table in written:
            table.result()
    return path


# ---------------------------------------------------------------------------------------------------------
# Tables


def _group_labels(runs: pd.DataFrame) -> pd.Series:
    """A short label per run's group: only the parts of (experiment, condition, model) that vary."""
    varying = [k for k in GROUP_KEYS if runs[k].nunique(dropna=False) > 1] or ["condition_label"]
    return runs[varying].astype(str).agg(" | ".join, axis=1)


def _summary(runs: pd.DataFrame, rates: pd.DataFrame, km: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return pd.DataFrame(columns=[*GROUP_KEYS, "runs", "crashes", "crash_rate"])
    means = runs.groupby(list(GROUP_KEYS), dropna=False).agg(
        group=("group", "first"), terminated=("terminated", "sum"), mean_steps=("steps", "mean"),
        mean_days=("days", "mean"),
        mean_net_worth=("net_worth", "mean"), mean_min_net_worth=("min_net_worth", "mean"),
        mean_days_until_sales_stop=("days_until_sales_stop", "mean"), mean_pe_combined_sum=("pe_combined_sum", "mean"),
        mean_pe_combined_mean=("pe_combined_mean", "mean"), mean_brier=("brier_mean", "mean"),
        input_tokens=("input_tokens", known_sum), output_tokens=("output_tokens", known_sum),
        total_tokens=("total_tokens", known_sum), cache_read_tokens=("cache_read_tokens", known_sum),
        cost_usd=("cost_usd", known_sum), calls=("calls", known_sum), model_time=("model_time", known_sum),
        working_time=("working_time", known_sum),
    ).reset_index()  # fmt: skip
    summary = rates.merge(means, on=list(GROUP_KEYS), how="left")
    km_part = km[["label", "median", "median_lo", "median_hi", "note"]].rename(
        columns={
            "label": "group",
            "median": "km_median",
            "median_lo": "km_median_lo",
            "median_hi": "km_median_hi",
            "note": "km_note",
        }
    )
    return summary.merge(km_part, on="group", how="left")


def non_starters(runs: pd.DataFrame) -> pd.Series:
    """Runs that crashed before their first productive action (False where an older log did not record it)."""
    if "non_starter" not in runs:
        return pd.Series(False, index=runs.index)
    return runs["non_starter"].fillna(False).astype(bool)


def _truncated(runs: pd.DataFrame) -> str:
    """The runs a limit cut short (an Inspect limit, or `budget`: a sweep ceiling), by limit, as a clause."""
    if "outcome" not in runs:
        return ""
    limits = runs.loc[runs["outcome"] == "limit", "limit"].fillna("unknown").value_counts()
    if limits.empty:
        return ""
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(limits.items()))
    return f"{int(limits.sum())} runs cut short by a limit ({kinds}; right-censored where they stopped), "


def known_sum(values: pd.Series) -> float:
    """The sum, or NaN when any value is unknown: a total with an unknown part is unknown, never a smaller one."""
    return float(values.sum()) if len(values) and values.notna().all() else math.nan


def incoherence_by_model(runs: pd.DataFrame) -> pd.DataFrame:
    """The secondary endpoint per model: runs whose logs record it, incoherent runs, the proportion with its 95%
    Wilson interval, and the count of each type."""
    recorded = runs[runs["incoherent"].notna()] if "incoherent" in runs else runs.iloc[:0]
    rows = []
    for model, group in recorded.groupby("model", sort=True):
        incoherent = group[group["incoherent"].astype(bool)]
        rate, lo, hi = stats.wilson_interval(len(incoherent), len(group))
        types = incoherent["incoherence_type"].value_counts().sort_index()
        rows.append({"model": model, "runs": len(group), "incoherent": len(incoherent), "incoherence_rate": rate,
                     "incoherence_rate_lo": lo, "incoherence_rate_hi": hi,
                     "types": ", ".join(f"{kind} {n}" for kind, n in types.items())})  # fmt: skip
    return pd.DataFrame(rows)


def _with_q(table: pd.DataFrame) -> pd.DataFrame:
    """The table with `q`: Benjamini-Hochberg false-discovery-rate adjusted p-values over its rows (one family:
    the factor tests of one model and experiment)."""
    if "p" not in table or table.empty:
        return table
    return table.assign(q=inference.benjamini_hochberg(table["p"].astype(float).to_numpy()))


def _of_model(intervals: pd.DataFrame, model: str) -> pd.DataFrame:
    """The intervals of one model; all of them, not a copy, when they hold only that model."""
    own = intervals["model"].to_numpy() == model
    return intervals if own.all() else intervals[own]


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---------------------------------------------------------------------------------------------------------
# Figures


def _figures(analysis: Analysis, figure_dir: Path) -> dict[str, bytes]:
    """Each figure saved as PNG and SVG; returns the PNG bytes by name for embedding."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    if analysis.km_fits and len(analysis.km_fits) <= MAX_KM_CURVES:
        fig, ax = plt.subplots(figsize=(8, 5))
        for label, kmf in analysis.km_fits.items():
            kmf.plot_survival_function(ax=ax, ci_show=len(analysis.km_fits) <= 6, label=label)
        ax.set(xlabel="step", ylabel="P(no crash yet)", ylim=(0, 1.05), title=competing.CAUSE_SPECIFIC_KM_LABEL)
        ax.legend(fontsize=7, loc="lower left")
        figures["km"] = fig
    curves = analysis.incidence
    if not curves.empty and "model" in curves and curves["model"].notna().any():
        fig, ax = plt.subplots(figsize=(8, 5))
        by_model = curves[curves["model"].notna()]
        for (model, cause), part in by_model.groupby(["model", "cause_name"], sort=True):
            style = "-" if cause == "crash" else "--"
            ax.step(part["time"], part["cif"], where="post", linestyle=style, label=f"{model}: {cause}")
        ax.set(xlabel="step", ylabel="cumulative incidence", ylim=(0, 1.05),
               title="Cumulative incidence by model: crash (solid), business failure (dashed)")  # fmt: skip
        ax.legend(fontsize=7, loc="upper left")
        figures["incidence"] = fig
    if len(analysis.factors) >= 2:
        rows, columns = analysis.factors[:2]
        models = sorted(analysis.runs["model"].unique())
        fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.5), squeeze=False)
        for ax, model in zip(axes[0], models, strict=True):
            part = analysis.runs[analysis.runs["model"] == model]
            rate = part.pivot_table(index=rows, columns=columns, values="crashed", aggfunc="mean")
            image = ax.imshow(rate.to_numpy(float), vmin=0, vmax=1, cmap="Reds", aspect="auto")
            ax.set(title=model, xlabel=columns, ylabel=rows, xticks=range(len(rate.columns)),
                   yticks=range(len(rate.index)))  # fmt: skip
            ax.set_xticklabels([str(v) for v in rate.columns], fontsize=7, rotation=45)
            ax.set_yticklabels([str(v) for v in rate.index], fontsize=7)
        fig.colorbar(image, ax=axes[0].tolist(), label="crash rate")
        figures["heatmap"] = fig
    if not analysis.crash_types.empty:
        shares = analysis.crash_types.pivot_table(index="group", columns="crash_type", values="share", fill_value=0)
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(shares) + 1)))
        shares.plot.barh(stacked=True, ax=ax, width=0.8)
        ax.set(xlabel="share of runs", ylabel="", xlim=(0, 1), title="Crash-type mix")
        ax.legend(fontsize=7, bbox_to_anchor=(1.0, 1.0), loc="upper left")
        figures["crash_types"] = fig
    rates = analysis.dose_rates
    if not rates.empty and "p_shock" in rates and rates.groupby("model")["p_shock"].nunique().max() > 1:
        fig, ax = plt.subplots(figsize=(6, 4))
        for model, part in rates.groupby("model", sort=True):  # one line per model: never pooled
            below = (part["crash_rate"] - part["crash_rate_lo"]).clip(lower=0)
            above = (part["crash_rate_hi"] - part["crash_rate"]).clip(lower=0)
            ax.errorbar(part["p_shock"], part["crash_rate"], yerr=[below, above], marker="o", capsize=4, label=model)
        ax.set(xlabel="p_shock", ylabel="crash rate (95% Wilson)", ylim=(0, 1), title="Dose-response per model")
        ax.legend(fontsize=8)
        figures["dose_response"] = fig
    if not analysis.aligned.empty and (analysis.aligned["runs_kind"] == "crashed").any():
        fig, ax = plt.subplots(figsize=(7, 4))
        for kind, part in analysis.aligned.groupby("runs_kind"):
            ax.plot(part["relative_step"], part["mean"], label=f"{kind} (aligned at {_ALIGNED_AT[kind]})")
            se = part["se"].fillna(0)
            ax.fill_between(part["relative_step"], part["mean"] - 1.96 * se, part["mean"] + 1.96 * se, alpha=0.2)
        ax.set(xlabel="steps relative to the crash onset / last step", ylabel="combined PE, fast EWMA",
               title="PE before the crash onset, against censored runs")  # fmt: skip
        ax.legend(fontsize=8)
        figures["pe_aligned"] = fig
    pngs = {}
    for name, fig in figures.items():
        fig.savefig(figure_dir / f"{name}.svg", bbox_inches="tight")  # "tight": room for outside legends
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        (figure_dir / f"{name}.png").write_bytes(buffer.getvalue())
        pngs[name] = buffer.getvalue()
        plt.close(fig)
    return pngs


# ---------------------------------------------------------------------------------------------------------
# HTML


_ALIGNED_AT = {"crashed": "the onset", "censored": "the last step"}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; overflow-wrap: anywhere; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.note, .thresholds-fail { color: #a33; } .thresholds-warn { color: #a60; } .thresholds-ok { color: #282; }
img { max-width: 100%; }
"""


def _html(analysis: Analysis) -> str:
    loaded, runs = analysis.loaded, analysis.runs
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>VendoMini analysis</title>"
             f"<style>{STYLE}</style></head><body>", "<h1>VendoMini analysis</h1>",
             f"<p>Logs: <code>{html.escape(loaded.log_dir)}</code></p>"]  # fmt: skip
    if analysis.thresholds is not None:
        result = analysis.thresholds
        parts.append(f"<h2>Thresholds: {result.status}</h2>")
        parts.append(f"<p class='thresholds-{result.status.lower()}'>{html.escape(result.line())}</p>")
        parts.append(_table(result.table()))
    parts.append("<h2>What was run</h2>")
    if runs.empty:
        parts.append("<p class='note'>No usable run: every log or sample was skipped (see below).</p>")
    else:
        crashes = int(runs["crashed"].sum())
        failures = int((runs["terminated"].astype(bool) & ~runs["crashed"].astype(bool)).sum())
        parts.append(
            f"<p>{len(loaded.logs)} logs read, {len(runs)} runs, {crashes} crashes (of which "
            f"{int(non_starters(runs).sum())} non-starters: crashed before the agent's first productive action, "
            "left out of the PE models), "
            f"{failures} business failures without a crash (a competing event), {_truncated(runs)}from "
            f"{runs['experiment'].nunique()} experiments, {runs['condition_label'].nunique()} conditions and "
            f"{runs['model'].nunique()} models.</p>"
        )
        mixed = mixed_worlds(runs)
        if mixed is not None:
            parts.append(f"<p class='note'>Warning: {html.escape(mixed)}.</p>")
        overview = runs.groupby(["experiment", "model"], dropna=False).agg(
            conditions=("condition_label", "nunique"), runs=("run_id", "count"), crashes=("crashed", "sum"),
            max_steps=("max_steps", "max"),
        ).reset_index()  # fmt: skip
        parts.append(_table(overview))
        parts.append("<h2>Per model</h2>")
        parts.append(
            "<p>Crash incidence by each model's last step (Aalen-Johansen, business failure competing, 95% "
            "interval); <code>non_starters</code>: crashes before the agent's first productive action (it never "
            "functioned, so they are left out of the PE hazard ratios); hazard ratio of a crash per SD of the "
            f"accumulated PE (<code>{HEADLINE_COVARIATE}</code>), "
            "time-varying Cox within the model's conditions (each its own baseline: a condition without cards, "
            "whose PE sums stay 0, cannot make the effect), with its model-based 95% interval and "
            f"(<code>boot</code>) the percentile interval of {analysis.bootstrap_replicates} resamples of runs "
            "(a negative-control model such as <code>vendomini/open_loop</code>, when run, is its own row); "
            "<code>adjusted</code>: the same within conditions, holding fixed the shocks and blocked steps so far "
            "and the business's cash and goods (under which an agent that cannot respond to PE shows none); mean "
            "net worth at the end; tokens and cost in US dollars over the model's runs (empty where a provider "
            "or its prices did not say).</p>"
        )
        parts.append(_table(analysis.headline))
        if not analysis.paired.empty:
            parts.append("<h3>Same world, different information: observability arms paired by seed</h3>")
            parts.append(
                "<p>Arms that differ only in what the agent is told share their seeds: each pair is one world "
                "(demand, shocks) run under two kinds of information. <code>pe_diff</code>: mean within-pair "
                "difference of the run's mean combined PE, arm minus reference, 95% t interval; crashes in one "
                "arm only, McNemar's exact p; <code>hr_arm</code>: the pair-stratified Cox hazard ratio of a crash "
                "(exact conditional likelihood: the odds that the arm's run crashed first among the informative "
                "pairs), Clopper-Pearson 95% interval and exact p. An agent that ignores notices shows 0 and "
                "no discordant pair here.</p>"
            )
            parts.append(_long_table(_paired_view(analysis.paired), "paired"))
        line = gates_line(runs)
        if line is not None:
            parts.append("<h3>Gates</h3>")
            parts.append(
                f"<p><code>{html.escape(line)}</code></p><p>The governance gate's decisions on the agent's calls, by "
                "reason, per model and condition; a share is of the condition's gated calls. A denied call was not "
                'executed and took a step (docs/METHOD.md, "Governance gates").</p>'
            )
            parts.append(_long_table(analysis.gates, "gates"))
    parts.append("<h3>Skipped</h3>")
    if loaded.skipped:
        counts = ", ".join(f"{kind}: {n}" for kind, n in sorted(loaded.skip_counts().items()))
        parts.append(f"<p class='note'>{len(loaded.skipped)} skipped ({html.escape(counts)}).</p>")
        parts.append(_table(pd.DataFrame([vars(s) for s in loaded.skipped])))
    else:
        parts.append("<p>Nothing skipped.</p>")
    if runs.empty:
        parts.append("</body></html>")
        return "\n".join(parts)

    if not analysis.vending_bench.empty:
        parts.extend(_vending_bench_section(analysis.vending_bench))
    parts.append("<h2>Figures</h2>")
    for name, alt in FIGURES:
        parts.append(_figure(analysis, name, alt))
    parts.append("<h2>Cumulative incidence: crash and business failure</h2>")
    parts.append(
        f"<p>{competing.CIF_LABEL}: the share of runs lost to each cause by a step, per model (rows with a model) "
        "and per condition (rows with a group), with pointwise 95% intervals in incidence.csv. A business that "
        "fails can no longer crash, so its failure competes with the crash; the crash-specific Kaplan-Meier "
        "below censors it instead. Values at each group's last step:</p>"
    )
    parts.append(_long_table(analysis.incidence_summary, "incidence_summary"))
    parts.append("<h2>Crash rate and Kaplan-Meier median by condition</h2>")
    parts.append(
        "<p>Crash rate: crashed runs / runs, 95% Wilson interval; a censored run (max_steps, business "
        "failure, limit) never counts as a crash. KM median: steps to crash onset, 95% CI "
        f"({competing.CAUSE_SPECIFIC_KM_LABEL}).</p>"
    )
    parts.append(_long_table(analysis.summary[["group", "runs", "crashes", "crash_rate", "crash_rate_lo",
                                          "crash_rate_hi", "km_median", "km_median_lo", "km_median_hi",
                                          "km_note"]], "summary"))  # fmt: skip
    parts.append("<h2>Time-varying Cox on the PE accumulators</h2>")
    pooled = (f"Rows of model <code>{POOLED}</code> pool the models, as asked with --pool-models, with the model "
              "(<code>strata model</code>) or the condition of each model (<code>strata group</code>) as a "
              "stratum." if analysis.pool_models else "Models are never pooled (--pool-models adds pooled rows, "
              "with the model as a stratum).")  # fmt: skip
    parts.append(
        f"<p>Hazard ratio of a crash per unit of each covariate, each in its own model, fitted per model; "
        f"covariates are taken at the start of blocks of {analysis.block} step(s) (values known before the "
        f"risk). Rows with strata <code>group</code> give each condition its own baseline hazard (the PE effect "
        f"within conditions); the others pool the model's conditions. {pooled}</p>"
    )
    parts.append(_table(analysis.tv_cox))
    parts.append("<h2>Power</h2>")
    parts.append(
        "<p>Per model, Schoenfeld's approximation (two-sided alpha 0.05, 80% power, a standardized covariate): "
        "the smallest hazard ratio per SD of a PE covariate that its crashes can detect, and the crashes and runs "
        "(at its crash share) a planned ratio needs. Within-condition variation of the PE is smaller than its "
        "overall SD, so these are optimistic (docs/METHOD.md).</p>"
    )
    parts.append(_table(analysis.power) if not analysis.power.empty else "<p>No runs.</p>")
    parts.append("<h2>Log-rank tests per grid factor</h2>")
    parts.append("<p>Per model and experiment: the levels of each factor, pooled over the other factors; "
                 "<code>q</code>: Benjamini-Hochberg FDR-adjusted p over the factors of one model and "
                 "experiment.</p>")  # fmt: skip
    parts.append(_table(analysis.logrank) if not analysis.logrank.empty else "<p>No factor varies.</p>")
    parts.append("<h2>Cox PH on the condition factors</h2>")
    parts.append("<p>Per model and experiment; <code>q</code>: Benjamini-Hochberg FDR-adjusted p over the "
                 "terms of one model" + (f"; rows of <code>{POOLED}</code> pool the models with the model as a "
                 "factor" if analysis.pool_models else "") + ".</p>")  # fmt: skip
    parts.append(_table(analysis.cox) if not analysis.cox.empty else "<p>No model.</p>")
    parts.append("<h3>Proportional-hazards test (Schoenfeld residuals, rank of time)</h3>")
    parts.append(_table(analysis.ph_test) if not analysis.ph_test.empty else "<p>No test: no Cox model.</p>")
    parts.append("<h2>Dose-response in p_shock</h2>")
    parts.append(_table(analysis.dose_rates) if not analysis.dose_rates.empty else "")
    parts.append("<p>Trend per model: Cox PH on p_shock as a number (hazard ratio from p_shock 0 to 1)" +
                 (f"; <code>{POOLED}</code>: the models pooled, the model a covariate" if analysis.pool_models
                  else "") + ".</p>")  # fmt: skip
    parts.append(_table(analysis.dose_trend) if not analysis.dose_trend.empty else "<p>No trend test.</p>")
    parts.append("<h2>Business</h2>")
    parts.append(
        "<p>Vending-Bench style measures per condition, means over runs: net worth at the end (cash, stock at "
        "unit cost, paid goods in transit), the lowest net worth after any step, and the days until sales stop "
        "(through the day of the last shipped order; 0 when nothing was sold), against the days run.</p>"
    )
    parts.append(_long_table(analysis.summary[["group", "runs", "mean_net_worth", "mean_min_net_worth",
                                               "mean_days_until_sales_stop", "mean_days"]], "summary"))  # fmt: skip
    parts.append("<h2>Crash-type mix</h2>")
    parts.append(_long_table(analysis.crash_types, "crash_types"))
    parts.append("<h2>Secondary endpoint: incoherence</h2>")
    parts.append(
        "<p>Runs in which the agent's stated beliefs parted from its own actions (decoupling) or from what it "
        "was shown (slow_divergence). Never a crash and never the end of a run; a proportion over the steps "
        "run, 95% Wilson interval.</p>"
    )
    parts.append(_table(analysis.incoherence) if not analysis.incoherence.empty else
                 "<p>Not recorded in these logs.</p>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)


def _vending_bench_section(table: pd.DataFrame) -> list[str]:
    """Our vending runs in Vending-Bench's measures, then the published figures with their sources and the caveat."""
    sources = "".join(f"<li>{html.escape(name)}: {html.escape(text)}</li>" for name, text in SOURCES.items())
    return [
        "<h2>Vending-Bench</h2>",
        "<p>The vending runs per model and condition: net worth at the end (cash, cash in the machine, every unit "
        "held or paid for at its wholesale value), <code>profitable_share</code>: the share of runs that ended above "
        "their start cash; units sold; "
        "days until sales stop (through the last day with a sale; 0 when nothing was sold) and, per run, their "
        "share of the days it ran; business failures (the daily fee unpaid too long).</p>",
        _long_table(table, "vending_bench"),
        "<h3>Published figures</h3>",
        f"<p class='note'>{html.escape(CAVEAT)}</p>",
        f"<ul>{sources}</ul>",
        _table(published_table()),
    ]


def _table(frame: pd.DataFrame) -> str:
    def number(value: Any) -> str:
        return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"

    return frame.to_html(index=False, na_rep="—", float_format=number, border=0)


def _paired_view(paired: pd.DataFrame) -> pd.DataFrame:
    """The paired comparison narrowed to the page: each estimate with its interval in one cell (paired.csv has
    them apart, with the crash counts of each arm)."""

    def interval(name: str) -> pd.Series:
        return paired.apply(lambda r: f"{r[name]:.3g} [{r[f'{name}_lo']:.3g}, {r[f'{name}_hi']:.3g}]"
                            if math.isfinite(r[name]) else "—", axis=1)  # fmt: skip

    return pd.DataFrame({
        "experiment": paired["experiment"], "model": paired["model"], "arm vs reference":
        paired["arm"] + " vs " + paired["reference"], "pairs": paired["pairs"], "pe_diff": interval("pe_diff"),
        "pe_temporal_diff": interval("pe_temporal_diff"), "crash only in reference": paired["crash_reference_only"],
        "crash only in arm": paired["crash_arm_only"], "mcnemar_p": paired["mcnemar_p"],
        "hr_arm": interval("hr_arm"), "hr_p": paired["hr_p"], "note": paired["note"],
    })  # fmt: skip


def _long_table(frame: pd.DataFrame, csv: str) -> str:
    """The table, or, when it has more rows than a page should hold (one row per condition of a big grid), a
    link to its CSV beside the report."""
    if len(frame) <= MAX_PAGE_ROWS:
        return _table(frame)
    return (
        f"<p>{len(frame)} rows, one per group: <a href='{csv}.csv'>{csv}.csv</a> (the figures above show them "
        "at a glance).</p>"
    )


def _figure(analysis: Analysis, name: str, alt: str) -> str:
    png = analysis.figures.get(name)
    if png is None:
        why = (f"{len(analysis.km_fits)} groups are more curves than one figure can show (km.csv has each)"
               if name == "km" and len(analysis.km_fits) > MAX_KM_CURVES else "needs more data")  # fmt: skip
        return f"<p class='note'>No figure: {html.escape(alt.lower())}: {why}.</p>"
    data = base64.b64encode(png).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"
