"""Helpers shared by the sweep tests (local workers, Ray, SLURM): the tiny grid, the CLI, finished logs, and
equality of scores."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inspect_ai.log import EvalLog, list_eval_logs, read_eval_log

TINY = """\
name: tiny
inherit: {base}
replications: 1
fixed:
  max_steps: 30
  pe_mag: high
grid:
  p_shock: [0.0, 0.6]
  prediction_mode: [required, optional]
"""
"""Four conditions of 30 steps (format with base= the shipped base.yaml)."""


def vendomini(
    *args: str | Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`vendomini ARGS` in a child process (output captured; `env` adds to this process's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "vendomini_eval.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env} if env else None,
    )


def success_logs(log_dir: Path) -> dict[str, EvalLog]:
    """Headers of the successful logs below log_dir (shard dirs included), by local file path."""
    logs = {}
    for info in list_eval_logs(str(log_dir)):
        try:
            header = read_eval_log(info.name, header_only=True)
        except Exception:  # a log being written (tests poll running sweeps)
            continue
        if header.status == "success":
            logs[info.name.removeprefix("file://")] = header
    return logs


def same_values(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (unset PE means are NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def texts_below(directory: Path) -> Iterator[tuple[str, bytes]]:
    """Every file's bytes below directory, and every member of each .eval (zip) log decompressed."""
    for path in directory.rglob("*"):
        if path.is_file():
            yield str(path), path.read_bytes()
            if path.suffix == ".eval":
                with zipfile.ZipFile(path) as archive:
                    for name in archive.namelist():
                        yield f"{path}:{name}", archive.read(name)
