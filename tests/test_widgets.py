"""The tax map editor, driven through its methods (no browser) on a real mapping check of the
sandbox."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import openpyxl
import pandas as pd
import pytest
from support import sheet_records

import recon.widgets.status as status_widgets
from recon.errors import ParamsError, StepError
from recon.ledger import Ledger
from recon.mapping import MappingResult, check_location, load_tax_map, save_tax_map
from recon.outcomes import PaymentOutcome, counts_text
from recon.report import open_report
from recon.sandbox import Sandbox
from recon.session import Connection, connect
from recon.status import apply_paid as real_apply_paid
from recon.status import sync_status
from recon.transfer import plan_transfer, push
from recon.widgets import StatusPanel, TaxMapEditor

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo_conn(sandbox: Sandbox, tmp_path: Path) -> Iterator[Connection]:
    """params/demo.yaml aimed at the session sandbox's state."""
    with connect(
        ROOT / "params" / "demo.yaml",
        sandbox_dir=str(sandbox.state_dir),
        output_dir=str(tmp_path / "out"),
    ) as conn:
        yield conn


@pytest.fixture
def tax_map_file(tmp_path: Path) -> Path:
    """A copy of the committed tax map (comment header and all): tests never touch params/."""
    path = tmp_path / "tax_map.yaml"
    shutil.copy(ROOT / "params" / "tax_map.yaml", path)
    return path


@pytest.fixture
def result(demo_conn: Connection, tax_map_file: Path) -> MappingResult:
    return check_location(demo_conn, tax_map_file)


@pytest.fixture
def xero_tax_rates(demo_conn: Connection) -> pd.DataFrame:
    return demo_conn.xero.fetch_tax_rates()


# Rates on lines that are no TaxRate record (the location default, a personal rate:
# nexudus.md §7.2). The editor offers them like any other (see the last test); the other
# tests are about the classic planted problems, so they see a result without these two.
NON_RECORD_RATES = ("Default tax rate", "Personal rate - charity")


def _editor(result: MappingResult, xero: pd.DataFrame, path: Path) -> TaxMapEditor:
    rates = result.tax_rates
    narrowed = dataclasses.replace(
        result, tax_rates=rates[~rates["tax_rate_name"].isin(NON_RECORD_RATES)]
    )
    return TaxMapEditor(narrowed, xero, path)


def with_new_xero_rate(
    xero_tax_rates: pd.DataFrame, tax_type: str, name: str, rate: str
) -> pd.DataFrame:
    """Xero's tax rates after the accountant created one more active sales rate."""
    row = {c: None for c in xero_tax_rates.columns} | {
        "TaxType": tax_type,
        "Name": name,
        "Status": "ACTIVE",
        "EffectiveRate": Decimal(rate),
        "DisplayTaxRate": Decimal(rate),
        "ReportTaxType": "OUTPUT",
        "CanApplyToRevenue": True,
        "CanApplyToExpenses": False,
        "CanApplyToLiabilities": True,
        "CanApplyToAssets": True,
        "CanApplyToEquity": True,
    }
    return pd.concat([xero_tax_rates, pd.DataFrame([row])], ignore_index=True)


def test_each_tax_rate_a_map_can_fix_gets_a_dropdown(
    result: MappingResult, xero_tax_rates: pd.DataFrame, tax_map_file: Path, sandbox: Sandbox
) -> None:
    editor = _editor(result, xero_tax_rates, tax_map_file)
    planted = sandbox.planted
    assert set(editor.names) == {
        planted["missing_tax"],
        planted["ambiguous_tax"],
        planted["archived_tax"],
        planted["percentage_differs_tax"],
    }
    # Rates that match, or that a map cannot fix (not allowed on the account), get none.
    assert (
        "No VAT" not in editor.names and planted["tax_not_allowed_on_account"] not in editor.names
    )
    assert isinstance(editor.panel, widgets.VBox)
    assert set(editor._dropdowns) == set(editor.names)


