"""Guards before any write, through the whole plan and push over real HTTP.

Issue "Reconciliation that misses nothing": invoices on or before a Xero lock date are held
back before any call and go over once the lock moves; an invoice number Xero already uses
for another contact or total is a clash, held back and named, never taken as "already in
Xero". Lock dates: xero-api.md §6 (Organisation), §13 (Xero's refusal). Number lookups:
§3.4 (a paged read narrowed by Type, Date and Statuses), §2 (If-Modified-Since on the next
plan).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pandas as pd

from recon.ledger import Ledger
from recon.session import Connection
from recon.transfer import plan_transfer, push
from recon.transfer.lookups import LOOKUP_MARGIN, lookup_file


def _numbers_in_xero(conn: Connection) -> Counter[str]:
    return Counter(
        str(i["InvoiceNumber"]) for i in conn.xero.iter_invoices() if i["Status"] != "DELETED"
    )


def test_invoices_on_or_before_a_lock_date_wait_and_go_over_once_it_moves(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with Ledger(conn.ledger_path) as ledger:
        before = plan_transfer(conn, ledger=ledger)
        dates = before.eligible.set_index("invoice_number")["date"].map(
            lambda t: pd.Timestamp(t).date()
        )
        lock = sorted(dates.unique())[len(dates.unique()) // 4]  # a quarter of the days
        locked_numbers = set(dates[dates <= lock].index)
        assert 0 < len(locked_numbers) < len(dates)
        conn.sandbox.set_lock_dates(str(conn.xero.tenant_id), period=lock)
        conn.organisation = conn.xero.fetch_organisation()

        plan = plan_transfer(conn, ledger=ledger)
        reasons = plan.excluded.set_index("invoice_number")["reason"]
        assert locked_numbers <= set(reasons.index)
        held = reasons[list(locked_numbers)]
        assert held.str.contains("period lock date").all()
        assert held.str.contains(f"{lock.day} {lock:%b %Y}").all()
        result = push(conn, plan, ledger)
        assert not set(result.outcomes["invoice_number"]) & locked_numbers
        assert set(result.outcomes["outcome"]) == {"created"}  # no call failed on the lock
        assert not locked_numbers & set(_numbers_in_xero(conn))

        conn.sandbox.set_lock_dates(str(conn.xero.tenant_id), period=None)
        conn.organisation = conn.xero.fetch_organisation()
        after = plan_transfer(conn, ledger=ledger)
        assert locked_numbers <= set(after.eligible["invoice_number"])
        push(conn, after, ledger)
    in_xero = _numbers_in_xero(conn)
    assert all(in_xero[n] == 1 for n in locked_numbers)


def test_a_number_xero_uses_for_another_contact_and_total_is_a_clash_not_a_skip(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with Ledger(conn.ledger_path) as ledger:
        first = plan_transfer(conn, ledger=ledger)
        victim = first.eligible.iloc[0]
        # Someone keys an unrelated invoice by hand in Xero with the same number.
        made = conn.xero.create_invoices(
            [
                {
                    "Type": "ACCREC",
                    "InvoiceNumber": victim["invoice_number"],
                    "Contact": {"Name": "Keyed By Hand Ltd"},
                    "Date": "2026-09-01",
                    "DueDate": "2026-09-30",
                    "Status": "AUTHORISED",
                    "LineItems": [
                        {
                            "Description": "Unrelated",
                            "Quantity": 1,
                            "UnitAmount": Decimal("12.00"),
                            "AccountCode": "4000",
                            "TaxType": "NONE",
                        }
                    ],
                }
            ]
        )
        assert made[0].get("StatusAttributeString") != "ERROR", made
        plan = plan_transfer(conn, ledger=ledger)
    # The second plan read only what changed since the first (kept beside the ledger).
    assert lookup_file(conn.ledger_path, plan.tenant_id).is_file()
    reason = plan.excluded.set_index("invoice_number")["reason"][victim["invoice_number"]]
    assert "already used in Xero by 'Keyed By Hand Ltd'" in reason
    assert "12.00" in reason and str(victim["contact_name"]) in reason
    assert victim["invoice_number"] not in set(plan.eligible["invoice_number"])


def test_a_clash_dated_outside_the_plans_dates_is_refused_by_xero_at_the_push_never_duplicated(
    fresh_conn: Connection,
) -> None:
    """The trade-off of reading the plan's dates (a week each side) instead of its numbers: a
    number keyed by hand under a date months away is not seen by the plan. Xero refuses the
    second use of the number (§3.1, "Invoice # must be unique."); the push looks that number
    up, finds another customer and total, and fails the invoice, leaving Xero's alone. (Keyed
    after a plan kept its lookup, the next plan would see it: If-Modified-Since reads every
    change, whatever its date.)"""
    conn = fresh_conn
    first = plan_transfer(conn)  # no ledger: nothing kept, so the next plan reads in full
    with Ledger(conn.ledger_path) as ledger:
        victim = first.eligible[first.eligible["kind"] == "invoice"].iloc[0]
        earliest = pd.to_datetime(first.eligible["date"]).min().date()
        far = earliest - LOOKUP_MARGIN - pd.Timedelta(days=120)
        assert not lookup_file(conn.ledger_path, first.tenant_id).exists()
        (made,) = conn.xero.create_invoices(
            [
                {
                    "Type": "ACCREC",
                    "InvoiceNumber": victim["invoice_number"],
                    "Contact": {"Name": "Keyed Long Ago Ltd"},
                    "Date": far.isoformat(),
                    "DueDate": far.isoformat(),
                    "Status": "AUTHORISED",
                    "LineItems": [
                        {
                            "Description": "Unrelated",
                            "Quantity": 1,
                            "UnitAmount": Decimal("7.00"),
                            "AccountCode": "4000",
                            "TaxType": "NONE",
                        }
                    ],
                }
            ]
        )
        assert made.get("StatusAttributeString") != "ERROR", made
        plan = plan_transfer(conn, ledger=ledger)
        assert victim["invoice_number"] in set(plan.eligible["invoice_number"])  # not seen
        result = push(conn, plan.only([victim["invoice_number"]]), ledger)
    (row,) = result.outcomes.itertuples()
    assert row.outcome == "failed"
    assert "Invoice # must be unique." in row.messages
    assert "Xero has another invoice with this number" in row.messages
    assert _numbers_in_xero(conn)[victim["invoice_number"]] == 1
    kept = conn.xero.get_invoice(str(made["InvoiceID"]))
    assert kept["Contact"]["Name"] == "Keyed Long Ago Ltd" and kept["Total"] == Decimal("7.00")
