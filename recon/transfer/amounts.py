"""How each invoice's money goes to Xero so that Xero books Nexudus' totals to the cent.

Floor 4 (part of the transfer). ``work_out_amounts`` takes the invoices and lines the
plan keeps and, per invoice, chooses the first way that Xero's replayed arithmetic
(``recon.money``) books with Nexudus' SubTotal, TotalTax and Total:

1. ``as lines``: quantity, unit price (4 places), discount and tax type as Nexudus has them;
2. ``tax override``: the same lines with Nexudus' own tax per line sent as ``TaxAmount``
   (xero-api.md §3.3 "can be overriden"), for tax Nexudus rounded on the invoice total;
3. ``line amount`` (only when the params ask, ``send_line_amounts``): each line as
   quantity 1 x Nexudus' stored line amount, the original quantity and price kept in the
   description, with tax overrides when they are still needed.

An invoice no way reconciles is held back with the difference and the line that causes
it. Shapes Xero refuses are never sent: Nexudus credit notes carry negative amounts
(Xero's are positive); a negative quantity becomes a positive quantity at a negative
price; a discount on a credit-note line or on a negative line is folded into the line
amount (Xero takes discounts on positive sales lines only); a non-credit invoice whose
total is below zero is held back, or sent as a credit note when the params ask. A figure
that is missing, not a number or not finite holds back its invoice, naming the line and
field, and never the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np
import pandas as pd

from recon.money import (
    CENT,
    MIDPOINT,
    ZERO,
    D,
    ExactInts,
    from_minor,
    scaled,
    xero_invoice_totals,
    xero_line_amounts,
    xero_line_tax,
)
from recon.values import cell_int, is_missing, records

__all__ = [
    "AS_LINES",
    "LINE_AMOUNT",
    "TAX_OVERRIDE",
    "Amounts",
    "currency_rates",
    "work_out_amounts",
]

AS_LINES: Final = "as lines"
TAX_OVERRIDE: Final = "tax override"
LINE_AMOUNT: Final = "line amount"

# Xero keeps Quantity to 4 places (xero-api.md §10): a quantity with more is folded into
# a line amount rather than silently rounded.
QUANTITY_PLACES: Final = 4
REQUIRED_LINE_FIGURES: Final = ("Quantity", "UnitPrice", "SubTotal")
OPTIONAL_LINE_FIGURES: Final = ("DiscountAmount", "TaxAmount")  # missing means zero


@dataclass(frozen=True)
class Amounts:
    """The outcome per invoice (``invoices``, indexed by Nexudus invoice id) and what each
    line sends (``lines``, indexed like the lines given).

    ``invoices``: way ("" when held back), as_credit, nexudus_subtotal, nexudus_tax,
    nexudus_total, xero_subtotal, xero_tax, xero_total (Xero's figures for the chosen way,
    else for "as lines"), difference (Nexudus total minus Xero's), reason ("" or why held
    back). ``lines``: quantity, unit_amount, discount, tax_override (Decimal or None) and
    note (text added to the description, "" for none).
    """

    invoices: pd.DataFrame
    lines: pd.DataFrame


def _figure(value: object) -> Decimal | str:
    """A finite Decimal, or what is wrong with the value."""
    if is_missing(value) and not isinstance(value, (float, Decimal)):
        return "is missing"
    try:
        amount = D(value)
    except ValueError:
        return f"is {value!r}, not a number"
    if amount.is_nan():
        return "is NaN, not an amount"
    if not amount.is_finite():
        return f"is {value}, not a finite amount"
    return amount


def _line_problem(line: dict[str, Any], number: str) -> str | None:
    """What makes this line's figures unusable, naming invoice, line and field; or None."""
    where = f"{number} line {line.get('Position') or '?'} (Nexudus line id {line.get('Id')})"
    for field in REQUIRED_LINE_FIGURES + OPTIONAL_LINE_FIGURES:
        value = line.get(field)
        if field in OPTIONAL_LINE_FIGURES and (value is None or value == ""):
            continue
        found = _figure(value)
        if isinstance(found, str):
            return f"{where}: {field} {found}: correct the line in Nexudus"
    return None


