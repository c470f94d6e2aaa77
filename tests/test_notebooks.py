"""Every step notebook runs end to end under papermill, and is committed clean (no outputs).

The kernel is another process, so it cannot share the session sandbox object.
It gets its own sandbox instead: ``RECON_SANDBOX_DIR`` points at this test's
temporary folder (kernels inherit ``os.environ``; papermill starts them with
it), and the demo params leave ``sandbox_dir`` unset, so the kernel's
``connect`` starts the embedded sandbox there and seeds the same deterministic
demo business (seed 2026) with the same planted problems. Two servers writing
one SQLite state from two processes (ours and the kernel's) is what this
avoids; a notebook parameter would not do, since ``sandbox_dir`` is not one of
the notebooks' parameters. ``RECON_CONFIG_DIR`` (set per test by
``clean_environ``) keeps the kernel's tokens out of the user's folder too.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import papermill as pm
import pytest

from recon.mapping_problems import Problem
from recon.sandbox.seed import generate

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
STEP_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_there_are_step_notebooks() -> None:
    assert STEP_NOTEBOOKS, f"no NN_name.ipynb in {NOTEBOOKS}"


@pytest.mark.parametrize("notebook", STEP_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs_or_execution_counts(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, f"{notebook.name}: cells {dirty} have outputs or execution counts; clear them before committing"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: exactly one cell must be tagged 'parameters'"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", STEP_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_papermill(notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_SANDBOX_DIR", str(tmp_path / "sandbox"))
    out_dir = tmp_path / "out"
    executed = tmp_path / notebook.name
    pm.execute_notebook(str(notebook), str(executed), parameters={"output_dir": str(out_dir)}, cwd=str(notebook.parent),
                        kernel_name="python3", progress_bar=False)
    nb = nbformat.read(executed, as_version=4)
    assert not nb.metadata["papermill"].get("exception")  # papermill also raises on a failed cell
    assert not [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert all(cell.get("execution_count") for cell in nb.cells if cell.cell_type == "code")
    assert_no_secret_in(executed, tmp_path / "sandbox")
    if notebook.stem == "01_mapping_check":
        assert_planted_mismatches(out_dir / "mapping_mismatches.csv")


def assert_no_secret_in(executed: Path, sandbox_dir: Path) -> None:
    """No demo credential the kernel's sandbox made may appear in the executed notebook."""
    import json

    text = executed.read_text("utf-8")
    secrets = [v for v in json.loads((sandbox_dir / "credentials.json").read_text("utf-8")).values() if v]
    assert not [s for s in secrets if s in text]
    assert "client_secret" not in text and "nexudus_password" not in text


def assert_planted_mismatches(csv: Path) -> None:
    assert csv.exists(), "notebook 01 must write mapping_mismatches.csv into output_dir"
    mismatches = pd.read_csv(csv, dtype=str, keep_default_na=False)
    planted = generate().planted
    found = set(zip(mismatches["kind"], mismatches["problem"], strict=True))
    expected = {("account", Problem.ACCOUNT_MISSING.value), ("account", Problem.ACCOUNT_ARCHIVED.value),
                ("account", Problem.ACCOUNT_NAME_DIFFERS.value), ("account", Problem.NO_ACCOUNT.value),
                ("tax rate", Problem.TAX_AMBIGUOUS.value), ("tax rate", Problem.TAX_MISSING.value),
                ("tax rate", Problem.TAX_ARCHIVED.value), ("tax rate", Problem.TAX_PERCENTAGE_DIFFERS.value)}
    assert expected <= found
    keys = dict(zip(mismatches["key"], mismatches["problem"], strict=True))
    assert any(k.startswith(planted["missing_account"] + " ") and p == Problem.ACCOUNT_MISSING.value for k, p in keys.items())
    assert any(k.startswith(planted["ambiguous_tax"] + " (") and p == Problem.TAX_AMBIGUOUS.value for k, p in keys.items())
