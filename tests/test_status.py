"""Status sync against the sandboxes: every kind of difference, apply marks exactly the paid ones,
once."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from support import ROOT

from recon.demo import act_as_accountant
from recon.ledger import Ledger
from recon.params import load_params
from recon.sandbox import NexudusLimits, RateLimits, start
from recon.session import Connection, connect, register_sandbox
from recon.status import Difference, apply_paid, sync_status
from recon.transfer import TransferOptions, plan_transfer, push


def _transfer_and_act(
    conn: Connection,
) -> Iterator[tuple[Connection, Ledger, pd.DataFrame]]:
    """The demo period transferred; then the accountant pays 25, part-pays 2, voids 1 and edits 1 in
    Xero."""
    ledger = Ledger(conn.ledger_path)
    push(conn, plan_transfer(conn, ledger=ledger), ledger)
    sync_status(conn, ledger)  # the baseline: Xero and Nexudus as just after the transfer
    actions = act_as_accountant(conn)
    yield conn, ledger, actions
    ledger.close()


@pytest.fixture
def transferred(fresh_conn: Connection) -> Iterator[tuple[Connection, Ledger, pd.DataFrame]]:
    """The demo period transferred and acted on in Xero, on a sandbox of the test's own."""
    yield from _transfer_and_act(fresh_conn)


@pytest.fixture
def unthrottled(tmp_path: Path) -> Iterator[tuple[Connection, Ledger, pd.DataFrame]]:
    """As ``transferred``, on a sandbox of its own whose rate limits are lifted on both sides.

    For tests that count calls: with limits on, a busy machine (``pytest -n 2`` beside other
    work) can make a server see two paced calls closer than its window allows (it stamps them
    when they arrive, the client when it sends them), answer 429, and the client's retry is
    then counted as one more call, though the sync chose no extra read. Lifting the limits
    leaves only the calls the sync decided to make.
    """
    box = start(
        tmp_path / "sandbox",
        limits=RateLimits(
            per_minute=1_000_000, per_day=1_000_000, app_per_minute=1_000_000, minute_seconds=1.0
        ),
        nexudus_limits=NexudusLimits(enabled=False),
    )
    register_sandbox(box)
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(box.state_dir),
        output_dir=str(tmp_path / "out"),
        ledger_file=str(tmp_path / "ledger.sqlite"),
    )
    conn = connect(params)
    try:
        yield from _transfer_and_act(conn)
    finally:
        conn.close()
        box.stop()


def _kind(diff: pd.DataFrame, kind: Difference) -> set[str]:
    return set(diff[diff["difference"] == kind.value]["invoice_number"])


def test_each_kind_of_difference_is_found(
    transferred: tuple[Connection, Ledger, pd.DataFrame],
) -> None:
    conn, ledger, actions = transferred
    diff = sync_status(conn, ledger).differences
    by_action = actions.groupby("action")["invoice_number"].agg(set)
    paid_before = set(conn.sandbox.planted["paid_in_nexudus_invoices"])
    assert _kind(diff, Difference.PAID_IN_XERO) == by_action["paid"] - paid_before
    assert _kind(diff, Difference.PART_PAID_IN_XERO) == by_action["part-paid"] - paid_before
    assert _kind(diff, Difference.VOIDED_IN_XERO) == by_action["voided"]
    assert _kind(diff, Difference.TOTAL_CHANGED) == by_action["edited"]
    owing = _kind(diff, Difference.PAID_IN_NEXUDUS)
    transferred_numbers = set(ledger.transfers(conn.xero.tenant_id)["invoice_number"])
    nexudus = conn.nexudus.fetch_invoices(business_id=int(conn.business["Id"]))
    # Paid in Nexudus and also cancelled there by a credit note (nexudus.md §7.1): settled twice
    # over, a person's decision rather than a payment to record in Xero.
    credited = set(nexudus[nexudus["CreditedAmount"] > 0]["InvoiceNumber"])
    expected_owing = (
        (paid_before & transferred_numbers) - by_action["paid"] - by_action["voided"] - credited
    )
    assert owing == expected_owing
    twice = (paid_before & transferred_numbers & credited) - by_action["paid"] - by_action["voided"]
    assert twice <= _kind(diff, Difference.PAID_TWICE)
    assert not twice & _kind(diff, Difference.CREDIT_NOTE_IN_NEXUDUS)
    edited = diff[diff["difference"] == Difference.TOTAL_CHANGED.value].iloc[0]
    assert (
        edited["xero_total"] - edited["transferred_total"]
        == actions.set_index("invoice_number").loc[edited["invoice_number"], "amount"]
    )
    paid_row = diff[diff["difference"] == Difference.PAID_IN_XERO.value].iloc[0]
    assert paid_row["xero_amount_due"] == 0 and paid_row["xero_paid_on"]
    assert isinstance(paid_row["xero_total"], Decimal)


