"""Checks that hold an invoice back before any write to Xero, against the sandbox over HTTP.

Contract: shared/reference/xero-api.md §6 (Organisation lock dates, Currencies), §10
(MS-JSON dates), §13 (lock-date and currency messages), §3.1 (ACCREC numbers are unique).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recon.session import Connection
from recon.transfer import lookups
from recon.transfer.guards import (
    check_currencies,
    check_lock_dates,
    check_number_clashes,
    lock_date,
)
from recon.transfer.lookups import (
    LOOKUP_MAX_AGE,
    DateWindow,
    fetch_numbered_documents,
    lookup_file,
    lookup_window,
    remember_sent,
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


def _many(tag: str, count: int = 300) -> pd.DataFrame:
    """``count`` planned invoices, more numbers than one ``InvoiceNumbers`` list holds."""
    return _planned(
        [
            {
                "invoice_number": f"P{tag}-{i:04d}",
                "kind": "invoice",
                "contact_number": "NX-1",
                "contact_name": "A",
                "xero_contact_id": None,
                "total": "1.00",
                "currency": "GBP",
            }
            for i in range(count)
        ]
    )


MAY = DateWindow(date(2026, 4, 27), date(2026, 5, 11))  # the plan's dates, a week each side


def test_the_lookup_window_is_the_plans_dates_widened_by_a_week() -> None:
    window = lookup_window([date(2026, 5, 4), None, date(2026, 5, 1)])
    assert window == DateWindow(date(2026, 4, 24), date(2026, 5, 11))
    assert window.where() == "Date>=DateTime(2026,04,24) AND Date<=DateTime(2026,05,11)"
    assert window.covers(MAY) and not MAY.covers(window)
    assert lookup_window([None]) is None


def test_a_large_plan_is_looked_up_in_one_paged_read_of_its_dates_not_number_batches(
    fresh_conn: Connection,
) -> None:
    """§3.4: ``pageSize`` up to 1,000, ``where`` on Type and Date, ``Statuses``: one call
    carries the whole window where numbers would take three. A number Xero holds under a date
    outside the window is not seen (the push settles it: test_plan_guards)."""
    conn = fresh_conn
    tag = _tag()
    planned = _many(tag)
    other = _contact(conn, f"Other {tag} Ltd")
    inside = _invoice(conn, f"P{tag}-0007", other, "12.00", day="2026-05-10")
    _invoice(conn, f"P{tag}-0008", other, "13.00", day="2026-03-01")  # outside the window
    by_numbers = conn.xero.calls
    assert fetch_numbered_documents(conn.xero, planned)["number"].tolist() == [
        f"P{tag}-0007",
        f"P{tag}-0008",
    ]
    before = conn.xero.calls
    assert before - by_numbers >= 3  # the number batches this replaces

    found = fetch_numbered_documents(conn.xero, planned, window=MAY)

    assert conn.xero.calls - before == 1
    assert list(found["xero_id"]) == [inside["InvoiceID"]]


def test_a_few_numbers_are_read_by_number_even_with_a_window(fresh_conn: Connection) -> None:
    """One ``InvoiceNumbers`` call is never dearer than a page, and it is exact: a number
    dated anywhere is found."""
    conn = fresh_conn
    tag = _tag()
    planned = _many(tag, count=20)
    made = _invoice(conn, f"P{tag}-0003", _contact(conn, f"Far {tag}"), "5.00", day="2025-01-02")
    before = conn.xero.calls

    found = fetch_numbered_documents(conn.xero, planned, window=MAY, kept=None)

    assert conn.xero.calls - before == 1
    assert list(found["xero_id"]) == [made["InvoiceID"]]


def test_a_rerun_asks_xero_only_for_what_changed_since_the_kept_lookup(
    fresh_conn: Connection, tmp_path: Path
) -> None:
    """xero-api.md §2 ``If-Modified-Since``: records created or modified since. The first read
    is kept beside the ledger; the next one within a day reads only the changes: a new
    clash, a deleted invoice freeing its number. A document left out of the kept file and
    unchanged since is therefore not read again, which shows the second read is the
    changes only; past ``LOOKUP_MAX_AGE`` the read is whole again."""
    conn = fresh_conn
    tag = _tag()
    planned = _many(tag)
    contact = _contact(conn, f"Keyed {tag} Ltd")
    stays = _invoice(conn, f"P{tag}-0001", contact, "10.00")
    goes = _invoice(conn, f"P{tag}-0002", contact, "11.00", status="DRAFT")
    hidden = _invoice(conn, f"P{tag}-0003", contact, "12.00")
    kept = lookup_file(tmp_path / "ledger.sqlite", str(conn.xero.tenant_id))
    assert kept.parent == tmp_path / "ledger.sqlite.lookups"
    # The lookups run ten minutes on, so the documents made so far are older than the margin
    # If-Modified-Since keeps for clock skew; what changes next happens later still.
    assert conn.sandbox is not None
    soon = datetime.now(UTC) + timedelta(minutes=10)

    first = fetch_numbered_documents(conn.xero, planned, window=MAY, kept=kept, now=lambda: soon)
    assert set(first["xero_id"]) == {stays["InvoiceID"], goes["InvoiceID"], hidden["InvoiceID"]}
    saved = json.loads(kept.read_text())
    saved["kinds"]["invoice"]["documents"] = [
        d for d in saved["kinds"]["invoice"]["documents"] if d["xero_id"] != hidden["InvoiceID"]
    ]
    kept.write_text(json.dumps(saved))
    conn.sandbox.clock.advance(20 * 60)
    conn.xero.update_invoice(goes["InvoiceID"], {"Status": "DELETED"})
    new = _invoice(conn, f"P{tag}-0004", contact, "14.00", day="2026-05-05")
    before = conn.xero.calls

    again = fetch_numbered_documents(conn.xero, planned, window=MAY, kept=kept, now=lambda: soon)

    assert conn.xero.calls - before == 1
    assert set(again["xero_id"]) == {stays["InvoiceID"], new["InvoiceID"]}
    later = soon + LOOKUP_MAX_AGE + timedelta(minutes=1)
    whole = fetch_numbered_documents(conn.xero, planned, window=MAY, kept=kept, now=lambda: later)
    assert set(whole["xero_id"]) == {stays["InvoiceID"], hidden["InvoiceID"], new["InvoiceID"]}


def test_a_rerun_after_a_push_reads_one_page_when_xeros_count_shows_the_rest_was_sent(
    fresh_conn: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§1 ``pagination.itemCount``, §2 If-Modified-Since, §3.4 ``order``: what the push created
    is kept as Xero answered it (``remember_sent``); when the first page of the changes holds
    only that and Xero counts no more changes than were sent, the other pages are not read, and
    the lookup is what reading them gives. One change by another hand, and every page is read.
    (Pages of 3 here stand for Xero's 1,000.)"""
    monkeypatch.setattr(lookups, "MAX_PAGE_SIZE", 3)
    conn = fresh_conn
    tenant = str(conn.xero.tenant_id)
    tag = _tag()
    planned = _many(tag)
    contact = _contact(conn, f"Sent {tag} Ltd")
    kept = lookup_file(tmp_path / "ledger.sqlite", tenant)
    soon = datetime.now(UTC) + timedelta(minutes=10)  # the seeded books are older than the margin
    assert fetch_numbered_documents(
        conn.xero, planned, window=MAY, kept=kept, now=lambda: soon
    ).empty
    assert conn.sandbox is not None
    conn.sandbox.clock.advance(20 * 60)
    # The push: seven invoices created, recorded as Xero answered them.
    made = [_invoice(conn, f"P{tag}-{i:04d}", contact, f"{i}.00") for i in range(1, 8)]
    remember_sent(kept, tenant, "invoice", made)
    assert kept.with_name(f"{kept.stem}.sent.jsonl").exists()
    before = conn.xero.calls

    again = fetch_numbered_documents(conn.xero, planned, window=MAY, kept=kept, now=lambda: soon)

    assert conn.xero.calls - before == 1  # one page of 3, not ceil(7 / 3) = 3
    assert set(again["xero_id"]) == {m["InvoiceID"] for m in made}
    assert not kept.with_name(f"{kept.stem}.sent.jsonl").exists()  # read into the kept lookup
    whole = fetch_numbered_documents(conn.xero, planned, window=MAY)  # no kept lookup: all read
    assert sorted(again["xero_id"]) == sorted(whole["xero_id"])
    # Another hand creates one more: Xero counts 8 changes where 7 were sent, so all is read.
    other = _invoice(conn, f"P{tag}-0008", _contact(conn, f"Other {tag}"), "8.00")
    before = conn.xero.calls

    third = fetch_numbered_documents(conn.xero, planned, window=MAY, kept=kept, now=lambda: soon)

    assert conn.xero.calls - before == 3  # ceil(8 / 3)
    assert other["InvoiceID"] in set(third["xero_id"])


