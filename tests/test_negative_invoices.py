"""A non-credit invoice whose total is below zero (issue "Money to the cent", item 3).

Xero accepts such a draft but refuses to approve it (xero-api.md §3.5; the sandbox follows),
so recon holds it back by default, and with ``negative_invoices: credit_note`` sends it as a
credit note carrying the same figures as positive amounts.
"""

from __future__ import annotations

from decimal import Decimal

from recon.ledger import Ledger
from recon.session import Connection
from recon.transfer import TransferOptions, plan_transfer, push

VAT20 = "20% (VAT on Income)"


def test_a_negative_invoice_is_held_back_or_sent_as_a_credit_note_when_asked(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    coworker = int(conn.nexudus.fetch_coworkers()["Id"].iloc[0])
    # One refund line of -30.00 + 20% VAT: Nexudus total -36.00 on an ordinary invoice.
    raised = conn.sandbox.nexudus.desk.raise_invoice(
        int(conn.business["Id"]),
        coworker,
        [
            {
                "Description": "Refund of an overcharge",
                "Quantity": 1,
                "UnitPrice": "-30.00",
                "TaxCategoryName": VAT20,
                "FinancialAccountCode": "4100",
            }
        ],
        created_on="2026-10-15T10:00:00Z",
    )
    number = str(raised["InvoiceNumber"])
    with Ledger(conn.ledger_path) as ledger:
        held = plan_transfer(conn, ledger=ledger)
        reason = held.excluded.set_index("invoice_number")["reason"][number]
        assert "below zero but it is not a credit note" in reason and "-36.00" in reason

        options = TransferOptions(negative_invoices="credit_note")
        plan = plan_transfer(conn, ledger=ledger, options=options).only([number])
        row = plan.eligible.set_index("invoice_number").loc[number]
        assert row["kind"] == "credit_note" and row["way"] == "as lines"
        assert (row["xero_subtotal"], row["xero_tax"], row["xero_total"]) == (
            Decimal("30.00"),
            Decimal("6.00"),
            Decimal("36.00"),
        )
        assert row["nexudus_total"] == Decimal("-36.00")
        result = push(conn, plan, ledger)
    assert list(result.outcomes["outcome"]) == ["created"]
    (note,) = [n for n in conn.xero.iter_credit_notes() if n["CreditNoteNumber"] == number]
    assert Decimal(str(note["Total"])) == Decimal("36.00")
    assert note["Status"] == "AUTHORISED"
