"""Credit-note allocations in the Xero sandbox, over real HTTP.

Contract: the spec's ``PUT /CreditNotes/{CreditNoteID}/Allocations`` (createCreditNoteAllocation)
and ``DELETE /CreditNotes/{CreditNoteID}/Allocations/{AllocationID}``
(deleteCreditNoteAllocations), schemas ``Allocation``, ``CreditNote`` (RemainingCredit,
Allocations, AppliedAmount) and ``Invoice`` (AmountCredited, CreditNotes); reference §3.6
(summarizeErrors), §7 (Idempotency-Key), §13 (lock dates). Each test names its own contact, so
tests sharing the session sandbox never touch each other's documents.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from recon.sandbox import Sandbox

SALES = "4000"  # the demo chart's revenue account, OUTPUT2 (20%) by default
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
TOO_LARGE = "Credit Note cannot be allocated as amount is greater than amount outstanding"


def as_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def raw(
    box: Sandbox,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One accounting call with a fresh Custom Connection token."""
    token = httpx.post(
        box.xero_token_url,
        data={"grant_type": "client_credentials"},
        auth=(box.xero_client_id, box.xero_client_secret),
    ).json()["access_token"]
    hdrs = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "xero-tenant-id": box.xero_tenant_id,
        **(headers or {}),
    }
    content = None
    if body is not None:
        content = json.dumps(body, default=as_json).encode()
        hdrs["Content-Type"] = "application/json"
    return httpx.request(
        method, box.xero_api_url + path, params=params, content=content, headers=hdrs, timeout=30
    )


def contact() -> dict[str, str]:
    return {"Name": "Allocation Member " + uuid.uuid4().hex[:8]}


def make_invoice(box: Sandbox, who: dict[str, str], net: str, **fields: Any) -> dict[str, Any]:
    body = {
        "Type": "ACCREC",
        "Contact": who,
        "Date": "2026-08-01",
        "DueDate": "2026-08-15",
        "Status": "AUTHORISED",
        "LineItems": [
            {"Description": "Hot desk", "Quantity": 1, "UnitAmount": net, "AccountCode": SALES}
        ],
        **fields,
    }
    r = raw(box, "PUT", "/Invoices", body={"Invoices": [body]})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["Invoices"][0]
    return result


def make_note(box: Sandbox, who: dict[str, str], net: str, **fields: Any) -> dict[str, Any]:
    body = {
        "Type": "ACCRECCREDIT",
        "Contact": who,
        "Date": "2026-08-02",
        "Status": "AUTHORISED",
        "LineItems": [
            {"Description": "Refund", "Quantity": 1, "UnitAmount": net, "AccountCode": SALES}
        ],
        **fields,
    }
    r = raw(box, "PUT", "/CreditNotes", body={"CreditNotes": [body]})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["CreditNotes"][0]
    return result


def allocate(
    box: Sandbox,
    note_id: str,
    invoice_id: str,
    amount: str,
    when: str = "2026-08-03",
    **kwargs: Any,
) -> httpx.Response:
    body = {"Allocations": [{"Invoice": {"InvoiceID": invoice_id}, "Amount": amount, "Date": when}]}
    return raw(box, "PUT", f"/CreditNotes/{note_id}/Allocations", body=body, **kwargs)


def get_invoice(box: Sandbox, invoice_id: str) -> dict[str, Any]:
    result: dict[str, Any] = raw(box, "GET", f"/Invoices/{invoice_id}").json()["Invoices"][0]
    return result


def get_note(box: Sandbox, note_id: str) -> dict[str, Any]:
    result: dict[str, Any] = raw(box, "GET", f"/CreditNotes/{note_id}").json()["CreditNotes"][0]
    return result


