"""The fake Nexudus API's billing rules: invoice updates and ledger-entry payments.

No HTTP routing here: helpers that load an invoice, apply a PUT's writable
fields (read-only fields refused unless sent back unchanged), and validate a
payment ledger entry against its invoice, raising ``Rejected`` with every field
error.

Floor 0: imports only ``recon.sandbox.*`` and the leaves ``recon.money`` and
``recon.errors``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from recon.money import CENT, ZERO, D
from recon.sandbox import jsonutil
from recon.sandbox.http import Request, Response
from recon.sandbox.nexudus_records import INVOICE_FIELDS, FieldError, Rejected, _iso, _kind, _parse_when

# ASSUMPTION: PUT may change only these. The reference says most status fields are
# read-only and PaidOn is writable; SystemId is "free text only the API can read
# and write"; PurchaseOrder and Description are plain text a back office edits.
# Paid, PaidAmount, Void, Draft and the Xero transfer flags (XeroInvoiceTransfered,
# XeroPaymentTransfered) are status fields, so read-only: payments go through a
# ledger entry, transfer flags are Nexudus' own Xero integration's business.
WRITABLE_INVOICE_FIELDS = ("SystemId", "PaidOn", "PurchaseOrder", "Description")


def _not_found(raw_id: Any) -> Response:
    # ASSUMPTION: 404 with the error shape's Status/Message and no field errors.
    return Response.json(
        {"Status": 404, "Message": f"CoworkerInvoice {raw_id} was not found.", "Errors": [], "WasSuccessful": False},
        status=404,
    )


def _json_object(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise Rejected("The request body must be a JSON object.", [FieldError("", "Expected a JSON object.", None)])
    return body


def _get_ci(body: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A body value by key, case-insensitively (as ASP.NET JSON binding reads keys)."""
    for key, value in body.items():
        if key.lower() == name.lower():
            return value
    return default


