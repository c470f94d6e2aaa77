"""What a person does in Nexudus' admin UI, for tests to set up situations: the desk.

No HTTP here. Two parts, one set of rules:

* ``run_command`` applies the invoice commands of ``shared/reference/nexudus.md``
  §9 (``VOID_INVOICE``, ``COWORKER_INVOICE_CANCEL``, ``COWORKER_INVOICE_DELETE``)
  inside one write transaction; ``nexudus_app`` serves it as ``POST
  /api/billing/coworkerinvoices/runcommand`` and the desk's shortcuts call it too.
  A refusal raises ``CommandRefused`` (the route answers it as §4's "200 yet
  failed": run-command failures answer 200 with ``WasSuccessful: false``).
* ``NexudusDesk`` (``sandbox.nexudus.desk``) holds the controls the admin UI has
  and the API has not (§7.1 "Invoices cannot be created through the API; billing
  runs raise them"): raise an invoice with the lines given, re-price it, void,
  credit, delete, part-pay.

Every change sets the invoice's ``UpdatedOn`` to the server's now, so a client
reading an ``UpdatedOn`` range sees it (§3).

Imports nothing of recon outside ``recon.sandbox``.
"""

from __future__ import annotations

import math
import re
import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from recon.sandbox import jsonutil
from recon.sandbox.clock import Clock
from recon.sandbox.decimals import ZERO, D, round_cents
from recon.sandbox.nexudus_billing import (
    LINE_ECHOES,
    get_ci,
    load_doc,
    new_ledger_entry,
    write_invoice,
)
from recon.sandbox.nexudus_records import INVOICE, LINE, insert_sql, iso, parse_when, sql_row
from recon.sandbox.store import Store

__all__ = [
    "COMMANDS",
    "CommandRefused",
    "CommandResult",
    "NexudusDesk",
    "run_command",
]

# --------------------------------------------------------------------------- rules, in one place

VOID: Final = "VOID_INVOICE"
CANCEL: Final = "COWORKER_INVOICE_CANCEL"
DELETE: Final = "COWORKER_INVOICE_DELETE"
COMMANDS: Final = (VOID, CANCEL, DELETE)  # §9, the ones the sandbox runs
HUNDRED: Final = Decimal(100)
CENTS0: Final = Decimal("0.00")
RATE_ONE: Final = Decimal("1.0000")  # TransactionExchangeRate of a same-currency invoice (seed)
# §9 COWORKER_INVOICE_CANCEL parameter ``Amount{invoiceId}`` (FW live), e.g. ``Amount1234``.
AMOUNT_PARAMETER: Final = re.compile(r"amount(\d+)", re.IGNORECASE)

# ASSUMPTION (§9 gives no wording): the messages of refused commands.
UNKNOWN_COMMAND: Final = "The command '{}' does not exist or is not available in this sandbox."
NO_SUCH_INVOICE: Final = "The invoice {} does not exist."
PAID_NOT_VOIDED: Final = "Invoice {} has been paid and cannot be voided."
ALREADY_VOID: Final = "Invoice {} is already void."
VOID_NOT_CANCELLED: Final = "Invoice {} is void and cannot be cancelled."
DRAFT_NOT_CANCELLED: Final = "Invoice {} is a draft: delete it instead of cancelling it."
NOTE_NOT_CANCELLED: Final = "Invoice {} is a credit note and cannot be cancelled."
NOTHING_TO_CREDIT: Final = "Invoice {} has nothing left to credit."
BAD_AMOUNT: Final = "The amount to credit on invoice {} must be above zero and at most {}."


class CommandRefused(Exception):
    """A run command Nexudus refuses (§4: answered 200 with ``WasSuccessful: false``)."""

    def __init__(self, messages: Sequence[str], ids: Sequence[Any] = ()) -> None:
        self.messages = list(messages)
        self.ids = list(ids)
        super().__init__("\n".join(self.messages))


@dataclass
class CommandResult:
    """What a command did: §4's ``Message`` and ``Value`` (one record, or a list for several)."""

    message: str
    value: Any
    records: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- values


def _number(value: Any) -> Decimal:
    """A line value as a Decimal; ValueError when it is no finite number."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"not an amount: {value!r}")
    return D(value)


def _stored_raw(value: Any) -> Any:
    """A value as ``raw=True`` stores it: as given, but JSON-safe (non-finite numbers as text)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return Decimal(repr(value))
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal) and not value.is_finite():
        if value.is_nan():
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _quantity(value: Decimal) -> int | Decimal:
    """Quantity as Nexudus' integer when it is whole, else the Decimal as given."""
    return int(value) if value == value.to_integral_value() else value


