"""Arrows point one way: a recon module imports only from lower floors and the leaves."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "recon"

LEAVES = {"recon.errors", "recon.money", "recon.params", "recon.values"}
# Floor of each top-level part of recon; leaves are importable from every floor.
FLOORS = {
    "sandbox": 0,
    "clients": 1,
    "ledger": 2,
    "session": 2,
    "mapping": 2,
    "mapping_problems": 2,
    "display": 2,
    "demo": 2,
    "transfer": 2,
    "status": 2,
    "report": 2,
    "troubleshooting": 2,
    "widgets": 3,
    "cli": 3,
}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [m for m in found if m == "recon" or m.startswith("recon.")]


def test_every_module_has_a_known_floor() -> None:
    for path in PACKAGE.rglob("*.py"):
        module = "recon." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        if (module.endswith("__init__") and path.parent == PACKAGE) or module in LEAVES:
            continue
        assert _part(module) in FLOORS, f"{module}: add it to FLOORS in tests/test_layers.py"


def test_no_module_imports_upward() -> None:
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = "recon." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue  # the front door may name anything
        for imported in _imports(path):
            if imported in LEAVES or _part(imported) == _part(module):
                continue
            if module in LEAVES:
                if imported not in {"recon.errors"}:
                    upward.append(f"{module} (a leaf) imports {imported}")
                continue
            mine, theirs = FLOORS.get(_part(module)), FLOORS.get(_part(imported))
            if (
                imported == "recon"
                or theirs is None
                or mine is None
                or theirs > mine
                or (theirs == mine and mine < 2)
            ):
                upward.append(f"{module} (floor {mine}) imports {imported} (floor {theirs})")
    assert not upward, "\n".join(upward)
