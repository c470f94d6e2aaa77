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

What a notebook wrote to Xero is read back after its kernel has exited, by
starting the sandbox again on the same state folder (one process at a time).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import papermill as pm
import pytest

from recon.ledger import Ledger
from recon.mapping_problems import Problem
from recon.sandbox import start
from recon.sandbox.seed import generate
from recon.session import connect, register_sandbox

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
STEP_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_there_are_step_notebooks() -> None:
    assert STEP_NOTEBOOKS, f"no NN_name.ipynb in {NOTEBOOKS}"


@pytest.mark.parametrize("notebook", STEP_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs_or_execution_counts(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{notebook.name}: cells {dirty} have outputs or execution counts; clear them before "
        "committing"
    )
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: exactly one cell must be tagged 'parameters'"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", STEP_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_papermill(
    notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, _ = xero_documents_and_ledger(tmp_path / "sandbox", tmp_path)
    out_dir = run_notebook(notebook, tmp_path, monkeypatch)
    if notebook.stem == "01_mapping_check":
        assert_planted_mismatches(out_dir / "mapping_mismatches.csv")
    if notebook.stem == "02_transfer":
        # push is False unless the run says so: the plan is saved, nothing reaches Xero.
        eligible = pd.read_csv(out_dir / "transfer_plan_eligible.csv", dtype=str)
        assert len(eligible) and (out_dir / "transfer_plan_excluded.csv").exists()
        assert not (out_dir / "transfer_outcomes.csv").exists()
    after, transfers = xero_documents_and_ledger(tmp_path / "sandbox", tmp_path)
    assert after == before, "a notebook run without push=True must write nothing to Xero"
    assert transfers.empty


@pytest.mark.slow
def test_the_transfer_notebook_writes_the_plan_to_xero_when_run_with_push_true(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, _ = xero_documents_and_ledger(tmp_path / "sandbox", tmp_path)
    out_dir = run_notebook(NOTEBOOKS / "02_transfer.ipynb", tmp_path, monkeypatch, push=True)
    eligible = pd.read_csv(out_dir / "transfer_plan_eligible.csv", dtype=str)
    outcomes = pd.read_csv(out_dir / "transfer_outcomes.csv", dtype=str)
    assert set(outcomes["outcome"]) == {"created"}
    assert set(outcomes["invoice_number"]) == set(eligible["invoice_number"])
    after, transfers = xero_documents_and_ledger(tmp_path / "sandbox", tmp_path)
    assert after - before == set(eligible["invoice_number"]) and before <= after
    assert set(transfers["state"]) == {"created"} and len(transfers) == len(eligible)


def run_notebook(
    notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **parameters: object
) -> Path:
    """Run a notebook under papermill in its own sandbox; check it ran clean; return its
    output_dir."""
    monkeypatch.setenv("RECON_SANDBOX_DIR", str(tmp_path / "sandbox"))
    out_dir = tmp_path / "out"
    executed = tmp_path / notebook.name
    pm.execute_notebook(
        str(notebook),
        str(executed),
        parameters={"output_dir": str(out_dir), **parameters},
        cwd=str(notebook.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    nb = nbformat.read(executed, as_version=4)
    assert not nb.metadata["papermill"].get("exception")  # papermill also raises on a failed cell
    assert not [
        o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert all(cell.get("execution_count") for cell in nb.cells if cell.cell_type == "code")
    assert_no_secret_in(executed, tmp_path / "sandbox")
    return out_dir


def xero_documents_and_ledger(state_dir: Path, tmp_path: Path) -> tuple[set[str], pd.DataFrame]:
    """The invoice and credit-note numbers in the sandbox's Xero organisation, and the ledger's
    transfers.

    Called before a notebook runs (it makes and seeds the state folder the kernel
    then opens) and after its kernel has exited: the sandbox is started on the
    same folder each time, never by two processes at once. The demo params put
    the ledger in that folder too.
    """
    box = start(state_dir)
    register_sandbox(box)
    try:
        with connect(
            ROOT / "params" / "demo.yaml",
            sandbox_dir=str(state_dir),
            output_dir=str(tmp_path / "check"),
        ) as conn:
            numbers = {
                str(i["InvoiceNumber"])
                for i in conn.xero.iter_invoices(summary_only=True)
                if i["Status"] != "DELETED"
            }
            numbers |= {str(n["CreditNoteNumber"]) for n in conn.xero.iter_credit_notes()}
            with Ledger(conn.ledger_path) as ledger:
                transfers = ledger.transfers(str(conn.xero.tenant_id))
    finally:
        box.stop()
    return numbers, transfers


def assert_no_secret_in(executed: Path, sandbox_dir: Path) -> None:
    """No demo credential the kernel's sandbox made may appear in the executed notebook."""
    import json

    text = executed.read_text("utf-8")
    secrets = [
        v for v in json.loads((sandbox_dir / "credentials.json").read_text("utf-8")).values() if v
    ]
    assert not [s for s in secrets if s in text]
    assert "client_secret" not in text and "nexudus_password" not in text


def assert_planted_mismatches(csv: Path) -> None:
    assert csv.exists(), "notebook 01 must write mapping_mismatches.csv into output_dir"
    mismatches = pd.read_csv(csv, dtype=str, keep_default_na=False)
    planted = generate().planted
    found = set(zip(mismatches["kind"], mismatches["problem"], strict=True))
    expected = {
        ("account", Problem.ACCOUNT_MISSING.value),
        ("account", Problem.ACCOUNT_ARCHIVED.value),
        ("account", Problem.ACCOUNT_NAME_DIFFERS.value),
        ("account", Problem.NO_ACCOUNT.value),
        ("tax rate", Problem.TAX_AMBIGUOUS.value),
        ("tax rate", Problem.TAX_MISSING.value),
        ("tax rate", Problem.TAX_ARCHIVED.value),
        ("tax rate", Problem.TAX_PERCENTAGE_DIFFERS.value),
    }
    assert expected <= found
    keys = dict(zip(mismatches["key"], mismatches["problem"], strict=True))
    assert any(
        k.startswith(planted["missing_account"] + " ") and p == Problem.ACCOUNT_MISSING.value
        for k, p in keys.items()
    )
    assert any(
        k.startswith(planted["ambiguous_tax"] + " (") and p == Problem.TAX_AMBIGUOUS.value
        for k, p in keys.items()
    )