def test_an_invoice_recon_created_but_the_ledger_lost_is_reported(
    transferred: tuple[Connection, Ledger, pd.DataFrame],
) -> None:
    conn, ledger, _ = transferred
    contact = next(conn.xero.iter_contacts())
    made = conn.xero.create_invoices(
        [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": contact["ContactID"]},
                "Date": "2026-10-01",
                "DueDate": "2026-10-15",
                "InvoiceNumber": "ORPHAN-1",
                "Status": "AUTHORISED",
                "LineItems": [
                    {
                        "Description": "Desk",
                        "Quantity": 1,
                        "UnitAmount": Decimal("10.00"),
                        "AccountCode": "4000",
                        "TaxType": "OUTPUT2",
                    }
                ],
            }
        ]
    )
    assert made[0]["StatusAttributeString"] == "OK"
    diff = sync_status(conn, ledger).differences
    assert _kind(diff, Difference.UNKNOWN_TO_LEDGER) == {"ORPHAN-1"}


def test_an_invoice_gone_from_xero_is_reported_by_a_full_sync(
    transferred: tuple[Connection, Ledger, pd.DataFrame],
) -> None:
    conn, ledger, _ = transferred
    victim = ledger.transfers(conn.xero.tenant_id).iloc[0]
    with (
        conn.sandbox.xero.store.write() as db
    ):  # as if the organisation had been restored from an older backup
        db.execute("DELETE FROM records WHERE kind='Invoice' AND id=?", (victim["xero_id"],))
    incremental = sync_status(conn, ledger).differences
    assert victim["invoice_number"] not in _kind(incremental, Difference.MISSING_FROM_XERO)
    full = sync_status(conn, ledger, full=True).differences
    assert _kind(full, Difference.MISSING_FROM_XERO) == {victim["invoice_number"]}


def test_apply_marks_exactly_the_fully_paid_invoices_and_a_second_apply_changes_nothing(
    transferred: tuple[Connection, Ledger, pd.DataFrame],
) -> None:
    conn, ledger, actions = transferred
    diff = sync_status(conn, ledger)
    expected = set(diff.paid_in_xero["invoice_number"])
    applied = apply_paid(conn, ledger, diff)
    assert set(applied[applied["outcome"] == "applied"]["invoice_number"]) == expected
    by_number = conn.nexudus.fetch_invoices(business_id=int(conn.business["Id"])).set_index(
        "InvoiceNumber"
    )
    for number in expected:
        row = by_number.loc[number]
        assert bool(row["Paid"]) and row["PaidAmount"] == row["TotalAmount"]
        paid_on = diff.paid_in_xero.set_index("invoice_number").loc[number, "xero_paid_on"]
        assert pd.Timestamp(row["PaidOn"]).date().isoformat() == paid_on
    part = actions[actions["action"] == "part-paid"]["invoice_number"]
    assert not by_number.loc[list(part), "Paid"].any()
    again = sync_status(conn, ledger)
    assert again.paid_in_xero.empty
    assert apply_paid(conn, ledger, again).empty
    assert set(apply_paid(conn, ledger, diff)["outcome"]) == {"skipped"}
    paid_after = conn.nexudus.fetch_invoices(business_id=int(conn.business["Id"])).set_index(
        "InvoiceNumber"
    )
    assert (paid_after["PaidAmount"] == by_number["PaidAmount"]).all()


def test_a_crash_after_nexudus_recorded_a_payment_does_not_pay_twice(
    transferred: tuple[Connection, Ledger, pd.DataFrame],
) -> None:
    conn, ledger, _ = transferred
    diff = sync_status(conn, ledger)
    first = diff.paid_in_xero.iloc[0]
    # Nexudus took the payment, but the process died before the ledger heard: the intent is still
    # 'sending'.
    conn.nexudus.record_payment(
        int(first["nexudus_invoice_id"]),
        first["xero_total"],
        pd.Timestamp(first["xero_paid_on"]).date(),
        "Paid in Xero",
        code="XERO",
    )
    ledger.record_payment(
        conn.xero.tenant_id, int(first["nexudus_invoice_id"]), first["invoice_number"], "sending"
    )
    result = apply_paid(conn, ledger, diff).set_index("invoice_number")
    assert result.loc[first["invoice_number"], "outcome"] == "already paid"
    invoice = conn.nexudus.get_invoice(int(first["nexudus_invoice_id"]))
    assert invoice["PaidAmount"] == invoice["TotalAmount"]


