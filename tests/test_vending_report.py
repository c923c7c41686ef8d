"""The Vending-Bench part of `vendomini analyze`, from real Inspect logs of the scripted heuristic: the run table's
world columns, the Vending-Bench table against the runs' own summaries, the published figures with their sources,
and a report that shows the section only when there are vending runs (a warehouse-only directory is unchanged)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import pytest

from vendomini_eval.analysis import analyze, load_runs, write_report
from vendomini_eval.analysis.vending import CAVEAT, SOURCES, VENDING_BENCH, VENDING_BENCH_2, published_table
from vendomini_eval.condition import Condition
from vendomini_eval.world.setup import build_rules

DAYS = 5


def eval_vending(log_dir: Path, **knobs: float) -> None:
    from inspect_ai import eval

    from vendomini_eval.tasks.vending_bench import vending_bench

    [log] = eval(vending_bench(days=DAYS, replications=2, **knobs), model="vendomini/heuristic", log_dir=str(log_dir),
                 display="none")  # fmt: skip
    assert log.status == "success"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two vending runs at the $500 start (`vending/`) beside two warehouse runs (`warehouse/`)."""
    from inspect_ai import eval

    from vendomini_eval.tasks.phase1 import phase1

    root = tmp_path_factory.mktemp("logs")
    eval_vending(root / "vending")
    [log] = eval(phase1(max_steps=20, replications=2, p_shock=0.0), model="vendomini/heuristic",
                 log_dir=str(root / "warehouse"), display="none")  # fmt: skip
    assert log.status == "success"
    return root


def expected_rows(log_dir: Path, start_cash: float) -> pd.DataFrame:
    """The Vending-Bench measures per condition, computed from the vending runs' summaries alone."""
    rows = []
    for run in load_runs(log_dir).runs:
        summary = run.summary
        if summary.world == "vending":
            assert summary.vending is not None and summary.days_until_sales_stop is not None
            rows.append({"condition_label": run.metadata["condition_label"], "net_worth": summary.net_worth,
                         "profitable": summary.net_worth > start_cash, "units_sold": summary.vending.units_sold,
                         "until": summary.days_until_sales_stop, "share": summary.days_until_sales_stop / summary.days,
                         "failed": summary.terminated is not None})  # fmt: skip
    return pd.DataFrame(rows).groupby("condition_label").agg(
        runs=("net_worth", "count"), net_worth_mean=("net_worth", "mean"), net_worth_min=("net_worth", "min"),
        net_worth_max=("net_worth", "max"), profitable_share=("profitable", "mean"),
        units_sold_mean=("units_sold", "mean"), units_sold_min=("units_sold", "min"),
        days_until_sales_stop_mean=("until", "mean"), days_until_sales_stop_share_mean=("share", "mean"),
        business_failures=("failed", "sum"),
    )  # fmt: skip


def assert_table_matches(table: pd.DataFrame, expected: pd.DataFrame, start_cash: float) -> None:
    assert set(table["model"]) == {"vendomini/heuristic"} and set(table["experiment"]) == {"vending_bench"}
    assert (table["start_cash"] == start_cash).all()
    ours = table.set_index("condition_label")[list(expected.columns)]
    pd.testing.assert_frame_equal(ours, expected, check_dtype=False, check_names=False)


def test_the_table_is_the_runs_summaries_in_vending_bench_measures(logs: Path) -> None:
    analysis = analyze(logs / "vending")
    expected = expected_rows(logs / "vending", start_cash=500.0)
    assert expected["runs"].sum() == 2
    assert_table_matches(analysis.vending_bench, expected, start_cash=500.0)
    runs = analysis.runs
    assert (runs["world"] == "vending").all() and (runs["start_cash"] == 500.0).all()
    assert runs["profitable"].tolist() == (runs["net_worth"] > 500.0).tolist()
    assert (runs["days_until_sales_stop"] <= runs["days"]).all() and (runs["days"] == DAYS).all()


