"""The core (vendomini_eval below its Inspect layer) never imports inspect_ai, at import time or when it runs.

Every module of the core is imported in a fresh interpreter with an import hook in front of the normal
finders: any attempt to import `inspect_ai` (or a submodule) is recorded and served by a stub, so the check
works whether or not inspect_ai is installed, and it also catches imports guarded by try/except. Then the core
runs (experiments planned, episodes of every scripted policy) under the same hook. The layers above it are
listed in tests/test_layers.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Everything above the core: the Inspect layer (vendomini_eval.tasks/.solvers/.scorers, top-level folders in the
# checkout, and .providers), the sweep layer, the analysis of logs and the command line.
INSPECT_LAYER = ("tasks", "solvers", "scorers", "providers", "sweep", "analysis", "cli")

CHECKER = textwrap.dedent(
    """
    import importlib, importlib.abc, importlib.machinery, json, pkgutil, sys, types

    attempts = []

    class _Stub(importlib.abc.Loader):
        def create_module(self, spec):
            return types.ModuleType(spec.name)

        def exec_module(self, module):
            module.__path__ = []

    class _Recorder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "inspect_ai" or name.startswith("inspect_ai."):
                attempts.append(name)
                return importlib.machinery.ModuleSpec(name, _Stub(), is_package=True)
            return None

    sys.meta_path.insert(0, _Recorder())

    package_name, excluded = sys.argv[1], set(sys.argv[2].split(","))
    package = importlib.import_module(package_name)
    imported, errors = [package_name], {}

    def skip(name):
        parts = name.split(".")
        return len(parts) > 1 and parts[1] in excluded

    def walk(prefix, path):
        # Own recursion (not pkgutil.walk_packages, which imports every subpackage, excluded ones too).
        for info in pkgutil.iter_modules(path, prefix + "."):
            if skip(info.name):
                continue
            try:
                module = importlib.import_module(info.name)
                imported.append(info.name)
            except Exception as error:  # reported, and fails the test
                errors[info.name] = repr(error)
                continue
            if info.ispkg:
                walk(info.name, module.__path__)

    walk(package_name, package.__path__)
    if len(sys.argv) > 3:  # and run the core
        exec(sys.argv[3])

    print(json.dumps({
        "imported": imported,
        "errors": errors,
        "attempts": attempts,
        "in_sys_modules": sorted(m for m in sys.modules if m == "inspect_ai" or m.startswith("inspect_ai.")),
    }))
    """
)


RUN_THE_CORE = textwrap.dedent(
    """
    from vendomini_eval.condition import Condition
    from vendomini_eval.experiments import expand_runs, format_plan, load_experiment
    from vendomini_eval.policies import BEHAVIOURS, FAULTS, SIMPLE_POLICIES
    from vendomini_eval.runner import run_policy

    for name in ("base", "phase1", "phase2", "phase3", "phase4", "phase5"):
        experiment = load_experiment(name)
        format_plan(experiment), expand_runs(experiment)
    condition = Condition(max_steps=40, p_shock=0.5, recovery_tools="all", memory_tools="full")
    for policy in SIMPLE_POLICIES:
        run_policy(condition, 7, policy).summary
    for behaviour in BEHAVIOURS:  # breakdowns need an onset, the benign ones take none
        try:
            run_policy(condition, 7, behaviour, onset=10).summary
        except ValueError:
            run_policy(condition, 7, behaviour).summary
    for fault in FAULTS:
        run_policy(condition, 7, "heuristic", fault=fault, onset=10).summary
    """
)


def run_checker(package: str, pythonpath: Path, run: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    proc = subprocess.run(
        [sys.executable, "-c", CHECKER, package, ",".join(INSPECT_LAYER), *([run] if run else [])],
        capture_output=True,
        text=True,
        cwd=pythonpath,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_core_never_imports_inspect_ai() -> None:
    report = run_checker("vendomini_eval", REPO)
    assert report["errors"] == {}, f"core modules failed to import: {report['errors']}"
    imported = set(report["imported"])
    # The walk really covered the core (so an empty walk cannot pass vacuously).
    for module in (
        "vendomini_eval.condition",
        "vendomini_eval.episode",
        "vendomini_eval.runner",
        "vendomini_eval.shocks",
        "vendomini_eval.predictions",
        "vendomini_eval.pe",
        "vendomini_eval.crash",
        "vendomini_eval.world.world",
        "vendomini_eval.world.state",
        "vendomini_eval.world.tools",
        "vendomini_eval.policies.heuristic",
        "vendomini_eval.policies.random_policy",
        "vendomini_eval.policies.faults",
    ):
        assert module in imported, f"{module} was not imported by the walk"
    assert not any(m.split(".")[1] in INSPECT_LAYER for m in imported if "." in m)
    assert report["attempts"] == [], f"the core tried to import {report['attempts']}"
    assert report["in_sys_modules"] == []


def test_the_core_runs_without_inspect_ai() -> None:
    """Call time: planning every shipped experiment and running every scripted policy imports no inspect_ai."""
    report = run_checker("vendomini_eval", REPO, RUN_THE_CORE)
    assert report["errors"] == {}
    assert report["attempts"] == [], f"running the core imported {report['attempts']}"


def test_checker_detects_an_inspect_import(tmp_path: Path) -> None:
    """The check itself can fail: a package whose module imports inspect_ai is caught, even when the import
    is guarded; a module of an excluded Inspect-layer subpackage is not walked."""
    pkg = tmp_path / "fakecore"
    (pkg / "world").mkdir(parents=True)
    (pkg / "tasks").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "world" / "__init__.py").write_text("")
    (pkg / "world" / "clean.py").write_text("X = 1\n")
    (pkg / "leaky.py").write_text("try:\n    from inspect_ai.model import get_model\nexcept ImportError:\n    pass\n")
    (pkg / "tasks" / "__init__.py").write_text("import inspect_ai.solver\n")
    report = run_checker("fakecore", tmp_path)
    assert "fakecore.world.clean" in report["imported"]
    assert "fakecore.tasks" not in report["imported"]
    assert "inspect_ai.model" in report["attempts"]
    assert "inspect_ai.solver" not in report["attempts"]
    assert "inspect_ai" in report["in_sys_modules"]