def refusal(response: httpx.Response) -> list[str]:
    """The messages of a summarized 400 about one allocation element (reference §8)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["Type"] == "ValidationException"
    (element,) = body["Elements"]
    return [m["Message"] for m in element["ValidationErrors"]]


# ---- effects ----------------------------------------------------------------------------
def test_a_part_allocation_answers_like_the_spec_and_moves_both_documents(
    sandbox: Sandbox,
) -> None:
    """Spec createCreditNoteAllocation 200 example; Invoice.AmountCredited, CreditNote.
    RemainingCredit / Allocations / AppliedAmount."""
    who = contact()
    inv = make_invoice(sandbox, who, "100.00")  # 100.00 + 20% = 120.00
    note = make_note(sandbox, who, "25.00")  # 25.00 + 20% = 30.00
    assert note["RemainingCredit"] == 30.0 and note["Allocations"] == []
    r = allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], "10.00")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"Id", "Status", "ProviderName", "DateTimeUTC", "Allocations"}
    (alloc,) = body["Allocations"]
    assert uuid.UUID(alloc["AllocationID"]).int != 0
    assert alloc["Amount"] == 10.0
    assert alloc["Date"] == "/Date(1785715200000+0000)/"  # 2026-08-03, midnight UTC
    assert alloc["Invoice"]["InvoiceID"] == inv["InvoiceID"]
    assert alloc["Invoice"]["LineItems"] == [] and alloc["Invoice"]["CreditNotes"] == []
    assert alloc["CreditNote"] == {
        "CreditNoteID": note["CreditNoteID"],
        "ID": note["CreditNoteID"],
        "LineItems": [],
    }
    assert alloc["StatusAttributeString"] == "OK"

    got = get_invoice(sandbox, inv["InvoiceID"])
    assert (got["AmountCredited"], got["AmountDue"], got["Status"]) == (10.0, 110.0, "AUTHORISED")
    (applied,) = got["CreditNotes"]
    assert applied["CreditNoteID"] == note["CreditNoteID"]
    assert applied["CreditNoteNumber"] == note["CreditNoteNumber"]
    assert applied["AppliedAmount"] == 10.0
    assert "FullyPaidOnDate" not in got

    cn = get_note(sandbox, note["CreditNoteID"])
    assert (cn["RemainingCredit"], cn["Status"]) == (20.0, "AUTHORISED")
    (listed,) = cn["Allocations"]
    assert listed["AllocationID"] == alloc["AllocationID"]
    assert listed["Amount"] == 10.0 and listed["Invoice"]["InvoiceID"] == inv["InvoiceID"]
    assert listed["Date"] == "/Date(1785715200000+0000)/"


def test_allocations_that_settle_the_invoice_and_use_up_the_credit_make_both_paid(
    sandbox: Sandbox,
) -> None:
    """Invoice PAID with FullyPaidOnDate when AmountDue reaches 0 (reference §6, §3.5); the credit
    note PAID when RemainingCredit reaches 0 (spec CreditNote.Status)."""
    who = contact()
    inv = make_invoice(sandbox, who, "50.00")  # 60.00
    note = make_note(sandbox, who, "50.00")  # 60.00
    first = allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], "15.00")
    second = allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], "45.00", "2026-08-04")
    assert first.status_code == second.status_code == 200
    got = get_invoice(sandbox, inv["InvoiceID"])
    assert (got["AmountCredited"], got["AmountDue"], got["Status"]) == (60.0, 0.0, "PAID")
    assert got["FullyPaidOnDate"] == "/Date(1785801600000+0000)/"  # 2026-08-04
    (applied,) = got["CreditNotes"]
    assert applied["AppliedAmount"] == 60.0, "one entry per credit note, its amounts summed"
    cn = get_note(sandbox, note["CreditNoteID"])
    assert (cn["RemainingCredit"], cn["Status"]) == (0.0, "PAID")
    assert [a["Amount"] for a in cn["Allocations"]] == [15.0, 45.0]
    # GET /CreditNotes (paged) and GET /Invoices render the same fields.
    listed = raw(sandbox, "GET", "/CreditNotes", params={"page": 1, "pageSize": 1000}).json()
    (row,) = [c for c in listed["CreditNotes"] if c["CreditNoteID"] == note["CreditNoteID"]]
    assert row["RemainingCredit"] == 0.0 and len(row["Allocations"]) == 2
    invoices = raw(sandbox, "GET", "/Invoices", params={"IDs": inv["InvoiceID"]}).json()
    assert invoices["Invoices"][0]["AmountCredited"] == 60.0


def test_deleting_an_allocation_gives_the_amounts_back(sandbox: Sandbox) -> None:
    """Spec deleteCreditNoteAllocations: the Allocation with IsDeleted true; a PAID invoice and
    credit note are AUTHORISED again."""
    who = contact()
    inv = make_invoice(sandbox, who, "10.00")  # 12.00
    note = make_note(sandbox, who, "10.00")  # 12.00
    r = allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], "12.00")
    alloc_id = r.json()["Allocations"][0]["AllocationID"]
    assert get_invoice(sandbox, inv["InvoiceID"])["Status"] == "PAID"
    gone = raw(sandbox, "DELETE", f"/CreditNotes/{note['CreditNoteID']}/Allocations/{alloc_id}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["AllocationID"] == alloc_id and gone.json()["IsDeleted"] is True
    got = get_invoice(sandbox, inv["InvoiceID"])
    assert (got["AmountCredited"], got["AmountDue"], got["Status"]) == (0.0, 12.0, "AUTHORISED")
    assert got["CreditNotes"] == [] and "FullyPaidOnDate" not in got
    cn = get_note(sandbox, note["CreditNoteID"])
    assert (cn["RemainingCredit"], cn["Status"], cn["Allocations"]) == (12.0, "AUTHORISED", [])
    again = raw(sandbox, "DELETE", f"/CreditNotes/{note['CreditNoteID']}/Allocations/{alloc_id}")
    assert again.status_code == 404 and again.text == NOT_FOUND_TEXT


def test_an_allocated_invoice_cannot_be_edited_or_voided(sandbox: Sandbox) -> None:
    """xeroizer#211: "This document cannot be edited as it has a payment or credit note allocated
    to it." (reference §3.5: AUTHORISED→VOIDED only with nothing applied)."""
    who = contact()
    inv = make_invoice(sandbox, who, "10.00")
    note = make_note(sandbox, who, "5.00")
    assert allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], "1.00").status_code == 200
    r = raw(
        sandbox, "POST", f"/Invoices/{inv['InvoiceID']}", body={"Invoices": [{"Status": "VOIDED"}]}
    )
    assert refusal(r) == [
        "This document cannot be edited as it has a payment or credit note allocated to it."
    ]


