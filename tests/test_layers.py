"""The package's layers import only downward, and no module imports itself back through others.

Layers, lowest first (docs/ARCHITECTURE.md): the core (vendomini_eval's own modules, world/, policies/); the
Inspect layer (tasks/, solvers/, scorers/, vendomini_eval/providers/); then the sweep layer (vendomini_eval/sweep/)
and the analysis of logs (vendomini_eval/analysis/), side by side and apart; then the command line. Every import
of a vendomini_eval module counts, at module level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"vendomini_eval": REPO / "vendomini_eval", "vendomini_eval.tasks": REPO / "tasks",
           "vendomini_eval.solvers": REPO / "solvers", "vendomini_eval.scorers": REPO / "scorers"}  # fmt: skip
LAYERS = {"tasks": ("inspect", 1), "solvers": ("inspect", 1), "scorers": ("inspect", 1), "providers": ("inspect", 1),
          "sweep": ("sweep", 2), "analysis": ("analysis", 2), "cli": ("cli", 3)}  # fmt: skip
"""The layer and rank of each part of the package above the core (rank 0). Layers of one rank are apart."""


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (the checkout's folders as the package maps them)."""
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def part(module: str) -> str:
    """The part of the package a module belongs to: a LAYERS key, or "core"."""
    second = module.split(".")[1] if module.count(".") else ""
    return second if second in LAYERS else "core"


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `module` imports (absolute or relative, anywhere in the file)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from package import module` depends on the module; `from module import name` on the module
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known and name != module)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {module: imports(module, path, set(found)) for module, path in found.items()}


def layer(module: str) -> tuple[str, int]:
    return LAYERS.get(part(module), ("core", 0))


def test_the_walk_sees_every_layer() -> None:
    parts = {part(module) for module in modules()}
    assert parts == {"core", *LAYERS}


def test_layers_import_only_downward() -> None:
    upward = [
        f"{source} ({layer(source)[0]}) imports {target} ({layer(target)[0]})"
        for source, targets in graph().items()
        for target in targets
        if layer(target)[1] > layer(source)[1]
        or (layer(target)[1] == layer(source)[1] and layer(target) != layer(source))
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    """No module reaches itself through the modules it imports (a package's own __init__ re-exporting its
    submodules is not a cycle: its submodules never import the package)."""
    edges = graph()
    cycles = []
    for start in edges:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for target in edges[node]:
                if target == start:
                    cycles.append(" -> ".join([*path, start]))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*path, target]))
    assert cycles == []


@pytest.mark.parametrize(
    ("source", "text", "found"),
    [
        ("vendomini_eval.episode", "from vendomini_eval.sweep import plan\n", "vendomini_eval.sweep.plan"),
        ("vendomini_eval.sweep.run", "def f():\n    from vendomini_eval import cli\n", "vendomini_eval.cli"),
        ("vendomini_eval.sweep.run", "from . import local\n", "vendomini_eval.sweep.local"),
    ],
)
def test_the_import_reader_sees_every_form(tmp_path: Path, source: str, text: str, found: str) -> None:
    """The check can fail: absolute, function-level and relative imports are all read."""
    path = tmp_path / "module.py"
    path.write_text(text, encoding="utf-8")
    assert found in imports(source, path, set(modules()))
