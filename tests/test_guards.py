"""Checks that hold an invoice back before any write to Xero, against the sandbox over HTTP.

Contract: shared/reference/xero-api.md §6 (Organisation lock dates, Currencies), §10
(MS-JSON dates), §13 (lock-date and currency messages), §3.1 (ACCREC numbers are unique).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd

from recon.session import Connection
from recon.transfer.guards import (
    check_currencies,
    check_lock_dates,
    check_number_clashes,
    fetch_numbered_documents,
    lock_date,
)

SALES = "4000"


# ---- helpers ---------------------------------------------------------------------------------
def _tag() -> str:
    return uuid.uuid4().hex[:6].upper()


def _contact(conn: Connection, name: str, number: str | None = None) -> str:
    element: dict[str, Any] = {"Name": name}
    if number:
        element["ContactNumber"] = number
    (made,) = conn.xero.create_contacts([element])
    assert not made.get("HasValidationErrors"), made
    return str(made["ContactID"])


def _invoice(
    conn: Connection,
    number: str,
    contact_id: str,
    amount: str,
    day: str = "2026-05-04",
    status: str = "AUTHORISED",
) -> dict[str, Any]:
    body = {
        "Type": "ACCREC",
        "InvoiceNumber": number,
        "Contact": {"ContactID": contact_id},
        "Date": day,
        "DueDate": day,
        "Status": status,
        "LineAmountTypes": "NoTax",
        "LineItems": [
            {
                "Description": "Hot desk",
                "Quantity": Decimal(1),
                "UnitAmount": Decimal(amount),
                "AccountCode": SALES,
            }
        ],
    }
    (made,) = conn.xero.create_invoices([body])
    return made


def _planned(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["total"] = frame["total"].map(Decimal)
    return frame


# ---- lock dates --------------------------------------------------------------------------------
def test_an_invoice_dated_on_or_before_the_period_lock_date_is_held_back_as_xero_refuses_it(
    fresh_conn: Connection,
) -> None:
    """§6: PeriodLockDate in GET /Organisation (MS-JSON, §10); §13: Xero refuses such a date."""
    conn = fresh_conn
    tenant = str(conn.xero.tenant_id)
    assert "PeriodLockDate" not in conn.xero.fetch_organisation()  # §6: present only when set
    conn.sandbox.set_lock_dates(tenant, period=date(2026, 3, 31), end_of_year=date(2025, 3, 31))
    org = conn.xero.fetch_organisation()
    assert org["PeriodLockDate"].startswith("/Date(")
    assert lock_date(org) == (date(2026, 3, 31), "period lock date")
    dates = pd.Series(["2026-03-30", "2026-03-31", "2026-04-01", None], index=[10, 11, 12, 13])

    reasons = check_lock_dates(dates, org)

    assert list(reasons.index) == [10, 11, 12, 13]
    assert reasons[11] == (
        "dated 2026-03-31, on or before Xero's period lock date 31 Mar 2026: ask the Xero "
        "adviser to move the lock date or change the invoice date policy (invoice_date)"
    )
    assert reasons[10].startswith("dated 2026-03-30, on or before Xero's period lock date")
    assert reasons[12] == "" and reasons[13] == ""
    # The rule is the sandbox's own: the lock date itself is refused, the day after goes.
    contact = _contact(conn, f"Lock Test {_tag()}")
    refused = _invoice(conn, f"LOCK-{_tag()}", contact, "10.00", day="2026-03-31")
    assert refused["HasErrors"] and any(
        "period lock date" in m["Message"] for m in refused["ValidationErrors"]
    )
    accepted = _invoice(conn, f"LOCK-{_tag()}", contact, "10.00", day="2026-04-01")
    assert not accepted.get("HasErrors") and accepted["InvoiceID"]


def test_the_later_lock_date_governs_and_timestamps_count_by_their_calendar_date(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    conn.sandbox.set_lock_dates(
        str(conn.xero.tenant_id), period=date(2026, 1, 31), end_of_year=date(2026, 3, 31)
    )
    org = conn.xero.fetch_organisation()
    assert lock_date(org) == (date(2026, 3, 31), "end of year lock date")
    dates = pd.Series(
        [pd.Timestamp("2026-03-31 09:30", tz="UTC"), pd.Timestamp("2026-04-01", tz="UTC")]
    )

    reasons = check_lock_dates(dates, org)

    assert reasons[0].startswith(
        "dated 2026-03-31, on or before Xero's end of year lock date 31 Mar 2026"
    )
    assert reasons[1] == ""
    # Drafts may still be made in a locked period (Xero's help; the sandbox agrees).
    assert list(check_lock_dates(dates, org, status="DRAFT")) == ["", ""]
    contact = _contact(conn, f"Draft Lock {_tag()}")
    draft = _invoice(conn, f"LOCK-{_tag()}", contact, "10.00", day="2026-03-31", status="DRAFT")
    assert not draft.get("HasErrors") and draft["Status"] == "DRAFT"
    approved = _invoice(conn, f"LOCK-{_tag()}", contact, "10.00", day="2026-03-31")
    assert any("end of year lock date" in m["Message"] for m in approved["ValidationErrors"])


def test_no_lock_date_holds_nothing_back(fresh_conn: Connection) -> None:
    org = fresh_conn.xero.fetch_organisation()
    assert lock_date(org) is None
    reasons = check_lock_dates(pd.Series(["1999-01-01", "2026-01-01"]), org)
    assert list(reasons) == ["", ""]


# ---- invoice numbers -----------------------------------------------------------------------------
def test_an_unrelated_xero_invoice_with_the_same_number_is_a_clash_naming_both(
    fresh_conn: Connection,
) -> None:
    """§3.1: ACCREC numbers are unique, so Xero would refuse the PUT ("Invoice # must be
    unique."); the plan holds the invoice back instead, naming both sides."""
    conn = fresh_conn
    number = f"INV-{_tag()}"
    other = _contact(conn, "Other Ltd")
    made = _invoice(conn, number, other, "12.00")
    assert made["Total"] == Decimal("12.00")
    planned = _planned(
        [
            {
                "invoice_number": number,
                "kind": "invoice",
                "contact_number": "NX-acme",
                "contact_name": "Acme Ltd",
                "xero_contact_id": None,
                "total": "120.00",
                "currency": "GBP",
            }
        ]
    )

    found = fetch_numbered_documents(conn.xero, planned)
    result = check_number_clashes(planned, found)

    assert list(found["xero_id"]) == [made["InvoiceID"]]
    assert not result.loc[0, "already_in_xero"]
    assert result.loc[0, "reason"] == (
        f"{number} is already used in Xero by 'Other Ltd' for GBP 12.00 "
        "(Nexudus: 'Acme Ltd', GBP 120.00): renumber one of them"
    )
    # Without the guard the write would fail: Xero keeps the number for the other invoice.
    mine = _contact(conn, "Acme Ltd")
    again = _invoice(conn, number, mine, "120.00")
    assert "Invoice # must be unique." in [m["Message"] for m in again["ValidationErrors"]]


def test_the_same_invoice_already_in_xero_is_recognised_and_not_a_clash(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    tag = _tag()
    acme = _contact(conn, f"Acme {tag} Ltd", number=f"NX-{tag}")
    sent = _invoice(conn, f"INV-{tag}-1", acme, "120.00")
    same_total_other_customer = _invoice(conn, f"INV-{tag}-2", _contact(conn, "Zed Ltd"), "55.00")
    rows = [
        # Known contact id, same total: the invoice sent before.
        (f"INV-{tag}-1", f"NX-{tag}", f"Acme {tag} Ltd", acme, "120.00"),
        # A new customer whose name Xero's invoice carries, same total: also the same invoice.
        (f"INV-{tag}-2", "NX-zed", "ZED  ltd", None, "55.00"),
        # Same number and contact but another total: a clash.
        (f"INV-{tag}-1", f"NX-{tag}", f"Acme {tag} Ltd", acme, "121.00"),
        # A number Xero does not have.
        (f"INV-{tag}-3", f"NX-{tag}", f"Acme {tag} Ltd", acme, "9.00"),
    ]
    planned = _planned(
        [
            {
                "invoice_number": n,
                "kind": "invoice",
                "contact_number": cn,
                "contact_name": name,
                "xero_contact_id": cid,
                "total": total,
                "currency": "GBP",
            }
            for n, cn, name, cid, total in rows
        ]
    )
    planned.index = pd.Index([5, 6, 7, 8])

    result = check_number_clashes(planned, fetch_numbered_documents(conn.xero, planned))

    assert list(result["already_in_xero"]) == [True, True, False, False]
    assert result.loc[5, "xero_id"] == sent["InvoiceID"]
    assert result.loc[6, "xero_id"] == same_total_other_customer["InvoiceID"]
    assert result.loc[5, "reason"] == "" and result.loc[8, "reason"] == ""
    assert result.loc[7, "reason"].startswith(f"INV-{tag}-1 is already used in Xero by 'Acme {tag}")
    assert "GBP 120.00 (Nexudus: " in result.loc[7, "reason"]
    assert result.loc[7, "reason"].endswith(", GBP 121.00): renumber one of them")


def test_a_credit_note_is_compared_with_xero_credit_notes_by_its_positive_total(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    tag = _tag()
    acme = _contact(conn, f"Acme {tag} Ltd")
    body = {
        "Type": "ACCRECCREDIT",
        "CreditNoteNumber": f"CN-{tag}",
        "Contact": {"ContactID": acme},
        "Date": "2026-05-04",
        "Status": "AUTHORISED",
        "LineAmountTypes": "NoTax",
        "LineItems": [
            {"Description": "Refund", "Quantity": 1, "UnitAmount": 30, "AccountCode": SALES}
        ],
    }
    (note,) = conn.xero.create_credit_notes([body])
    planned = _planned(
        [
            {
                "invoice_number": f"CN-{tag}",
                "kind": "credit_note",
                "contact_number": "NX-1",
                "contact_name": f"Acme {tag} Ltd",
                "xero_contact_id": acme,
                "total": "-30.00",  # Nexudus credit notes carry negative amounts
                "currency": "GBP",
            },
            {
                "invoice_number": f"CN-{tag}",
                "kind": "credit_note",
                "contact_number": "NX-2",
                "contact_name": "Beta Ltd",
                "xero_contact_id": None,
                "total": "-31.00",
                "currency": "GBP",
            },
        ]
    )

    result = check_number_clashes(planned, fetch_numbered_documents(conn.xero, planned))

    assert result.loc[0, "already_in_xero"] and result.loc[0, "xero_id"] == note["CreditNoteID"]
    assert result.loc[1, "reason"] == (
        f"credit note CN-{tag} is already used in Xero by 'Acme {tag} Ltd' for GBP 30.00 "
        "(Nexudus: 'Beta Ltd', GBP 31.00): renumber one of them"
    )


def test_a_deleted_xero_invoice_frees_its_number(fresh_conn: Connection) -> None:
    conn = fresh_conn
    number = f"INV-{_tag()}"
    contact = _contact(conn, f"Draft Co {_tag()}")
    body = {
        "Type": "ACCREC",
        "InvoiceNumber": number,
        "Contact": {"ContactID": contact},
        "Date": "2026-05-04",
        "Status": "DRAFT",
        "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": SALES}],
    }
    (draft,) = conn.xero.create_invoices([body])
    conn.xero.update_invoice(draft["InvoiceID"], {"Status": "DELETED"})
    planned = _planned(
        [
            {
                "invoice_number": number,
                "kind": "invoice",
                "contact_number": "NX-9",
                "contact_name": "Someone Else",
                "xero_contact_id": None,
                "total": "80.00",
                "currency": "GBP",
            }
        ]
    )

    found = fetch_numbered_documents(conn.xero, planned)
    result = check_number_clashes(planned, found)

    assert found.empty
    assert result.loc[0, "reason"] == "" and not result.loc[0, "already_in_xero"]


def test_many_numbers_are_looked_up_in_a_few_paged_reads(conn: Connection) -> None:
    """§3.4: InvoiceNumbers is a list filter; one call carries as many as a URL holds."""
    tag = _tag()
    planned = _planned(
        [
            {
                "invoice_number": f"Q{tag}-{i:04d}",
                "kind": "invoice",
                "contact_number": "NX-1",
                "contact_name": "A",
                "xero_contact_id": None,
                "total": "1.00",
                "currency": "GBP",
            }
            for i in range(300)
        ]
    )
    before = conn.xero.calls

    found = fetch_numbered_documents(conn.xero, planned)

    assert found.empty
    assert conn.xero.calls - before <= 4  # not 300


# ---- currencies ----------------------------------------------------------------------------
def test_a_currency_the_organisation_has_not_enabled_is_held_back(conn: Connection) -> None:
    """§6: the base currency and GET /Currencies are what an invoice may use (§13 message)."""
    org = conn.xero.fetch_organisation()
    enabled = conn.xero.fetch_currencies()["Code"]
    assert org["BaseCurrency"] == "GBP" and "USD" not in set(enabled)

    reasons = check_currencies(pd.Series(["GBP", "EUR", "USD", None]), org, enabled)

    assert reasons[0] == "" and reasons[1] == ""
    assert reasons[2].startswith(
        f"currency USD is not enabled in Xero organisation {org['Name']} (it has EUR, GBP)"
    )
    assert reasons[3].startswith("no currency on the Nexudus invoice")
    # Xero would refuse it: the reason stands for a failed call.
    contact = conn.xero.create_contacts([{"Name": f"Currency Test {_tag()}"}])[0]["ContactID"]
    body = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact},
        "Date": "2026-05-04",
        "CurrencyCode": "USD",
        "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": SALES}],
    }
    (made,) = conn.xero.create_invoices([body])
    messages = [m["Message"] for m in made.get("ValidationErrors") or []]
    assert "Organisation is not subscribed to currency USD" in messages
