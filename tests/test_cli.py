"""The `vendomini` command: plan and simulate, as a user runs them, and how it answers a user's mistakes."""

from __future__ import annotations

import json
import os
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
    assert list(tmp_path.iterdir()) == [trace_path]  # written through a temporary file, which is gone
    assert "pe_combined_ewma_fast" in trace["columns"]


def test_simulate_is_reproducible() -> None:
    args = ("simulate", "--config", "phase1", "--condition", "5", "--steps", "80", "--json")
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0 and first.stdout == second.stdout


def test_simulate_fault_reports_the_crash() -> None:
    done = run_cli("simulate", "--condition", "0", "--seed", "3", "--fault", "stall", "--onset", "60")
    assert done.returncode == 0, done.stderr
    assert "crashed: stall" in done.stdout


def assert_usage_error(done: subprocess.CompletedProcess[str], prefix: str, message: str) -> None:
    """Exit status 2 and one line on stderr, as argparse's own: `vendomini <command>: error: <message>`."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{prefix}: error: ") and message in lines[0], lines[0]
    assert done.stdout == ""


SIMULATE = ("simulate", "--condition", "0", "--steps", "20")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan", "configs/phases/nope.yaml"), "no such file"),
        (("simulate", "--config", "nope", "--condition", "0"), "--config nope: no such file or shipped config"),
        (("simulate", "--config", "phase1"), "choose one with --condition"),
        (("simulate", "--config", "phase1", "--condition", "99"), "--condition 99: phase1 has 44 conditions (0 to 43)"),
        (("simulate", "--config", "phase1", "--condition", "nope"), "--condition 'nope' is not a condition of phase1"),
        (("simulate", "--condition", "0", "--steps", "0"), "--steps must be at least 1, got 0"),
        (("simulate", "--condition", "0", "--steps", "-5"), "--steps must be at least 1, got -5"),
        (("simulate", "--condition", "0", "--steps", "2000000"), "--steps 2000000: input should be less than"),
        ((*SIMULATE, "--fault", "stall", "--onset", "-1"), "--onset must be at least 1, got -1"),
        ((*SIMULATE, "--policy", "plan_only", "--onset", "0"), "--onset must be at least 1, got 0"),
        ((*SIMULATE, "--policy", "plan_only"), "--policy plan_only: behaviour 'plan_only' needs an onset step"),
        ((*SIMULATE, "--policy", "chatter", "--onset", "5"), "--policy chatter --onset 5: behaviour 'chatter' takes"),
        ((*SIMULATE, "--onset", "5"), "--policy heuristic --onset 5: onset is given without a fault"),
        ((*SIMULATE, "--fault", "stall"), "--fault stall needs --onset STEP"),
        ((*SIMULATE, "--policy", "random", "--fault", "stall", "--onset", "5"), "--policy heuristic only"),
        ((*SIMULATE, "--seed", "-1"), "--seed must be at least 0, got -1"),
        ((*SIMULATE, "--replication", "-1"), "--replication must be at least 0, got -1"),
        (("run", "phase1", "--dry-run", "--workers", "0"), "--workers must be an integer >= 1, got 0"),
        (("slurm", "status", "."), "no SLURM manifest"),
        (("plan", "phase1", "--power", "1.5"), "--power HR needs --from-logs DIR"),
        (("plan", "phase1", "--prices", "p.yaml"), "--prices: give --model M (a prior projection) or --from-logs"),
        (("plan", "phase1", "--model", "m", "--prices", "/nonexistent.yaml"), "--prices /nonexistent.yaml: cannot"),
        (("plan", "phase1", "--limit-conditions", "0"), "--limit-conditions must be at least 1, got 0"),
        (("run", "phase1", "--dry-run", "--max-total-tokens", "0"), "--max-total-tokens must be > 0, got 0"),
        (("analyze", ".", "--out", "/tmp/vendomini-unused", "--power", "1"), "--power 1.0: a hazard ratio per SD"),
        (("analyze", ".", "--out", "/tmp/vendomini-unused", "--bootstrap", "10"), "--bootstrap 10: 0 (none) or at"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args: tuple[str, ...], message: str) -> None:
    prefix = "vendomini " + " ".join(args[:2] if args[0] == "slurm" else args[:1])
    assert_usage_error(run_cli(*args), prefix, message)


@pytest.mark.parametrize(
    ("trace", "message"),
    [
        ("missing/t.json", "missing/t.json: no such directory"),
        ("a_file/t.json", "a_file/t.json: no such directory"),
        (".", "is a directory; give a file name"),
    ],
)
def test_unwritable_trace_is_refused_before_the_run(tmp_path: Path, trace: str, message: str) -> None:
    (tmp_path / "a_file").write_text("kept\n")
    done = run_cli(*SIMULATE, "--trace", str(tmp_path / trace))
    assert_usage_error(done, "vendomini simulate", f"--trace {tmp_path / trace}")
    assert message in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] and (tmp_path / "a_file").read_text() == "kept\n"


@pytest.mark.parametrize(
    ("out", "message"), [("a_file", "is a file, not a directory"), ("a_file/report", "is not a directory")]
)
def test_analyze_refuses_an_out_that_is_a_file_before_the_analysis(tmp_path: Path, out: str, message: str) -> None:
    """Checked before the logs are read (LOGDIR here is empty), so a mistake costs no analysis and writes nothing."""
    (tmp_path / "a_file").write_text("kept\n")
    done = run_cli("analyze", str(tmp_path), "--out", str(tmp_path / out))
    assert_usage_error(done, "vendomini analyze", f"--out {tmp_path / out}: ")
    assert message in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] and (tmp_path / "a_file").read_text() == "kept\n"


@pytest.mark.parametrize("args", [("plan", "phase1"), ("run", "phase1", "--dry-run"), SIMULATE])
def test_a_reader_that_stops_early_ends_the_command_quietly(args: tuple[str, ...]) -> None:
    """`vendomini plan phase1 | head`: the reader has gone before the command writes; it exits as a Unix tool
    killed by SIGPIPE does (141), with nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "vendomini_eval.cli", *args], stdout=write_end, stderr=subprocess.PIPE, text=True,
            check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done.stderr


@pytest.mark.parametrize(
    ("model_args", "models"),
    [((), "vendomini/heuristic,vendomini/random"), (("--model", "openai/gpt-4o"), "openai/gpt-4o")],
)
def test_dry_run_commands_name_the_models(
    model_args: tuple[str, ...], models: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each printed `inspect eval` command runs its condition on the sweep's models: --model, else the experiment's."""
    assert main(["run", "phase1", "--dry-run", "--limit-conditions", "2", *model_args]) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if "inspect eval" in line]
    assert len(commands) == 2
    assert all(f"inspect eval vendomini_eval/vendomini --model {models} -T config=phase1 -T condition=" in line
               for line in commands), commands  # fmt: skip