# ---- refusals ---------------------------------------------------------------------------
def test_more_than_the_remaining_credit_or_the_amount_due_is_refused(sandbox: Sandbox) -> None:
    """xeroizer#320 / xero-php#251: "Credit Note cannot be allocated as amount is greater than
    amount outstanding" (credit left, and what the invoice still owes)."""
    who = contact()
    big = make_invoice(sandbox, who, "1000.00")
    small = make_invoice(sandbox, who, "10.00")  # 12.00 due
    note = make_note(sandbox, who, "25.00")  # 30.00 credit
    assert refusal(allocate(sandbox, note["CreditNoteID"], big["InvoiceID"], "30.01")) == [
        TOO_LARGE
    ]
    assert refusal(allocate(sandbox, note["CreditNoteID"], small["InvoiceID"], "12.01")) == [
        TOO_LARGE
    ]
    assert get_note(sandbox, note["CreditNoteID"])["RemainingCredit"] == 30.0


def test_a_zero_or_negative_amount_is_refused(sandbox: Sandbox) -> None:
    """xero-node#239: a zero amount is a validation error (wording UNVERIFIED)."""
    who = contact()
    inv = make_invoice(sandbox, who, "10.00")
    note = make_note(sandbox, who, "10.00")
    for amount in ("0", "-5.00"):
        assert refusal(allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], amount)) == [
            "Allocation amount must be greater than zero."
        ]


def test_a_draft_credit_note_or_a_draft_or_paid_invoice_cannot_be_allocated(
    sandbox: Sandbox,
) -> None:
    """Only AUTHORISED documents take part; a paid-off invoice: xeroizer#320 verbatim."""
    who = contact()
    inv = make_invoice(sandbox, who, "10.00")
    draft_inv = make_invoice(sandbox, who, "10.00", Status="DRAFT")
    draft_note = make_note(sandbox, who, "10.00", Status="DRAFT")
    note = make_note(sandbox, who, "100.00")
    assert refusal(allocate(sandbox, draft_note["CreditNoteID"], inv["InvoiceID"], "1.00")) == [
        "Credit Note must be AUTHORISED before it can be allocated."
    ]
    assert refusal(allocate(sandbox, note["CreditNoteID"], draft_inv["InvoiceID"], "1.00")) == [
        "Credit Note can only be allocated to an AUTHORISED invoice."
    ]
    assert allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], "12.00").status_code == 200
    assert refusal(allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], "1.00")) == [
        "The invoice you are trying to allocate to has already been paid off",
        TOO_LARGE,
    ]


def test_another_currency_contact_or_invoice_type_is_refused(sandbox: Sandbox) -> None:
    """Allocation stays within one currency, one contact and the matching invoice type
    (xeroizer#320 for the type; the others' wording UNVERIFIED)."""
    who = contact()
    note = make_note(sandbox, who, "50.00")
    eur = make_invoice(sandbox, who, "10.00", CurrencyCode="EUR")
    other = make_invoice(sandbox, contact(), "10.00")
    bill = make_invoice(
        sandbox,
        who,
        "10.00",
        Type="ACCPAY",
        LineItems=[
            {"Description": "Chairs", "Quantity": 1, "UnitAmount": "10.00", "AccountCode": "429"}
        ],
    )
    assert refusal(allocate(sandbox, note["CreditNoteID"], eur["InvoiceID"], "1.00")) == [
        "The credit note and the invoice must be in the same currency."
    ]
    assert refusal(allocate(sandbox, note["CreditNoteID"], other["InvoiceID"], "1.00")) == [
        "The credit note and the invoice must be for the same contact."
    ]
    assert refusal(allocate(sandbox, note["CreditNoteID"], bill["InvoiceID"], "1.00")) == [
        "Credit Note cannot be allocated to an incorrect invoice type"
    ]