def test_what_the_push_sent_is_kept_only_beside_a_kept_lookup_young_enough_to_use_it(
    tmp_path: Path,
) -> None:
    kept = lookup_file(tmp_path / "ledger.sqlite", "tenant-1")
    sent = kept.with_name(f"{kept.stem}.sent.jsonl")
    document = {
        "InvoiceID": "0f9c5b2e-0000-4000-8000-000000000001",
        "InvoiceNumber": "INV-1",
        "Status": "AUTHORISED",
        "Total": "12.00",
        "UpdatedDateUTC": "/Date(1793613637037+0000)/",
    }
    remember_sent(kept, "tenant-1", "invoice", [document])
    assert not sent.exists()  # no kept lookup: the next one is a full read anyway
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    remember_sent(kept, "tenant-1", "invoice", [document])
    (line,) = sent.read_text().splitlines()
    row = json.loads(line)
    assert {k: row[k] for k in ("kind", "number", "xero_id", "total", "updated", "sent")} == {
        "kind": "invoice",
        "number": "INV-1",
        "xero_id": document["InvoiceID"],
        "total": "12.00",
        "updated": "2026-11-02T10:00:37.037000+00:00",
        "sent": True,
    }
    stale = (datetime.now(UTC) - LOOKUP_MAX_AGE - timedelta(minutes=1)).timestamp()
    os.utime(kept, (stale, stale))
    remember_sent(kept, "tenant-1", "invoice", [document])
    assert not sent.exists()


