"""Every step notebook runs end to end under papermill, from any working folder, and is committed
clean (no outputs).

The notebooks' defaults (``params_file = ""``: the demo params; ``output_dir = ""``)
are found from recon's and the params file's own folders (``recon.resources``), so
the runs here start from an unrelated temporary folder, and one from the
repository root.

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

import ast
from dataclasses import fields
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import papermill as pm
import pytest

from recon import resources
from recon.errors import ParamsError
from recon.ledger import Ledger
from recon.mapping_problems import Problem
from recon.params import RunParams
from recon.sandbox import start
from recon.sandbox.seed import generate
from recon.session import connect, register_sandbox

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
STEP_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
ALL_NOTEBOOKS = sorted(NOTEBOOKS.glob("*.ipynb"))
# The parameters every notebook's parameters cell declares: the params file, the output folder,
# and the params keys a run may override (each passed to RunParams.with_overrides unchanged).
RUN_PARAMETERS = {
    "params_file",
    "output_dir",
    "period",
    "period_start",
    "period_end",
    "location",
    "organisation",
    "tax_map_file",
    "xero_status",
    "invoice_date",
    "dry_run",
}
# What nbstripout removes beside outputs and execution counts: run timings and saved widget state.
RUN_CELL_METADATA = ("execution", "ExecuteTime", "papermill", "collapsed", "scrolled")
RUN_NOTEBOOK_METADATA = ("widgets", "papermill")


def test_there_are_step_notebooks() -> None:
    assert STEP_NOTEBOOKS, f"no NN_name.ipynb in {NOTEBOOKS}"


def unstripped(nb: Any) -> list[str]:
    """What nbstripout would remove from a notebook, one line per cell or key (empty: clean)."""
    found = [f"notebook metadata {key!r}" for key in RUN_NOTEBOOK_METADATA if key in nb.metadata]
    for i, cell in enumerate(nb.cells):
        where = f"cell {i} (id {cell.get('id', '?')!r})"
        if cell.get("outputs"):
            found.append(f"{where} has outputs")
        if cell.get("execution_count") is not None:
            found.append(f"{where} has execution_count {cell.get('execution_count')}")
        found += [
            f"{where} has run metadata {key!r}"
            for key in RUN_CELL_METADATA
            if key in cell.get("metadata", {})
        ]
    return found


@pytest.mark.parametrize("notebook", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs_or_execution_counts(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    found = unstripped(nb)
    assert not found, (
        f"{notebook.name}: " + "; ".join(found) + ". Clear all outputs (Jupyter: Edit > Clear "
        "Outputs of All Cells) before committing"
    )
    assert nb.metadata["kernelspec"]["name"] == "python3"
    if notebook in STEP_NOTEBOOKS:
        tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{notebook.name}: exactly one cell must be tagged 'parameters'"


def test_the_clean_check_names_the_cell_of_an_executed_notebook() -> None:
    nb = nbformat.read(STEP_NOTEBOOKS[0], as_version=4)
    cell = nb.cells[2]
    cell.outputs = [nbformat.v4.new_output("stream", text="hello")]
    cell.execution_count = 7
    cell.metadata["execution"] = {"iopub.status.busy": "2026-12-01T00:00:00Z"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    where = f"cell 2 (id {cell.get('id', '?')!r})"
    assert unstripped(nb) == [
        "notebook metadata 'widgets'",
        f"{where} has outputs",
        f"{where} has execution_count 7",
        f"{where} has run metadata 'execution'",
    ]


def parameters_cell(nb: Any) -> str:
    [cell] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return str(cell.source)


def notebook_params_call(nb: Any) -> ast.Call:
    """The notebook's ``notebook_params(...)`` call: where its parameters become the run's
    params."""
    calls = [
        node
        for cell in nb.cells
        if cell.cell_type == "code" and "notebook_params(" in cell.source
        for node in ast.walk(ast.parse(cell.source))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "notebook_params"
    ]
    assert len(calls) == 1, "a step notebook reads its params with one notebook_params(...) call"
    return calls[0]


@pytest.mark.parametrize("notebook", STEP_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_parameter_is_a_params_key_passed_through_unchanged(notebook: Path) -> None:
    """One schema: each parameter (but params_file and output_dir) is a RunParams field, and the
    notebook hands each to RunParams.with_overrides under its own name."""
    nb = nbformat.read(notebook, as_version=4)
    declared = set(pm.inspect_notebook(str(notebook)))
    assert declared >= RUN_PARAMETERS, f"{notebook.name} lacks {RUN_PARAMETERS - declared}"
    keys = {f.name for f in fields(RunParams)}
    assert declared - {"params_file", "output_dir"} <= keys
    call = notebook_params_call(nb)
    assert [ast.unparse(a) for a in call.args] == ["params_file"]
    passed = {k.arg: ast.unparse(k.value) for k in call.keywords}
    assert passed == {name: name for name in declared - {"params_file", "output_dir"}}


@pytest.mark.parametrize("notebook", STEP_NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebooks_parameters_are_validated_as_recon_run_validates_them(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    call = ast.unparse(notebook_params_call(nb))
    cell: dict[str, Any] = {}
    exec(parameters_cell(nb), cell)  # the cell as committed: its defaults
    cell |= {"dry_run": True, "xero_status": "draft", "invoice_date": "PERIOD"}
    cell |= {"period": "last-month", "push": True, "apply": True, "apply_xero": True}
    params = eval(call, {"notebook_params": resources.notebook_params, **cell})
    assert params.source == str(resources.demo_params_file())  # params_file "": the demo's
    assert (params.dry_run, params.xero_status, params.invoice_date) == (True, "DRAFT", "period")
    assert params.period == "last-month" and params.period_start.day == 1
    assert not (params.push or params.apply or params.apply_xero)  # a dry run writes nothing
    with pytest.raises(ParamsError) as caught:
        eval(call, {"notebook_params": resources.notebook_params, **cell, "xero_status": "PAID"})
    assert caught.value.key == "xero_status"


def test_the_default_params_and_output_folder_do_not_depend_on_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    for cwd in (ROOT, NOTEBOOKS, tmp_path):
        monkeypatch.chdir(cwd)
        params = resources.notebook_params("")
        seen.append(
            (
                params.source,
                resources.output_folder(params, ""),
                params.resolve(params.tax_map_file),
            )
        )
    assert seen[0] == seen[1] == seen[2]
    source, out, tax_map = seen[0]
    assert Path(source) == ROOT / "params" / "demo.yaml"
    assert tax_map == ROOT / "params" / "tax_map.yaml"
    assert out.is_absolute() and out.name == "notebook" and ROOT in out.parents
    assert resources.output_folder(params, tmp_path / "mine") == tmp_path / "mine"


@pytest.mark.slow
@pytest.mark.parametrize("notebook", STEP_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_papermill_with_its_defaults_from_an_unrelated_folder(
    notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, _ = xero_documents_and_ledger(tmp_path / "sandbox", tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the kernel starts here too (papermill's cwd=None)
    out_dir = run_notebook(notebook, tmp_path, monkeypatch, cwd=None)
    assert not any(elsewhere.iterdir()), "a notebook wrote into the working folder"
    if notebook.stem == "03_status_sync":
        # Not a dry run: the demo's accountant and billing staff act (and show what they did).
        assert outputs_of(tmp_path / notebook.name, "status-05")
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


@pytest.mark.slow
@pytest.mark.parametrize("notebook", STEP_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_papermill_with_its_defaults_from_the_repository_root(
    notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xero_documents_and_ledger(tmp_path / "sandbox", tmp_path)  # the sandbox, as the others find it
    monkeypatch.chdir(ROOT)
    out_dir = run_notebook(notebook, tmp_path, monkeypatch, cwd=ROOT)
    if notebook.stem == "01_mapping_check":
        assert_planted_mismatches(out_dir / "mapping_mismatches.csv")
    if notebook.stem == "02_transfer":
        assert (out_dir / "transfer_plan_eligible.csv").exists()
    if notebook.stem == "03_status_sync":
        assert (out_dir / "status_differences.csv").exists()
    assert (tmp_path / notebook.name).exists(), "papermill wrote the executed notebook"


@pytest.mark.slow
def test_the_status_notebook_in_a_dry_run_writes_nothing_and_skips_the_demo_actors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, _ = xero_documents_and_ledger(tmp_path / "sandbox", tmp_path)
    notebook = NOTEBOOKS / "03_status_sync.ipynb"
    monkeypatch.chdir(tmp_path)
    out_dir = run_notebook(
        notebook, tmp_path, monkeypatch, cwd=None, dry_run=True, apply=True, apply_xero=True
    )
    executed = tmp_path / notebook.name
    assert not outputs_of(executed, "status-05"), "the demo actors ran in a dry run"
    assert "Dry run" in str(outputs_of(executed, "status-13"))
    assert not (out_dir / "status_applied.csv").exists()
    assert not (out_dir / "status_xero_changes.csv").exists()
    after, transfers = xero_documents_and_ledger(tmp_path / "sandbox", tmp_path)
    assert after == before and transfers.empty


def outputs_of(executed: Path, cell_id: str) -> list[Any]:
    nb = nbformat.read(executed, as_version=4)
    [cell] = [c for c in nb.cells if c.get("id") == cell_id]
    return list(cell.outputs)


def run_notebook(
    notebook: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cwd: Path | None = NOTEBOOKS,
    **parameters: object,
) -> Path:
    """Run a notebook under papermill in its own sandbox, its kernel started in ``cwd`` (None: this
    process's working folder); check it ran clean; return its output_dir.

    ``params_file`` is left to the notebook's default (the demo params); the output goes to
    ``tmp_path/out`` so that no run writes into the repository.
    """
    monkeypatch.setenv("RECON_SANDBOX_DIR", str(tmp_path / "sandbox"))
    out_dir = tmp_path / "out"
    executed = tmp_path / notebook.name
    pm.execute_notebook(
        str(notebook),
        str(executed),
        parameters={"output_dir": str(out_dir), **parameters},
        cwd=None if cwd is None else str(cwd),
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
