"""The paired observability comparison: arms that differ only in what the agent is told share seeds, and the
analysis compares them run for run (docs/METHOD.md, "The paired observability design")."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from tests.sweep_helpers import vendomini
from vendomini_eval.analysis.paired import compare_pairs, paired_observability

PAIRED = """\
name: paired
seed: 11
replications: 4
models: [vendomini/heuristic, vendomini/attentive]
condition:
  complexity_level: 1
  p_shock: 0.4
  pe_type_mix: temporal_only
  max_steps: 120
grid:
  observability: [full, hidden]
"""


def arm(observability: str, crashed: list[bool], times: list[int], pe: list[float], seeds: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"experiment": "x", "model": "m", "observability": observability, "notice_delay_steps": 5,
                         "seed": seeds, "epoch": 1, "crashed": crashed, "time_to_crash": times,
                         "pe_combined_mean": pe, "pe_temporal_mean": pe})  # fmt: skip


def test_paired_statistics_by_hand() -> None:
    """Eight pairs. Crashes: pairs 0-5 in the hidden arm (pair 5 at the same step as its twin: a tie), pairs 6-7
    in the full arm only, pair 4's full twin censored before the hidden run's crash (not informative)."""
    seeds = list(range(8))
    full = arm("full", [False, False, False, False, False, True, True, True], [50, 50, 50, 50, 10, 20, 15, 25],
               [0.1] * 8, seeds)  # fmt: skip
    hidden = arm("hidden", [True] * 6 + [False, False], [5, 6, 7, 8, 30, 20, 50, 50],
                 [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], seeds)  # fmt: skip
    row = paired_observability(pd.concat([full, hidden, arm("hidden", [False], [1], [0.0], [99])])).iloc[0]
    assert (row["reference"], row["arm"]) == ("observability=full", "observability=hidden")
    assert row["pairs"] == 8  # the hidden run on seed 99 has no twin
    assert (row["crash_reference_only"], row["crash_arm_only"]) == (2, 5)
    assert row["mcnemar_p"] == pytest.approx(2 * (1 + 7 + 21) / 128)  # exact binomial, 2 of 7 discordant
    # informative: pairs 0-3 (hidden first) and 6-7 (full first); 4 (twin censored first) and 5 (tie) are not
    assert (row["informative_pairs"], row["arm_first"]) == (6, 4)
    assert row["hr_arm"] == pytest.approx(4 / 2)
    assert row["hr_p"] == pytest.approx(2 * (1 + 6 + 15) / 64)
    assert row["hr_arm_lo"] < 1 < row["hr_arm_hi"]
    diffs = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert row["pe_diff"] == pytest.approx(sum(diffs) / 8)
    sd = math.sqrt(sum((d - 0.35) ** 2 for d in diffs) / 7)
    assert row["pe_diff_hi"] - row["pe_diff"] == pytest.approx(2.364624 * sd / math.sqrt(8), rel=1e-5)


def test_too_few_informative_pairs_and_no_shared_seed_are_said() -> None:
    few = compare_pairs(arm("full", [True, False], [3, 9], [0.1, 0.1], [1, 2]),
                        arm("hidden", [False, False], [9, 9], [0.1, 0.1], [1, 2]))  # fmt: skip
    assert math.isnan(few["hr_arm"]) and "1 informative pairs" in few["note"]
    none = compare_pairs(arm("full", [True], [3], [0.1], [1]), arm("hidden", [True], [3], [0.1], [2]))
    assert none["pairs"] == 0 and none["note"].startswith("no pairs: the arms share no seed")


@pytest.fixture(scope="module")
def paired_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paired")
    (root / "paired.yaml").write_text(PAIRED, encoding="utf-8")
    run = vendomini("run", root / "paired.yaml", "--log-dir", root / "logs", "--workers", "2", "--display", "none",
                    timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    analyze = vendomini("analyze", root / "logs", "--out", root / "report", "--bootstrap", "0", timeout=600)
    assert analyze.returncode == 0, analyze.stdout + analyze.stderr
    return root / "report"


def test_observability_arms_are_compared_within_seed_through_inspect(paired_report: Path) -> None:
    """The plain heuristic ignores notices: its arms are the same runs (every difference exactly 0), which is
    what makes the attentive heuristic's difference the information's doing. The attentive one revises its
    delivery expectations when told: its temporal PE is higher where it is not told (95% interval above 0)."""
    paired = pd.read_csv(paired_report / "paired.csv").set_index("model")
    runs = pd.read_parquet(paired_report / "runs.parquet")
    assert (runs.groupby(["model", "observability"])["seed"].apply(frozenset).groupby("model").nunique() == 1).all()
    plain = paired.loc["vendomini/heuristic"]
    assert plain["pairs"] == 4 and plain["arm"] == "observability=hidden"
    assert plain["pe_diff"] == plain["pe_temporal_diff"] == 0.0
    assert plain["crash_reference_only"] == plain["crash_arm_only"] == 0
    told = paired.loc["vendomini/attentive"]
    assert told["pairs"] == 4 and told["pe_temporal_diff_lo"] > 0
    assert runs["crashed"].sum() == 0  # looking again under a stream of notices does not stop its business
    page = (paired_report / "index.html").read_text(encoding="utf-8")
    assert "observability arms paired by seed" in page and "observability=hidden vs observability=full" in page