def _shape(line: dict[str, Any], sign: int, as_credit: bool) -> dict[str, Any]:
    """One Nexudus line in the shape Xero accepts, for "as lines" and for "line amount"."""
    qty = D(line["Quantity"])
    unit = D(line["UnitPrice"]) * sign
    discount = D(line.get("DiscountAmount")) * sign
    sub = D(line["SubTotal"]) * sign
    tax = D(line.get("TaxAmount")) * sign
    if qty < 0:  # Xero: "Quantity must not be less than zero"
        qty, unit = -qty, -unit
    gross = (qty * unit).quantize(CENT, rounding=MIDPOINT)
    negative = gross < 0
    too_precise = qty != qty.quantize(Decimal(1).scaleb(-QUANTITY_PLACES))
    fold = too_precise or (discount != 0 and (as_credit or negative))
    note = ""
    if fold:
        note = f" ({_plain(qty)} x {_plain(unit)}" + (
            f" less {_plain(discount)} discount)" if discount else ")"
        )
        quantity, unit_amount, discount_sent = Decimal(1), gross - discount, ZERO
    else:
        quantity, unit_amount, discount_sent = qty, unit, discount
    return {
        "quantity": quantity,
        "unit_amount": unit_amount,
        "discount": discount_sent,
        "nexudus_sub": sub,
        "nexudus_tax": tax,
        "fold_note": note,
        "original": f" ({_plain(qty)} x {_plain(unit)}"
        + (f" less {_plain(discount)} discount)" if discount else ")"),
    }


def _plain(value: Decimal) -> str:
    """A number as people write it: 33.333, 3, -12.50."""
    text = format(value.normalize(), "f")
    return text if "." not in text or len(text.split(".")[1]) != 1 else text + "0"


def _cents(values: pd.Series) -> ExactInts:
    return scaled(values, 2)


