"""The distribution installs tasks/, solvers/, scorers/ and configs/ as subpackages of vendomini_eval, and
no generic top-level name."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_maps_top_level_folders_into_the_package(tmp_path: Path) -> None:
    # Build from a copy: an in-tree build leaves build/ and an egg-info in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("vendomini_eval", "tasks", "solvers", "scorers", "configs", "slurm"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path)],
        check=True,
        cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("vendomini_eval-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # every module of the checkout is installed (a package missing from pyproject's list would be left out)
    folders = {"vendomini_eval": "vendomini_eval", "tasks": "vendomini_eval/tasks", "solvers": "vendomini_eval/solvers",
               "scorers": "vendomini_eval/scorers"}  # fmt: skip
    modules = {f"{target}/{path.relative_to(ROOT / folder).as_posix()}" for folder, target in folders.items()
               for path in (ROOT / folder).rglob("*.py") if "__pycache__" not in path.parts}  # fmt: skip
    assert sorted(modules - set(names)) == []
    top_level = {name.split("/")[0] for name in names}
    assert {n for n in top_level if not n.endswith(".dist-info")} == {"vendomini_eval"}
    for expected in (
        "vendomini_eval/tasks/__init__.py",
        "vendomini_eval/solvers/__init__.py",
        "vendomini_eval/scorers/__init__.py",
        "vendomini_eval/configs/base.yaml",
        "vendomini_eval/configs/phases/phase1.yaml",
        "vendomini_eval/configs/phases/phase5.yaml",
        "vendomini_eval/configs/thresholds.yaml",  # `vendomini analyze --thresholds thresholds`
        "vendomini_eval/configs/gates/default.yaml",  # `-T gates=default`
        "vendomini_eval/slurm_scripts/array_task.sh",  # read by `vendomini slurm submit`
    ):
        assert expected in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "vendomini = vendomini_eval.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
