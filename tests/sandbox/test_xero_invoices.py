"""The Xero sandbox's invoices and payments over real HTTP, through the client and raw httpx.

Contract: shared/reference/xero-api.md §3 (invoices), §6 (payments), §8 and §13
(errors, verbatim messages). Invoice numbers carry a per-test prefix so tests
sharing the session sandbox never see each other's invoices.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from support import fast_retry, xero_config

from recon.clients.tokens import TokenStore
from recon.clients.xero import XeroClient, parse_xero_date
from recon.errors import ApiRejected, NotFound
from recon.sandbox import Sandbox

NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
SALES, BANK = "4000", "090"


# ---- helpers ------------------------------------------------------------------
def as_json(value: Any) -> Any:
    """Amounts go out as JSON numbers, as the client sends them."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def prefix() -> str:
    return "T" + uuid.uuid4().hex[:8].upper()


def invoice(
    number: str | None, *lines: dict[str, Any], contact: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Type": "ACCREC",
        "Contact": contact if contact is not None else {"Name": "Sandbox Test Member"},
        "Date": "2026-08-01",
        "DueDate": "2026-08-15",
        "Status": "AUTHORISED",
        "LineItems": list(lines) or [line()],
    }
    if number is not None:
        body["InvoiceNumber"] = number
    body.update(fields)
    return body


def line(
    amount: str = "100.00", qty: str = "1", account: str = SALES, **fields: Any
) -> dict[str, Any]:
    return {
        "Description": "Hot desk, August",
        "Quantity": Decimal(qty),
        "UnitAmount": Decimal(amount),
        "AccountCode": account,
        **fields,
    }


def raw(
    box: Sandbox,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    body: Any = None,
    content: bytes | None = None,
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
    }
    if body is not None:
        content = json.dumps(body, default=as_json).encode()
    if content is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    return httpx.request(
        method, box.xero_api_url + path, params=params, content=content, headers=hdrs, timeout=30
    )


def archived_code(box: Sandbox, tenant: str) -> str:
    """The demo chart's planted archived revenue account."""
    code = box.planted["archived_account"]
    (account,) = [a for a in box.xero.books.records(tenant, "Account") if a.get("Code") == code]
    assert account["Status"] == "ARCHIVED"
    return code