def test_an_unknown_credit_note_is_a_404_and_an_unknown_invoice_a_validation_error(
    sandbox: Sandbox,
) -> None:
    """Reference §8: 404 is plain text."""
    who = contact()
    note = make_note(sandbox, who, "10.00")
    missing = str(uuid.uuid4())
    r = allocate(sandbox, missing, missing, "1.00")
    assert r.status_code == 404 and r.text == NOT_FOUND_TEXT
    assert refusal(allocate(sandbox, note["CreditNoteID"], missing, "1.00")) == [
        "Invoice could not be found"
    ]


def test_summarize_errors_false_answers_200_with_each_element(sandbox: Sandbox) -> None:
    """Reference §3.6 and spec createCreditNoteAllocation's summarizeErrors."""
    who = contact()
    inv = make_invoice(sandbox, who, "10.00")
    note = make_note(sandbox, who, "10.00")
    body = {
        "Allocations": [
            {"Invoice": {"InvoiceID": inv["InvoiceID"]}, "Amount": 2, "Date": "2026-08-03"},
            {"Invoice": {"InvoiceID": inv["InvoiceID"]}, "Amount": 99, "Date": "2026-08-03"},
        ]
    }
    r = raw(
        sandbox,
        "PUT",
        f"/CreditNotes/{note['CreditNoteID']}/Allocations",
        body=body,
        params={"summarizeErrors": "false"},
    )
    assert r.status_code == 200
    ok, bad = r.json()["Allocations"]
    assert ok["StatusAttributeString"] == "OK" and ok["Amount"] == 2.0
    assert bad["StatusAttributeString"] == "ERROR"
    assert [m["Message"] for m in bad["ValidationErrors"]] == [TOO_LARGE]
    assert get_note(sandbox, note["CreditNoteID"])["RemainingCredit"] == 10.0


def test_an_allocation_replayed_with_its_idempotency_key_is_applied_once(
    sandbox: Sandbox,
) -> None:
    """Reference §7: the first answer is replayed; the credit moves once."""
    who = contact()
    inv = make_invoice(sandbox, who, "100.00")
    note = make_note(sandbox, who, "50.00")
    key = {"Idempotency-Key": "alloc-" + uuid.uuid4().hex}
    first = allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], "7.00", headers=key)
    again = allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], "7.00", headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert get_invoice(sandbox, inv["InvoiceID"])["AmountCredited"] == 7.0
    assert len(get_note(sandbox, note["CreditNoteID"])["Allocations"]) == 1
    other = allocate(sandbox, note["CreditNoteID"], inv["InvoiceID"], "8.00", headers=key)
    assert other.status_code == 400
    assert "is used with a different request" in other.json()["Message"]


# ---- lock dates -------------------------------------------------------------------------
@pytest.fixture
def locked_2026_07_31(sandbox: Sandbox) -> Any:
    """The demo organisation with its period locked to 31 July 2026, unlocked afterwards."""
    sandbox.set_lock_dates(sandbox.xero_tenant_id, period=date(2026, 7, 31))
    yield sandbox
    sandbox.set_lock_dates(sandbox.xero_tenant_id)


def test_an_allocation_dated_on_or_before_a_lock_date_is_refused(
    locked_2026_07_31: Sandbox,
) -> None:
    """Reference §13: "The document date cannot be before the period lock date, currently set at
    …"; dated ON the lock date is refused too (Xero: "on or before the lock date")."""
    box = locked_2026_07_31
    who = contact()
    inv = make_invoice(box, who, "10.00")
    note = make_note(box, who, "10.00")
    for when in ("2026-07-31", "2026-07-01"):
        assert refusal(allocate(box, note["CreditNoteID"], inv["InvoiceID"], "1.00", when)) == [
            "The document date cannot be before the period lock date, currently set at 31-Jul-2026"
        ]
    assert allocate(box, note["CreditNoteID"], inv["InvoiceID"], "1.00", "2026-08-01").is_success