def test_the_choices_are_the_active_xero_rates_that_can_apply_to_revenue(
    result: MappingResult, xero_tax_rates: pd.DataFrame, tax_map_file: Path
) -> None:
    editor = _editor(result, xero_tax_rates, tax_map_file)
    options = dict(editor._dropdowns["Zero rate"].options)
    assert options["ZERORATEDOUTPUT — Zero Rated Income (0%)"] == "ZERORATEDOUTPUT"
    assert options["OUTPUT2 — 20% (VAT on Income) (20%)"] == "OUTPUT2"
    values = set(options.values())
    assert "INPUT2" not in values  # expenses only
    assert "TAX002" not in values  # deleted in Xero


def test_the_editor_preselects_the_single_candidate(
    result: MappingResult, xero_tax_rates: pd.DataFrame, tax_map_file: Path
) -> None:
    xero = with_new_xero_rate(xero_tax_rates, "TAX003", "Tourist Tax 3%", "3.0000")
    editor = _editor(result, xero, tax_map_file)
    assert editor.candidates("Tourist Tax") == ["TAX003"]
    assert editor.selection["Tourist Tax"] == "TAX003"
    assert editor._dropdowns["Tourist Tax"].value == "TAX003"
    # Three Xero rates are 0%: recon will not guess.
    assert len(editor.candidates("Zero rate")) == 3
    assert editor.selection["Zero rate"] is None
    assert editor.proposed_map() == {"Tourist Tax": "TAX003"}


def test_the_editor_starts_from_the_saved_map_entry(
    demo_conn: Connection, xero_tax_rates: pd.DataFrame, tax_map_file: Path
) -> None:
    save_tax_map(tax_map_file, {"Zero rate": "EXEMPTOUTPUT"})
    editor = _editor(check_location(demo_conn, tax_map_file), xero_tax_rates, tax_map_file)
    assert editor.selection["Zero rate"] == "EXEMPTOUTPUT"
    assert editor.changes().empty


def test_selecting_a_tax_type_changes_the_proposed_map(
    result: MappingResult, xero_tax_rates: pd.DataFrame, tax_map_file: Path
) -> None:
    editor = _editor(result, xero_tax_rates, tax_map_file)
    assert editor.proposed_map() == {}
    editor.select("Zero rate", "ZERORATEDOUTPUT")
    assert editor.proposed_map() == {"Zero rate": "ZERORATEDOUTPUT"}
    assert editor._dropdowns["Zero rate"].value == "ZERORATEDOUTPUT"
    editor._dropdowns["Zero rate"].value = "EXEMPTOUTPUT"  # what a click in the browser does
    assert editor.proposed_map() == {"Zero rate": "EXEMPTOUTPUT"}
    editor.select("Zero rate", None)
    assert editor.proposed_map() == {}


def test_a_rate_xero_would_refuse_on_sales_cannot_be_chosen(
    result: MappingResult, xero_tax_rates: pd.DataFrame, tax_map_file: Path
) -> None:
    editor = _editor(result, xero_tax_rates, tax_map_file)
    with pytest.raises(ParamsError, match="INPUT2"):
        editor.select("Zero rate", "INPUT2")
    with pytest.raises(ParamsError, match="not a tax rate this editor can map"):
        editor.select("No VAT", "NONE")


def test_saving_before_the_changes_were_shown_is_refused(
    result: MappingResult, xero_tax_rates: pd.DataFrame, tax_map_file: Path
) -> None:
    before = tax_map_file.read_text("utf-8")
    editor = _editor(result, xero_tax_rates, tax_map_file)
    editor.select("Zero rate", "ZERORATEDOUTPUT")
    assert editor.save_button.disabled
    with pytest.raises(StepError, match="show the changes"):
        editor.save()
    editor.show_changes()
    assert not editor.save_button.disabled
    editor.select(
        "Zero rate", "EXEMPTOUTPUT"
    )  # a new choice after the diff: the diff shown is stale
    assert editor.save_button.disabled
    with pytest.raises(StepError, match="show the changes"):
        editor.save()
    assert tax_map_file.read_text("utf-8") == before


