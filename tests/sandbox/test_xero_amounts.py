"""Invoice and credit-note arithmetic and line refusals in the Xero sandbox, over real HTTP.

Contract: reference §3.3 (LineItem: UnitAmount 2 dp unless ``unitdp=4``, LineAmount =
Quantity × UnitAmount × (100 − DiscountRate)/100 or − DiscountAmount, tax per line rounded to
2 dp then summed, TaxAmount may be overridden), §3.2 (CurrencyRate 6 dp), §3.4 (pagination),
§10 (money places) and the spec's ``LineItem`` (discounts: "ACCPAY invoices and credit notes in
Xero do not support discounts"). The demo organisation is GBP; account 4000 defaults to OUTPUT2
(20%). Every worked example shows its arithmetic in a comment.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import httpx

from recon.sandbox import Sandbox

SALES = "4000"


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
) -> httpx.Response:
    """One accounting call with a fresh Custom Connection token; amounts sent as JSON text
    numbers so no float ever rounds them."""
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
    content = None
    if body is not None:
        content = json.dumps(body, default=as_json).encode()
        hdrs["Content-Type"] = "application/json"
    return httpx.request(
        method, box.xero_api_url + path, params=params, content=content, headers=hdrs, timeout=30
    )


def parsed(response: httpx.Response) -> Any:
    """The body with numbers as Decimal, so amounts compare to the cent."""
    return json.loads(response.text, parse_float=Decimal, parse_int=Decimal)


def line(unit: str, qty: str = "1", **fields: Any) -> dict[str, Any]:
    return {
        "Description": "Meeting room",
        "Quantity": Decimal(qty),
        "UnitAmount": Decimal(unit),
        "AccountCode": SALES,
        **fields,
    }


def invoice(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "Contact": {"Name": "Amounts Member"},
        "Date": "2026-08-01",
        "DueDate": "2026-08-15",
        "Status": "AUTHORISED",
        "LineItems": list(lines),
        **fields,
    }


def credit_note(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "Type": "ACCRECCREDIT",
        "Contact": {"Name": "Amounts Member"},
        "Date": "2026-08-01",
        "Status": "AUTHORISED",
        "LineItems": list(lines),
        **fields,
    }


def put(box: Sandbox, key: str, doc: dict[str, Any], **params: Any) -> dict[str, Any]:
    """Create one document; it must be accepted."""
    r = raw(box, "PUT", f"/{key}", body={key: [doc]}, params=params or None)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = parsed(r)[key][0]
    return result


def refused(box: Sandbox, key: str, doc: dict[str, Any], **params: Any) -> list[str]:
    """Create one document; it must be refused (reference §8); its messages."""
    r = raw(box, "PUT", f"/{key}", body={key: [doc]}, params=params or None)
    assert r.status_code == 400, r.text
    (element,) = r.json()["Elements"]
    return [m["Message"] for m in element["ValidationErrors"]]


# ---- unitdp ---------------------------------------------------------------------------------
def test_unitdp_4_keeps_four_places_on_invoices_and_credit_notes_alike(sandbox: Sandbox) -> None:
    """§3.3 / "Rounding in Xero": unitdp=4 on every endpoint with line items.

    unitdp=4:  3 × 3.3333 = 9.9999 → LineAmount 10.00; tax 10.00 × 20% = 2.00; Total 12.00.
    default:   3.3333 → 3.33;  3 × 3.33 = 9.99; tax 1.998 → 2.00; Total 11.99.
    """
    for key, make in (("Invoices", invoice), ("CreditNotes", credit_note)):
        four = put(sandbox, key, make(line("3.3333", qty="3")), unitdp=4)
        (li,) = four["LineItems"]
        assert (li["UnitAmount"], li["LineAmount"], li["TaxAmount"]) == (
            Decimal("3.3333"),
            Decimal("10.00"),
            Decimal("2.00"),
        ), key
        assert (four["SubTotal"], four["TotalTax"], four["Total"]) == (10, 2, 12), key
        two = put(sandbox, key, make(line("3.3333", qty="3")))
        (li,) = two["LineItems"]
        assert (li["UnitAmount"], li["LineAmount"]) == (Decimal("3.33"), Decimal("9.99")), key
        assert two["Total"] == Decimal("11.99"), key


def test_unit_amounts_round_half_away_from_zero_before_multiplying(sandbox: Sandbox) -> None:
    """§10 money 2 dp: 24.995 → 25.00 and −24.995 → −25.00 (not banker's 24.99/−24.99);
    2 × 25.00 − 25.00 = 25.00 net, tax 5.00."""
    doc = put(sandbox, "Invoices", invoice(line("24.995", qty="2"), line("-24.995")))
    first, second = doc["LineItems"]
    assert first["UnitAmount"] == Decimal("25.00") and second["UnitAmount"] == Decimal("-25.00")
    assert (first["LineAmount"], second["LineAmount"]) == (Decimal("50.00"), Decimal("-25.00"))
    assert (doc["SubTotal"], doc["TotalTax"], doc["Total"]) == (25, 5, 30)


# ---- tax and discounts ---------------------------------------------------------------------
def test_exclusive_tax_is_rounded_per_line_half_away_from_zero(sandbox: Sandbox) -> None:
    """§3.3: 12.34 × 20% = 2.468 → 2.47; −3.33 × 20% = −0.666 → −0.67; 0.02 × 20% = 0.004 → 0.00.
    SubTotal 12.34 − 3.33 + 0.02 = 9.03; TotalTax 1.80 (not 9.03 × 20% = 1.806 → 1.81);
    Total 10.83."""
    doc = put(sandbox, "Invoices", invoice(line("12.34"), line("-3.33"), line("0.02")))
    assert [li["TaxAmount"] for li in doc["LineItems"]] == [
        Decimal("2.47"),
        Decimal("-0.67"),
        Decimal("0.00"),
    ]
    assert (doc["SubTotal"], doc["TotalTax"], doc["Total"]) == (
        Decimal("9.03"),
        Decimal("1.80"),
        Decimal("10.83"),
    )


def test_inclusive_tax_is_taken_out_of_each_line(sandbox: Sandbox) -> None:
    """§3.3 Inclusive: tax = LineAmount × rate / (100 + rate).
    10.00 × 20/120 = 1.6667 → 1.67; 0.05 × 20/120 = 0.00833 → 0.01; TotalTax 1.68;
    SubTotal 10.05 − 1.68 = 8.37; Total 10.05 (the amounts as entered)."""
    doc = put(
        sandbox,
        "CreditNotes",
        credit_note(line("10.00"), line("0.05"), LineAmountTypes="Inclusive"),
    )
    assert [li["TaxAmount"] for li in doc["LineItems"]] == [Decimal("1.67"), Decimal("0.01")]
    assert [li["LineAmount"] for li in doc["LineItems"]] == [Decimal("10.00"), Decimal("0.05")]
    assert (doc["SubTotal"], doc["TotalTax"], doc["Total"]) == (
        Decimal("8.37"),
        Decimal("1.68"),
        Decimal("10.05"),
    )
    assert doc["RemainingCredit"] == Decimal("10.05")


def test_discounts_come_off_the_line_before_its_tax(sandbox: Sandbox) -> None:
    """§3.3: 3 × 19.99 = 59.97 × (100 − 12.5)/100 = 52.47375 → 52.47, tax 10.494 → 10.49;
    2 × 25.00 − 5.55 = 44.45, tax 8.89. SubTotal 96.92, TotalTax 19.38, Total 116.30,
    TotalDiscount 7.50 + 5.55 = 13.05."""
    doc = put(
        sandbox,
        "Invoices",
        invoice(
            line("19.99", qty="3", DiscountRate=Decimal("12.5")),
            line("25.00", qty="2", DiscountAmount=Decimal("5.55")),
        ),
    )
    first, second = doc["LineItems"]
    assert (first["LineAmount"], first["TaxAmount"]) == (Decimal("52.47"), Decimal("10.49"))
    assert (second["LineAmount"], second["TaxAmount"]) == (Decimal("44.45"), Decimal("8.89"))
    assert (doc["SubTotal"], doc["TotalTax"], doc["Total"]) == (
        Decimal("96.92"),
        Decimal("19.38"),
        Decimal("116.30"),
    )
    assert doc["TotalDiscount"] == Decimal("13.05")


def test_a_supplied_tax_amount_overrides_the_computed_one(sandbox: Sandbox) -> None:
    """§3.3 TaxAmount "can be overriden": 100.00 at 20% would be 20.00; 19.99 is kept,
    Total 119.99. Inclusive: 120.00 with tax 19.98 → SubTotal 100.02."""
    doc = put(sandbox, "Invoices", invoice(line("100.00", TaxAmount=Decimal("19.99"))))
    assert doc["LineItems"][0]["TaxAmount"] == Decimal("19.99")
    assert (doc["TotalTax"], doc["Total"]) == (Decimal("19.99"), Decimal("119.99"))
    inc = put(
        sandbox,
        "Invoices",
        invoice(line("120.00", TaxAmount=Decimal("19.98")), LineAmountTypes="Inclusive"),
    )
    assert (inc["SubTotal"], inc["TotalTax"], inc["Total"]) == (
        Decimal("100.02"),
        Decimal("19.98"),
        Decimal("120.00"),
    )


def test_tax_on_a_zero_rate_line_is_refused(sandbox: Sandbox) -> None:
    """xero-node#768's wording (UNVERIFIED for invoices): a tax the rate cannot give."""
    messages = refused(
        sandbox, "Invoices", invoice(line("10.00", TaxType="NONE", TaxAmount=Decimal("2.00")))
    )
    assert messages == ["Tax amount 2.00 is incorrect for NONE tax type, should be 0.00"]


def test_no_tax_documents_use_xeros_none_type_and_carry_no_tax(sandbox: Sandbox) -> None:
    """§3.2 LineAmountTypes NoTax; §5 the no-tax TaxType is ``NONE``; a TaxAmount sent is
    ignored. An Exclusive line on NONE is taxed at 0%."""
    doc = put(
        sandbox,
        "CreditNotes",
        credit_note(line("40.00", TaxAmount=Decimal("8.00")), LineAmountTypes="NoTax"),
    )
    (li,) = doc["LineItems"]
    assert (li["TaxType"], li["TaxAmount"]) == ("NONE", Decimal("0.00"))
    assert (doc["TotalTax"], doc["Total"]) == (0, Decimal("40.00"))
    mixed = put(sandbox, "Invoices", invoice(line("40.00", TaxType="NONE"), line("10.00")))
    assert [li["TaxAmount"] for li in mixed["LineItems"]] == [Decimal("0.00"), Decimal("2.00")]
    assert mixed["Total"] == Decimal("52.00")


def test_a_currency_rate_sent_is_kept_to_six_places_else_the_day_rate_applies(
    sandbox: Sandbox,
) -> None:
    """§3.2 CurrencyRate (18.6): 1.1234567 → 1.123457; none sent → the sandbox's day rate for
    GBP→EUR (1.150000, the README's fixed demo rate)."""
    sent = put(
        sandbox, "Invoices", invoice(line("10.00"), CurrencyCode="EUR", CurrencyRate="1.1234567")
    )
    assert sent["CurrencyRate"] == Decimal("1.123457")
    default = put(sandbox, "Invoices", invoice(line("10.00"), CurrencyCode="EUR"))
    assert default["CurrencyRate"] == Decimal("1.150000")


# ---- refusals ------------------------------------------------------------------------------
def test_a_negative_quantity_is_refused(sandbox: Sandbox) -> None:
    """Users report "Quantity must not be less than zero" (UNVERIFIED); a negative amount goes on
    UnitAmount instead, which is accepted."""
    assert refused(sandbox, "Invoices", invoice(line("10.00", qty="-1"), line("20.00"))) == [
        "Quantity must not be less than zero"
    ]
    assert refused(sandbox, "CreditNotes", credit_note(line("10.00", qty="-2"))) == [
        "Quantity must not be less than zero"
    ]


def test_credit_note_lines_take_no_discount(sandbox: Sandbox) -> None:
    """Spec LineItem.DiscountRate/DiscountAmount: "credit notes in Xero do not support
    discounts" (the API's wording UNVERIFIED); even a zero is refused."""
    for fields in ({"DiscountRate": Decimal("10")}, {"DiscountAmount": Decimal("0")}):
        assert refused(sandbox, "CreditNotes", credit_note(line("10.00", **fields))) == [
            "Credit notes do not support discounts."
        ]


def test_a_discount_on_a_negative_line_or_above_the_line_is_refused(sandbox: Sandbox) -> None:
    """Xero-OpenAPI#429 and xero-php-oauth2#288, verbatim: even a DiscountAmount of 0.00 on a
    negative line; a zero DiscountRate there is accepted."""
    message = "The discount rate '{}' is invalid. Discount must not be greater than the line total."
    negative = [line("50.00")]
    assert refused(
        sandbox, "Invoices", invoice(*negative, line("-5.00", DiscountAmount=Decimal("0")))
    ) == [message.format("0.00")]
    assert refused(
        sandbox, "Invoices", invoice(*negative, line("-5.00", DiscountRate=Decimal("10")))
    ) == [message.format("10.00")]
    assert refused(
        sandbox, "Invoices", invoice(line("27.82", DiscountAmount=Decimal("27.826")))
    ) == [message.format("27.83")]
    ok = put(sandbox, "Invoices", invoice(*negative, line("-5.00", DiscountRate=Decimal("0"))))
    assert ok["Total"] == Decimal("54.00")


def test_a_negative_total_is_accepted_as_draft_and_refused_on_approval(sandbox: Sandbox) -> None:
    """A DRAFT may fall below zero; SUBMITTED or AUTHORISED may not, on create or on a later
    update (message UNVERIFIED). 10.00 − 15.00 = −5.00 net, tax −1.00, Total −6.00."""
    lines = (line("10.00"), line("-15.00"))
    message = ["Invoice Total must be greater than or equal to zero."]
    for status in ("AUTHORISED", "SUBMITTED"):
        assert refused(sandbox, "Invoices", invoice(*lines, Status=status)) == message
    draft = put(sandbox, "Invoices", invoice(*lines, Status="DRAFT"))
    assert (draft["Status"], draft["Total"]) == ("DRAFT", Decimal("-6.00"))
    r = raw(
        sandbox,
        "POST",
        f"/Invoices/{draft['InvoiceID']}",
        body={"Invoices": [{"Status": "AUTHORISED"}]},
    )
    assert r.status_code == 400
    assert [m["Message"] for m in r.json()["Elements"][0]["ValidationErrors"]] == message
    note = put(sandbox, "CreditNotes", credit_note(*lines, Status="DRAFT"))
    r = raw(
        sandbox,
        "POST",
        f"/CreditNotes/{note['CreditNoteID']}",
        body={"CreditNotes": [{"Status": "AUTHORISED"}]},
    )
    assert r.status_code == 400
    assert [m["Message"] for m in r.json()["Elements"][0]["ValidationErrors"]] == message


def test_a_draft_credit_note_is_approved_by_posting_its_status(sandbox: Sandbox) -> None:
    """§3.5 transitions apply to credit notes: DRAFT → AUTHORISED through POST /CreditNotes/{id};
    RemainingCredit follows the total."""
    note = put(sandbox, "CreditNotes", credit_note(line("10.00"), Status="DRAFT"))
    r = raw(
        sandbox,
        "POST",
        f"/CreditNotes/{note['CreditNoteID']}",
        body={"CreditNotes": [{"Status": "AUTHORISED"}]},
    )
    assert r.status_code == 200, r.text
    (got,) = parsed(r)["CreditNotes"]
    assert (got["CreditNoteID"], got["Status"]) == (note["CreditNoteID"], "AUTHORISED")
    assert (got["CreditNoteNumber"], got["RemainingCredit"]) == (
        note["CreditNoteNumber"],
        Decimal("12.00"),
    )


# ---- paging --------------------------------------------------------------------------------
def test_paged_gets_carry_the_pagination_object(sandbox: Sandbox) -> None:
    """§1 / §3.4: ``pagination`` with page, pageSize, pageCount and itemCount on paged GETs of
    Invoices and CreditNotes; none without ``page``."""
    put(sandbox, "CreditNotes", credit_note(line("1.00"), Reference=uuid.uuid4().hex))
    for key in ("Invoices", "CreditNotes"):
        body = raw(sandbox, "GET", f"/{key}", params={"page": 1, "pageSize": 5}).json()
        page = body["pagination"]
        assert set(page) == {"page", "pageSize", "pageCount", "itemCount"}, key
        assert (page["page"], page["pageSize"]) == (1, 5)
        assert page["itemCount"] >= 1
        assert page["pageCount"] == -(-page["itemCount"] // 5)
        assert len(body[key]) == min(5, page["itemCount"])
        assert "pagination" not in raw(sandbox, "GET", f"/{key}").json()
