"""The transfer panel, driven through its methods and buttons (no browser) against a sandbox of its
own: what it previews, that it writes only after Transfer then Confirm, that a double click never
pushes twice, and that it leaves the step files a notebook session's report is built from."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from support import sheet_records

import recon.widgets.transfer as transfer_panel
from recon.errors import AuthError, StepError
from recon.ledger import Ledger
from recon.report import open_report
from recon.session import Connection
from recon.transfer import TransferPlan, plan_transfer
from recon.transfer import push as real_push
from recon.widgets import TransferPanel


@pytest.fixture
def ledger(fresh_conn: Connection) -> Iterator[Ledger]:
    with Ledger(fresh_conn.ledger_path) as led:
        yield led


@pytest.fixture
def plan(fresh_conn: Connection, ledger: Ledger) -> TransferPlan:
    return plan_transfer(fresh_conn, ledger=ledger)


@pytest.fixture
def panel(fresh_conn: Connection, plan: TransferPlan, ledger: Ledger) -> TransferPanel:
    return TransferPanel(fresh_conn, plan, ledger)


def xero_numbers(conn: Connection) -> set[str]:
    """Every invoice and credit-note number the organisation has in Xero."""
    numbers = {
        str(i["InvoiceNumber"])
        for i in conn.xero.iter_invoices(summary_only=True)
        if i["Status"] != "DELETED"
    }
    return numbers | {str(n["CreditNoteNumber"]) for n in conn.xero.iter_credit_notes()}


def test_the_button_says_what_the_whole_plan_would_transfer(
    panel: TransferPanel, plan: TransferPlan
) -> None:
    assert panel.transfer_button.description == plan.describe()
    assert panel.transfer_button.description.startswith(f"Transfer {len(plan.eligible)} invoices (")
    assert panel.confirm_row.layout.display == "none"
    assert plan.describe() in panel.preview.outputs[0]["data"]["text/html"]


def test_the_filter_narrows_the_preview_and_the_button_label(
    panel: TransferPanel, plan: TransferPlan
) -> None:
    first = str(plan.eligible["invoice_number"].iloc[0])
    narrowed = panel.set_filter(text=first.lower())
    assert list(narrowed.eligible["invoice_number"]) == [first]
    assert panel.current_plan is narrowed
    assert panel.transfer_button.description == narrowed.describe()
    assert panel.transfer_button.description.startswith("Transfer 1 invoices (")
    assert panel.text_filter.value == first.lower()
    shown = panel.preview.outputs[0]["data"]["text/html"]
    assert narrowed.describe() in shown and plan.describe() not in shown


def test_the_currency_dropdown_narrows_to_one_currency(
    panel: TransferPanel, plan: TransferPlan
) -> None:
    assert panel.currencies == ["EUR", "GBP"]
    panel.currency_filter.value = "EUR"  # what a choice in the browser does
    euros = plan.eligible[plan.eligible["currency"] == "EUR"]
    assert set(panel.current_plan.eligible["invoice_number"]) == set(euros["invoice_number"])
    assert (
        panel.transfer_button.description
        == f"Transfer {len(euros)} invoices (EUR {sum(euros['nexudus_total']):,.2f})"
    )
    panel.set_filter(text="", currency=None)
    assert panel.transfer_button.description == plan.describe()
    assert panel.currency_filter.value == ""


def test_a_customer_name_filter_matches_any_case(panel: TransferPanel, plan: TransferPlan) -> None:
    name = str(plan.eligible["contact_name"].iloc[0])
    narrowed = panel.set_filter(text=name.upper())
    assert len(narrowed.eligible) >= 1
    assert (
        narrowed.eligible["contact_name"].str.casefold().str.contains(name.casefold(), regex=False)
        | narrowed.eligible["invoice_number"]
        .str.casefold()
        .str.contains(name.casefold(), regex=False)
    ).all()


def test_pressing_transfer_only_asks_for_confirmation_and_writes_nothing(
    fresh_conn: Connection, panel: TransferPanel, plan: TransferPlan, ledger: Ledger
) -> None:
    before = xero_numbers(fresh_conn)
    assert panel.request_transfer() is None
    assert panel.is_confirming
    assert panel.confirm_row.layout.display is None  # shown
    message = panel.confirm_message.value
    assert f"This writes {len(plan.eligible)} invoices" in message
    assert fresh_conn.organisation["Name"] in message
    assert panel.transfer_button.disabled and not panel.confirm_button.disabled
    assert xero_numbers(fresh_conn) == before
    assert ledger.transfers(plan.tenant_id).empty


def test_cancel_hides_the_confirmation_and_writes_nothing(
    fresh_conn: Connection, panel: TransferPanel, plan: TransferPlan, ledger: Ledger
) -> None:
    before = xero_numbers(fresh_conn)
    panel.request_transfer()
    panel.cancel_button.click()  # what a click in the browser does
    assert not panel.is_confirming
    assert panel.confirm_row.layout.display == "none"
    assert not panel.transfer_button.disabled
    with pytest.raises(StepError, match="press Transfer first"):
        panel.confirm()
    assert xero_numbers(fresh_conn) == before
    assert ledger.transfers(plan.tenant_id).empty


def test_changing_the_filter_withdraws_a_confirmation(panel: TransferPanel) -> None:
    panel.request_transfer()
    panel.set_filter(currency="EUR")
    assert not panel.is_confirming and panel.confirm_row.layout.display == "none"


def test_confirm_writes_exactly_the_filtered_invoices(
    fresh_conn: Connection, panel: TransferPanel, plan: TransferPlan, ledger: Ledger
) -> None:
    before = xero_numbers(fresh_conn)
    wanted = panel.set_filter(currency="EUR")
    assert 0 < len(wanted.eligible) < len(plan.eligible)
    panel.request_transfer()
    result = panel.confirm()
    assert set(result.outcomes["outcome"]) == {"created"}
    assert set(result.outcomes["invoice_number"]) == set(wanted.eligible["invoice_number"])
    assert xero_numbers(fresh_conn) - before == set(wanted.eligible["invoice_number"])
    assert ledger.transferred_ids(plan.tenant_id) == set(wanted.eligible["nexudus_invoice_id"])
    assert panel.progress.value == panel.progress.max == len(wanted.eligible)
    assert "created" in panel.result_output.outputs[0]["data"]["text/html"]
    assert panel.transfer_button.description.startswith("Transferred (")


def test_a_second_confirm_does_not_push_again(
    fresh_conn: Connection, panel: TransferPanel, plan: TransferPlan
) -> None:
    panel.set_filter(currency="EUR")
    panel.request_transfer()
    first = panel.confirm()
    after_first = xero_numbers(fresh_conn)
    calls = fresh_conn.xero.calls
    assert (
        panel.transfer_button.disabled
        and panel.confirm_button.disabled
        and panel.cancel_button.disabled
    )
    assert panel.text_filter.disabled and panel.currency_filter.disabled
    assert panel.confirm() is first
    panel.confirm_button.click()
    panel.transfer_button.click()  # a click queued while the push ran still reaches the kernel
    assert fresh_conn.xero.calls == calls
    assert xero_numbers(fresh_conn) == after_first
    with pytest.raises(StepError, match="already transferred"):
        panel.request_transfer()


def test_a_filter_matching_nothing_cannot_be_transferred(panel: TransferPanel) -> None:
    panel.set_filter(text="no such invoice or customer")
    assert panel.transfer_button.description == "Transfer 0 invoices"
    assert panel.transfer_button.disabled
    with pytest.raises(StepError, match="nothing to transfer"):
        panel.request_transfer()


# ---- a double click never pushes twice (issue 15: "Widgets that cannot double-send") ------------
def xero_number_list(conn: Connection) -> list[str]:
    """Every live invoice and credit-note number in Xero, repeats kept (a duplicate shows twice)."""
    numbers = [
        str(i["InvoiceNumber"])
        for i in conn.xero.iter_invoices(summary_only=True)
        if i["Status"] != "DELETED"
    ]
    return numbers + [str(n["CreditNoteNumber"]) for n in conn.xero.iter_credit_notes()]


@pytest.fixture
def counted_push(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The real push, counted: one entry per push the panel starts."""
    calls: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real_push(*args, **kwargs)

    monkeypatch.setattr(transfer_panel, "push", counting)
    return calls