def test_show_changes_then_save_writes_the_map_and_keeps_the_comment_header(
    result: MappingResult, xero_tax_rates: pd.DataFrame, tax_map_file: Path
) -> None:
    header = [line for line in tax_map_file.read_text("utf-8").splitlines() if line.startswith("#")]
    assert header, "the committed tax map has a comment header"
    editor = _editor(result, xero_tax_rates, tax_map_file)
    editor.select("Zero rate", "ZERORATEDOUTPUT")
    diff = editor.show_changes()
    assert diff.to_dict("records") == [
        {
            "tax_rate_name": "Zero rate",
            "change": "added",
            "before": None,
            "after": "ZERORATEDOUTPUT",
        }
    ]
    shown = editor.output.outputs[0]["data"]
    assert "ZERORATEDOUTPUT" in shown["text/html"] and "not saved yet" in shown["text/html"]

    saved = editor.save()
    assert saved.equals(diff)
    assert load_tax_map(tax_map_file) == {"Zero rate": "ZERORATEDOUTPUT"}
    assert tax_map_file.read_text("utf-8").splitlines()[: len(header)] == header
    assert "Saved 1 change(s)" in editor.output.outputs[0]["data"]["text/plain"]
    # Saved: nothing left to show or save until the next choice.
    assert editor.changes().empty and editor.save_button.disabled


def test_choosing_no_mapping_removes_the_entry(
    demo_conn: Connection, xero_tax_rates: pd.DataFrame, tax_map_file: Path
) -> None:
    save_tax_map(tax_map_file, {"Zero rate": "EXEMPTOUTPUT"})
    editor = _editor(check_location(demo_conn, tax_map_file), xero_tax_rates, tax_map_file)
    editor.select("Zero rate", None)
    assert editor.show_changes().to_dict("records") == [
        {"tax_rate_name": "Zero rate", "change": "removed", "before": "EXEMPTOUTPUT", "after": None}
    ]
    editor.save()
    assert load_tax_map(tax_map_file) == {}


def test_a_map_edited_elsewhere_after_the_diff_is_not_overwritten(
    result: MappingResult, xero_tax_rates: pd.DataFrame, tax_map_file: Path
) -> None:
    editor = _editor(result, xero_tax_rates, tax_map_file)
    editor.select("Zero rate", "ZERORATEDOUTPUT")
    editor.show_changes()
    save_tax_map(tax_map_file, {"Tourist Tax": "NONE"})  # someone else saved meanwhile
    with pytest.raises(StepError, match="changed since it was read"):
        editor.save()
    assert load_tax_map(tax_map_file) == {"Tourist Tax": "NONE"}
    editor.show_changes()
    editor.save()
    assert load_tax_map(tax_map_file) == {"Tourist Tax": "NONE", "Zero rate": "ZERORATEDOUTPUT"}


def test_rates_that_are_no_tax_rate_record_are_offered_and_a_single_candidate_preselected(
    result: MappingResult, xero_tax_rates: pd.DataFrame, tax_map_file: Path, sandbox: Sandbox
) -> None:
    """nexudus.md §7.2: the default rate (20 %) has one Xero sales rate at 20 %; the
    personal 0 % rate has three, so recon will not guess."""
    editor = TaxMapEditor(result, xero_tax_rates, tax_map_file)
    default, personal = (
        sandbox.planted["default_tax_rate_name"],
        sandbox.planted["personal_tax_rate_name"],
    )
    assert {default, personal} <= set(editor.names)
    assert editor.selection[default] == "OUTPUT2"
    assert editor.selection[personal] is None and len(editor.candidates(personal)) == 3


# ---- the status panel: Confirm cannot double-send ---------------------------------------------
@pytest.fixture
def status_panel(fresh_conn: Connection) -> Iterator[StatusPanel]:
    """Three transferred invoices paid in full in Xero (xero-api.md §9 payments), and the panel
    offering to mark them paid in Nexudus."""
    conn = fresh_conn
    with Ledger(conn.ledger_path) as ledger:
        planted = conn.sandbox.planted
        unpaid = set(planted["clean_invoices"]) - set(planted["paid_in_nexudus_invoices"])
        plan = plan_transfer(conn, ledger=ledger)
        invoices = plan.eligible[plan.eligible["kind"] == "invoice"]
        chosen = [n for n in invoices["invoice_number"] if n in unpaid][:3]
        push(conn, plan.only(chosen), ledger)
        sync_status(conn, ledger)
        xero_ids = ledger.transfers(conn.xero.tenant_id).set_index("invoice_number")["xero_id"]
        bank = conn.xero.fetch_accounts().query("Type == 'BANK'").iloc[0]["Code"]
        conn.xero.create_payments(
            [
                {
                    "Invoice": {"InvoiceID": xero_ids[n]},
                    "Account": {"Code": bank},
                    "Amount": conn.xero.get_invoice(xero_ids[n])["AmountDue"],
                    "Date": "2026-11-20",
                }
                for n in chosen
            ]
        )
        yield StatusPanel(conn, ledger, sync_status(conn, ledger))