def work_out_amounts(
    invoices: pd.DataFrame,
    lines: pd.DataFrame,
    rates: pd.Series,
    inclusive: pd.Series,
    *,
    line_amounts: bool = False,
    negative_as_credit: bool = False,
) -> Amounts:
    """Choose, per invoice, how its lines go to Xero, and hold back what cannot reconcile.

    ``invoices``: Nexudus invoices (Id, InvoiceNumber, CreditNote, TotalAmount, TaxAmount).
    ``lines``: their lines (CoworkerInvoiceId, Id, Position, Quantity, UnitPrice, SubTotal,
    TaxAmount, DiscountAmount). ``rates``: Xero's tax rate (percent) per line, aligned with
    ``lines``; ``inclusive``: per invoice id, whether its amounts include tax.
    """
    ids = invoices["Id"].astype("int64")
    numbers = {
        int(i): str(n)
        for i, n in zip(ids, invoices["InvoiceNumber"].astype("string").fillna(""), strict=True)
    }
    reasons: dict[int, str] = {}
    totals: dict[int, Decimal] = {}
    header_tax: dict[int, Decimal | None] = {}
    credit: dict[int, bool] = {}
    for inv in records(invoices):
        iid = int(inv["Id"])
        number = str(inv.get("InvoiceNumber") or f"Nexudus invoice {iid}")
        found = _figure(inv.get("TotalAmount"))
        if isinstance(found, str):
            reasons[iid] = f"{number}: TotalAmount {found}: correct the invoice in Nexudus"
            found = ZERO
        totals[iid] = found
        tax_found = _figure(inv.get("TaxAmount"))
        header_tax[iid] = tax_found if isinstance(tax_found, Decimal) else None
        is_credit = bool(inv.get("CreditNote"))
        if not is_credit and found < 0 and iid not in reasons:
            if negative_as_credit:
                is_credit = True
            else:
                reasons[iid] = (
                    f"{number}: total {found} is below zero but it is not a credit note; Xero "
                    "refuses to approve it. Raise a credit note in Nexudus, or set "
                    "negative_invoices: credit_note in the params to send it as one"
                )
        if is_credit and bool(inv.get("CreditNote")) and found > 0 and iid not in reasons:
            reasons[iid] = (
                f"{number}: a credit note whose total {found} is above zero; Xero's credit "
                "notes carry positive amounts of a negative Nexudus total: check it in Nexudus"
            )
        credit[iid] = is_credit

    # Shape every usable line (Python per line: messy values need a look each).
    shaped_rows: list[dict[str, Any]] = []
    for index, line in zip(lines.index, records(lines), strict=True):
        iid = int(line["CoworkerInvoiceId"])
        if iid not in totals:
            continue
        problem = _line_problem(line, numbers.get(iid, ""))
        if problem is not None:
            reasons.setdefault(iid, problem)
            continue
        sign = -1 if credit[iid] else 1
        row = _shape(line, sign, credit[iid])
        row.update(
            index=index,
            invoice_id=iid,
            position=line.get("Position"),
            line_id=line.get("Id"),
            rate=D(rates.loc[index]) if not is_missing(rates.loc[index]) else ZERO,
        )
        shaped_rows.append(row)
    shaped = pd.DataFrame(
        shaped_rows,
        columns=[
            "index",
            "invoice_id",
            "position",
            "line_id",
            "quantity",
            "unit_amount",
            "discount",
            "nexudus_sub",
            "nexudus_tax",
            "fold_note",
            "original",
            "rate",
        ],
    )
    shaped = shaped[~shaped["invoice_id"].isin(set(reasons))].reset_index(drop=True)

    # Nexudus' three figures per invoice, signed as Xero will hold them.
    sign_by_id = {i: (-1 if c else 1) for i, c in credit.items()}
    nexudus_total = pd.Series({i: totals[i] * sign_by_id[i] for i in totals}, dtype=object)
    line_tax_sum: dict[int, Decimal] = {}
    for iid, tax in zip(shaped["invoice_id"], shaped["nexudus_tax"], strict=True):
        line_tax_sum[int(iid)] = line_tax_sum.get(int(iid), ZERO) + tax
    nexudus_tax = pd.Series(
        {
            i: (
                header_tax_i * sign_by_id[i]
                if (header_tax_i := header_tax[i]) is not None
                else line_tax_sum.get(i, ZERO)
            )
            for i in totals
        },
        dtype=object,
    )
    want = pd.DataFrame(
        {
            "total": _cents(nexudus_total),
            "tax": _cents(nexudus_tax),
        },
        index=nexudus_total.index,
    )
    want["subtotal"] = want["total"] - want["tax"]
    incl = inclusive.reindex(want.index).fillna(False).astype(bool)

    line_incl = shaped["invoice_id"].map(incl).fillna(False).to_numpy(dtype=bool)
    rate4 = scaled(shaped["rate"], 4)
    owner = shaped["invoice_id"]

    def replay(
        quantity: pd.Series, unit: pd.Series, discount: pd.Series, override: ExactInts | None
    ) -> tuple[pd.DataFrame, ExactInts, ExactInts]:
        line_cents = xero_line_amounts(scaled(quantity, 4), scaled(unit, 4), _cents(discount))
        tax_cents = xero_line_tax(line_cents, rate4, line_incl)
        if override is not None:
            tax_cents = np.where(pd.isna(override), tax_cents, override).astype(object)
        return xero_invoice_totals(owner, line_cents, tax_cents, incl), line_cents, tax_cents

    def reconciles(got: pd.DataFrame) -> pd.Series:
        aligned = got.reindex(want.index, fill_value=0)
        return (
            (aligned["subtotal"] == want["subtotal"])
            & (aligned["tax"] == want["tax"])
            & (aligned["total"] == want["total"])
        )

    def overrides(line_cents: ExactInts, computed_tax: ExactInts) -> ExactInts:
        """Nexudus' tax per line on taxed lines; the invoice's rounding difference on its
        largest taxed line."""
        taxed = rate4 != 0
        own = _cents(shaped["nexudus_tax"])
        frame = pd.DataFrame(
            {
                "invoice": owner.to_numpy(),
                "own": np.where(taxed, own, computed_tax),
                # int64 is exact for ranking: cents below 9.2e18.
                "size": np.where(taxed, np.abs(line_cents), -1).astype("int64"),
            }
        )
        short = want["tax"].reindex(frame["invoice"]).to_numpy(dtype=object) - frame.groupby(
            "invoice"
        )["own"].transform("sum").to_numpy(dtype=object)
        largest = np.zeros(len(frame), dtype=bool)
        if len(frame):
            largest[frame.groupby("invoice")["size"].idxmax().to_numpy(dtype="int64")] = True
        adjusted = np.where(largest, frame["own"].to_numpy(dtype=object) + short, frame["own"])
        result: ExactInts = np.where(taxed, adjusted, np.full(len(frame), None, dtype=object))
        return result

    as_lines, a_line, a_tax = replay(
        shaped["quantity"], shaped["unit_amount"], shaped["discount"], None
    )
    ok_a = reconciles(as_lines)
    b_override = overrides(a_line, a_tax)
    with_override, _, _ = replay(
        shaped["quantity"], shaped["unit_amount"], shaped["discount"], b_override
    )
    ok_b = reconciles(with_override) & ~ok_a
    ones = pd.Series([Decimal(1)] * len(shaped), dtype=object)
    zeros = pd.Series([ZERO] * len(shaped), dtype=object)
    c_plain, c_line, c_tax = replay(ones, shaped["nexudus_sub"], zeros, None)
    c_override = overrides(c_line, c_tax)
    c_over, _, _ = replay(ones, shaped["nexudus_sub"], zeros, c_override)
    ok_c_plain = reconciles(c_plain) & ~ok_a & ~ok_b & line_amounts
    ok_c_over = reconciles(c_over) & ~ok_a & ~ok_b & ~ok_c_plain & line_amounts

    way = pd.Series("", index=want.index, dtype=object)
    way[ok_a] = AS_LINES
    way[ok_b] = TAX_OVERRIDE
    way[ok_c_plain | ok_c_over] = LINE_AMOUNT
    held = pd.Index(list(reasons))
    way[way.index.isin(held)] = ""
    chosen = as_lines.reindex(want.index, fill_value=0)
    for mask, figures in ((ok_b, with_override), (ok_c_plain, c_plain), (ok_c_over, c_over)):
        chosen[mask.to_numpy()] = figures.reindex(want.index, fill_value=0)[mask.to_numpy()]

    # Why each unreconciled invoice is held back: the difference and the line that causes it.
    culprit = _culprits(shaped, a_line, a_tax)
    for iid in want.index[(way == "") & ~want.index.isin(held)]:
        got = {k: from_minor(cell_int(v)) for k, v in chosen.loc[iid].items()}
        nexudus = {k: from_minor(cell_int(v)) for k, v in want.loc[iid].items()}
        reasons[int(iid)] = (
            f"{numbers[int(iid)]}: Xero would book subtotal {got['subtotal']}, tax "
            f"{got['tax']}, total {got['total']}; Nexudus says {nexudus['subtotal']}, "
            f"{nexudus['tax']}, {nexudus['total']} (difference "
            f"{nexudus['total'] - got['total']})"
            + (f"; {culprit[iid]}" if iid in culprit else "")
            + (
                ""
                if line_amounts
                else ". Set send_line_amounts: true in the params to send Nexudus' line amounts"
            )
        )

    # What each line sends for its invoice's way.
    way_of_line = owner.map(way)
    use_c = (way_of_line == LINE_AMOUNT).to_numpy()
    use_override_b = (way_of_line == TAX_OVERRIDE).to_numpy()
    c_needs_override = owner.map(ok_c_over).fillna(False).to_numpy(dtype=bool)
    nothing = np.full(len(shaped), None, dtype=object)
    override = np.where(
        use_override_b, b_override, np.where(use_c & c_needs_override, c_override, nothing)
    )
    sent = pd.DataFrame(
        {
            "quantity": np.where(use_c, ones, shaped["quantity"]),
            "unit_amount": np.where(use_c, shaped["nexudus_sub"], shaped["unit_amount"]),
            "discount": np.where(use_c, zeros, shaped["discount"]),
            "tax_override": [None if v is None else from_minor(int(v)) for v in override],
            "note": np.where(use_c, shaped["original"], shaped["fold_note"]),
        },
        index=pd.Index(shaped["index"].to_numpy()),
    )
    out = pd.DataFrame(index=want.index)
    out["way"] = way
    out["as_credit"] = pd.Series(credit).reindex(want.index).astype(bool)
    for column in ("subtotal", "tax", "total"):
        # Nexudus' figures as Nexudus shows them (a credit note's are negative); Xero's as Xero
        # books them (positive).
        out[f"nexudus_{column}"] = pd.Series(
            [
                from_minor(cell_int(c) * sign_by_id[int(i)])
                for i, c in zip(want.index, want[column], strict=True)
            ],
            index=want.index,
            dtype=object,
        )
        out[f"xero_{column}"] = chosen[column].map(lambda c: from_minor(int(c)))
    out["difference"] = (want["total"] - chosen["total"]).map(lambda c: from_minor(int(c)))
    out["reason"] = pd.Series(reasons, dtype=object).reindex(want.index).fillna("")
    out["way"] = out["way"].where(out["reason"] == "", "")
    return Amounts(out, sent)