def test_drafts_sent_to_xero_are_reported_as_awaiting_approval(fresh_conn: Connection) -> None:
    with Ledger(fresh_conn.ledger_path) as ledger:
        plan = plan_transfer(fresh_conn, ledger=ledger, options=TransferOptions(status="DRAFT"))
        push(fresh_conn, plan.only(plan.eligible["invoice_number"].head(5)), ledger)
        diff = sync_status(fresh_conn, ledger).differences
    assert _kind(diff, Difference.AWAITING_APPROVAL) == set(plan.eligible["invoice_number"].head(5))


def test_an_incremental_sync_reads_only_what_changed(
    unthrottled: tuple[Connection, Ledger, pd.DataFrame],
) -> None:
    """xero-api.md §2 ``If-Modified-Since`` (only what changed since the watermark); nexudus.md §3
    (``from_`` range filter on UpdatedOn; ``TotalItems`` of a one-record page)."""
    conn, ledger, _ = unthrottled
    first = sync_status(conn, ledger)
    quiet = sync_status(conn, ledger)
    assert quiet.context["xero_changed"] <= 1  # the overlap second may return the last change again
    # Each side: what changed since its watermark, plus one more call (Xero: the ones this app
    # made; Nexudus: the location's invoice count, which tells whether anything was deleted).
    assert quiet.calls["xero"] == 2 and quiet.calls["nexudus"] == 2
    assert not quiet.context["nexudus_whole_read"]
    assert first.counts() == quiet.counts()


def test_the_ageing_view_buckets_what_xero_still_shows_owing(
    transferred: tuple[Connection, Ledger, pd.DataFrame],
) -> None:
    import datetime as dt

    conn, ledger, _ = transferred
    diff = sync_status(conn, ledger)
    ageing = diff.ageing(today=dt.date(2026, 11, 25))
    assert ageing["invoices"].sum() == len(diff.unpaid)
    for currency, group in ageing.groupby("currency"):
        assert (
            group["amount_due"].sum()
            == diff.unpaid[diff.unpaid["currency"] == currency]["amount_due"].sum()
        )


def test_the_status_panel_writes_only_after_confirmation_and_only_once(
    transferred: tuple[Connection, Ledger, pd.DataFrame],
) -> None:
    from recon.widgets import StatusPanel

    conn, ledger, _ = transferred
    diff = sync_status(conn, ledger)
    panel = StatusPanel(conn, ledger, diff)
    assert panel.button.description == f"Mark {len(diff.paid_in_xero)} invoices paid in Nexudus"
    panel.request()
    assert panel.is_confirming and ledger.payments(conn.xero.tenant_id).empty
    panel.cancel()
    assert not panel.is_confirming
    panel.request()
    result = panel.confirm()
    assert set(result["outcome"]) == {"applied"} and len(result) == len(diff.paid_in_xero)
    assert panel.confirm() is result  # a second press does not apply again
    assert panel.button.disabled


def test_draft_and_authorised_transfers_both_reconcile_once_the_drafts_are_approved(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with Ledger(conn.ledger_path) as ledger:
        plan = plan_transfer(conn, ledger=ledger, options=TransferOptions(status="DRAFT"))
        invoices = plan.eligible[plan.eligible["kind"] == "invoice"]["invoice_number"]
        drafts, approved = list(invoices.iloc[:3]), list(invoices.iloc[3:6])
        push(conn, plan.only(drafts), ledger)
        authorised_plan = plan_transfer(conn, ledger=ledger)
        push(conn, authorised_plan.only(approved), ledger)
        first = sync_status(conn, ledger).differences
        assert _kind(first, Difference.AWAITING_APPROVAL) == set(drafts)
        # In Xero the accountant approves the drafts, then the bank feed pays one draft and one
        # approved invoice.
        ids = ledger.transfers(conn.xero.tenant_id).set_index("invoice_number")["xero_id"]
        for number in drafts:
            conn.xero.update_invoice(ids[number], {"Status": "AUTHORISED"})
        bank = conn.xero.fetch_accounts().query("Type == 'BANK'").iloc[0]["Code"]
        for number in (drafts[0], approved[0]):
            invoice = conn.xero.get_invoice(ids[number])
            conn.xero.create_payments(
                [
                    {
                        "Invoice": {"InvoiceID": ids[number]},
                        "Account": {"Code": bank},
                        "Amount": invoice["AmountDue"],
                        "Date": "2026-11-20",
                    }
                ]
            )
        second = sync_status(conn, ledger)
        assert _kind(second.differences, Difference.AWAITING_APPROVAL) == set()
        paid = {drafts[0], approved[0]} - set(conn.sandbox.planted["paid_in_nexudus_invoices"])
        assert _kind(second.differences, Difference.PAID_IN_XERO) == paid
        applied = apply_paid(conn, ledger, second)
        assert set(applied[applied["outcome"] == "applied"]["invoice_number"]) == paid
