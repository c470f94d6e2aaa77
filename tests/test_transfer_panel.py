"""The transfer panel, driven through its methods (no browser) against a sandbox of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recon.errors import StepError
from recon.ledger import Ledger
from recon.session import Connection
from recon.transfer import TransferPlan, plan_transfer
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