def _culprits(shaped: pd.DataFrame, line_cents: ExactInts, tax_cents: ExactInts) -> dict[int, str]:
    """Per invoice, the first line whose replayed amount or tax differs from Nexudus'."""
    own_line = _cents(shaped["nexudus_sub"])
    own_tax = _cents(shaped["nexudus_tax"])
    found: dict[int, str] = {}
    rows = records(shaped)
    amount_off = line_cents != own_line
    for i in np.flatnonzero(amount_off | (tax_cents != own_tax)):
        row = rows[i]
        iid = int(row["invoice_id"])
        if iid in found:
            continue
        where = f"line {row['position']} (Nexudus line id {row['line_id']})"
        if amount_off[i]:
            found[iid] = (
                f"{where}: {_plain(row['quantity'])} x {_plain(row['unit_amount'])} comes to "
                f"{from_minor(int(line_cents[i]))} in Xero (unit price kept to 4 places), "
                f"Nexudus' SubTotal is {from_minor(int(own_line[i]))}"
            )
        else:
            found[iid] = (
                f"{where}: Xero's tax {from_minor(int(tax_cents[i]))}, Nexudus' "
                f"{from_minor(int(own_tax[i]))}"
            )
    return found


def currency_rates(invoices: pd.DataFrame, base_currency: str | None) -> pd.DataFrame:
    """Per invoice: the CurrencyRate to send (Decimal or None) and what the preview says.

    Nexudus keeps the rate it invoiced with in ``TransactionExchangeRate`` (nexudus.md
    §7.1). ASSUMPTION (the reference is silent on its direction): units of the invoice's
    currency per one unit of the organisation's base currency, as Xero's CurrencyRate
    (xero-api.md §3.2, 6 places). A missing, non-positive or exactly-1 rate between two
    different currencies is Nexudus' "no rate": Xero's day rate then applies, and the
    preview says so.
    """
    rows: list[tuple[Decimal | None, str]] = []
    for inv in records(invoices):
        currency = str(inv.get("CurrencyCode") or "")
        found = _figure(inv.get("TransactionExchangeRate"))
        rate = found if isinstance(found, Decimal) else None
        if not base_currency or currency == base_currency:
            rows.append((None, ""))
        elif rate is None or rate <= 0 or rate == 1:
            rows.append((None, f"no Nexudus rate: Xero's day rate for {currency} applies"))
        else:
            sent = rate.quantize(Decimal("0.000001"), rounding=MIDPOINT)
            rows.append((sent, f"Nexudus' rate {sent} {currency} per {base_currency}"))
    return pd.DataFrame(rows, columns=["currency_rate", "rate_note"], index=invoices.index)
