"""Where the shipped configs are, and how a path is shown to a user: shared by the experiment and gate loaders."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

CONFIGS_PACKAGE = "vendomini_eval.configs"


def shipped_configs_dir() -> Path:
    """The shipped configs; from a source checkout, the configs/ folder beside the package."""
    try:
        resources = importlib.resources.files(CONFIGS_PACKAGE)
    except ModuleNotFoundError:
        # A checkout without installation: vendomini_eval.configs is only created by the packaging map.
        return Path(__file__).resolve().parent.parent / "configs"
    # Inheritance uses relative paths (../base.yaml), which need a real directory, not a zip member.
    if not isinstance(resources, Path):
        raise RuntimeError(f"{CONFIGS_PACKAGE} is not installed as a directory: {resources}")
    return resources


def display_path(path: Path | str) -> str:
    """A path relative to the working directory when it is below it: what a user typed or can click."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
