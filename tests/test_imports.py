"""The package's import structure, read from the source with ast (function-level imports count): no import cycle
among the package's modules, no private name imported from another module, no library module over 600 lines;
and every module imports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

PACKAGE = "cutmix_transfer"
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file of the package."""
    out = {}
    for path in sorted((REPO / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a relative import `from <level dots><target> import ...` made in `module`."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _is_submodule(dotted: str) -> bool:
    """A .py module of the package, or a compiled extension module (e.g. wsol/_contours.*.so) beside them."""
    if dotted in MODULES:
        return True
    parent, _, name = dotted.rpartition(".")
    folder = MODULES.get(parent)
    return folder is not None and folder.name == "__init__.py" and any(folder.parent.glob(f"{name}.*.so"))


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (never executed, so no runtime edge)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                skip.update(id(n) for n in ast.walk(stmt))
    return skip


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported package module, imported name or None, line) for every import statement anywhere in `module`
    (function-level ones included; those under `if TYPE_CHECKING:` left out)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    skip = _type_checking_only(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    found.append((alias.name, None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(module, is_package, node.level, node.module)
            if src.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{src}.{alias.name}"
                if _is_submodule(sub):  # `from pkg import submodule`
                    found.append((sub, None, node.lineno))
                else:
                    found.append((src, alias.name, node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for target, _, _ in _imports(m):
            if target not in MODULES and _is_submodule(target):
                continue  # a compiled extension module imports nothing of the package
            # `import a.b.c` (or `from a.b import x`) names the deepest package module that exists
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != m:
                graph[m].add(target)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_cycle_finder_sees_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_relative_imports_resolve():
    assert (
        _resolve("cutmix_transfer.wsol.evaluate", False, 2, "datasets.wsol_data")
        == "cutmix_transfer.datasets.wsol_data"
    )
    assert _resolve("cutmix_transfer.wsol", True, 1, "boxes") == "cutmix_transfer.wsol.boxes"


def test_no_import_cycle():
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_private_name_imported_across_modules():
    bad = [
        f"{MODULES[m].relative_to(REPO)}:{line} imports {name} from {src}"
        for m in MODULES
        for src, name, line in _imports(m)
        if name is not None and name.startswith("_") and not name.startswith("__") and src != m
    ]
    assert not bad, "\n".join(bad)


def test_no_library_module_over_600_lines():
    long = {
        str(p.relative_to(REPO)): n
        for p in MODULES.values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if ".wsol" in m or ".datasets" in m))
def test_module_imports(module):
    importlib.import_module(module)


_CHECK_PATCH = """
import sys
{first}
from mmengine.runner.checkpoint import CheckpointLoader
{second}
print(CheckpointLoader._schemes[""].__name__, sorted(m for m in ("mmengine.runner", "mmengine.model") if m in early))
"""


@pytest.mark.parametrize("cutmix_first", [True, False])
def test_evaluators_do_not_import_mmengines_runner_and_the_patch_still_applies(cutmix_first):
    """Importing the package and an evaluator leaves mmengine's runner and model packages unimported (the evaluators
    never use them; they cost ~1 s of every tool's start-up), and mmengine's local checkpoint loader is the
    project's safe one whichever is imported first (compat's import hook, or the patch at once)."""
    ours = "import cutmix_transfer.clseval, cutmix_transfer.corruptions; early = set(sys.modules)"
    code = _CHECK_PATCH.format(
        first=ours if cutmix_first else "early = set()", second="" if cutmix_first else "import cutmix_transfer"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[0] == "load_from_local_safe"
    assert proc.stdout.strip().endswith("[]"), proc.stdout