def _entries(conn: Connection, invoice_id: int) -> int:
    return len(
        list(
            conn.nexudus.iter_records(
                "billing/coworkerledgerentries", {"CoworkerLedgerEntry_CoworkerInvoice": invoice_id}
            )
        )
    )


def test_a_click_on_mark_paid_confirm_while_it_runs_is_refused_and_each_invoice_is_paid_once(
    status_panel: StatusPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first click's apply is held inside the real apply until the second click, from another
    thread, has been handled: the second must find the lock taken (nexudus.md §8: a second POST
    is a second payment)."""
    panel = status_panel
    panel.request()
    inside, second_handled = threading.Event(), threading.Event()
    calls: list[int] = []

    def held_apply(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        inside.set()
        assert second_handled.wait(60)
        return real_apply_paid(*args, **kwargs)

    monkeypatch.setattr(status_widgets, "apply_paid", held_apply)
    first = threading.Thread(target=panel.confirm_button.click)
    first.start()
    assert inside.wait(60)
    second = threading.Thread(target=panel.confirm_button.click)
    second.start()
    second.join(60)
    refused = panel.notice.value
    second_handled.set()
    first.join(120)
    assert not first.is_alive() and not second.is_alive()
    assert calls == [1], "one apply, not two"
    assert "already running" in refused and "refused" in refused
    assert panel.result is not None and set(panel.result["outcome"]) == {"applied"}
    # the headline agrees with the table
    headline = panel.output.outputs[0]["data"]["text/plain"]
    assert headline == counts_text(PaymentOutcome, panel.result["outcome"])
    assert str(len(panel.todo)) in headline
    for invoice_id in panel.todo["nexudus_invoice_id"]:
        assert _entries(panel.conn, int(invoice_id)) == 1


def test_two_threads_clicking_mark_paid_confirm_at_once_apply_once_and_the_headline_agrees(
    status_panel: StatusPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel = status_panel
    panel.request()
    calls: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real_apply_paid(*args, **kwargs)

    monkeypatch.setattr(status_widgets, "apply_paid", counting)
    start = threading.Barrier(2)

    def click() -> None:
        start.wait(30)
        panel.confirm_button.click()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert calls == [1]
    assert panel.result is not None
    states = panel.ledger.payments(panel.conn.xero.tenant_id)
    assert set(states["state"]) == {"applied"} and len(states) == len(panel.todo)
    assert set(panel.result["outcome"]) == {"applied"}
    headline = panel.output.outputs[0]["data"]["text/plain"]
    assert headline == counts_text(PaymentOutcome, panel.result["outcome"])
    assert str(len(panel.todo)) in headline and "failed" not in headline
    for invoice_id in panel.todo["nexudus_invoice_id"]:
        assert _entries(panel.conn, int(invoice_id)) == 1


def test_the_status_panel_writes_the_step_files_a_notebook_session_report_shows(
    status_panel: StatusPanel,
) -> None:
    panel = status_panel
    panel.request()
    panel.confirm()
    out = Path(panel.conn.params.output_dir)
    applied = pd.read_csv(out / "status_applied.csv", dtype=str)
    assert sorted(applied["invoice_number"]) == sorted(panel.todo["invoice_number"])
    report = open_report(out, panel.conn.params)
    run = sheet_records(openpyxl.load_workbook(report.workbook)["Run"])
    summary = {(r["section"], r["item"]): r["value"] for r in run}
    assert summary[("step", "03_status_sync")] == "ok"
    assert summary[("run", "result")] == "1 of 1 steps ran"