def test_a_click_on_confirm_while_the_push_runs_is_refused_and_nothing_is_sent_twice(
    fresh_conn: Connection,
    panel: TransferPanel,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first click's push is held inside the real push until the second click, from another
    thread, has been handled: the second click must find the lock taken."""
    before = xero_number_list(fresh_conn)
    wanted = panel.set_filter(currency="EUR")
    panel.request_transfer()
    inside, second_handled = threading.Event(), threading.Event()
    calls: list[int] = []

    def held_push(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        inside.set()
        assert second_handled.wait(60)
        return real_push(*args, **kwargs)

    monkeypatch.setattr(transfer_panel, "push", held_push)
    first = threading.Thread(target=panel.confirm_button.click)
    first.start()
    assert inside.wait(60), "the first click started a push"
    second = threading.Thread(target=panel.confirm_button.click)
    second.start()
    second.join(60)
    refused = panel.notice.value
    second_handled.set()
    first.join(120)
    assert not first.is_alive() and not second.is_alive()
    assert calls == [1], "one push, not two"
    assert "already running" in refused and "refused" in refused
    assert panel.result is not None and set(panel.result.outcomes["outcome"]) == {"created"}
    added = xero_number_list(fresh_conn)
    for number in before:
        added.remove(number)
    assert sorted(added) == sorted(wanted.eligible["invoice_number"]), "each invoice once in Xero"
    rows = ledger.transfers(wanted.tenant_id)
    assert sorted(rows["invoice_number"]) == sorted(wanted.eligible["invoice_number"])


def test_two_threads_clicking_confirm_at_the_same_moment_start_one_push(
    fresh_conn: Connection, panel: TransferPanel, ledger: Ledger, counted_push: list[int]
) -> None:
    before = xero_number_list(fresh_conn)
    wanted = panel.set_filter(currency="EUR")
    panel.request_transfer()
    start = threading.Barrier(2)

    def click() -> None:
        start.wait(30)
        panel.confirm_button.click()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert counted_push == [1]
    assert panel.result is not None and set(panel.result.outcomes["outcome"]) == {"created"}
    added = xero_number_list(fresh_conn)
    for number in before:
        added.remove(number)
    assert sorted(added) == sorted(wanted.eligible["invoice_number"])
    assert len(ledger.transfers(wanted.tenant_id)) == len(wanted.eligible)


def test_a_second_panel_on_the_same_ledger_and_organisation_waits_its_turn(
    fresh_conn: Connection,
    panel: TransferPanel,
    plan: TransferPlan,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two panels on one plan (a cell run twice): while one pushes, the other's Confirm is
    refused before any call."""
    other = TransferPanel(fresh_conn, plan, ledger)
    panel.set_filter(currency="EUR")
    panel.request_transfer()
    other.request_transfer()
    inside, release = threading.Event(), threading.Event()

    def held_push(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        assert release.wait(60)
        return real_push(*args, **kwargs)

    monkeypatch.setattr(transfer_panel, "push", held_push)
    first = threading.Thread(target=panel.confirm)
    first.start()
    assert inside.wait(60)
    calls = fresh_conn.xero.calls
    try:
        with pytest.raises(StepError, match="already running"):
            other.confirm()
        assert fresh_conn.xero.calls == calls and other.result is None
    finally:
        release.set()
        first.join(120)
    assert panel.result is not None


# ---- the panel writes the step files, so a notebook session's report shows its push -------------
def summary_of(workbook: Path) -> dict[tuple[str, str], object]:
    """The Run sheet (the run's steps, context and totals) by (section, item)."""
    run = sheet_records(openpyxl.load_workbook(workbook)["Run"])
    return {(r["section"], r["item"]): r["value"] for r in run}


def transfer_numbers(workbook: Path) -> list[str]:
    rows = sheet_records(openpyxl.load_workbook(workbook)["Transfers"])
    return sorted(str(r["invoice_number"]) for r in rows)


def test_the_report_of_a_notebook_session_counts_the_panel_s_pushes(
    fresh_conn: Connection, panel: TransferPanel, ledger: Ledger
) -> None:
    out = Path(fresh_conn.params.output_dir)
    euros = panel.set_filter(currency="EUR")
    panel.request_transfer()
    panel.confirm()
    first = open_report(out, fresh_conn.params)
    summary = summary_of(first.workbook)
    assert summary[("step", "02_transfer")] == "ok"
    assert summary[("run", "result")] == "1 of 1 steps ran", "not '0 of 0 steps'"
    assert summary[("context", "organisation")] == fresh_conn.organisation["Name"]
    assert transfer_numbers(first.workbook) == sorted(euros.eligible["invoice_number"])

    # the rest, from a new plan and a new panel in the same session: the report adds them
    rest = plan_transfer(fresh_conn, ledger=ledger)
    assert len(rest.eligible) and not set(rest.eligible["invoice_number"]) & set(
        euros.eligible["invoice_number"]
    )
    later = TransferPanel(fresh_conn, rest, ledger)
    later.request_transfer()
    later.confirm()
    second = open_report(out, fresh_conn.params)
    assert second.workbook.stat().st_mtime_ns >= first.workbook.stat().st_mtime_ns
    assert transfer_numbers(second.workbook) == sorted(
        [*euros.eligible["invoice_number"], *rest.eligible["invoice_number"]]
    )
    assert summary_of(second.workbook)[("run", "result")] == "1 of 1 steps ran"


def test_a_push_that_stops_is_recorded_as_a_failed_step_with_its_error(
    fresh_conn: Connection, panel: TransferPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push that raised (as one did when a sign-in was lost mid-run) is the step's failure in the
    report, with where it happened."""

    def signed_out(*args: Any, **kwargs: Any) -> Any:
        raise AuthError("Xero refused to renew the token (invalid_grant): sign in again.")

    monkeypatch.setattr(transfer_panel, "push", signed_out)
    panel.request_transfer()
    panel.confirm_button.click()
    assert panel.error is not None and panel.result is None
    report = open_report(Path(fresh_conn.params.output_dir), fresh_conn.params)
    summary = summary_of(report.workbook)
    assert summary[("step", "02_transfer")] == "failed"
    assert report.failed_steps == ("02_transfer.ipynb",)
    errors = report.table("errors")
    assert "AuthError: Xero refused to renew the token" in str(errors["what"].iloc[0])
    assert "Transfer panel, Confirm" in str(errors["where"].iloc[0])
