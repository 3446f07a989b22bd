"""The package's layers import only downwards, and no module imports itself in a circle.

models/scoring -> io/readers/params/synthetic -> publish -> analyses -> report -> runner -> cli
(README "What is where"). Imports inside functions count: a lazy import that runs up
the layers is the same design bug as one at the top of a file.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "spimpact"

# Lowest first. A module may import from its own layer or any lower one.
LAYERS = (
    (
        "spimpact.paths",
        "spimpact.contract",
        "spimpact.identifiers",
        "spimpact.files",
        "spimpact.engine",
    ),
    ("spimpact.models", "spimpact.scoring"),
    (
        "spimpact.params",
        "spimpact.io",
        "spimpact.streaming",
        "spimpact.contract_sql",
        "spimpact.linkage",
        "spimpact.mapping",
        "spimpact.readers",
        "spimpact.cells",
        "spimpact.boundaries",
        "spimpact.synthetic",
    ),
    ("spimpact.publish",),
    ("spimpact.analyses", "spimpact.attendance"),
    ("spimpact.report", "spimpact.interactive"),
    ("spimpact.runner",),
    ("spimpact.cli",),
    ("spimpact",),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best, best_length = None, -1
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = rank, len(prefix)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return best


def _imports(path: Path, *, runtime_only: bool) -> set[str]:
    """Modules of spimpact that ``path`` imports (``runtime_only``: at import time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(child) for child in ast.walk(node)}
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                skipped |= {id(child) for child in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("spimpact")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("spimpact"):
                # "from spimpact.models import mixed" imports the submodule; "from
                # spimpact.models import fit_mixed" the package itself
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    found.add(submodule if _is_module(submodule) else node.module)
    return {name for name in found if _is_module(name)}


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / relative).with_suffix(".py").exists() or (
        root / relative / "__init__.py"
    ).exists()


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_run_only_downwards(path):
    module = _module_name(path)
    upward = sorted(
        imported
        for imported in _imports(path, runtime_only=False)
        if _layer(imported) > _layer(module)
    )
    assert not upward, f"{module} imports from a higher layer: {upward}"


def test_no_circular_imports():
    graph = {_module_name(p): _imports(p, runtime_only=True) for p in MODULES}
    state: dict[str, int] = {}

    def visit(module, trail):
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if imported == module or imported not in graph:
                continue
            if state.get(imported) == 1:
                cycle = trail[trail.index(imported) :] + [imported]
                raise AssertionError("circular import: " + " -> ".join(cycle))
            if imported not in state:
                visit(imported, [*trail, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_modules_stay_small(path):
    n_lines = len(path.read_text(encoding="utf-8").splitlines())
    assert n_lines <= 600, f"{_module_name(path)} has {n_lines} lines: split it by what it holds"
