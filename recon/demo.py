"""The demo's accountant: pays, part-pays, voids and edits a few invoices in Xero, through Xero's
API.

Floor 2. Only for the embedded sandbox's demo and tests: it does what a
person would do in Xero after a transfer, so the status sync has something to
find. It refuses to run against anything but the sandbox.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pandas as pd

from recon.errors import ParamsError
from recon.ledger import Ledger
from recon.money import round_cents
from recon.session import Connection
from recon.values import records

__all__ = ["act_as_accountant", "act_in_nexudus"]


def _order(number: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{number}".encode()).hexdigest()


def act_as_accountant(
    conn: Connection,
    *,
    fully: int = 25,
    partly: int = 2,
    void: int = 1,
    edit: int = 1,
    seed: int = 7,
) -> pd.DataFrame:
    """Pay ``fully`` invoices in full, ``partly`` in half, void ``void`` and edit ``edit`` (add a
    line) in Xero.

    Picks AUTHORISED invoices with nothing paid yet, in a seeded order, so a
    repeat acts on other invoices and never pays one twice. Returns what it did.
    """
    if conn.params.target != "sandbox":
        raise ParamsError(
            "act_as_accountant only runs against the embedded sandbox",
            file=conn.params.source,
            key="target",
        )
    xero = conn.xero
    accounts = xero.fetch_accounts()
    bank = accounts[(accounts["Type"] == "BANK") & (accounts["Status"] == "ACTIVE")].iloc[0]["Code"]
    open_invoices = [
        i
        for i in xero.iter_invoices(statuses=["AUTHORISED"], summary_only=True)
        if i.get("Type") == "ACCREC"
        and Decimal(str(i.get("AmountPaid", 0))) == 0
        and Decimal(str(i["Total"])) > 0
    ]
    open_invoices.sort(key=lambda i: _order(str(i["InvoiceNumber"]), seed))
    done: list[dict[str, Any]] = []
    picks = iter(open_invoices)
    payments = []
    for kind, count in (("paid", fully), ("part-paid", partly)):
        for _ in range(count):
            inv = next(picks, None)
            if inv is None:
                break
            total = Decimal(str(inv["Total"]))
            amount = total if kind == "paid" else round_cents(total / 2)
            date = str(inv.get("DueDateString") or inv.get("DateString") or "")[:10] or None
            payments.append(
                {
                    "Invoice": {"InvoiceID": inv["InvoiceID"]},
                    "Account": {"Code": bank},
                    "Amount": amount,
                    **({"Date": date} if date else {}),
                    "Reference": "Bank transfer",
                }
            )
            done.append({"invoice_number": inv["InvoiceNumber"], "action": kind, "amount": amount})
    for start in range(0, len(payments), 50):
        xero.create_payments(payments[start : start + 50])
    for _ in range(void):
        inv = next(picks, None)
        if inv is not None:
            xero.update_invoice(inv["InvoiceID"], {"Status": "VOIDED"})
            done.append(
                {
                    "invoice_number": inv["InvoiceNumber"],
                    "action": "voided",
                    "amount": Decimal(str(inv["Total"])),
                }
            )
    for _ in range(edit):
        inv = next(picks, None)
        if inv is not None:
            full = xero.get_invoice(inv["InvoiceID"])
            lines = [
                {
                    k: line[k]
                    for k in (
                        "LineItemID",
                        "Description",
                        "Quantity",
                        "UnitAmount",
                        "AccountCode",
                        "TaxType",
                    )
                    if k in line
                }
                for line in full["LineItems"]
            ]
            extra = dict(
                lines[0],
                Description="Late booking fee added in Xero",
                Quantity=1,
                UnitAmount=Decimal("10.00"),
            )
            extra.pop("LineItemID", None)
            updated = xero.update_invoice(inv["InvoiceID"], {"LineItems": [*lines, extra]})
            done.append(
                {
                    "invoice_number": inv["InvoiceNumber"],
                    "action": "edited",
                    "amount": Decimal(str(updated["Total"])) - Decimal(str(inv["Total"])),
                }
            )
    return pd.DataFrame(done, columns=["invoice_number", "action", "amount"])


def act_in_nexudus(conn: Connection, ledger: Ledger, *, seed: int = 11) -> pd.DataFrame:
    """Do in the sandbox's Nexudus what its staff do after a transfer, one of each: void an
    invoice, re-total one (a line's quantity changed), part-pay one, delete one and raise a
    credit note against one, so the two-sided status sync has each to find.

    Picks invoices recon transferred (the ledger) that are still unpaid in Nexudus, in a
    seeded order, so a repeat acts on other invoices. Returns what it did. Sandbox only:
    it works through the sandbox's desk, the admin screens' stand-in (nexudus.md §7.1, §9).
    """
    if conn.params.target != "sandbox" or conn.sandbox is None:
        raise ParamsError(
            "act_in_nexudus only runs against the embedded sandbox",
            file=conn.params.source,
            key="target",
        )
    desk = conn.sandbox.nexudus.desk
    sent = ledger.transfers(str(conn.xero.tenant_id))
    sent = sent[(sent["kind"] == "invoice") & sent["state"].isin(["created", "adopted"])]
    numbers = sorted(sent["invoice_number"].astype(str), key=lambda n: _order(n, seed))
    invoices = conn.nexudus.fetch_invoices(business_id=int(conn.business["Id"]))
    by_number = {str(r["InvoiceNumber"]): r for r in records(invoices)}
    open_numbers = [
        n
        for n in numbers
        if n in by_number
        and not by_number[n]["Paid"]
        and not by_number[n]["Void"]
        and Decimal(str(by_number[n]["PaidAmount"] or 0)) == 0
    ]
    done: list[dict[str, Any]] = []
    for action, number in zip(
        ("voided", "re-totalled", "part-paid", "deleted", "credit note raised"),
        open_numbers,
        strict=False,
    ):
        invoice_id = int(by_number[number]["Id"])
        total = Decimal(str(by_number[number]["TotalAmount"]))
        if action == "voided":
            desk.void(invoice_id)
            amount = total
        elif action == "re-totalled":
            after = desk.retotal(invoice_id, [{"Quantity": 2}])
            amount = Decimal(str(after["TotalAmount"])) - total
        elif action == "part-paid":
            amount = round_cents(total / 2)
            desk.part_pay(invoice_id, amount)
        elif action == "deleted":
            desk.delete(invoice_id)
            amount = total
        else:
            created = pd.Timestamp(str(by_number[number]["CreatedOn"]))
            note = desk.credit(invoice_id, created_on=created.isoformat())
            amount = Decimal(str(note["TotalAmount"]))
        done.append({"invoice_number": number, "action": action, "amount": amount})
    return pd.DataFrame(done, columns=["invoice_number", "action", "amount"])