def get_json(
    client: XeroClient,
    path: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One GET through the client's public request path (tenant header, retries, Decimal
    parsing)."""
    return client.parse(
        client.request("GET", client.config.api_url + path, params=params, headers=headers)
    )


def count_numbers(client: XeroClient, numbers: list[str]) -> int:
    return sum(1 for _ in client.iter_invoices(invoice_numbers=numbers))


def by_number(client: XeroClient, numbers: list[str], **params: Any) -> list[dict[str, Any]]:
    query = {"InvoiceNumbers": ",".join(numbers), **params}
    return get_json(client, "/Invoices", query)["Invoices"]


# ---- paging -----------------------------------------------------------------------
def test_paging_2500_invoices_with_page_size_1000_takes_exactly_three_calls(
    fresh_sandbox: Sandbox, tmp_path
) -> None:
    box = fresh_sandbox
    tenant = box.xero_tenant_id
    contact = box.xero.books.save_contact(tenant, {"Name": "Paging Member"}, create_only=True).doc
    assert contact is not None
    made = set()
    for i in range(2500):
        out = box.xero.books.save_invoice(
            tenant,
            invoice(f"PG-{i:05d}", contact={"ContactID": contact["ContactID"]}),
            mode="create",
            client_id=box.xero_client_id,
        )
        assert out.doc is not None, out.errors
        made.add(out.doc["InvoiceID"])

    with XeroClient(
        xero_config(box), token_store=TokenStore(tmp_path / "t"), retry=fast_retry()
    ) as client:
        pages = []
        for page in (1, 2, 3, 4):
            body = get_json(
                client, "/Invoices", {"createdByMyApp": "true", "page": page, "pageSize": 1000}
            )
            pages.append(body)
        assert [len(p["Invoices"]) for p in pages] == [1000, 1000, 500, 0]
        assert [p["pagination"] for p in pages[:3]] == [
            {"page": n, "pageSize": 1000, "pageCount": 3, "itemCount": 2500} for n in (1, 2, 3)
        ]

        before = client.calls
        seen = [
            inv["InvoiceID"]
            for page in client.iter_pages(
                "/Invoices", "Invoices", {"createdByMyApp": "true"}, page_size=1000
            )
            for inv in page
        ]
        assert client.calls - before == 3, "a short third page ends the paging"
        assert len(seen) == 2500 and set(seen) == made
        # Paged answers carry line items.
        assert all(inv["LineItems"] for inv in pages[2]["Invoices"])

        default = get_json(client, "/Invoices", {"createdByMyApp": "true", "page": 1})
        assert len(default["Invoices"]) == 100
        assert default["pagination"] == {
            "page": 1,
            "pageSize": 100,
            "pageCount": 25,
            "itemCount": 2500,
        }
        last = get_json(client, "/Invoices", {"createdByMyApp": "true", "page": 25})
        assert len(last["Invoices"]) == 100 and last["pagination"]["page"] == 25
        capped = get_json(
            client, "/Invoices", {"createdByMyApp": "true", "page": 1, "pageSize": 5000}
        )
        assert capped["pagination"]["pageSize"] == 1000 and len(capped["Invoices"]) == 1000


# ---- batches ------------------------------------------------------------------------
def _mixed_batch(box: Sandbox, pfx: str) -> tuple[list[dict[str, Any]], dict[int, str]]:
    archived = archived_code(box, box.xero_tenant_id)
    batch = [invoice(f"{pfx}-{i:02d}") for i in range(50)]
    batch[7]["LineItems"] = [line(account="9999")]
    batch[23]["LineItems"] = [line(account=archived)]
    batch[41].pop("Contact")
    expected = {
        7: "Account code '9999' is not a valid code for this document.",
        23: f"Account code '{archived}' has been archived",
        41: "A Contact must be specified for this type of transaction",
    }
    return batch, expected


def test_a_batch_of_50_with_3_invalid_gives_47_ok_and_3_error_elements(
    sandbox: Sandbox, xero: XeroClient
) -> None:
    pfx = prefix()
    batch, expected = _mixed_batch(sandbox, pfx)
    results = xero.create_invoices(batch)
    assert len(results) == 50
    for i, (sent, got) in enumerate(zip(batch, results, strict=True)):
        if i in expected:
            assert got["StatusAttributeString"] == "ERROR"
            assert got["HasErrors"] is True
            assert got.get("InvoiceID") in (None, "00000000-0000-0000-0000-000000000000")
            messages = [m["Message"] for m in got["ValidationErrors"]]
            assert any(m.startswith(expected[i]) for m in messages), messages
            assert got["InvoiceNumber"] == sent["InvoiceNumber"], (
                "failed elements echo what was sent"
            )
        else:
            assert got["StatusAttributeString"] == "OK"
            assert uuid.UUID(got["InvoiceID"]).int != 0
            assert got["InvoiceNumber"] == sent["InvoiceNumber"]
            assert got["Total"] == Decimal("120.00")
    assert count_numbers(xero, [b["InvoiceNumber"] for b in batch]) == 47


def test_without_summarize_errors_the_batch_answers_400_with_only_the_failures_but_saves_the_rest(
    sandbox: Sandbox, xero: XeroClient
) -> None:
    pfx = prefix()
    batch, expected = _mixed_batch(sandbox, pfx)
    r = raw(sandbox, "PUT", "/Invoices", body={"Invoices": batch})
    assert r.status_code == 400
    body = r.json()
    assert body["ErrorNumber"] == 10
    assert body["Type"] == "ValidationException"
    assert body["Message"] == "A validation exception occurred"
    assert len(body["Elements"]) == 3
    assert [el["InvoiceNumber"] for el in body["Elements"]] == [
        batch[i]["InvoiceNumber"] for i in sorted(expected)
    ]
    for el, i in zip(body["Elements"], sorted(expected), strict=True):
        assert el["ValidationErrors"][0]["Message"].startswith(expected[i])
    # Live Xero's trap: the 47 valid ones were created although the answer was a 400.
    assert count_numbers(xero, [b["InvoiceNumber"] for b in batch]) == 47


def test_the_client_raises_api_rejected_with_the_messages_of_a_summarized_400(
    sandbox: Sandbox, xero: XeroClient
) -> None:
    pfx = prefix()
    batch = [invoice(f"{pfx}-1", line(account="9999"))]
    with pytest.raises(ApiRejected) as err:
        xero.request("PUT", xero.config.api_url + "/Invoices", json_body={"Invoices": batch})
    assert err.value.status == 400
    assert err.value.messages == ["Account code '9999' is not a valid code for this document."]


# ---- totals ------------------------------------------------------------------------------
def test_tax_is_rounded_per_line_so_three_lines_of_3_33_at_20_percent_give_2_01(
    xero: XeroClient,
) -> None:
    (inv,) = xero.create_invoices([invoice(None, line("3.33"), line("3.33"), line("3.33"))])
    assert inv["StatusAttributeString"] == "OK"
    assert [li["TaxAmount"] for li in inv["LineItems"]] == [Decimal("0.67")] * 3
    assert inv["SubTotal"] == Decimal("9.99")
    assert inv["TotalTax"] == Decimal("2.01")
    assert inv["Total"] == Decimal("12.00")
    assert inv["AmountDue"] == Decimal("12.00")
    assert inv["LineAmountTypes"] == "Exclusive"
    assert inv["InvoiceNumber"], "ACCREC invoices get a number when none is sent"
    assert {li["TaxType"] for li in inv["LineItems"]} == {"OUTPUT2"}, (
        "the account's default tax type applies"
    )


def test_inclusive_line_amounts_take_the_tax_out_of_the_amount(xero: XeroClient) -> None:
    (inv,) = xero.create_invoices(
        [invoice(None, line("120.00"), line("10.00"), LineAmountTypes="Inclusive")]
    )
    assert [li["TaxAmount"] for li in inv["LineItems"]] == [Decimal("20.00"), Decimal("1.67")]
    assert [li["LineAmount"] for li in inv["LineItems"]] == [Decimal("120.00"), Decimal("10.00")]
    assert inv["TotalTax"] == Decimal("21.67")
    assert inv["SubTotal"] == Decimal("108.33")
    assert inv["Total"] == Decimal("130.00")


def test_discounts_reduce_the_line_amount_and_its_tax(xero: XeroClient) -> None:
    (inv,) = xero.create_invoices(
        [
            invoice(
                None,
                line("50.00", qty="2", DiscountRate=Decimal("10")),
                line("30.00", DiscountAmount=Decimal("5.00")),
            )
        ]
    )
    first, second = inv["LineItems"]
    assert first["LineAmount"] == Decimal("90.00") and first["TaxAmount"] == Decimal("18.00")
    assert first["DiscountRate"] == Decimal("10")
    assert second["LineAmount"] == Decimal("25.00") and second["TaxAmount"] == Decimal("5.00")
    assert inv["SubTotal"] == Decimal("115.00")
    assert inv["TotalTax"] == Decimal("23.00")
    assert inv["Total"] == Decimal("138.00")
    assert inv["TotalDiscount"] == Decimal("15.00")


def test_no_tax_invoices_carry_no_tax(xero: XeroClient) -> None:
    (inv,) = xero.create_invoices(
        [invoice(None, line("99.99"), line("0.01"), LineAmountTypes="NoTax")]
    )
    assert inv["TotalTax"] == Decimal("0")
    assert inv["SubTotal"] == inv["Total"] == Decimal("100.00")
    assert all(li["TaxAmount"] == 0 for li in inv["LineItems"])
    assert {li["TaxType"] for li in inv["LineItems"]} == {"NONE"}


# ---- PUT versus POST and status rules ---------------------------------------------------------
def test_put_of_an_existing_number_is_refused_while_post_updates_it(xero: XeroClient) -> None:
    number = prefix() + "-DUP"
    (first,) = xero.create_invoices([invoice(number, Reference="first")])
    assert first["StatusAttributeString"] == "OK"
    (again,) = xero.create_invoices([invoice(number, Reference="second")])
    assert again["StatusAttributeString"] == "ERROR"
    assert [m["Message"] for m in again["ValidationErrors"]] == ["Invoice # must be unique."]

    (updated,) = xero.save_invoices([invoice(number, line("200.00"), Reference="second")])
    assert updated["StatusAttributeString"] == "OK"
    assert updated["InvoiceID"] == first["InvoiceID"]
    assert updated["Reference"] == "second"
    assert updated["Total"] == Decimal("240.00")
    assert count_numbers(xero, [number]) == 1
    assert xero.get_invoice(number)["InvoiceID"] == first["InvoiceID"]


def test_a_paid_invoice_cannot_be_edited(xero: XeroClient) -> None:
    (inv,) = xero.create_invoices([invoice(prefix() + "-PAID")])
    (pay,) = xero.create_payments(
        [
            {
                "Invoice": {"InvoiceID": inv["InvoiceID"]},
                "Account": {"Code": BANK},
                "Date": "2026-08-20",
                "Amount": Decimal("120.00"),
            }
        ]
    )
    assert pay["StatusAttributeString"] == "OK"
    with pytest.raises(ApiRejected) as err:
        xero.update_invoice(inv["InvoiceID"], {"LineItems": [line("1.00")]})
    assert err.value.messages == ["Invoice not of valid status for modification"]
    with pytest.raises(ApiRejected):
        xero.update_invoice(inv["InvoiceID"], {"Status": "VOIDED"})
    assert xero.get_invoice(inv["InvoiceID"])["Status"] == "PAID"


def test_a_voided_invoice_cannot_be_edited_or_paid(xero: XeroClient) -> None:
    (inv,) = xero.create_invoices([invoice(prefix() + "-VOID")])
    voided = xero.update_invoice(inv["InvoiceID"], {"Status": "VOIDED"})
    assert voided["Status"] == "VOIDED"
    assert voided["AmountDue"] == 0
    with pytest.raises(ApiRejected) as err:
        xero.update_invoice(inv["InvoiceID"], {"Reference": "changed", "LineItems": [line("5.00")]})
    assert err.value.messages == ["Invoice not of valid status for modification"]
    with pytest.raises(ApiRejected):
        xero.update_invoice(inv["InvoiceID"], {"Status": "AUTHORISED"})
    (pay,) = xero.create_payments(
        [
            {
                "Invoice": {"InvoiceID": inv["InvoiceID"]},
                "Account": {"Code": BANK},
                "Amount": Decimal("1.00"),
            }
        ]
    )
    assert pay["StatusAttributeString"] == "ERROR"
    assert [m["Message"] for m in pay["ValidationErrors"]] == [
        "Payments can only be made against Authorised documents"
    ]


def test_draft_invoices_move_to_authorised_and_cannot_take_payments(xero: XeroClient) -> None:
    (draft,) = xero.create_invoices([invoice(prefix() + "-DRAFT", Status="DRAFT")])
    assert draft["Status"] == "DRAFT"
    (pay,) = xero.create_payments(
        [
            {
                "Invoice": {"InvoiceID": draft["InvoiceID"]},
                "Account": {"Code": BANK},
                "Date": "2026-08-20",
                "Amount": Decimal("10.00"),
            }
        ]
    )
    assert pay["StatusAttributeString"] == "ERROR"
    assert [m["Message"] for m in pay["ValidationErrors"]] == [
        "Payments can only be made against Authorised documents"
    ]
    assert (
        xero.update_invoice(draft["InvoiceID"], {"Status": "AUTHORISED"})["Status"] == "AUTHORISED"
    )


def test_payments_above_the_amount_due_are_refused_and_a_full_payment_makes_the_invoice_paid(
    xero: XeroClient,
) -> None:
    (inv,) = xero.create_invoices([invoice(prefix() + "-PAY")])
    target = {"InvoiceID": inv["InvoiceID"]}
    (too_much,) = xero.create_payments(
        [
            {
                "Invoice": target,
                "Account": {"Code": BANK},
                "Date": "2026-08-20",
                "Amount": Decimal("120.01"),
            }
        ]
    )
    assert too_much["StatusAttributeString"] == "ERROR"
    assert [m["Message"] for m in too_much["ValidationErrors"]] == [
        "Payment amount exceeds the amount outstanding on this document"
    ]

    (part,) = xero.create_payments(
        [
            {
                "Invoice": target,
                "Account": {"Code": BANK},
                "Date": "2026-08-20",
                "Amount": Decimal("20.00"),
            }
        ]
    )
    assert part["Invoice"]["Status"] == "AUTHORISED"
    assert part["Invoice"]["AmountDue"] == Decimal("100.00")
    assert part["Invoice"]["AmountPaid"] == Decimal("20.00")

    (rest,) = xero.create_payments(
        [
            {
                "Invoice": target,
                "Account": {"Code": BANK},
                "Date": "2026-08-25",
                "Amount": Decimal("100.00"),
            }
        ]
    )
    assert rest["StatusAttributeString"] == "OK"
    assert rest["PaymentType"] == "ACCRECPAYMENT"
    assert rest["Status"] == "AUTHORISED"
    assert rest["Amount"] == Decimal("100.00")
    paid = xero.get_invoice(inv["InvoiceID"])
    assert paid["Status"] == "PAID"
    assert paid["AmountDue"] == 0
    assert paid["AmountPaid"] == Decimal("120.00")
    assert parse_xero_date(paid["FullyPaidOnDate"]) == datetime(2026, 8, 25, tzinfo=UTC)
    assert {p["PaymentID"] for p in paid["Payments"]} == {part["PaymentID"], rest["PaymentID"]}

    deleted = xero.delete_payment(rest["PaymentID"])
    assert deleted["Status"] == "DELETED"
    back = xero.get_invoice(inv["InvoiceID"])
    assert back["Status"] == "AUTHORISED"
    assert back["AmountDue"] == Decimal("100.00")
    assert "FullyPaidOnDate" not in back
    assert [p["PaymentID"] for p in back["Payments"]] == [part["PaymentID"]]
    with pytest.raises(ApiRejected):
        xero.delete_payment(rest["PaymentID"])


def test_payments_need_a_bank_account(xero: XeroClient) -> None:
    (inv,) = xero.create_invoices([invoice(prefix() + "-BANK")])
    (pay,) = xero.create_payments(
        [
            {
                "Invoice": {"InvoiceID": inv["InvoiceID"]},
                "Account": {"Code": SALES},
                "Amount": Decimal("1.00"),
            }
        ]
    )
    assert pay["StatusAttributeString"] == "ERROR"
    assert xero.get_invoice(inv["InvoiceID"])["AmountPaid"] == 0


# ---- filters -------------------------------------------------------------------------------------
@pytest.fixture
def four(xero: XeroClient) -> dict[str, Any]:
    """Four invoices of one test (A, B AUTHORISED; C DRAFT; D SUBMITTED; two contacts) and their
    number prefix."""
    pfx = prefix()
    batch = [
        invoice(f"{pfx}-A", contact={"Name": f"{pfx} Alpha"}),
        invoice(f"{pfx}-B", line("50.00"), contact={"Name": f"{pfx} Beta"}),
        invoice(f"{pfx}-C", contact={"Name": f"{pfx} Alpha"}, Status="DRAFT"),
        invoice(
            f"{pfx}-D", contact={"Name": f"{pfx} Beta"}, Status="SUBMITTED", Reference="needle"
        ),
    ]
    made = xero.create_invoices(batch)
    assert [m["StatusAttributeString"] for m in made] == ["OK"] * 4
    return {"prefix": pfx} | {m["InvoiceNumber"][-1]: m for m in made}


def test_where_filters_on_fields_and_on_the_contact(xero: XeroClient, four: dict[str, Any]) -> None:
    pfx = four["prefix"]
    got = [
        i["InvoiceNumber"]
        for i in xero.iter_invoices(
            where=f'InvoiceNumber.StartsWith("{pfx}") AND Status=="AUTHORISED"'
        )
    ]
    assert sorted(got) == [f"{pfx}-A", f"{pfx}-B"]
    alpha = [i["InvoiceNumber"] for i in xero.iter_invoices(where=f'Contact.Name=="{pfx} alpha"')]
    assert sorted(alpha) == [f"{pfx}-A", f"{pfx}-C"], "string equality is case-insensitive"
    dated = [
        i["InvoiceNumber"]
        for i in xero.iter_invoices(
            where=(
                f'InvoiceNumber.StartsWith("{pfx}") AND Date>=DateTime(2026,08,01) AND '
                'Date<DateTime(2026, 8, 2) AND Type=="ACCREC"'
            )
        )
    ]
    assert sorted(dated) == [f"{pfx}-{k}" for k in "ABCD"]
    assert (
        list(
            xero.iter_invoices(
                where=f'InvoiceNumber.StartsWith("{pfx}") AND DueDate<DateTime(2026,08,01)'
            )
        )
        == []
    )
    cid = four["B"]["Contact"]["ContactID"]
    beta = [
        i["InvoiceNumber"]
        for i in xero.iter_invoices(where=f'Contact.ContactID==Guid("{cid}") AND Total>100')
    ]
    assert beta == [f"{pfx}-D"]


def test_statuses_invoice_numbers_and_ids_filter_as_lists(
    xero: XeroClient, four: dict[str, Any]
) -> None:
    pfx = four["prefix"]
    numbers = [f"{pfx}-{k}" for k in "ABCD"]
    got = [
        i["InvoiceNumber"]
        for i in xero.iter_invoices(invoice_numbers=numbers, statuses=["DRAFT", "SUBMITTED"])
    ]
    assert sorted(got) == [f"{pfx}-C", f"{pfx}-D"]
    ids = [four["A"]["InvoiceID"], four["D"]["InvoiceID"].upper()]
    assert sorted(i["InvoiceNumber"] for i in xero.iter_invoices(ids=ids)) == [
        f"{pfx}-A",
        f"{pfx}-D",
    ]
    assert [i["InvoiceNumber"] for i in by_number(xero, numbers, searchTerm="NEEDLE")] == [
        f"{pfx}-D"
    ]
    assert sorted(
        i["InvoiceNumber"]
        for i in by_number(xero, numbers, ContactIDs=four["A"]["Contact"]["ContactID"])
    ) == [f"{pfx}-A", f"{pfx}-C"]


def test_order_sorts_ascending_and_descending(xero: XeroClient, four: dict[str, Any]) -> None:
    pfx = four["prefix"]
    numbers = [f"{pfx}-{k}" for k in "ABCD"]
    assert [
        i["InvoiceNumber"]
        for i in xero.iter_invoices(invoice_numbers=numbers, order="InvoiceNumber DESC")
    ] == numbers[::-1]
    by_total = [
        i["InvoiceNumber"]
        for i in xero.iter_invoices(invoice_numbers=numbers, order="Total ASC,InvoiceNumber DESC")
    ]
    assert by_total == [f"{pfx}-B", f"{pfx}-D", f"{pfx}-C", f"{pfx}-A"]


def test_unpaged_multi_invoice_gets_have_no_line_items_but_paged_and_single_ones_do(
    xero: XeroClient, four: dict[str, Any]
) -> None:
    pfx = four["prefix"]
    numbers = [f"{pfx}-{k}" for k in "ABCD"]
    unpaged = by_number(xero, numbers)
    assert len(unpaged) == 4
    assert all(not inv.get("LineItems") for inv in unpaged)
    assert all(inv["Total"] > 0 for inv in unpaged), "totals are still there"
    paged = by_number(xero, numbers, page=1)
    assert all(len(inv["LineItems"]) == 1 for inv in paged)
    assert len(xero.get_invoice(four["A"]["InvoiceID"])["LineItems"]) == 1
    summary = by_number(xero, numbers, page=1, summaryOnly="true")
    assert all(not inv.get("LineItems") for inv in summary)


def test_created_by_my_app_keeps_only_the_callers_invoices(
    sandbox: Sandbox, xero: XeroClient
) -> None:
    pfx = prefix()
    (_mine,) = xero.create_invoices([invoice(f"{pfx}-MINE")])
    theirs = sandbox.xero.books.save_invoice(
        sandbox.xero_tenant_id, invoice(f"{pfx}-THEIRS"), mode="create", client_id="another-app"
    )
    assert theirs.doc is not None
    numbers = [f"{pfx}-MINE", f"{pfx}-THEIRS"]
    assert len(by_number(xero, numbers)) == 2
    assert [i["InvoiceNumber"] for i in by_number(xero, numbers, createdByMyApp="true")] == [
        f"{pfx}-MINE"
    ]


def test_if_modified_since_takes_iso_and_rfc_1123_timestamps(
    fresh_sandbox: Sandbox, tmp_path
) -> None:
    box = fresh_sandbox
    with XeroClient(
        xero_config(box), token_store=TokenStore(tmp_path / "t"), retry=fast_retry()
    ) as client:
        client.create_invoices([invoice("OLD-1"), invoice("OLD-2")])
        box.clock.advance(5)
        since = box.clock.now().replace(microsecond=0)
        box.clock.advance(5)
        client.create_invoices([invoice("NEW-1")])
        old = client.get_invoice("OLD-2")
        box.clock.advance(5)
        client.update_invoice(old["InvoiceID"], {"Reference": "touched"})

        got = sorted(i["InvoiceNumber"] for i in client.iter_invoices(modified_since=since))
        assert got == ["NEW-1", "OLD-2"]
        for header in (
            since.strftime("%Y-%m-%dT%H:%M:%S"),
            since.isoformat(),
            format_datetime(since, usegmt=True),
            since.astimezone(timezone(timedelta(hours=2))).isoformat(),
        ):
            body = get_json(client, "/Invoices", {"page": 1}, {"If-Modified-Since": header})
            assert sorted(i["InvoiceNumber"] for i in body["Invoices"]) == ["NEW-1", "OLD-2"], (
                header
            )
        later = format_datetime(box.clock.now() + timedelta(seconds=60), usegmt=True)
        assert (
            get_json(client, "/Invoices", {"page": 1}, {"If-Modified-Since": later})["Invoices"]
            == []
        )


# ---- validation messages -------------------------------------------------------------------------
def test_a_currency_the_organisation_has_not_enabled_is_refused(
    sandbox: Sandbox, xero: XeroClient
) -> None:
    enabled = {c["Code"] for c in get_json(xero, "/Currencies")["Currencies"]}
    code = next(c for c in ("USD", "JPY", "CHF", "CAD", "SEK") if c not in enabled)
    (got,) = xero.create_invoices([invoice(prefix() + "-FX", CurrencyCode=code)])
    assert got["StatusAttributeString"] == "ERROR"
    assert [m["Message"] for m in got["ValidationErrors"]] == [
        f"Organisation is not subscribed to currency {code}"
    ]


def test_a_tax_type_the_account_does_not_allow_is_refused(xero: XeroClient) -> None:
    rates = get_json(xero, "/TaxRates")["TaxRates"]
    wrong = next(
        r["TaxType"] for r in rates if r["Status"] == "ACTIVE" and not r.get("CanApplyToRevenue")
    )
    (got,) = xero.create_invoices([invoice(prefix() + "-TAX", line(TaxType=wrong))])
    assert got["StatusAttributeString"] == "ERROR"
    assert [m["Message"] for m in got["ValidationErrors"]] == [
        f"The TaxType code '{wrong}' cannot be used with account code '{SALES}'."
    ]
    (unknown,) = xero.create_invoices([invoice(prefix() + "-TAX2", line(TaxType="GST on Income"))])
    assert [m["Message"] for m in unknown["ValidationErrors"]] == [
        "The TaxType code GST on Income does not exist or cannot be used for this type of "
        "transaction."
    ]


def test_a_bank_account_on_an_invoice_line_is_not_a_valid_code(xero: XeroClient) -> None:
    (got,) = xero.create_invoices([invoice(prefix() + "-BNK", line(account=BANK))])
    assert [m["Message"] for m in got["ValidationErrors"]] == [
        f"Account code '{BANK}' is not a valid code for this document."
    ]


def test_bad_json_is_a_post_data_invalid_exception(sandbox: Sandbox) -> None:
    r = raw(sandbox, "PUT", "/Invoices", content=b'{"Invoices": [ {"Type": "ACCREC", ')
    assert r.status_code == 400
    body = r.json()
    assert body["ErrorNumber"] == 14
    assert body["Type"] == "PostDataInvalidException"
    assert body["Message"].startswith("JSON for post data was invalid,")


def test_a_bad_where_is_a_query_parse_exception(sandbox: Sandbox, xero: XeroClient) -> None:
    r = raw(sandbox, "GET", "/Invoices", params={"where": 'Status=="DRAFT" AND'})
    assert r.status_code == 400
    assert r.json() == {
        "ErrorNumber": 16,
        "Type": "QueryParseException",
        "Message": "Expression expected",
    }
    with pytest.raises(ApiRejected) as err:
        xero.fetch_invoices(where="Status==")
    assert err.value.messages == ["Expression expected"]


def test_an_unknown_invoice_or_path_is_a_plain_text_404(sandbox: Sandbox, xero: XeroClient) -> None:
    for path in (f"/Invoices/{uuid.uuid4()}", "/Invoices/NO-SUCH-NUMBER", "/NoSuchCollection"):
        r = raw(sandbox, "GET", path)
        assert r.status_code == 404, path
        assert r.text == NOT_FOUND_TEXT
        assert r.headers["Content-Type"].startswith("text/plain")
    with pytest.raises(NotFound):
        xero.get_invoice(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        xero.update_invoice(str(uuid.uuid4()), {"Reference": "x"})


def test_routes_and_query_names_are_case_insensitive(sandbox: Sandbox) -> None:
    pfx = prefix()
    r = raw(
        sandbox,
        "PUT",
        "/invoices",
        params={"summarizeerrors": "false"},
        body={"Invoices": [invoice(f"{pfx}-CASE")]},
    )
    assert r.status_code == 200
    got = raw(sandbox, "GET", "/INVOICES", params={"invoicenumbers": f"{pfx}-CASE"})
    assert [i["InvoiceNumber"] for i in got.json()["Invoices"]] == [f"{pfx}-CASE"]


def test_automatic_invoice_numbers_skip_numbers_already_taken(
    fresh_sandbox: Sandbox, tmp_path
) -> None:
    with XeroClient(
        xero_config(fresh_sandbox), token_store=TokenStore(tmp_path / "t"), retry=fast_retry()
    ) as client:
        (first,) = client.create_invoices([invoice(None)])
        n = int(first["InvoiceNumber"].split("-")[1])
        taken = f"INV-{n + 2:04d}"
        (explicit,) = client.create_invoices([invoice(taken)])
        assert explicit["StatusAttributeString"] == "OK"
        made = client.create_invoices([invoice(None), invoice(None)])
        numbers = [first["InvoiceNumber"], taken] + [m["InvoiceNumber"] for m in made]
        assert len(set(numbers)) == 4, numbers
        assert all(len(by_number(client, [num])) == 1 for num in numbers)


# ---- lock dates (reference §6 Organisation, §13) --------------------------------------------
@pytest.fixture
def locked_2021(sandbox: Sandbox) -> Any:
    """The demo organisation locked: end of year 30 Jun 2021, period 31 Dec 2021; unlocked after.
    Only documents dated in 2021 or before are affected, so other tests never meet the locks."""
    sandbox.set_lock_dates(
        sandbox.xero_tenant_id, period=date(2021, 12, 31), end_of_year=date(2021, 6, 30)
    )
    yield sandbox
    sandbox.set_lock_dates(sandbox.xero_tenant_id)


PERIOD_LOCKED = (
    "The document date cannot be before the period lock date, currently set at 31-Dec-2021"
)
YEAR_LOCKED = (
    "The document date cannot be before the end of year lock date, currently set at 30-Jun-2021"
)


def messages_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 400, response.text
    (element,) = response.json()["Elements"]
    return [m["Message"] for m in element["ValidationErrors"]]


def test_the_organisation_shows_lock_dates_only_while_they_are_set(locked_2021: Sandbox) -> None:
    """§6: PeriodLockDate / EndOfYearLockDate as MS dates (§10), "only when set"."""
    (org,) = raw(locked_2021, "GET", "/Organisation").json()["Organisations"]
    assert org["PeriodLockDate"] == "/Date(1640908800000+0000)/"  # 2021-12-31
    assert org["EndOfYearLockDate"] == "/Date(1625011200000+0000)/"  # 2021-06-30
    locked_2021.set_lock_dates(locked_2021.xero_tenant_id)
    (org,) = raw(locked_2021, "GET", "/Organisation").json()["Organisations"]
    assert "PeriodLockDate" not in org and "EndOfYearLockDate" not in org


def test_approved_invoices_and_credit_notes_on_or_before_a_lock_date_are_refused(
    locked_2021: Sandbox,
) -> None:
    """§13 verbatim; ON the lock date is refused too (Xero: "on or before the lock date"); the
    end of year lock is named when both apply."""
    box = locked_2021
    for day, expected in (
        ("2021-12-31", PERIOD_LOCKED),
        ("2021-07-01", PERIOD_LOCKED),
        ("2021-06-30", YEAR_LOCKED),
    ):
        r = raw(box, "PUT", "/Invoices", body={"Invoices": [invoice(None, Date=day)]})
        assert messages_of(r) == [expected], day
        note = {
            "Type": "ACCRECCREDIT",
            "Contact": {"Name": "Sandbox Test Member"},
            "Date": day,
            "Status": "AUTHORISED",
            "LineItems": [line()],
        }
        r = raw(box, "PUT", "/CreditNotes", body={"CreditNotes": [note]})
        assert messages_of(r) == [expected], day
    r = raw(box, "PUT", "/Invoices", body={"Invoices": [invoice(None, Date="2022-01-01")]})
    assert r.status_code == 200


def test_a_draft_may_be_dated_in_a_locked_period_but_not_approved_until_it_is_unlocked(
    locked_2021: Sandbox,
) -> None:
    """Xero's help: with a lock date set users "can still create draft invoices … and submit
    these items for approval"; approving needs the period open."""
    box = locked_2021
    r = raw(
        box,
        "PUT",
        "/Invoices",
        body={"Invoices": [invoice(None, Date="2021-11-01", Status="DRAFT")]},
    )
    assert r.status_code == 200
    invoice_id = r.json()["Invoices"][0]["InvoiceID"]
    approve = {"Invoices": [{"Status": "AUTHORISED"}]}
    assert messages_of(raw(box, "POST", f"/Invoices/{invoice_id}", body=approve)) == [PERIOD_LOCKED]
    box.set_lock_dates(box.xero_tenant_id)
    r = raw(box, "POST", f"/Invoices/{invoice_id}", body=approve)
    assert r.status_code == 200 and r.json()["Invoices"][0]["Status"] == "AUTHORISED"


