"""The `vendomini` command: plan and simulate, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vendomini_eval.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vendomini_eval.cli", *args], capture_output=True, text=True, check=False
    )


def test_plan_prints_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "phase2"]) == 0
    out = capsys.readouterr().out
    assert "conditions      165" in out
    assert "p_shock=1.0,pe_type_mix=uniform,observability=hidden" in out


def test_simulate_json_summary_and_trace(tmp_path: Path) -> None:
    trace_path = tmp_path / "trace.json"
    done = run_cli(
        "simulate", "--config", "phase1", "--condition", "p_shock=0.3,pe_mag=high,prediction_mode=required",
        "--seed", "7", "--steps", "120", "--json", "--trace", str(trace_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["steps"] == 120 and summary["seed"] == 7
    assert summary["condition"]["p_shock"] == 0.3 and summary["condition"]["max_steps"] == 120
    assert summary["shocks"] > 0 and summary["pe"]["combined"]["count"] > 0
    trace = json.loads(trace_path.read_text())
    assert len(trace["columns"]["state_hash"]) == 120
    assert "pe_combined_ewma_fast" in trace["columns"]


def test_simulate_is_reproducible() -> None:
    args = ("simulate", "--config", "phase1", "--condition", "5", "--steps", "80", "--json")
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0 and first.stdout == second.stdout


def test_simulate_fault_reports_the_crash() -> None:
    done = run_cli("simulate", "--condition", "0", "--seed", "3", "--fault", "stall", "--onset", "60")
    assert done.returncode == 0, done.stderr
    assert "crashed: stall" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan", "configs/phases/nope.yaml"), "no such file"),
        (("simulate", "--config", "phase1"), "choose one with --condition"),
        (("simulate", "--config", "phase1", "--condition", "99"), "has 44 conditions"),
        (("simulate", "--config", "phase1", "--condition", "0", "--fault", "stall"), "--fault and --onset"),
    ],
)
def test_bad_input_gets_a_clear_error(args: tuple[str, ...], message: str) -> None:
    done = run_cli(*args)
    assert done.returncode != 0
    assert message in done.stderr
