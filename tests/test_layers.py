"""Arrows point one way, and the sandbox is a walled twin.

Rules (house style §1, issue "Code that lasts"):

* Leaves (errors, money, params, values) import nothing of recon but ``recon.errors``.
* The sandbox imports nothing of recon outside ``recon/sandbox/``: it is an independent
  twin of the real services, so recon's arithmetic must not leak into it.
* The product reaches the sandbox only through its launcher, ``recon.sandbox`` itself
  (start, stop, the URLs and demo credentials), never a module inside it, and never at
  import time: ``import recon`` loads none of it.
* Every other part has a floor and imports only from lower floors (or from its own
  package). Imports under ``if TYPE_CHECKING:`` are skipped: they never run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "recon"

LEAVES = {
    "recon.cells",
    "recon.errors",
    "recon.money",
    "recon.outcomes",
    "recon.params",
    "recon.progress",
    "recon.values",
}
# Floor of each top-level part; a module imports only from lower floors and the leaves.
FLOORS = {
    "sandbox": 0,
    "clients": 1,
    # the record of writes, the connection, and what results and messages mean
    "ledger": 2,
    "session": 2,
    # which Xero organisation each location books into (checked by the transfer, recorded by it)
    "bindings": 2,
    "mapping_problems": 2,
    "troubleshooting": 2,
    "display": 2,
    "resources": 2,  # where the notebooks and demo params are (a checkout's or the wheel's)
    # the steps, each on the ones before it: a transfer plans from a mapping result
    "mapping": 3,
    "transfer": 4,
    "status": 4,
    # the status step's parts, under its front (recon.status): the diff, the reads, mark paid
    "status_diff": 3,
    "status_refresh": 3,
    "status_paid": 3,
    # acts on a status diff (floor 4) with the transfer's allocation writer (floor 4): above both,
    # so the two steps never import each other
    "status_xero": 5,
    # what runs the steps or reads their output
    "report": 5,
    "demo": 5,
    # the notebook panels and the command line
    "widgets": 6,
    "cli": 6,
}
SANDBOX = "recon.sandbox"


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


def _module_name(package: Path, path: Path) -> str:
    parts = path.relative_to(package).with_suffix("").parts
    name = ".".join((package.name, *parts))
    return name.removesuffix(".__init__")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, root: str) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every recon import that can run."""
    tree = ast.parse(path.read_text("utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other, top)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module, top))
            is_scope = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, top and not is_scope)

    visit(tree, True)
    return [(m, top) for m, top in found if m == root or m.startswith(root + ".")]


def layer_violations(package: Path) -> list[str]:
    """Every import in ``package`` that breaks the rules in this module's docstring."""
    root = package.name
    leaves = {root + leaf.removeprefix("recon") for leaf in LEAVES}
    sandbox = root + SANDBOX.removeprefix("recon")
    found = []
    for path in sorted(package.rglob("*.py")):
        module = _module_name(package, path)
        is_front_door = module == root
        for imported, top in _imports(path, root):
            inside_sandbox = module == sandbox or module.startswith(sandbox + ".")
            if inside_sandbox:
                if not (imported == sandbox or imported.startswith(sandbox + ".")):
                    found.append(f"{module} (sandbox) imports {imported}: the twin is walled")
                continue
            if imported == sandbox or imported.startswith(sandbox + "."):
                if imported != sandbox:
                    found.append(f"{module} imports {imported}: use the launcher {sandbox}")
                elif top:
                    found.append(f"{module} imports {sandbox} at import time")
                continue
            if is_front_door or imported in leaves or _part(imported) == _part(module):
                continue
            if module in leaves:
                if imported != root + ".errors":
                    found.append(f"{module} (a leaf) imports {imported}")
                continue
            mine, theirs = FLOORS.get(_part(module)), FLOORS.get(_part(imported))
            if mine is None or theirs is None or imported == root or theirs >= mine:
                found.append(f"{module} (floor {mine}) imports {imported} (floor {theirs})")
    return found


def test_every_module_has_a_known_floor() -> None:
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(PACKAGE, path)
        if module == "recon" or module in LEAVES:
            continue
        assert _part(module) in FLOORS, f"{module}: add it to FLOORS in tests/test_layers.py"


def test_no_module_breaks_the_layers_or_the_sandbox_wall() -> None:
    found = layer_violations(PACKAGE)
    assert not found, "\n".join(found)


def test_import_recon_loads_no_sandbox_module() -> None:
    code = (
        "import recon, sys; print(sorted(m for m in sys.modules if m.startswith('recon.sandbox')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]", f"import recon loaded {out}"


def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "recon"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), "utf-8")
    return package


@pytest.fixture
def clean_tree() -> dict[str, str]:
    return {
        "__init__.py": "from recon.mapping import check\n",
        "money.py": "from decimal import Decimal\n",
        "errors.py": "",
        "sandbox/__init__.py": "from recon.sandbox.books import total\n",
        "sandbox/books.py": "from decimal import Decimal\n",
        "clients/__init__.py": "from recon.errors import *\n",
        "mapping.py": (
            "from recon.clients import x\ndef start():\n    from recon.sandbox import start\n"
        ),
    }


def test_a_clean_synthetic_tree_has_no_violations(
    tmp_path: Path, clean_tree: dict[str, str]
) -> None:
    assert layer_violations(_tree(tmp_path, clean_tree)) == []


def test_the_wall_catches_a_sandbox_module_importing_recons_money(
    tmp_path: Path, clean_tree: dict[str, str]
) -> None:
    clean_tree["sandbox/books.py"] = "from recon.money import round_cents\n"
    found = layer_violations(_tree(tmp_path, clean_tree))
    assert found == ["recon.sandbox.books (sandbox) imports recon.money: the twin is walled"]


def test_the_wall_catches_the_product_reaching_inside_the_sandbox_or_at_import_time(
    tmp_path: Path, clean_tree: dict[str, str]
) -> None:
    clean_tree["mapping.py"] = (
        "from recon.sandbox.books import total\nfrom recon.sandbox import start\n"
    )
    found = layer_violations(_tree(tmp_path, clean_tree))
    assert found == [
        "recon.mapping imports recon.sandbox.books: use the launcher recon.sandbox",
        "recon.mapping imports recon.sandbox at import time",
    ]


def test_an_upward_or_same_floor_import_is_caught_but_type_checking_ones_are_not(
    tmp_path: Path, clean_tree: dict[str, str]
) -> None:
    clean_tree["clients/__init__.py"] = "from recon.mapping import check\n"
    clean_tree["display.py"] = "from recon.ledger import Ledger\n"
    clean_tree["ledger.py"] = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from recon.mapping import R\n"
    )
    found = layer_violations(_tree(tmp_path, clean_tree))
    assert found == [
        "recon.clients (floor 1) imports recon.mapping (floor 3)",
        "recon.display (floor 2) imports recon.ledger (floor 2)",
    ]


def _private_imports(root: Path, package: str = "recon") -> list[str]:
    """``from recon.x import _name`` anywhere under ``root``: a private name crossing modules."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and (node.module == package or node.module.startswith(package + "."))
            ):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(root.parent)}: {node.module}.{alias.name}")
    return found


def test_no_private_name_is_imported_across_modules() -> None:
    found = _private_imports(PACKAGE) + _private_imports(PACKAGE.parent / "tests")
    found += _private_imports(PACKAGE.parent / "bench")
    assert not found, "make these public or move them:\n" + "\n".join(found)