def test_an_approved_invoice_in_a_period_locked_later_cannot_be_voided_or_paid(
    sandbox: Sandbox,
) -> None:
    """§13: once locked, a document dated in the period cannot change, nor take a payment dated
    in it (payment wording UNVERIFIED)."""
    r = raw(sandbox, "PUT", "/Invoices", body={"Invoices": [invoice(None, Date="2021-11-01")]})
    invoice_id = r.json()["Invoices"][0]["InvoiceID"]
    sandbox.set_lock_dates(sandbox.xero_tenant_id, period=date(2021, 12, 31))
    try:
        void = {"Invoices": [{"Status": "VOIDED"}]}
        assert messages_of(raw(sandbox, "POST", f"/Invoices/{invoice_id}", body=void)) == [
            "Document cannot be edited as it is currently dated before period lock date"
        ]
        pay = {
            "Invoice": {"InvoiceID": invoice_id},
            "Account": {"Code": BANK},
            "Date": "2021-12-31",
            "Amount": 1,
        }
        assert messages_of(raw(sandbox, "PUT", "/Payments", body={"Payments": [pay]})) == [
            PERIOD_LOCKED
        ]
        pay["Date"] = "2022-01-03"
        assert raw(sandbox, "PUT", "/Payments", body={"Payments": [pay]}).status_code == 200
    finally:
        sandbox.set_lock_dates(sandbox.xero_tenant_id)
    # Unlocked, the void is refused for the payment now (reference §3.5), not the lock.
    r = raw(sandbox, "POST", f"/Invoices/{invoice_id}", body={"Invoices": [{"Status": "VOIDED"}]})
    assert messages_of(r) == ["Invoice not of valid status for modification"]