def _summable(value: Any) -> Decimal | None:
    """A stored line amount that adds up (a finite number), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = D(value)
    except (ValueError, InvalidOperation):
        return None
    return number


def _when(value: datetime | str | None, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, datetime):
        return iso(value)
    return iso(parse_when(value))


def _next_id(db: sqlite3.Connection) -> int:
    """An id above every invoice's and line's (the seed numbers all records from one counter)."""
    row = db.execute(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM invoices), 0), "
        "COALESCE((SELECT MAX(id) FROM invoice_lines), 0)) + 1"
    ).fetchone()
    return int(row[0])


def _doc_by(db: sqlite3.Connection, table: str, where: str, args: Iterable[Any]) -> dict[str, Any]:
    row = db.execute(f"SELECT doc FROM {table} WHERE {where} LIMIT 1", tuple(args)).fetchone()
    return {} if row is None else dict(jsonutil.loads(row[0]))


def _lines_of(db: sqlite3.Connection, invoice_id: int) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT doc FROM invoice_lines WHERE coworker_invoice_id = ? ORDER BY id", (invoice_id,)
    ).fetchall()
    lines = [dict(jsonutil.loads(r[0])) for r in rows]
    return sorted(lines, key=lambda ln: (_summable(ln.get("Position")) or 0, ln["Id"]))


def _write_line(db: sqlite3.Connection, line: dict[str, Any]) -> None:
    db.execute(insert_sql(LINE), sql_row(LINE, line))


def _is_inclusive(invoice: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> bool:
    """Whether an invoice's line amounts include tax, read from its totals (nexudus.md §7.2):
    Σ SubTotal = TotalAmount with some tax means gross amounts."""
    subs = [_summable(ln.get("SubTotal")) for ln in lines]
    taxes = [_summable(ln.get("TaxAmount")) for ln in lines]
    tax = sum((t for t in taxes if t is not None), ZERO)
    total = _summable(invoice.get("TotalAmount"))
    return bool(tax) and total == sum((s for s in subs if s is not None), ZERO)


# --------------------------------------------------------------------------- numbering


def next_invoice_number(db: sqlite3.Connection, business_id: int) -> str:
    """The next number of a location's sequence, unused by any invoice.

    ASSUMPTION (§7.1: "finalising assigns the number", the format is a location
    setting): the location's latest numbered invoice with its trailing digits
    plus one (``SHO-2026-00327`` → ``SHO-2026-00328``); ``DESK-<location>-00001``
    for a location without one.
    """
    row = db.execute(
        "SELECT invoice_number FROM invoices WHERE business_id = ? AND invoice_number IS NOT NULL "
        "AND invoice_number != '' ORDER BY id DESC LIMIT 1",
        (business_id,),
    ).fetchone()
    match = re.fullmatch(r"(.*?)(\d+)", str(row[0])) if row else None
    prefix, digits = (match.group(1), match.group(2)) if match else (f"DESK-{business_id}-", "0")
    n = int(digits)
    while True:
        n += 1
        number = f"{prefix}{n:0{len(digits)}d}" if match else f"{prefix}{n:05d}"
        taken = db.execute("SELECT 1 FROM invoices WHERE invoice_number = ?", (number,)).fetchone()
        if taken is None:
            return number


# --------------------------------------------------------------------------- lines


def price_line(
    given: Mapping[str, Any],
    *,
    inclusive: bool,
    raw: bool,
    tax_rates: Mapping[str, Decimal],
    accounts: Mapping[str, str],
) -> dict[str, Any]:
    """A line's own fields from what a person typed (the echoes and ids come later).

    Not ``raw``: Quantity, UnitPrice, DiscountAmount (default 0) and TaxRate
    (default: the location's TaxRate record of that name, 0 for ``[No Tax]`` or
    an unknown name) are numbers; SubTotal = round2(Quantity × UnitPrice −
    DiscountAmount) and TaxAmount = round2(SubTotal × rate / 100), or
    round2(SubTotal × rate / (100 + rate)) when prices include tax, half away
    from zero (the seed's rule, nexudus.md §7.2), unless given. ``raw``: every
    given value is stored as given (null, NaN, text, fractions, huge numbers);
    SubTotal and TaxAmount not given are derived only when the numbers allow.
    FinancialAccountName defaults to the location's account of that code.
    """
    line: dict[str, Any] = {
        "Description": None,
        "Quantity": 1,
        "UnitPrice": CENTS0,
        "DiscountAmount": CENTS0,
        "TaxCategoryName": None,
        "FinancialAccountCode": None,
        "DiscountCode": None,
        "TariffName": None,
    }
    for key, value in given.items():
        line[key] = _stored_raw(value) if raw else value
    name = line.get("TaxCategoryName")
    if "TaxRate" not in given:
        line["TaxRate"] = tax_rates.get(str(name), CENTS0) if name is not None else CENTS0
    code = line.get("FinancialAccountCode")
    if "FinancialAccountName" not in given:
        line["FinancialAccountName"] = accounts.get(str(code)) if code else None
    derived: dict[str, Decimal] = {}
    try:
        qty = _number(line["Quantity"])
        unit = _number(line["UnitPrice"])
        discount = _number(line["DiscountAmount"])
        rate = _number(line["TaxRate"])
    except (ValueError, InvalidOperation):
        if not raw:
            raise ValueError(
                f"line {dict(given)!r} has a value that is not a number: pass raw=True to store it"
            ) from None
    else:
        if not raw:
            line.update(Quantity=_quantity(qty), UnitPrice=unit, DiscountAmount=discount)
            line["TaxRate"] = rate
        sub = None
        if "SubTotal" in given:  # tax follows a SubTotal typed in (raw: when it is a number)
            sub = _summable(_stored_raw(given["SubTotal"])) if raw else _number(given["SubTotal"])
        sub = round_cents(qty * unit - discount) if sub is None else sub
        divisor = HUNDRED + rate if inclusive else HUNDRED
        derived = {"SubTotal": sub, "TaxAmount": round_cents(sub * rate / divisor)}
    for key in ("SubTotal", "TaxAmount"):
        if key in given:
            line[key] = _stored_raw(given[key]) if raw else _number(given[key])
        else:
            line[key] = derived.get(key)
    for key in ("SubTotal", "TaxAmount", "DiscountAmount"):
        if isinstance(line[key], Decimal) and line[key] == 0:
            line[key] = CENTS0  # no -0.00
    return line


def _full_line(
    own: Mapping[str, Any], invoice: Mapping[str, Any], position: int, line_id: int, uid: str
) -> dict[str, Any]:
    """A CoworkerInvoiceLine record (§7.2): ids, the invoice's echoes, then the line's own."""
    doc: dict[str, Any] = {name: None for name in LINE.fields}
    doc.update(
        Id=line_id,
        UniqueId=uid,
        CoworkerInvoiceId=invoice["Id"],
        Position=position,
        Refunded=False,
        RefundedAmount=CENTS0,
        SaleDate=invoice.get("CreatedOn"),
        CreatedOn=invoice.get("CreatedOn"),
    )
    doc.update({echo: invoice.get(source) for echo, source in LINE_ECHOES.items()})
    doc.update(own)
    doc["UpdatedOn"] = invoice.get("UpdatedOn")
    return doc


def _totals(lines: Sequence[Mapping[str, Any]], inclusive: bool) -> dict[str, Decimal]:
    """Invoice TaxAmount, DiscountAmount and TotalAmount from its lines' amounts that add up.

    ASSUMPTION: a line amount that is not a number (only ``raw`` lines hold one)
    adds nothing.
    """

    def total_of(key: str) -> Decimal:
        values = (_summable(ln.get(key)) for ln in lines)
        return round_cents(sum((v for v in values if v is not None), ZERO)) + CENTS0

    sub, tax, discount = total_of("SubTotal"), total_of("TaxAmount"), total_of("DiscountAmount")
    return {
        "TaxAmount": tax,
        "DiscountAmount": discount,
        "TotalAmount": sub if inclusive else sub + tax,
    }


# --------------------------------------------------------------------------- commands (§9)


def _invoice(db: sqlite3.Connection, invoice_id: Any) -> dict[str, Any]:
    doc = load_doc(db, INVOICE.table, invoice_id)
    if doc is None:
        raise CommandRefused([NO_SUCH_INVOICE.format(invoice_id)], [invoice_id])
    return doc


def _label(invoice: Mapping[str, Any]) -> str:
    return str(invoice.get("InvoiceNumber") or invoice["Id"])


def void_invoice(db: sqlite3.Connection, invoice_id: Any, now: str) -> dict[str, Any]:
    """§9 VOID_INVOICE: Void = true on the same invoice; refused on paid invoices (FW live).

    ASSUMPTION: a part-paid invoice (PaidAmount above zero) is refused too, as
    is one already void; a voided invoice keeps its lines and amounts.
    """
    invoice = _invoice(db, invoice_id)
    if invoice.get("Paid") or (_summable(invoice.get("PaidAmount")) or ZERO) > 0:
        raise CommandRefused([PAID_NOT_VOIDED.format(_label(invoice))], [invoice_id])
    if invoice.get("Void"):
        raise CommandRefused([ALREADY_VOID.format(_label(invoice))], [invoice_id])
    invoice["Void"] = True
    invoice["UpdatedOn"] = now
    write_invoice(db, invoice)
    return invoice


def cancel_invoice(
    db: sqlite3.Connection,
    invoice_id: Any,
    now: str,
    amount: Decimal | None = None,
    *,
    preview: bool = False,
    keep_on_account: bool = False,
    created_on: str | None = None,
) -> dict[str, Any]:
    """§9 COWORKER_INVOICE_CANCEL: raise a credit note, a new invoice; returns it.

    §7.1: the note has CreditNote true, negative amounts and OriginalInvoiceGuid
    = the original's UniqueId. Without ``amount`` the note credits what is left
    (TotalAmount − CreditedAmount); ``amount`` (§9 ``Amount{invoiceId}``) credits
    part. ASSUMPTIONS where §9 is silent:

    * a note for the whole invoice mirrors its lines (same quantities; UnitPrice,
      SubTotal, TaxAmount and DiscountAmount negated, as the seed's credit note);
      a part credit is one line of −amount (tax included, on the first line's
      account and tax rate);
    * the note takes the next number of the location's sequence and the original's
      currency, exchange rate and period;
    * the original's CreditedAmount grows by the amount and its DueAmount falls
      by it (never below zero), unless ``keep_on_account``
      (DoNotApplyCreditAutomatically: the credit stays on the customer's account);
    * refused for void, draft and credit-note invoices, and for an amount not
      above zero or above what is left; ``preview`` writes nothing.

    The note is created ``now`` unless ``created_on`` (the desk's, for a test whose
    period lies in the past) says otherwise; UpdatedOn is ``now`` either way.
    """
    original = _invoice(db, invoice_id)
    label = _label(original)
    refusal = (
        VOID_NOT_CANCELLED
        if original.get("Void")
        else DRAFT_NOT_CANCELLED
        if original.get("Draft")
        else NOTE_NOT_CANCELLED
        if original.get("CreditNote")
        else None
    )
    if refusal:
        raise CommandRefused([refusal.format(label)], [invoice_id])
    total = _summable(original.get("TotalAmount")) or ZERO
    left = total - (_summable(original.get("CreditedAmount")) or ZERO)
    if left <= 0:
        raise CommandRefused([NOTHING_TO_CREDIT.format(label)], [invoice_id])
    amount = left if amount is None else amount
    if amount <= 0 or amount > left:
        raise CommandRefused([BAD_AMOUNT.format(label, left)], [invoice_id])
    lines = _lines_of(db, int(original["Id"]))
    inclusive = _is_inclusive(original, lines)
    if amount == total:
        own = [_negated(ln) for ln in lines]
    else:
        own = [_part_credit_line(lines, amount, label, inclusive)]
    note_id = _next_id(db)
    note = {
        **original,
        "Id": note_id,
        "UniqueId": str(uuid.uuid4()),
        "InvoiceNumber": next_invoice_number(db, int(original["BusinessId"])),
        "Description": f"Credit note for {label}",
        "CreditNote": True,
        "OriginalInvoiceGuid": original["UniqueId"],
        "Void": False,
        "Draft": False,
        "WaitingForInvoiceNumber": False,
        "Paid": False,
        "PaidOn": None,
        "PaidAmount": CENTS0,
        "ReceivedAmount": CENTS0,
        "CreditedAmount": CENTS0,
        "Refunded": False,
        "RefundedOn": None,
        "RefundedAmount": CENTS0,
        "Sent": True,
        "XeroInvoiceTransfered": False,
        "XeroPaymentTransfered": False,
        "SystemId": None,
        "DoNotApplyCreditAutomatically": keep_on_account,
        "CreatedOn": created_on or now,
        "UpdatedOn": max(now, created_on or now),
        "SentOn": created_on or now,
    }
    note["PaymentReference"] = note["InvoiceNumber"]
    note.update(_totals(own, inclusive))
    if preview:
        return note
    _store_lines(db, note, own, note_id + 1)
    write_invoice(db, note)
    if not keep_on_account:
        original["CreditedAmount"] = (_summable(original.get("CreditedAmount")) or ZERO) + amount
    original["UpdatedOn"] = now
    write_invoice(db, original)
    return note


# A line's fields that are not its own: ids, its invoice's echoes, its times.
NOT_OWN: Final = frozenset(
    {"Id", "UniqueId", "CoworkerInvoiceId", "CreatedOn", "UpdatedOn", *LINE_ECHOES}
)


def _negated(line: Mapping[str, Any]) -> dict[str, Any]:
    own = {k: v for k, v in line.items() if k not in NOT_OWN}
    for key in ("UnitPrice", "SubTotal", "TaxAmount", "DiscountAmount"):
        value = _summable(line.get(key))
        own[key] = CENTS0 if not value else -value
    return own


def _part_credit_line(
    lines: Sequence[Mapping[str, Any]], amount: Decimal, label: str, inclusive: bool
) -> dict[str, Any]:
    first = lines[0] if lines else {}
    rate = _summable(first.get("TaxRate")) or ZERO
    tax = round_cents(amount * rate / (HUNDRED + rate))
    sub = amount if inclusive else amount - tax
    return {
        "Description": f"Partial credit for {label}",
        "Quantity": 1,
        "UnitPrice": -sub,
        "SubTotal": -sub,
        "TaxAmount": -tax if tax else CENTS0,
        "TaxRate": rate,
        "TaxCategoryName": first.get("TaxCategoryName"),
        "FinancialAccountCode": first.get("FinancialAccountCode"),
        "FinancialAccountName": first.get("FinancialAccountName"),
        "DiscountAmount": CENTS0,
    }


def _store_lines(
    db: sqlite3.Connection,
    invoice: Mapping[str, Any],
    own: Sequence[Mapping[str, Any]],
    first: int,
) -> list[dict[str, Any]]:
    """Store new lines of ``invoice`` with ids from ``first`` on."""
    out = []
    for n, line in enumerate(own):
        doc = _full_line(line, invoice, n + 1, first + n, str(uuid.uuid4()))
        _write_line(db, doc)
        out.append(doc)
    return out


def delete_invoice(db: sqlite3.Connection, invoice_id: Any, now: str) -> dict[str, Any]:
    """§9 COWORKER_INVOICE_DELETE: real deletion of the invoice and its lines; returns {"Id"}.

    ASSUMPTIONS: no refusal is documented (FW's teardown deletes invoices), so
    none; ledger entries naming the invoice stay; deleting a credit note takes its
    amount back off its original's CreditedAmount (unless it was kept on account).
    """
    invoice = _invoice(db, invoice_id)
    db.execute("DELETE FROM invoice_lines WHERE coworker_invoice_id = ?", (invoice["Id"],))
    db.execute("DELETE FROM invoices WHERE id = ?", (invoice["Id"],))
    guid = invoice.get("OriginalInvoiceGuid")
    if invoice.get("CreditNote") and guid and not invoice.get("DoNotApplyCreditAutomatically"):
        original = _doc_by(db, "invoices", "json_extract(doc, '$.UniqueId') = ?", (guid,))
        if original:
            credited = _summable(original.get("CreditedAmount")) or ZERO
            back = -(_summable(invoice.get("TotalAmount")) or ZERO)
            original["CreditedAmount"] = max(credited - back, ZERO) + CENTS0
            original["UpdatedOn"] = now
            write_invoice(db, original)
    return {"Id": invoice["Id"]}


def _parameter(parameters: Sequence[Mapping[str, Any]], name: str) -> Any:
    for p in parameters:
        if str(get_ci(p, "Name", "")).lower() == name.lower():
            return get_ci(p, "Value")
    return None


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _amounts(parameters: Sequence[Mapping[str, Any]]) -> dict[int, Decimal]:
    """``Amount{invoiceId}`` parameters (§9) by invoice id."""
    found: dict[int, Decimal] = {}
    for p in parameters:
        match = AMOUNT_PARAMETER.fullmatch(str(get_ci(p, "Name", "")))
        value = get_ci(p, "Value")
        if match and value not in (None, ""):
            found[int(match.group(1))] = D(value)
    return found


def run_command(
    db: sqlite3.Connection,
    key: str,
    ids: Sequence[int],
    parameters: Sequence[Mapping[str, Any]],
    now: str,
    created_on: str | None = None,
) -> CommandResult:
    """Run one §9 command on each invoice of ``ids``, all or nothing.

    Raises ``CommandRefused`` with every refusal (ASSUMPTION: one refused
    invoice refuses the whole command, nothing is written). The result's
    ``value`` is the record the command left (the invoice; for a cancel the new
    credit note; for a delete ``{"Id"}``), a list of them for several ids
    (ASSUMPTION: §4 shows ``Value: {Id, …}``). ``created_on`` dates a credit
    note raised by a cancel (the desk's; the route never sends it).
    """
    command = key.strip().upper()
    if command not in COMMANDS:
        raise CommandRefused([UNKNOWN_COMMAND.format(key)], list(ids))
    amounts = _amounts(parameters) if command == CANCEL else {}
    preview = _flag(_parameter(parameters, "Preview"))
    keep = _flag(_parameter(parameters, "DoNotApplyCreditAutomatically"))
    records: list[dict[str, Any]] = []
    refused: list[str] = []
    refused_ids: list[Any] = []
    for invoice_id in ids:
        try:
            if command == VOID:
                records.append(void_invoice(db, invoice_id, now))
            elif command == CANCEL:
                records.append(
                    cancel_invoice(
                        db,
                        invoice_id,
                        now,
                        amounts.get(int(invoice_id)),
                        preview=preview,
                        keep_on_account=keep,
                        created_on=created_on,
                    )
                )
            else:
                records.append(delete_invoice(db, invoice_id, now))
        except CommandRefused as exc:
            refused += exc.messages
            refused_ids += exc.ids
    if refused:
        raise CommandRefused(refused, refused_ids)
    verb = {VOID: "voided", CANCEL: "cancelled", DELETE: "deleted"}[command]
    noun = "invoice was" if len(ids) == 1 else "invoices were"
    message = f"The {noun} {verb}." + (" (preview)" if preview and command == CANCEL else "")
    value: Any = records[0] if len(records) == 1 else records
    return CommandResult(message, value, records)


# --------------------------------------------------------------------------- the desk


class NexudusDesk:
    """The admin UI's invoice controls, as Python methods (tests only).

    ``sandbox.nexudus.desk``. The API has no route for these (nexudus.md §7.1:
    "Invoices cannot be created through the API"; the UI uses ``POST
    billing/coworkerinvoices/{businessId}/create/{coworkerId}``). What the desk
    does is read back through the API like any other record.
    """

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def __repr__(self) -> str:
        return f"NexudusDesk({str(self.store.path)!r})"

    def _now(self) -> str:
        return iso(self.clock.now())

    # ---- raising and re-pricing

    def raise_invoice(
        self,
        business_id: int,
        coworker_id: int,
        lines: Sequence[Mapping[str, Any]],
        *,
        number: str | None = None,
        currency: str | None = None,
        credit_note: bool = False,
        original: int | None = None,
        exchange_rate: Decimal | str | None = None,
        created_on: datetime | str | None = None,
        prices_include_tax: bool = False,
        raw: bool = False,
        header: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store a finalised invoice with these lines, as a billing run or the UI raises one.

        nexudus.md §7.1 (fields), §7.2 (lines). Returns the stored invoice.

        * ``lines``: dicts of CoworkerInvoiceLine fields (Description, Quantity,
          UnitPrice, DiscountAmount, TaxCategoryName, TaxRate, FinancialAccountCode,
          and SubTotal / TaxAmount to override the derived ones). Stored exactly as
          given; SubTotal, TaxAmount and the invoice's TaxAmount, DiscountAmount and
          TotalAmount are derived as ``price_line`` and the seed do (inclusive when
          ``prices_include_tax``). ``raw=True`` stores values that are no numbers
          (null, NaN, infinities, text) as given.
        * ``number``: the next of the location's sequence unless given.
        * ``currency``: a currency code (default the location's), CurrencyId and
          TransactionCurrency follow; ``exchange_rate`` is TransactionExchangeRate
          (default 1.0000, as the seed's).
        * ``credit_note`` / ``original`` (the original's Id, implies a credit note):
          CreditNote true and OriginalInvoiceGuid; the amounts are the caller's
          (a Nexudus credit note's are negative, §7.1). The original is not changed:
          use ``credit`` for Nexudus' own cancel.
        * ``created_on``: CreatedOn (default now); UpdatedOn is now (or CreatedOn
          when later).
        * ``header``: invoice fields stored over the derived ones, e.g. TaxAmount and
          TotalAmount of an invoice whose tax Nexudus rounded on the total.
        """
        now = self._now()
        with self.store.write() as db:
            business = load_doc(db, "businesses", business_id)
            coworker = load_doc(db, "coworkers", coworker_id)
            if business is None or coworker is None:
                raise ValueError(f"no location {business_id} or no customer {coworker_id}")
            code = currency or str(business.get("CurrencyCode"))
            money = _doc_by(db, "currencies", "json_extract(doc, '$.Code') = ?", (code,))
            if not money:
                raise ValueError(f"no currency {code!r} in the sandbox")
            guid = None
            if original is not None:
                first = load_doc(db, INVOICE.table, original)
                if first is None:
                    raise ValueError(f"no invoice {original} to credit")
                guid = first["UniqueId"]
            created = _when(created_on, now)
            invoice_id = _next_id(db)
            number = number or next_invoice_number(db, business_id)
            bill_to = self._bill_to(db, business, coworker)
            rates, accounts = self._tax_rates(db, business_id), self._accounts(db, business_id)
            own = [
                price_line(
                    given, inclusive=prices_include_tax, raw=raw, tax_rates=rates, accounts=accounts
                )
                for given in lines
            ]
            invoice: dict[str, Any] = {name: None for name in INVOICE.fields}
            invoice.update(
                {
                    "Id": invoice_id,
                    "UniqueId": str(uuid.uuid4()),
                    "InvoiceNumber": number,
                    "PaymentReference": number,
                    "BusinessId": business_id,
                    "BusinessName": business.get("Name"),
                    "CoworkerId": coworker_id,
                    "CoworkerFullName": coworker.get("FullName"),
                    "CoworkerCompanyName": coworker.get("CompanyName"),
                    "CoworkerBillingEmail": coworker.get("BillingEmail"),
                    **bill_to,
                    "Description": "Credit note" if credit_note or guid else "Invoice",
                    "DueDate": created,
                    "InvoiceFromDate": created,
                    "InvoiceToDate": created,
                    "PaidAmount": CENTS0,
                    "CreditedAmount": CENTS0,
                    "ReceivedAmount": CENTS0,
                    "RefundedAmount": CENTS0,
                    "CurrencyId": money["Id"],
                    "CurrencyCode": code,
                    "TransactionCurrencyId": money["Id"],
                    "TransactionCurrencyCode": code,
                    "TransactionExchangeRate": RATE_ONE
                    if exchange_rate is None
                    else D(exchange_rate),
                    "Draft": False,
                    "Void": False,
                    "WaitingForInvoiceNumber": False,
                    "Paid": False,
                    "Sent": True,
                    "SentOn": created,
                    "Refunded": False,
                    "CreditNote": bool(credit_note or guid),
                    "OriginalInvoiceGuid": guid,
                    "XeroInvoiceTransfered": False,
                    "XeroPaymentTransfered": False,
                    "QuickbooksInvoiceTransfered": False,
                    "QuickbooksPaymentTransfered": False,
                    "AutoTransferToXeroOrQuickBooks": self._auto_transfer(db, business_id),
                    "DoNotApplyCreditAutomatically": False,
                    "CreatedOn": created,
                    "UpdatedOn": max(now, created),
                }
            )
            invoice.update(_totals(own, prices_include_tax))
            invoice.update(header or {})
            _store_lines(db, invoice, own, invoice_id + 1)
            write_invoice(db, invoice)
        return invoice

    def retotal(
        self,
        invoice_id: int,
        lines: Sequence[Mapping[str, Any]],
        *,
        prices_include_tax: bool | None = None,
        raw: bool = False,
        header: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Re-price an invoice's lines and totals, as an admin editing a draft or its lines.

        nexudus.md §7.1 (a draft can change), §7.2. ``lines[i]`` holds the fields
        that change on the line at position i + 1 (the rest kept; SubTotal and
        TaxAmount derived again unless given, as ``raise_invoice``); extra entries
        add lines, lines beyond the list are removed. ``prices_include_tax``
        defaults to what the invoice's own totals say. Bumps UpdatedOn of the
        invoice and its lines. Returns the invoice.
        """
        now = self._now()
        with self.store.write() as db:
            invoice = load_doc(db, INVOICE.table, invoice_id)
            if invoice is None:
                raise ValueError(f"no invoice {invoice_id}")
            old = _lines_of(db, invoice_id)
            inclusive = (
                _is_inclusive(invoice, old) if prices_include_tax is None else prices_include_tax
            )
            business_id = int(invoice["BusinessId"])
            rates, accounts = self._tax_rates(db, business_id), self._accounts(db, business_id)
            next_line = _next_id(db)  # before the delete: new ids never reuse old ones
            db.execute("DELETE FROM invoice_lines WHERE coworker_invoice_id = ?", (invoice_id,))
            invoice["UpdatedOn"] = now
            kept: list[dict[str, Any]] = []
            for n, change in enumerate(lines):
                before = old[n] if n < len(old) else {}
                typed = {
                    k: v
                    for k, v in before.items()
                    if k in ("Description", "Quantity", "UnitPrice", "DiscountAmount", "TaxRate")
                    or k in ("TaxCategoryName", "FinancialAccountCode", "FinancialAccountName")
                    or k in ("DiscountCode", "TariffName")
                }
                typed.update(change)
                own = price_line(
                    typed, inclusive=inclusive, raw=raw, tax_rates=rates, accounts=accounts
                )
                line_id = int(before.get("Id") or next_line + n)
                uid = str(before.get("UniqueId") or uuid.uuid4())
                doc = _full_line(own, invoice, n + 1, line_id, uid)
                if before:
                    doc["CreatedOn"], doc["SaleDate"] = before["CreatedOn"], before["SaleDate"]
                _write_line(db, doc)
                kept.append(doc)
            invoice.update(_totals(kept, inclusive))
            invoice.update(header or {})
            write_invoice(db, invoice)
        return invoice

    # ---- commands (§9), the same code as POST billing/coworkerinvoices/runcommand

    def run_command(
        self,
        key: str,
        ids: Sequence[int],
        parameters: Sequence[Mapping[str, Any]] = (),
        *,
        created_on: datetime | str | None = None,
    ) -> CommandResult:
        """Run a §9 command as the runcommand route does; raises ``CommandRefused``.

        ``created_on`` dates a credit note a cancel raises (default now).
        """
        now = self._now()
        when = None if created_on is None else _when(created_on, now)
        with self.store.write() as db:
            return run_command(db, key, ids, parameters, now, when)

    def void(self, invoice_id: int) -> dict[str, Any]:
        """§9 VOID_INVOICE on one invoice; returns it. Refused (``CommandRefused``) when paid."""
        result: dict[str, Any] = self.run_command(VOID, [invoice_id]).value
        return result

    def credit(
        self,
        invoice_id: int,
        amount: Decimal | str | None = None,
        *,
        keep_on_account: bool = False,
        created_on: datetime | str | None = None,
    ) -> dict[str, Any]:
        """§9 COWORKER_INVOICE_CANCEL: the credit note raised (all that is left, or ``amount``).

        ``keep_on_account`` sends DoNotApplyCreditAutomatically; ``created_on`` dates the
        note (default now; a test puts it in its period). See ``cancel_invoice``.
        """
        parameters: list[dict[str, Any]] = []
        if amount is not None:
            parameters.append({"Name": f"Amount{invoice_id}", "Type": "decimal", "Value": amount})
        if keep_on_account:
            parameters.append(
                {"Name": "DoNotApplyCreditAutomatically", "Type": "bool", "Value": True}
            )
        result: dict[str, Any] = self.run_command(
            CANCEL, [invoice_id], parameters, created_on=created_on
        ).value
        return result

    def delete(self, invoice_id: int) -> None:
        """§9 COWORKER_INVOICE_DELETE: the invoice and its lines are gone (GET answers 404)."""
        self.run_command(DELETE, [invoice_id])

    def part_pay(self, invoice_id: int, amount: Decimal | str) -> dict[str, Any]:
        """A payment of ``amount`` against the invoice, as ``POST billing/coworkerledgerentries``
        with a Credit does (nexudus.md §7.3, §8): PaidAmount grows, Paid once covered, PaidOn
        now. Returns the invoice."""
        now = self._now()
        with self.store.write() as db:
            invoice = load_doc(db, INVOICE.table, invoice_id)
            if invoice is None:
                raise ValueError(f"no invoice {invoice_id}")
            body = {
                "BusinessId": invoice["BusinessId"],
                "CoworkerId": invoice["CoworkerId"],
                "CoworkerInvoiceId": invoice_id,
                "Description": f"Payment for {_label(invoice)}",
                "Code": "PAYMENT",
                "Debit": 0,
                "Credit": D(amount),
                "Balance": 0,
                "PaymentGatewayName": 996,  # Bank (§7.3 ePaymentProvider)
            }
            entry_id = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM ledger_entries").fetchone()
            new_ledger_entry(db, body, int(entry_id[0]), str(uuid.uuid4()), now)
            paid = load_doc(db, INVOICE.table, invoice_id)
        assert paid is not None
        return paid

    # ---- what the UI knows of a location

    @staticmethod
    def _tax_rates(db: sqlite3.Connection, business_id: int) -> dict[str, Decimal]:
        rows = db.execute("SELECT doc FROM tax_rates WHERE business_id = ?", (business_id,))
        rates = {"[No Tax]": CENTS0}  # §7.2: untaxed lines read "[No Tax]", TaxRate 0
        for (text,) in rows:
            doc = jsonutil.loads(text)
            rates[str(doc.get("Name"))] = D(doc.get("Rate"))
        return rates

    @staticmethod
    def _accounts(db: sqlite3.Connection, business_id: int) -> dict[str, str]:
        rows = db.execute(
            "SELECT doc FROM financial_accounts WHERE business_id = ?", (business_id,)
        )
        found: dict[str, str] = {}
        for (text,) in rows:
            doc = jsonutil.loads(text)
            found.setdefault(str(doc.get("Code")), str(doc.get("Name")))
        return found

    @staticmethod
    def _auto_transfer(db: sqlite3.Connection, business_id: int) -> bool:
        last = _doc_by(db, "invoices", "business_id = ? ORDER BY id DESC", (business_id,))
        return bool(last.get("AutoTransferToXeroOrQuickBooks"))

    @staticmethod
    def _bill_to(
        db: sqlite3.Connection, business: Mapping[str, Any], coworker: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The customer's billing details. ASSUMPTION (the Coworker record carries no address in
        the sandbox): those of their latest invoice, else the location's city."""
        last = _doc_by(db, "invoices", "coworker_id = ? ORDER BY id DESC", (coworker["Id"],))
        name = coworker.get("BillingName") or coworker.get("CompanyName") or coworker["FullName"]
        return {
            "BillToName": last.get("BillToName") or name,
            "BillToAddress": last.get("BillToAddress") or "1 High Street",
            "BillToCity": last.get("BillToCity") or "London",
            "BillToPostCode": last.get("BillToPostCode") or "EC1A 1AA",
            "BillToState": last.get("BillToState"),
            "BillToCountryId": last.get("BillToCountryId") or business.get("CountryId"),
            "BillToTaxIDNumber": last.get("BillToTaxIDNumber") or coworker.get("TaxIDNumber"),
            "PurchaseOrder": None,
        }
