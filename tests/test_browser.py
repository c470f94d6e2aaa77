"""Notebook 02 in a real JupyterLab, driven from headless Chromium as a bookkeeper drives it.

JupyterLab serves a copy of notebooks/02_transfer.ipynb whose parameters name a
params file of this test: the demo params with a fresh sandbox folder, a ledger
file and an output folder of its own. The kernel (a process of JupyterLab's)
starts the embedded sandbox there itself, as in tests/test_notebooks.py. The
browser runs every cell from the Run menu, presses the panel's *Transfer N
invoices* button (which only previews, asking for confirmation) and then
*Confirm*, and waits for the panel to say what it did; the ledger the params
name must then hold exactly what the panel reported.

Skips when there is no browser to drive (no Chromium or no playwright), saying
which, unless RECON_REQUIRE_BROWSER=1 (CI, which installs both) makes that a
failure. A failure leaves a screenshot and JupyterLab's log in the test's folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from browser_support import chromium_page, jupyter_lab, missing_browser, screenshot_on_failure

from recon.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "02_transfer.ipynb"
# Generous: a kernel start, the sandbox's seeding and a whole notebook on a busy CI core.
RUN_ALL_MS = 150_000
PUSH_MS = 90_000
ACTION_MS = 30_000

MISSING = missing_browser()
# Set by CI, which installs the browser: a missing one then fails instead of skipping quietly.
REQUIRED = os.environ.get("RECON_REQUIRE_BROWSER") == "1"
pytestmark = pytest.mark.skipif(
    MISSING is not None and not REQUIRED, reason=f"browser test skipped: {MISSING}"
)


def write_params(folder: Path) -> tuple[Path, dict[str, Any]]:
    """params/demo.yaml aimed at a fresh sandbox, ledger and output folder in ``folder``."""
    params = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text("utf-8"))
    params.update(
        sandbox_dir=str(folder / "sandbox"),
        ledger_file=str(folder / "ledger.sqlite"),
        output_dir=str(folder / "out"),
        tax_map_file=str(ROOT / "params" / "tax_map.yaml"),
    )
    path = folder / "browser.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), "utf-8")
    return path, params


def copy_notebook(target: Path, params_file: Path, output_dir: Path) -> None:
    """Notebook 02 with its ``params_file`` and ``output_dir`` parameters set, as a user edits
    them."""
    nb = json.loads(NOTEBOOK.read_text("utf-8"))
    (cell,) = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    values = {"params_file": str(params_file), "output_dir": str(output_dir)}
    lines = "".join(cell["source"]).splitlines(keepends=True)
    replaced = [
        next(
            (
                f"{name} = {json.dumps(value)}\n"
                for name, value in values.items()
                if line.startswith(f"{name} =")
            ),
            line,
        )
        for line in lines
    ]
    assert sum(a != b for a, b in zip(lines, replaced, strict=True)) == len(values), lines
    cell["source"] = replaced
    target.write_text(json.dumps(nb, indent=1), "utf-8")


@pytest.fixture
def lab_page(tmp_path: Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A browser page on notebook 02 in JupyterLab, and the params the notebook uses."""
    if MISSING is not None:
        pytest.fail(f"RECON_REQUIRE_BROWSER=1, but {MISSING}")
    root = tmp_path / "lab"
    root.mkdir()
    params_file, params = write_params(tmp_path)
    copy_notebook(root / NOTEBOOK.name, params_file, Path(params["output_dir"]))
    # The params name the sandbox folder; the variable keeps anything else off the user's one.
    kernel_env = {"RECON_SANDBOX_DIR": str(tmp_path / "sandbox"), "RECON_PROGRESS": "0"}
    with (
        jupyter_lab(root, tmp_path / "jupyter", env=kernel_env) as lab,
        chromium_page(tmp_path / "chromium-profile") as page,
    ):
        page.set_default_timeout(ACTION_MS)
        page.goto(lab.lab_url(NOTEBOOK.name))
        yield page, params


def run_all_cells(page: Any) -> None:
    """Wait for the notebook's kernel to be started and idle, then Run > Run All Cells."""
    wait_for_idle_kernel(page)
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


def wait_for_every_cell(page: Any) -> None:
    """Wait until every code cell shows an execution count and the kernel is idle again."""
    page.wait_for_function(
        """() => {
            const prompts = [
                ...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')
            ];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=RUN_ALL_MS,
    )
    wait_for_idle_kernel(page)


def wait_for_idle_kernel(page: Any) -> None:
    """Wait until the status bar shows the notebook's kernel started and idle."""
    # The toolbar's execution indicator says "idle" before any kernel exists: it cannot tell a
    # started kernel from none.
    kernel = page.get_by_role("button", name=re.compile(r"^(?!No Kernel).+ \| Idle$"))
    kernel.wait_for(timeout=RUN_ALL_MS)


def test_a_transfer_confirmed_in_jupyterlab_is_in_the_ledger_as_the_panel_says(
    lab_page: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page, params = lab_page
    with screenshot_on_failure(page, tmp_path / "failure.png"):
        run_all_cells(page)
        preview = page.get_by_role("button", name=re.compile(r"^\W*Transfer \d+ invoices \("))
        expect(preview).to_be_enabled(timeout=RUN_ALL_MS)
        wait_for_every_cell(page)
        failed = page.locator(".jp-OutputArea-output", has_text="Traceback (most recent call last)")
        assert failed.count() == 0, failed.first.inner_text()
        planned = int(re.findall(r"^\W*Transfer (\d+) invoices", preview.inner_text())[0])
        assert planned > 0

        preview.click()  # shows what would be written, and where; writes nothing
        question = page.get_by_text(re.compile(rf"^This writes {planned} invoices \("))
        expect(question).to_be_visible()
        organisation = params["bindings"][params["location"]]["organisation"]
        assert f"{organisation} (sandbox)" in question.inner_text()
        page.get_by_role("button", name=re.compile(r"^\W*Confirm$")).click()

        done = page.get_by_role("button", name=re.compile(r"^\W*Transferred \("))
        expect(done).to_be_visible(timeout=PUSH_MS)
        panel = page.locator(".jp-Cell", has=done)
        said = re.findall(
            rf"Transfer to {re.escape(organisation)}: (\d+) created in Xero in ", panel.inner_text()
        )
        assert re.fullmatch(rf"\W*Transferred \({planned} created\)", done.inner_text())
        assert said == [str(planned)], panel.inner_text()

        tenant = params["bindings"][params["location"]]["organisation_id"]
        with Ledger(params["ledger_file"]) as ledger:
            transfers = ledger.transfers(tenant)
        assert len(transfers) == planned and set(transfers["state"]) == {"created"}
        assert transfers["xero_id"].notna().all()
        eligible = pd.read_csv(Path(params["output_dir"]) / "transfer_plan_eligible.csv", dtype=str)
        assert set(transfers["invoice_number"]) == set(eligible["invoice_number"])
