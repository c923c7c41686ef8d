"""The generic task `vendomini_eval/vendomini` and the phase front doors: every condition knob through -T, the
same task whichever door builds it, and a bad -T stopped before any sample with one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import list_eval_logs, read_eval_log

from vendomini_eval.condition import Condition
from vendomini_eval.experiments import CONDITION_KEYS, condition_values, load_experiment
from vendomini_eval.tasks import phase1, phase2, vendomini
from vendomini_eval.tasks._build import TaskArgumentError

REPO = Path(__file__).resolve().parents[1]
KNOBS: dict[str, Any] = {
    "complexity_level": 2, "p_shock": 0.35, "pe_type_mix": "uniform", "pe_mag": "high", "observability": "delayed",
    "notice_delay_steps": 3, "prediction_mode": "required+confidence", "prediction_format": "rich",
    "pressure_level": "high", "memory_tools": "full", "recovery_tools": "all", "steps_per_day": 2, "max_steps": 25,
    "max_days": 40,
    "crash_threshold": "strict", "continue_after_crash": 2, "initial_cash": 420.5, "gates": "default",
    "pe.ewma_windows": [5, 50, 200],
    "pe.surprise_threshold": 0.4, "pe.temporal_half_days": 2.5,
}  # fmt: skip
"""A value other than the default for every knob of the condition model but `world`: the vending world refuses the
warehouse's knobs set here, so it has its own tests (tests/test_vending_bench.py)."""


def inspect_eval(*args: str, log_dir: Path) -> subprocess.CompletedProcess[str]:
    """`inspect eval ARGS` as a user types it in the checkout (the console script: `python -m inspect_ai` there
    would import the checkout's folder rather than the installed package), on the heuristic; a wide console
    keeps each line whole."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "inspect"), "eval", *args, "--model", "vendomini/heuristic", "--log-dir",
         str(log_dir), "--display", "plain"],
        capture_output=True, text=True, timeout=180, check=False, cwd=REPO,
        env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip


def logged_samples(log_dir: Path) -> list[Any]:
    return [s for info in list_eval_logs(str(log_dir)) for s in read_eval_log(info.name).samples or []]


def test_the_knob_list_covers_the_condition_model() -> None:
    assert sorted([*KNOBS, "world"]) == sorted(CONDITION_KEYS)
    defaults = Condition().model_dump()
    for key, value in KNOBS.items():
        group, _, leaf = key.rpartition(".")
        default = defaults[group][leaf] if group else defaults[key]
        assert value != default and value != list(default) if isinstance(default, tuple) else value != default, key


def test_every_knob_is_settable_through_T_and_lands_in_the_sample(tmp_path: Path) -> None:
    args = [f"-T {key}={value}".replace(" ", "") for key, value in KNOBS.items()]
    split = [part for arg in args for part in ("-T", arg.removeprefix("-T"))]
    done = inspect_eval("vendomini_eval/vendomini", "-T", "config=phase2", "-T", "replications=2", *split,
                        log_dir=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    samples = logged_samples(tmp_path)
    assert len(samples) == 2
    for sample in samples:
        logged = Condition.model_validate(sample.metadata["condition"])
        for key, value in KNOBS.items():
            got: Any = logged
            for part in key.split("."):
                got = getattr(got, part)
            assert (list(got) if isinstance(got, tuple) else got) == value, key
        assert sample.metadata["experiment"] == "phase2"
        assert sample.scores is not None and sample.scores["survival"].value["steps"] <= 25


@pytest.mark.parametrize(
    ("target", "args", "message"),
    [
        ("vendomini_eval/vendomini", ("-T", "p_shok=0.9"), "-T p_shok: unknown task argument (did you mean p_shock?)"),
        ("tasks/phase1.py", ("-T", "p_shok=0.9"), "-T p_shok: unknown task argument (did you mean p_shock?)"),
        ("vendomini_eval/phase2", ("-T", "pe_mag=huge"), "-T pe_mag=huge: 'huge' is not one of low, medium, high"),
        ("tasks/phase1.py", ("-T", "p_shock=2"), "-T p_shock=2: invalid value 2: Input should be less than or equal"),
        ("vendomini_eval/vendomini", ("-T", "config=phase1", "-T", "condition=44"),
         "-T condition=44: phase1 has conditions 0 to 43"),
        ("vendomini_eval/vendomini", ("-T", "config=nosuch"), "-T config=nosuch: nosuch: no such file or shipped"),
        ("vendomini_eval/vendomini", ("-T", "replications=0"), "-T replications=0: must be an integer >= 1"),
    ],
)  # fmt: skip
def test_a_bad_T_stops_before_any_sample_with_one_line(
    tmp_path: Path, target: str, args: tuple[str, ...], message: str
) -> None:
    done = inspect_eval(target, *args, log_dir=tmp_path)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert message in output.splitlines() or any(line.startswith(message) for line in output.splitlines()), output
    assert "Traceback" not in output and ".yaml" not in output.replace("no such file or shipped config", "")
    assert not list(tmp_path.glob("*.eval"))  # no sample ran


def test_the_generic_task_and_the_phase_doors_build_the_same_task() -> None:
    by_door = phase1(p_shock=0.3, pe_mag="high", max_steps=60, replications=2)
    generic = vendomini(config="phase1", p_shock=0.3, pe_mag="high", max_steps=60, replications=2)
    experiment = load_experiment("phase1")
    index = next(i for i, c in enumerate(experiment.conditions)
                 if c.p_shock == 0.3 and c.pe_mag == "high" and c.prediction_mode == "required")  # fmt: skip
    by_index = vendomini(config="phase1", condition=index, max_steps=60, replications=2)
    for task in (generic, by_index):
        assert task.name == by_door.name
        assert [(s.id, s.input, s.metadata) for s in task.dataset] == [
            (s.id, s.input, s.metadata) for s in by_door.dataset
        ]
    assert condition_values(experiment, index) == {"p_shock": 0.3, "pe_mag": "high", "prediction_mode": "required"}


def test_a_knob_no_axis_of_the_phase_applies_there_too() -> None:
    """Phase 2 studies observability; -T pe_mag on it sets pe_mag (it used to be ignored)."""
    task = phase2(pe_mag="high", initial_cash=123.0, replications=1)
    condition = Condition.model_validate(task.dataset[0].metadata["condition"])
    assert condition.pe_mag == "high" and condition.initial_cash == 123.0


def test_argument_errors_are_inspect_prerequisite_errors() -> None:
    """Inspect prints a PrerequisiteError's message alone, without a traceback, and exits non-zero."""
    from inspect_ai._util.error import PrerequisiteError

    with pytest.raises(PrerequisiteError, match=r"^-T pe\.surprise_threshold=0: invalid value 0"):
        vendomini(**{"pe.surprise_threshold": 0})
    with pytest.raises(TaskArgumentError, match=r"^-T condition=-1: base has conditions 0 to 0"):
        vendomini(condition=-1)
    with pytest.raises(TaskArgumentError, match=r"^-T condition=1.5: "):
        vendomini(condition=1.5)