def test_a_kept_lookup_of_a_narrower_window_or_an_unreadable_one_means_a_whole_read(
    fresh_conn: Connection, tmp_path: Path
) -> None:
    conn = fresh_conn
    tag = _tag()
    planned = _many(tag)
    made = _invoice(conn, f"P{tag}-0001", _contact(conn, f"Wide {tag}"), "10.00", day="2026-06-01")
    kept = lookup_file(tmp_path / "ledger.sqlite", str(conn.xero.tenant_id))
    assert fetch_numbered_documents(conn.xero, planned, window=MAY, kept=kept).empty
    wider = DateWindow(MAY.first, date(2026, 6, 30))  # not covered by the kept May read

    assert list(
        fetch_numbered_documents(conn.xero, planned, window=wider, kept=kept)["xero_id"]
    ) == [made["InvoiceID"]]
    kept.write_text("{not json")
    assert list(
        fetch_numbered_documents(conn.xero, planned, window=wider, kept=kept)["xero_id"]
    ) == [made["InvoiceID"]]
    assert json.loads(kept.read_text())["kinds"]["invoice"]["window"] == [
        "2026-04-27",
        "2026-06-30",
    ]


def test_many_credit_notes_are_looked_up_in_one_paged_read_narrowed_in_where(
    fresh_conn: Connection,
) -> None:
    """Spec getCreditNotes: no Statuses list, so type, status and date go in ``where``."""
    conn = fresh_conn
    tag = _tag()
    planned = _many(tag, count=60).assign(kind="credit_note", total=Decimal("-30.00"))
    acme = _contact(conn, f"Acme {tag} Ltd")
    body = {
        "Type": "ACCRECCREDIT",
        "CreditNoteNumber": f"P{tag}-0042",
        "Contact": {"ContactID": acme},
        "Date": "2026-05-04",
        "Status": "AUTHORISED",
        "LineAmountTypes": "NoTax",
        "LineItems": [
            {"Description": "Refund", "Quantity": 1, "UnitAmount": 30, "AccountCode": SALES}
        ],
    }
    (note,) = conn.xero.create_credit_notes([body])
    before = conn.xero.calls

    found = fetch_numbered_documents(conn.xero, planned, window=MAY)

    assert conn.xero.calls - before == 1  # 60 numbers would be two 50-number reads
    assert list(found["xero_id"]) == [note["CreditNoteID"]]
    assert list(found["kind"]) == ["credit_note"]


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