def _load_invoice(db: sqlite3.Connection, raw_id: Any) -> dict[str, Any] | None:
    if isinstance(raw_id, bool):
        return None
    try:
        invoice_id = int(raw_id)
    except (TypeError, ValueError):
        return None
    row = db.execute("SELECT doc FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
    return None if row is None else dict(jsonutil.loads(row[0]))


def _same(kind: str, old: Any, new: Any) -> bool:
    """Whether a value sent back equals the stored one (dates compared as times)."""
    if kind == "date" and old and new and isinstance(new, str):
        try:
            return _parse_when(str(old))[0] == _parse_when(new)[0]
        except ValueError:
            return False
    if kind == "decimal" and old is not None and new is not None and not isinstance(new, (bool, str)):
        return D(old) == D(new)
    return bool(old == new and type(old) is type(new)) or (old in (None, "") and new in (None, ""))


def _apply_invoice_changes(doc: dict[str, Any], body: Mapping[str, Any]) -> list[FieldError]:
    """Set the writable fields from ``body`` on ``doc``; return the field errors."""
    known = {n.lower(): n for n in (*INVOICE_FIELDS, *doc)}
    writable = {n.lower() for n in WRITABLE_INVOICE_FIELDS}
    errors: list[FieldError] = []
    for key, value in body.items():
        name = known.get(key.lower())
        if name is None or name == "Id":
            continue
        if key.lower() in writable:
            error = _set_writable(doc, name, value)
        elif _same(_kind(name), doc.get(name), value):
            error = None
        else:
            error = FieldError(name, f"{name} is read-only through the API.", value)
        if error:
            errors.append(error)
    return errors


def _set_writable(doc: dict[str, Any], name: str, value: Any) -> FieldError | None:
    if name == "PaidOn":
        if value in (None, ""):
            doc[name] = None
            return None
        try:
            doc[name] = _iso(_parse_when(str(value))[0])
        except ValueError:
            return FieldError(name, "PaidOn must be an ISO 8601 date or date-time.", value)
        return None
    if value is not None and not isinstance(value, str):
        return FieldError(name, f"{name} must be text.", value)
    doc[name] = value
    return None


@dataclass(frozen=True)
class _Payment:
    credit: Decimal
    date: str
    description: str
    code: str | None


def _check_payment(body: Mapping[str, Any], invoice: dict[str, Any] | None, now: str) -> _Payment:
    """Validate a ledger entry against its invoice; raise Rejected with every field error."""
    errors: list[FieldError] = []

    def refuse(name: str, message: str) -> None:
        errors.append(FieldError(name, message, _get_ci(body, name)))

    credit = _amount(_get_ci(body, "Credit"))
    if credit is None or credit <= 0:
        refuse("Credit", "Credit must be an amount above zero.")
    if _amount(_get_ci(body, "Debit")) not in (None, ZERO):
        refuse("Debit", "Only payments (Credit) can be recorded against an invoice here.")
    description = _get_ci(body, "Description")
    if not isinstance(description, str) or not description.strip():
        refuse("Description", "Description is required.")
    code = _get_ci(body, "Code")
    if code is not None and not isinstance(code, str):
        refuse("Code", "Code must be text.")
    when = _get_ci(body, "Date")
    paid_on = now
    if when not in (None, ""):
        try:
            paid_on = _iso(_parse_when(str(when))[0])
        except ValueError:
            refuse("Date", "Date must be an ISO 8601 date or date-time.")
    if invoice is None:
        refuse("CoworkerInvoiceId", "No such invoice.")
    else:
        _check_invoice_payable(body, invoice, credit, refuse)
    if errors:
        raise Rejected("The ledger entry could not be added.", errors)
    assert credit is not None
    return _Payment(credit, paid_on, str(description), code)


def _check_invoice_payable(
    body: Mapping[str, Any], invoice: Mapping[str, Any], credit: Decimal | None, refuse: Callable[[str, str], None]
) -> None:
    """The invoice-side rules: owner, location, status, and no paying beyond what is due.

    ASSUMPTION: BusinessId and CoworkerId are required and must be the invoice's;
    a credit note is not paid through a ledger entry.
    """
    if _as_int(_get_ci(body, "CoworkerId")) != invoice.get("CoworkerId"):
        refuse("CoworkerId", f"The invoice {invoice.get('InvoiceNumber')} belongs to another coworker.")
    if _as_int(_get_ci(body, "BusinessId")) != invoice.get("BusinessId"):
        refuse("BusinessId", f"The invoice {invoice.get('InvoiceNumber')} was issued by another location.")
    if invoice.get("Void"):
        refuse("CoworkerInvoiceId", "The invoice is void and cannot be paid.")
    elif invoice.get("Draft"):
        refuse("CoworkerInvoiceId", "The invoice is a draft; finalise it before recording a payment.")
    elif invoice.get("CreditNote"):
        refuse("CoworkerInvoiceId", "A credit note cannot be paid.")
    else:
        due = D(invoice.get("TotalAmount")) - D(invoice.get("PaidAmount"))
        if due <= 0:
            refuse("CoworkerInvoiceId", f"The invoice {invoice.get('InvoiceNumber')} is already paid.")
        elif credit is not None and credit > due:
            refuse("Credit", f"Credit {_money_text(credit)} is more than the amount due ({_money_text(due)}).")


def _apply_payment(invoice: dict[str, Any], payment: _Payment, now: str) -> None:
    paid = D(invoice.get("PaidAmount")) + payment.credit
    invoice["PaidAmount"] = paid
    if paid >= D(invoice.get("TotalAmount")):
        invoice["Paid"] = True
        invoice["PaidOn"] = payment.date
    invoice["UpdatedOn"] = now


def _money_text(amount: Decimal) -> str:
    """An amount with its cents (JSON storage turns 140.00 into 140.0)."""
    return str(amount.quantize(CENT)) if amount == amount.quantize(CENT) else str(amount)


def _amount(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return D(value)
    except ValueError:
        return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
