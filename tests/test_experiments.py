"""Experiment configs: shipped phases, strict validation, inheritance, grid expansion and run seeds."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendomini_eval.condition import Condition
from vendomini_eval.experiments import (
    SEED_DOMAIN,
    ExperimentConfigError,
    condition_label,
    condition_slug,
    derive_run_seed,
    expand_runs,
    format_plan,
    load_experiment,
    shipped_configs_dir,
)

REPO = Path(__file__).resolve().parent.parent
P_SHOCK = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MINIMAL = "seed: 7\nreplications: 2\nmodels: [vendomini/heuristic]\n"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ExperimentConfigError) as caught:
        load_experiment(path)
    message = str(caught.value)
    assert path.name in message, message  # every error names its file
    return message


# --- shipped configs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count"), [("phase1", 44), ("phase2", 165), ("phase3", 66), ("phase4", 33), ("phase5", 22)]
)
def test_shipped_phase_loads_with_expected_condition_count(name: str, count: int) -> None:
    experiment = load_experiment(name)
    assert experiment.name == name
    assert len(experiment.conditions) == count
    assert experiment.grid["p_shock"] == P_SHOCK
    assert len(set(experiment.conditions)) == count
    assert len(expand_runs(experiment)) == count * experiment.replications


def test_shipped_configs_found_by_path_and_in_checkout_folder() -> None:
    assert shipped_configs_dir().resolve() == (REPO / "configs").resolve()
    by_path = load_experiment(REPO / "configs" / "phases" / "phase1.yaml")
    assert by_path.conditions == load_experiment("phase1").conditions


def test_base_writes_out_condition_defaults() -> None:
    base = load_experiment("base")
    assert base.conditions == (Condition(),)
    assert (base.seed, base.replications) == (20251121, 5)
    assert base.models == ("vendomini/heuristic", "vendomini/random")


def test_fixed_values_are_applied_to_every_condition() -> None:
    phase2 = load_experiment("phase2")
    assert all(
        (c.max_steps, c.pe_mag, c.prediction_mode) == (1000, "medium", "required+confidence") for c in phase2.conditions
    )
    phase4 = load_experiment("phase4")
    assert {c.complexity_level for c in phase4.conditions} == {2}
    assert len(phase4.models) > 2
    phase5 = load_experiment("phase5")
    assert phase5.replications == 10
    assert all((c.max_steps, c.recovery_tools) == (5000, "all") for c in phase5.conditions)
    assert {c.complexity_level for c in phase5.conditions} == {3, 4}
    assert {c.max_steps for c in load_experiment("phase1").conditions} == {500}


def test_phase3_max_steps_follow_complexity_level() -> None:
    phase3 = load_experiment("phase3")
    expected = {1: 500, 2: 1000, 3: 2500}
    assert all(c.max_steps == expected[c.complexity_level] for c in phase3.conditions)
    assert {c.complexity_level for c in phase3.conditions} == {1, 2, 3}


def test_grid_order_is_cartesian_in_written_key_order() -> None:
    phase1 = load_experiment("phase1")
    assert list(phase1.grid) == ["p_shock", "pe_mag", "prediction_mode"]
    first = phase1.conditions[:4]
    assert [(c.p_shock, c.pe_mag, c.prediction_mode) for c in first] == [
        (0.0, "low", "required"),
        (0.0, "low", "optional"),
        (0.0, "high", "required"),
        (0.0, "high", "optional"),
    ]
    assert phase1.labels[0] == "p_shock=0.0,pe_mag=low,prediction_mode=required"


def test_labels_and_slugs_are_unique_and_safe() -> None:
    for name in ("phase1", "phase2", "phase3", "phase4", "phase5"):
        experiment = load_experiment(name)
        axes = list(experiment.grid)
        slugs = [condition_slug(c, axes) for c in experiment.conditions]
        assert len(set(slugs)) == len(slugs) == len(set(experiment.labels))
        assert all(re.fullmatch(r"[a-z0-9_.-]+", slug) for slug in slugs)
    condition = Condition(p_shock=0.3, prediction_mode="required+confidence")
    axes = ["p_shock", "prediction_mode"]
    assert condition_label(condition, axes) == "p_shock=0.3,prediction_mode=required+confidence"
    assert condition_slug(condition, axes) == "p_shock-0.3__prediction_mode-required_confidence"
    assert condition_label(condition, []) == "base"


def test_format_plan_shows_counts_axes_and_table() -> None:
    plan = format_plan(load_experiment("phase3"))
    for expected in ("phase3", "p_shock", "recovery_tools", "none, all", "from complexity_level", "66"):
        assert expected in plan
    assert re.search(r"runs per model\s+330", plan)
    assert re.search(r"total runs\s+660", plan)
    assert re.search(r"65\s+p_shock=1.0,complexity_level=3,recovery_tools=all\s+2500", plan)


# --- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key_path"),
    [
        ("replicatons: 3\n", "replicatons: unknown experiment key (did you mean replications?)"),
        ("grid:\n  pe_magg: [low]\n", "grid.pe_magg: unknown condition key (did you mean pe_mag?)"),
        ("condition:\n  p_shok: 0.2\n", "condition.p_shok: unknown condition key"),
        ("fixed:\n  max_step: 10\n", "fixed.max_step: unknown condition key"),
        ("fixed:\n  pe.surprise_treshold: 0.6\n", "fixed.pe.surprise_treshold: unknown condition key"),
        ("condition:\n  pe:\n    surprise_treshold: 0.6\n", "condition.pe.surprise_treshold: unknown"),
        ("grid:\n  pe.surprise_treshold: [0.6]\n", "grid.pe.surprise_treshold: unknown condition key"),
        ("derived:\n  max_steps:\n    form: p_shock\n", "derived.max_steps.form: unknown rule key"),
        ("derived:\n  max_stepz: {from: p_shock, values: {0.1: 5}}\n", "derived.max_stepz: unknown"),
    ],
)
def test_misspelled_key_fails_naming_its_path(tmp_path: Path, body: str, key_path: str) -> None:
    path = write(tmp_path, "exp.yaml", MINIMAL + body)
    message = load_error(path)
    assert f"exp.yaml: {key_path}" in message
    if "condition key" in message:
        assert "allowed: world, complexity_level, p_shock" in message


def test_thresholds_file_is_named_as_such() -> None:
    message = load_error(shipped_configs_dir() / "thresholds.yaml")
    assert "thresholds.yaml: checks: this is a thresholds file (vendomini analyze --thresholds)" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("grid:\n  pe_mag: [low, medium, huge]\n", "grid.pe_mag[2]: 'huge' is not one of low, medium, high"),
        (
            "condition:\n  observability: foggy\n",
            "condition.observability: 'foggy' is not one of full, delayed",
        ),
        (
            "grid:\n  p_shock: [0.1, 1.5]\n",
            "grid.p_shock[1]: invalid value 1.5: Input should be less than or",
        ),
        ("fixed:\n  complexity_level: yes\n", "fixed.complexity_level: True is a boolean"),
        ("grid:\n  p_shock: [0.1, 0.1]\n", "grid.p_shock[1]: 0.1 is repeated"),
        ("replications: 0\n", "replications: 0 must be an integer >= 1"),
        ("models: [gpt4]\n", "models[0]: 'gpt4' is not a provider/model name"),
        ("grid:\n  max_steps: [5]\nfixed:\n  max_steps: 9\n", "grid.max_steps: also set in fixed"),
        ("grid:\n  pe: [{}]\n", "grid.pe: grid over single fields"),
    ],
)
def test_bad_value_names_path_and_allowed_values(tmp_path: Path, body: str, expected: str) -> None:
    # Later keys override MINIMAL's by appearing in a child file, so duplicate top-level keys never arise.
    parent = write(tmp_path, "parent.yaml", MINIMAL)
    path = write(tmp_path, "exp.yaml", f"inherit: {parent.name}\n" + body)
    assert f"exp.yaml: {expected}" in load_error(path)


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "exp.yaml", MINIMAL + "grid:\n  p_shock: [0.1]\n  p_shock: [0.2]\n")
    assert "duplicate key 'p_shock'" in load_error(path)


def test_missing_required_key_and_missing_parent(tmp_path: Path) -> None:
    assert "exp.yaml: seed: required" in load_error(write(tmp_path, "exp.yaml", "name: x\n"))
    path = write(tmp_path, "child.yaml", "inherit: [nowhere.yaml]\n")
    assert "child.yaml: inherit[0]: no such file" in load_error(path)


def test_derived_needs_an_entry_for_every_source_value(tmp_path: Path) -> None:
    body = "grid:\n  complexity_level: [1, 4]\n" + "derived:\n  max_steps: {from: complexity_level, values: {1: 50}}\n"
    message = load_error(write(tmp_path, "exp.yaml", MINIMAL + body))
    assert "derived.max_steps.values: no entry for complexity_level=4" in message


# --- inheritance ------------------------------------------------------------------------------------------


def test_inheritance_override_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        "grand.yaml",
        MINIMAL
        + textwrap.dedent("""
        condition:
          p_shock: 0.1
          pe_mag: low
          pe: {surprise_threshold: 0.2, temporal_half_days: 2.0}
        grid:
          p_shock: [0.1, 0.2]
        """),
    )
    write(tmp_path, "sub/parent.yaml", "inherit: ../grand.yaml\ncondition: {pe_mag: high, max_steps: 50}\n")
    write(tmp_path, "other.yaml", "replications: 3\ncondition: {max_steps: 60}\n")
    child = write(
        tmp_path,
        "child.yaml",
        """
        name: child
        inherit: [sub/parent.yaml, other.yaml]
        condition:
          pe.surprise_threshold: 0.7
        fixed:
          pe_mag: medium
        grid:
          observability: [full, hidden]
        """,
    )
    experiment = load_experiment(child)
    assert experiment.name == "child"
    assert experiment.replications == 3  # later parent overrides earlier
    assert list(experiment.grid) == ["p_shock", "observability"]  # parent axes first, then the child's
    assert len(experiment.conditions) == 4
    for condition in experiment.conditions:
        assert condition.pe_mag == "medium"  # fixed beats every condition: value
        assert condition.max_steps == 60  # other.yaml is listed after sub/parent.yaml
        assert condition.pe.surprise_threshold == 0.7  # dotted key merges with the nested form
        assert condition.pe.temporal_half_days == 2.0  # sibling nested value kept (deep merge)


def test_name_is_not_inherited(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "name: base\n" + MINIMAL)
    assert load_experiment(write(tmp_path, "my-run.yaml", "inherit: base.yaml\n")).name == "my-run"


def test_inheritance_cycle_is_an_error_naming_the_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", MINIMAL + "inherit: b.yaml\n")
    write(tmp_path, "b.yaml", "inherit: c.yaml\n")
    write(tmp_path, "c.yaml", "inherit: a.yaml\n")
    message = load_error(tmp_path / "a.yaml")
    assert "inheritance cycle" in message
    assert re.search(r"a\.yaml -> \S*b\.yaml -> \S*c\.yaml -> \S*a\.yaml", message)


# --- seeds --------------------------------------------------------------------------------------------------


def test_seeds_are_deterministic_and_distinct() -> None:
    runs = expand_runs(load_experiment("phase1"))
    assert runs == expand_runs(load_experiment("phase1"))
    seeds = [run.seed for run in runs]
    assert len(set(seeds)) == len(seeds) == 44 * 5
    assert [run.replication for run in runs[:6]] == [0, 1, 2, 3, 4, 0]
    assert all(0 <= seed < 2**63 for seed in seeds)


def test_seeds_depend_on_experiment_seed_condition_and_replication() -> None:
    condition = Condition()
    seed = derive_run_seed(1, condition, 0)
    assert seed != derive_run_seed(2, condition, 0)
    assert seed != derive_run_seed(1, condition, 1)
    assert seed != derive_run_seed(1, Condition(pe={"surprise_threshold": 0.6}), 0)
    assert seed == derive_run_seed(1, Condition(p_shock=0.1), 0)  # same condition written explicitly


def test_observability_arms_share_seeds_and_nothing_else_does() -> None:
    """Arms that differ only in what the agent is told (INFORMATION_KEYS) meet the same world: the pairs the
    paired observability comparison reads. Every other knob still gives its own seeds."""
    runs = expand_runs(load_experiment("phase2"))
    by_seed: dict[int, list] = {}
    for run in runs:
        by_seed.setdefault(run.seed, []).append(run)
    assert len(by_seed) == len(runs) // 3  # full, delayed, hidden
    for arms in by_seed.values():
        assert sorted(run.condition.observability for run in arms) == ["delayed", "full", "hidden"]
        worlds = {run.condition.model_copy(update={"observability": "full"}).canonical_json() for run in arms}
        assert len(worlds) == 1 and len({run.replication for run in arms}) == 1
    assert derive_run_seed(1, Condition(notice_delay_steps=9, observability="delayed"), 0) == derive_run_seed(
        1, Condition(), 0
    )
    # a full-observability condition keeps the seed of the plain derivation (published runs stay reproducible)
    plain = hashlib.sha256(f"{SEED_DOMAIN}\n1\n{Condition().canonical_json()}\n0".encode()).digest()
    assert derive_run_seed(1, Condition(), 0) == int.from_bytes(plain[:8], "big") & (2**63 - 1)


@given(st.integers(min_value=0, max_value=2**64), st.integers(min_value=0, max_value=10_000))
def test_seed_is_a_63_bit_pure_function(experiment_seed: int, replication: int) -> None:
    seed = derive_run_seed(experiment_seed, Condition(), replication)
    assert 0 <= seed < 2**63
    assert seed == derive_run_seed(experiment_seed, Condition(), replication)


def test_seeds_are_stable_across_processes() -> None:
    script = (
        "from vendomini_eval.experiments import expand_runs, load_experiment\n"
        "print(','.join(str(r.seed) for r in expand_runs(load_experiment('phase3'))))"
    )
    # A different hash seed in the child proves that nothing depends on Python's hash().
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert output == ",".join(str(r.seed) for r in expand_runs(load_experiment("phase3")))


def test_seeds_do_not_depend_on_models(tmp_path: Path) -> None:
    phase1 = REPO / "configs" / "phases" / "phase1.yaml"
    other = write(tmp_path, "phase1.yaml", f"inherit: {phase1}\nmodels: [openai/gpt-4o, hf/x/y]\n")
    assert load_experiment(other).models == ("openai/gpt-4o", "hf/x/y")
    assert expand_runs(load_experiment(other)) == expand_runs(load_experiment("phase1"))


def test_experiments_module_does_not_import_inspect_ai() -> None:
    script = "import sys, vendomini_eval.experiments; print('inspect_ai' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_installed_package_configs_are_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Once packaging maps configs/ to vendomini_eval.configs, importlib.resources finds the shipped files.
    write(tmp_path, "base.yaml", MINIMAL)
    write(tmp_path, "phases/phase9.yaml", "inherit: ../base.yaml\n")
    monkeypatch.setattr("importlib.resources.files", lambda package: tmp_path)
    assert shipped_configs_dir() == tmp_path
    assert load_experiment("phase9").source == tmp_path / "phases" / "phase9.yaml"