def test_profitable_is_judged_against_the_runs_start_cash(tmp_path: Path) -> None:
    eval_vending(tmp_path, initial_cash=200.0)
    analysis = analyze(tmp_path)
    expected = expected_rows(tmp_path, start_cash=200.0)
    assert_table_matches(analysis.vending_bench, expected, start_cash=200.0)
    # Judged against the default $500 instead, none of these runs would count as profitable.
    assert (expected["profitable_share"] > 0).all() and (analysis.runs["net_worth"] < 500).all()


def test_the_published_figures_are_marked_with_their_source() -> None:
    published = published_table()
    assert set(published["source"]) == {VENDING_BENCH, VENDING_BENCH_2} == set(SOURCES)
    rows = published.set_index(["source", "model"])
    sonnet = rows.loc[(VENDING_BENCH, "Claude 3.5 Sonnet")]
    assert (sonnet["net_worth_mean"], sonnet["net_worth_min"], sonnet["units_sold_mean"]) == (2217.93, 476.0, 1560)
    assert (sonnet["days_until_sales_stop_mean"], sonnet["days_until_sales_stop_share_mean"]) == (102, 0.822)
    assert rows.loc[(VENDING_BENCH, "Human"), "runs"] == 1
    assert len(rows.loc[VENDING_BENCH]) == 10 and len(rows.loc[VENDING_BENCH_2]) == 5
    gemini = rows.loc[(VENDING_BENCH_2, "Gemini 3 Pro")]  # Vending-Bench 2 reports the money balance only
    assert gemini["money_balance_mean"] == 5478.16 and pd.isna(gemini["net_worth_mean"])


def test_a_warehouse_only_report_has_no_vending_bench_section(logs: Path, tmp_path: Path) -> None:
    analysis = analyze(logs / "warehouse")
    assert analysis.vending_bench.empty
    runs = analysis.runs
    assert (runs["world"] == "warehouse").all() and runs["profitable"].isna().all()
    assert (runs["units_sold"] >= 0).all() and runs["days_until_sales_stop"].notna().all()  # from the trace
    start = build_rules(Condition.model_validate(load_runs(logs / "warehouse").runs[0].record["condition"]))
    assert (runs["start_cash"] == start.start_cash_cents / 100).all()
    page = write_report(analysis, tmp_path).read_text(encoding="utf-8")
    assert "<h2>Vending-Bench</h2>" not in page and not (tmp_path / "vending_bench.csv").exists()


def test_a_mixed_directory_keeps_the_warehouse_and_adds_the_vending_bench_section(logs: Path, tmp_path: Path) -> None:
    analysis = analyze(logs)
    runs = analysis.runs.set_index("run_id")
    warehouse = analyze(logs / "warehouse").runs.set_index("run_id")
    assert runs["world"].value_counts().to_dict() == {"vending": 2, "warehouse": 2}
    pd.testing.assert_frame_equal(runs.loc[warehouse.index, warehouse.columns.drop("group")],
                                  warehouse.drop(columns="group"), check_dtype=False)  # fmt: skip
    assert_table_matches(analysis.vending_bench, expected_rows(logs, start_cash=500.0), start_cash=500.0)
    page = write_report(analysis, tmp_path).read_text(encoding="utf-8")
    for section in ("<h2>Per model</h2>", "<h2>Business</h2>", "<h2>Vending-Bench</h2>", "<h3>Published figures</h3>"):
        assert section in page, section
    assert html.escape(CAVEAT) in page and all(html.escape(text) in page for text in SOURCES.values())
    assert "Claude 3.5 Sonnet" in page and "Gemini 3 Pro" in page
    assert "Warning: the runs come from 2 worlds (vending, warehouse)" in page  # the per-model pooling is named
    alone = write_report(analyze(logs / "warehouse"), tmp_path / "alone").read_text(encoding="utf-8")
    assert "the runs come from" not in alone
    written = pd.read_csv(tmp_path / "vending_bench.csv")
    assert written["runs"].tolist() == analysis.vending_bench["runs"].tolist()
