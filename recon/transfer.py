"""Transfer: Nexudus invoices to Xero as sales invoices, previewed, then pushed safely.

Floor 2. Two steps, as an accountant works:

``plan_transfer(conn)`` reads both sides (no writes) and returns a
``TransferPlan``: every eligible invoice with the Xero payload recon will send
and the totals Xero will compute (per-line tax, rounded half away from zero to
the cent), and every excluded invoice with its reason (void, draft, already
transferred, blocked by the mapping, currency not in the organisation, a total
Xero would compute differently, a customer name Xero would refuse).

``push(conn, plan, ledger)`` writes: missing contacts first (keyed on a stable
``ContactNumber``, never a name), then invoices in batches of 50 with
``summarizeErrors=false`` and an ``Idempotency-Key`` derived from the batch's
content. The ledger records the intent before each batch and the outcome
after; a run that finds intents without outcomes looks those invoice numbers
up in Xero before sending anything. One invoice's error never stops the batch
or the run; a whole-batch failure is resolved the same way as a crash.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recon.clients.xero import BATCH_SIZE
from recon.errors import AuthError, ClientError, RateLimited
from recon.ledger import Ledger
from recon.mapping import MappingResult, check_location
from recon.money import from_minor
from recon.troubleshooting import explain_all

__all__ = ["TransferOptions", "TransferPlan", "TransferResult", "plan_transfer", "push", "recover"]

CONTACT_NUMBER_PREFIX = "NX-"
MAX_CONTACT_NAME = 255


@dataclass(frozen=True)
class TransferOptions:
    """How invoices go over. The defaults are Nexudus' own."""

    status: str = "AUTHORISED"  # DRAFT, SUBMITTED or AUTHORISED
    invoice_date: str = "issue"  # "issue" (CreatedOn) or "period" (InvoiceFromDate)
    write_back: bool = True  # store the Xero id in the Nexudus invoice's SystemId
    batch_size: int = BATCH_SIZE


# ---- the plan (preview) --------------------------------------------------------------------
@dataclass(frozen=True)
class TransferPlan:
    """What a push would do. Nothing has been written when you hold one."""

    eligible: pd.DataFrame
    excluded: pd.DataFrame
    payloads: dict[int, dict[str, Any]] = field(repr=False)
    new_contacts: pd.DataFrame = field(repr=False)
    tenant_id: str = ""
    options: TransferOptions = field(default_factory=TransferOptions)
    context: dict[str, Any] = field(default_factory=dict)

    def totals(self) -> pd.DataFrame:
        """Eligible invoices and money per currency (what the button will say)."""
        if self.eligible.empty:
            return pd.DataFrame(columns=["currency", "invoices", "total"])
        grouped = self.eligible.groupby("currency")
        return pd.DataFrame({"invoices": grouped.size(), "total": grouped["nexudus_total"].agg(lambda s: sum(s, Decimal("0")))}
                            ).reset_index()

    def only(self, invoice_numbers: Iterable[str]) -> TransferPlan:
        """The same plan narrowed to some invoices (a notebook's filter)."""
        keep = set(invoice_numbers)
        eligible = self.eligible[self.eligible["invoice_number"].isin(keep)]
        ids = set(eligible["nexudus_invoice_id"])
        return TransferPlan(eligible.reset_index(drop=True), self.excluded, {k: v for k, v in self.payloads.items() if k in ids},
                            self.new_contacts[self.new_contacts["coworker_id"].isin(set(eligible["coworker_id"]))],
                            self.tenant_id, self.options, self.context)

    @property
    def write_calls(self) -> int:
        """Xero writes a full push needs: contact batches plus invoice and credit-note batches."""
        return calls_needed(self.eligible, self.new_contacts, self.options.batch_size)

    def describe(self) -> str:
        """'Transfer 297 invoices (GBP 249,653.80; EUR 641.70)'."""
        parts = "; ".join(f"{r.currency} {r.total:,.2f}" for r in self.totals().itertuples())
        return f"Transfer {len(self.eligible)} invoices" + (f" ({parts})" if parts else "")

    def __repr__(self) -> str:
        return f"<TransferPlan {len(self.eligible)} eligible, {len(self.excluded)} excluded>"

    def _repr_html_(self) -> str:
        from recon.display import transfer_plan_html

        return transfer_plan_html(self)


def calls_needed(eligible: pd.DataFrame, new_contacts: pd.DataFrame, batch_size: int = BATCH_SIZE) -> int:
    """The Xero write calls the batch size forces for these invoices and the contacts they need."""
    kinds = eligible["kind"].value_counts() if len(eligible) else pd.Series(dtype="int64")
    needed_contacts = new_contacts[new_contacts["coworker_id"].isin(set(eligible["coworker_id"]))] if len(eligible) else new_contacts.iloc[0:0]
    return (sum(math.ceil(int(n) / batch_size) for n in kinds.to_numpy())
            + math.ceil(len(needed_contacts) / batch_size))


def fit_budget(eligible: pd.DataFrame, new_contacts: pd.DataFrame, budget: int, batch_size: int = BATCH_SIZE) -> int:
    """How many of the oldest eligible invoices (by date, then number) fit in ``budget`` write calls."""
    if calls_needed(eligible, new_contacts, batch_size) <= budget:
        return len(eligible)
    low, high = 0, len(eligible)  # calls_needed grows with the prefix: binary search the longest that fits
    while low < high:
        mid = (low + high + 1) // 2
        if calls_needed(eligible.iloc[:mid], new_contacts, batch_size) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def _cents4(values: pd.Series) -> np.ndarray:
    """Amounts as integers in 1/10,000 units (exact for up to four places)."""
    return np.array([int(Decimal(v or 0).scaleb(4).to_integral_value(ROUND_HALF_UP)) for v in values], dtype=np.int64)


def _div_round(numerator: np.ndarray, denominator: np.ndarray | int) -> np.ndarray:
    """numerator / denominator rounded half away from zero, in integers (denominator > 0)."""
    sign = np.sign(numerator)
    return sign * ((2 * np.abs(numerator) + denominator) // (2 * np.asarray(denominator)))


def predict_xero_totals(lines: pd.DataFrame, rates: pd.Series, inclusive: pd.Series) -> pd.DataFrame:
    """Xero's LineAmount and TaxAmount per line, in cents, the way Xero computes them.

    LineAmount = Quantity x UnitAmount - DiscountAmount, rounded to the cent; tax
    per line, rounded to the cent (xero-api.md §3.3); ``rates`` are percentages
    with up to four places; ``inclusive`` says whether the amounts include tax.
    """
    qty = lines["Quantity"].fillna(0).astype("int64").to_numpy()
    unit4 = _cents4(lines["UnitPrice"])
    disc4 = _cents4(lines["DiscountAmount"])
    line_cents = _div_round(qty * unit4 - disc4, 100)
    rate4 = _cents4(rates)  # 20% -> 200000
    incl = inclusive.to_numpy(dtype=bool)
    tax_excl = _div_round(line_cents * rate4, 1_000_000)
    tax_incl = _div_round(line_cents * rate4, 1_000_000 + rate4)
    tax = np.where(incl, tax_incl, tax_excl)
    return pd.DataFrame({"line_cents": line_cents, "tax_cents": tax}, index=lines.index)


def _contact_names(invoices: pd.DataFrame) -> pd.Series:
    """The Xero contact name per invoice: billing name, else company, else full name; spaces collapsed."""
    names = pd.Series("", index=invoices.index, dtype="string")
    for key in ("CoworkerFullName", "CoworkerCompanyName", "BillToName"):  # later keys win
        if key in invoices.columns:
            value = invoices[key].astype("string").str.split().str.join(" ").fillna("")
            names = value.where(value != "", names)
    return names


def plan_transfer(conn: Any, mapping: MappingResult | None = None, options: TransferOptions | None = None,
                  ledger: Ledger | None = None) -> TransferPlan:
    """Work out what would be transferred and why anything else is not. No writes."""
    options = options or TransferOptions()
    mapping = mapping or check_location(conn)
    inputs = mapping.inputs
    assert inputs is not None, "plan_transfer needs a MappingResult from check_location"
    tenant = str(conn.xero.tenant_id)
    invoices = inputs.invoices.copy()
    lines = inputs.lines
    inclusive_business = bool(conn.business.get("PricesIncludeTax", False))
    base_currency = conn.organisation.get("BaseCurrency")
    currencies = set(conn.xero.fetch_currencies()["Code"]) | {base_currency}
    ledger_done = ledger.transferred_ids(tenant) if ledger else set()
    # Ask Xero only about numbers the ledger does not already account for.
    numbers = [str(n) for n, i in zip(invoices["InvoiceNumber"], invoices["Id"], strict=True)
               if isinstance(n, str) and n and int(i) not in ledger_done]
    in_xero = _numbers_in_xero(conn, numbers) if numbers else set()

    reasons = pd.Series("", index=invoices.index, dtype="string")

    def exclude(mask: pd.Series, reason: pd.Series | str) -> None:
        nonlocal reasons
        fresh = mask & (reasons == "")
        reasons = reasons.where(~fresh, reason if isinstance(reason, str) else reason.astype("string"))

    exclude(invoices["Void"].astype(bool), "void in Nexudus")
    exclude(invoices["Draft"].astype(bool), "draft in Nexudus (no invoice number yet)")
    exclude(invoices["Id"].isin(ledger_done), "already transferred (ledger)")
    exclude(invoices["InvoiceNumber"].isin(in_xero), "already in Xero (same invoice number)")
    verdicts = mapping.invoices.set_index("invoice_id")
    blocked = invoices["Id"].map(verdicts["reasons"]).fillna("")
    exclude(blocked != "", "mapping: " + blocked)
    exclude(~invoices["CurrencyCode"].isin(currencies),
            "currency " + invoices["CurrencyCode"].astype("string") + " is not enabled in Xero organisation " +
            str(conn.organisation.get("Name")))
    names = _contact_names(invoices)
    exclude(names == "", "customer has no billing, company or full name")
    exclude(names.str.len() > MAX_CONTACT_NAME,
            f"customer name longer than {MAX_CONTACT_NAME} characters (Xero's limit): shorten it in Nexudus")

    # Predict Xero's totals per invoice and hold back any that would not reconcile.
    tax_types = _tax_types(mapping, lines)
    rates = lines["TaxCategoryName"].astype("string").fillna("").map(
        tax_types.set_index("tax_rate_name")["xero_rate"] if len(tax_types) else {}).fillna("0")
    predicted = predict_xero_totals(lines, rates, pd.Series(inclusive_business, index=lines.index))
    predicted["invoice_id"] = lines["CoworkerInvoiceId"].to_numpy()
    per_invoice = predicted.groupby("invoice_id")[["line_cents", "tax_cents"]].sum()
    line_sum = invoices["Id"].map(per_invoice["line_cents"]).fillna(0).astype("int64")
    tax_sum = invoices["Id"].map(per_invoice["tax_cents"]).fillna(0).astype("int64")
    xero_total_cents = line_sum if inclusive_business else line_sum + tax_sum
    nexudus_cents = invoices["TotalAmount"].map(lambda d: int(Decimal(d).scaleb(2)))
    difference = nexudus_cents - xero_total_cents
    invoices["xero_total"] = xero_total_cents.map(from_minor)
    invoices["difference"] = difference.map(from_minor)
    exclude(difference != 0, "Xero would total " + invoices["xero_total"].astype(str) + ", Nexudus says " +
            invoices["TotalAmount"].astype(str) + " (difference " + invoices["difference"].astype(str) +
            "): fix the rounding in Nexudus or the line amounts")

    eligible_mask = reasons == ""
    excluded = pd.DataFrame({
        "nexudus_invoice_id": invoices["Id"], "invoice_number": invoices["InvoiceNumber"],
        "currency": invoices["CurrencyCode"], "nexudus_total": invoices["TotalAmount"], "reason": reasons,
    })[~eligible_mask].reset_index(drop=True)
    chosen = invoices[eligible_mask]
    coworkers = conn.nexudus.fetch_coworkers().set_index("Id")
    contact_numbers = chosen["CoworkerId"].map(lambda cid: CONTACT_NUMBER_PREFIX + str(coworkers.at[cid, "UniqueId"])
                                               if cid in coworkers.index else f"{CONTACT_NUMBER_PREFIX}{cid}")
    eligible = pd.DataFrame({
        "nexudus_invoice_id": chosen["Id"], "invoice_number": chosen["InvoiceNumber"],
        "kind": np.where(chosen["CreditNote"].astype(bool), "credit_note", "invoice"),
        "coworker_id": chosen["CoworkerId"], "contact_number": contact_numbers, "contact_name": names[eligible_mask],
        "currency": chosen["CurrencyCode"], "nexudus_total": chosen["TotalAmount"], "xero_total": chosen["xero_total"],
        "difference": chosen["difference"], "date": chosen["CreatedOn"],
    }).reset_index(drop=True)
    existing = _existing_contacts(conn)
    eligible["xero_contact_id"] = eligible["contact_number"].map(existing["by_number"]).astype("object")
    new_contacts = _new_contacts(eligible, existing["names"], coworkers)
    wanted_lines = lines[lines["CoworkerInvoiceId"].isin(set(eligible["nexudus_invoice_id"]))].sort_values(["CoworkerInvoiceId", "Position"])
    line_groups: dict[int, list[dict[str, Any]]] = {}
    for line in wanted_lines.to_dict("records"):
        line_groups.setdefault(int(line["CoworkerInvoiceId"]), []).append(line)
    tax_by_name = tax_types.set_index("tax_rate_name")["xero_tax_type"].to_dict() if len(tax_types) else {}
    tracking = getattr(conn, "tracking", None)
    payloads = {int(inv["Id"]): _payload(inv, line_groups.get(int(inv["Id"]), []), tax_by_name, inclusive_business, options,
                                         tracking)
                for inv in chosen.to_dict("records")}
    context = {"location": conn.location, "organisation": conn.organisation.get("Name"), "tenant_id": tenant,
               "period": mapping.context.get("period"), "prices_include_tax": inclusive_business,
               "day_calls_left": day_calls_left(conn), "tracking": getattr(conn, "tracking", None)}
    return TransferPlan(eligible, excluded, payloads, new_contacts, tenant, options, context)


def _numbers_in_xero(conn: Any, numbers: list[str]) -> set[str]:
    """Which of these invoice numbers Xero already has (as many numbers per call as a URL holds)."""
    found = {str(inv.get("InvoiceNumber")) for inv in conn.xero.iter_invoices(invoice_numbers=numbers, summary_only=True)
             if inv.get("Status") != "DELETED"}
    return found


def _tax_types(mapping: MappingResult, lines: pd.DataFrame) -> pd.DataFrame:
    """Nexudus tax rate name -> the Xero tax type and rate it resolved to.

    Every resolved row counts, even one flagged for some accounts only (a tax type
    refused on one account is fine on the others); invoices whose lines are blocked
    never reach a payload.
    """
    taxes = mapping.tax_rates.dropna(subset=["xero_tax_type"])
    taxes = taxes[taxes["tax_rate"] != ""]
    return taxes[["tax_rate_name", "xero_tax_type", "xero_rate"]].drop_duplicates("tax_rate_name")


def _existing_contacts(conn: Any) -> dict[str, Any]:
    by_number: dict[str, str] = {}
    names: set[str] = set()
    for contact in conn.xero.iter_contacts(include_archived=True):
        if contact.get("ContactNumber"):
            by_number[str(contact["ContactNumber"])] = contact["ContactID"]
        if contact.get("ContactStatus") == "ACTIVE":
            names.add(str(contact.get("Name", "")).casefold())
    return {"by_number": by_number, "names": names}


def _new_contacts(eligible: pd.DataFrame, taken_names: set[str], coworkers: pd.DataFrame) -> pd.DataFrame:
    """One contact per coworker not yet in Xero; a name already taken gets a distinguishing suffix."""
    todo = eligible[eligible["xero_contact_id"].isna()].drop_duplicates("contact_number")
    rows = []
    taken = set(taken_names)
    for rec in todo.itertuples():
        name = rec.contact_name
        if name.casefold() in taken:
            email = coworkers.at[rec.coworker_id, "BillingEmail"] if rec.coworker_id in coworkers.index else None
            suffix = f" ({email})" if isinstance(email, str) and email else f" (Nexudus {rec.coworker_id})"
            name = name[: MAX_CONTACT_NAME - len(suffix)] + suffix
        taken.add(name.casefold())
        email = coworkers.at[rec.coworker_id, "BillingEmail"] if rec.coworker_id in coworkers.index else None
        rows.append({"coworker_id": rec.coworker_id, "contact_number": rec.contact_number, "name": name,
                     "email": email if isinstance(email, str) else None})
    return pd.DataFrame(rows, columns=["coworker_id", "contact_number", "name", "email"])


def _date(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).date().isoformat()


def _payload(inv: dict[str, Any], lines: list[dict[str, Any]], tax_by_name: dict[str, str], inclusive: bool,
             options: TransferOptions, tracking: tuple[str, str] | None = None) -> dict[str, Any]:
    """The Xero invoice (or credit note) for one Nexudus invoice; ``tracking`` tags every line with the location."""
    credit = bool(inv["CreditNote"])
    sign = Decimal(-1) if credit else Decimal(1)  # Nexudus credit notes carry negative amounts; Xero's are positive
    items = []
    for line in lines:
        description = next((str(v) for v in (line.get("Description"), line.get("TariffName")) if isinstance(v, str) and v.strip()),
                           f"Nexudus line {line['Id']}")
        item: dict[str, Any] = {
            "Description": description[:4000],
            "Quantity": Decimal(int(line["Quantity"] or 0)),
            "UnitAmount": sign * Decimal(line["UnitPrice"] or 0),
            "AccountCode": str(line["FinancialAccountCode"]),
            "TaxType": tax_by_name.get(str(line["TaxCategoryName"])),
        }
        discount = Decimal(line["DiscountAmount"] or 0) * sign
        if discount:
            item["DiscountAmount"] = discount
        if tracking:
            item["Tracking"] = [{"Name": tracking[0], "Option": tracking[1]}]
        items.append(item)
    date_field = "InvoiceFromDate" if options.invoice_date == "period" else "CreatedOn"
    payload: dict[str, Any] = {
        "Type": "ACCRECCREDIT" if credit else "ACCREC",
        "Reference": str(inv["InvoiceNumber"]),
        "Date": _date(inv[date_field]) or _date(inv["CreatedOn"]),
        "CurrencyCode": str(inv["CurrencyCode"]),
        "LineAmountTypes": "Inclusive" if inclusive else "Exclusive",
        "Status": options.status,
        "LineItems": items,
    }
    if credit:
        payload["CreditNoteNumber"] = str(inv["InvoiceNumber"])
    else:
        payload["InvoiceNumber"] = str(inv["InvoiceNumber"])
        payload["DueDate"] = _date(inv["DueDate"])
    return payload


# ---- the push ---------------------------------------------------------------------------------
OUTCOME_COLUMNS = ["invoice_number", "nexudus_invoice_id", "kind", "outcome", "xero_id", "currency", "nexudus_total",
                   "xero_total", "difference", "messages", "meaning", "fix"]


@dataclass(frozen=True)
class TransferResult:
    """Per-invoice outcome of a push: created, adopted, failed or skipped, with Xero's words."""

    outcomes: pd.DataFrame
    calls: dict[str, int]
    seconds: float
    context: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return self.outcomes["outcome"].value_counts().to_dict()

    @property
    def failed(self) -> pd.DataFrame:
        return self.outcomes[self.outcomes["outcome"] == "failed"]

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / "transfer_outcomes.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.outcomes.to_csv(path, index=False)
        return path

    def __str__(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(self.counts().items()))
        return f"Transfer to {self.context.get('organisation', 'Xero')}: {counts or 'nothing to do'} in {self.seconds:.1f} s"

    def __repr__(self) -> str:
        return f"<TransferResult {self.counts()}>"

    def _repr_html_(self) -> str:
        from recon.display import transfer_result_html

        return transfer_result_html(self)


def batch_key(tenant_id: str, payloads: list[dict[str, Any]]) -> str:
    """An Idempotency-Key from the batch's content: the same batch always gets the same key."""
    body = json.dumps([tenant_id, payloads], sort_keys=True, default=str, separators=(",", ":"))
    return "recon-" + hashlib.sha256(body.encode()).hexdigest()[:58]


def _outcome(row: pd.Series | dict[str, Any], outcome: str, *, xero_id: str | None = None, xero_total: Decimal | None = None,
             messages: list[str] | None = None) -> dict[str, Any]:
    meaning, fix = explain_all(messages) if messages else ("", "")
    nexudus_total = row["nexudus_total"]
    difference = None
    if xero_total is not None:
        difference = abs(Decimal(nexudus_total)) - Decimal(xero_total)
    return {"invoice_number": row["invoice_number"], "nexudus_invoice_id": int(row["nexudus_invoice_id"]),
            "kind": row.get("kind", "invoice"), "outcome": outcome, "xero_id": xero_id, "currency": row["currency"],
            "nexudus_total": nexudus_total, "xero_total": xero_total, "difference": difference,
            "messages": " | ".join(messages or []), "meaning": meaning, "fix": fix}


def recover(conn: Any, ledger: Ledger) -> pd.DataFrame:
    """Resolve intents a crash left behind: found in Xero -> created; not found -> cleared for a resend."""
    tenant = str(conn.xero.tenant_id)
    pending = ledger.unfinished(tenant)
    if pending.empty:
        return pd.DataFrame(columns=["invoice_number", "resolution", "xero_id"])
    found = _lookup(conn, list(pending["invoice_number"]))
    rows = []
    for rec in pending.itertuples():
        hit = found.get(rec.invoice_number)
        if hit is not None:
            ledger.record_outcome(tenant, rec.nexudus_invoice_id, "created", xero_id=hit["id"], xero_total=hit["total"],
                                  messages=["recovered: found in Xero after an interrupted run"])
            rows.append({"invoice_number": rec.invoice_number, "resolution": "found in Xero", "xero_id": hit["id"]})
        else:
            ledger.record_outcome(tenant, rec.nexudus_invoice_id, "failed", messages=["interrupted before Xero saved it; resent"])
            rows.append({"invoice_number": rec.invoice_number, "resolution": "not in Xero: will be sent", "xero_id": None})
        ledger.event("xero", "recover", rows[-1]["resolution"], tenant_id=tenant, subject=rec.invoice_number)
    return pd.DataFrame(rows)


def _lookup(conn: Any, numbers: list[str]) -> dict[str, dict[str, Any]]:
    """Invoice and credit-note numbers -> their Xero id and total (batched)."""
    out: dict[str, dict[str, Any]] = {}
    for inv in conn.xero.iter_invoices(invoice_numbers=numbers, summary_only=True):
        if inv.get("Status") not in ("DELETED",):
            out[str(inv["InvoiceNumber"])] = {"id": inv["InvoiceID"], "total": Decimal(str(inv.get("Total", 0))),
                                              "contact": (inv.get("Contact") or {}).get("ContactID")}
    missing = [n for n in numbers if n not in out]
    if missing and hasattr(conn.xero, "iter_credit_notes"):
        for note in conn.xero.iter_credit_notes(numbers=missing):
            if note.get("Status") not in ("DELETED",):
                out[str(note["CreditNoteNumber"])] = {"id": note["CreditNoteID"], "total": Decimal(str(note.get("Total", 0))),
                                                      "contact": (note.get("Contact") or {}).get("ContactID")}
    return out


def _create_contacts(conn: Any, plan: TransferPlan, ledger: Ledger) -> dict[str, str]:
    """Create the plan's new contacts (batches of 50); returns ContactNumber -> ContactID for all of them."""
    tenant = plan.tenant_id
    ids: dict[str, str] = {}
    todo = plan.new_contacts
    for start in range(0, len(todo), plan.options.batch_size):
        chunk = todo.iloc[start:start + plan.options.batch_size]
        payload = [{"Name": r.name, "ContactNumber": r.contact_number, **({"EmailAddress": r.email} if r.email else {})}
                   for r in chunk.itertuples()]
        for r in chunk.itertuples():
            ledger.record_contact(tenant, r.coworker_id, r.contact_number, "sending", name=r.name)
        try:
            elements = conn.xero.create_contacts(payload, idempotency_key=batch_key(tenant, payload))
        except ClientError as exc:
            ledger.event("xero", "create contacts", "error", tenant_id=tenant, detail=str(exc))
            elements = []
        for r, el in zip(chunk.itertuples(), elements, strict=False):
            if el.get("ContactID") and not el.get("HasValidationErrors"):
                ids[r.contact_number] = el["ContactID"]
                ledger.record_contact(tenant, r.coworker_id, r.contact_number, "created", xero_contact_id=el["ContactID"])
        # Anything not confirmed (an error, a dropped answer) is looked up by its number.
        missing = [r.contact_number for r in chunk.itertuples() if r.contact_number not in ids]
        if missing:
            for contact in conn.xero.iter_contacts(where=" OR ".join(f'ContactNumber=="{n}"' for n in missing),
                                                   include_archived=True):
                ids[str(contact["ContactNumber"])] = contact["ContactID"]
    return ids


# Calls kept back from a day's budget for the run's own reads (recovery look-ups, the status sync).
BUDGET_RESERVE = 10


def _wrong_place(conn: Any, plan: TransferPlan) -> str | None:
    """Why this plan must not be written through this connection, if it must not."""
    location = plan.context.get("location")
    if str(conn.xero.tenant_id) != plan.tenant_id:
        return (f"refused: this plan is for Xero organisation {plan.tenant_id} but the connection writes to "
                f"{conn.xero.tenant_id}; invoices of {location} go only to their own organisation")
    if location is not None and location != conn.location:
        return (f"refused: this plan holds invoices of {location} but the connection is for {conn.location}; "
                "connect to that location and plan again")
    mapped = conn.params.location_map(str(location)) if location else None
    if mapped is not None and plan.context.get("tracking") != getattr(conn, "tracking", None):
        return f"refused: the plan's tracking {plan.context.get('tracking')} is not {location}'s {getattr(conn, 'tracking', None)}"
    return None


def day_calls_left(conn: Any) -> int | None:
    """What Xero's last answer said is left of today's calls for this organisation (None: not known yet)."""
    remaining = getattr(conn.xero, "pacer", None)
    value = remaining.remaining[str(conn.xero.tenant_id)].day if remaining is not None else None
    return value


def push(conn: Any, plan: TransferPlan, ledger: Ledger, *,
         progress: Callable[[int, int], None] | None = None,
         after_batch: Callable[[int, list[dict[str, Any]]], None] | None = None,
         call_budget: int | None = None) -> TransferResult:
    """Write the plan to Xero. Safe to repeat: nothing is ever created twice.

    ``call_budget``: Xero write calls this push may make (default: what the last
    answer's ``X-DayLimit-Remaining`` says, less a reserve). When the plan needs
    more, the oldest invoices that fit go now and the rest are reported
    ``deferred`` for the next run. ``progress(done, total)`` is called after each
    batch; ``after_batch`` is a test hook called after Xero answered and before
    the ledger records it (a crash there is what the ledger's intents exist for).
    """
    started = time.monotonic()
    calls_before = conn.xero.calls
    tenant = plan.tenant_id
    refusal = _wrong_place(conn, plan)
    if refusal:
        # Never written, never silently dropped: every invoice is reported refused and the ledger says why.
        ledger.event("xero", "push refused", "refused", tenant_id=str(conn.xero.tenant_id), detail=refusal)
        frame = pd.DataFrame([_outcome(r, "refused", messages=[refusal]) for r in plan.eligible.to_dict("records")],
                             columns=OUTCOME_COLUMNS)
        return TransferResult(frame, {"xero": 0}, time.monotonic() - started, {**plan.context, "refused": refusal})
    outcomes: list[dict[str, Any]] = []
    recover(conn, ledger)
    done = ledger.transferred_ids(tenant)
    todo = plan.eligible[~plan.eligible["nexudus_invoice_id"].isin(done)]
    for row in plan.eligible[plan.eligible["nexudus_invoice_id"].isin(done)].to_dict("records"):
        outcomes.append(_outcome(row, "skipped", messages=None) | {"messages": "already transferred (ledger)"})
    skipped = len(outcomes)
    left_today = day_calls_left(conn)
    budget = call_budget if call_budget is not None else (None if left_today is None else max(0, left_today - BUDGET_RESERVE))
    needed = calls_needed(todo, plan.new_contacts, plan.options.batch_size)
    deferred_count = 0
    if budget is not None and needed > budget:
        todo = todo.sort_values(["date", "invoice_number"], kind="stable")
        fits = fit_budget(todo, plan.new_contacts, budget, plan.options.batch_size)
        reason = (f"deferred: this push needs {needed} Xero calls and {budget} are left in today's budget; "
                  "the oldest invoices went first and the next run sends these")
        outcomes.extend(_outcome(r, "deferred", messages=[reason]) for r in todo.iloc[fits:].to_dict("records"))
        deferred_count = len(todo) - fits
        skipped = len(outcomes)
        todo = todo.iloc[:fits]
        plan = plan.only(todo["invoice_number"])
        ledger.event("xero", "call budget", "deferred", tenant_id=tenant, detail={"needed": needed, "budget": budget,
                                                                                    "deferred": deferred_count})
    contact_ids = dict(zip(todo["contact_number"], todo["xero_contact_id"], strict=True))
    contact_ids = {k: v for k, v in contact_ids.items() if isinstance(v, str)}
    contact_ids.update(_create_contacts(conn, plan, ledger))
    stop_reason: str | None = None
    rows = todo.to_dict("records")
    size = plan.options.batch_size
    total = len(rows)
    for kind in ("invoice", "credit_note"):
        batch_rows = [r for r in rows if r["kind"] == kind]
        for start in range(0, len(batch_rows), size):
            chunk = batch_rows[start:start + size]
            if stop_reason:
                outcomes.extend(_outcome(r, "skipped", messages=[stop_reason]) for r in chunk)
                continue
            ready, no_contact = [], []
            for r in chunk:
                (ready if r["contact_number"] in contact_ids else no_contact).append(r)
            outcomes.extend(_outcome(r, "failed", messages=["The Xero contact could not be created; see the contact's error"])
                            for r in no_contact)
            if not ready:
                continue
            try:
                outcomes.extend(_send_batch(conn, plan, ledger, kind, ready, contact_ids, after_batch))
            except (AuthError, RateLimited) as exc:
                # The run cannot go on (sign-in gone, or today's limit spent): say so for the rest.
                stop_reason = f"not sent: {exc}"
                recover(conn, ledger)
                outcomes.extend(_outcome(r, "skipped", messages=[stop_reason]) for r in ready)
            if progress:
                progress(min(len(outcomes) - skipped, total), total)
    if plan.options.write_back:
        _write_back(conn, ledger, tenant)
    frame = pd.DataFrame(outcomes, columns=OUTCOME_COLUMNS)
    return TransferResult(frame, {"xero": conn.xero.calls - calls_before}, time.monotonic() - started,
                          {**plan.context, "eligible": len(plan.eligible) + deferred_count, "write_calls_needed": needed,
                           "call_budget": budget, "deferred": deferred_count})


def _send_batch(conn: Any, plan: TransferPlan, ledger: Ledger, kind: str, chunk: list[dict[str, Any]],
                contact_ids: dict[str, str], after_batch: Callable[[int, list[dict[str, Any]]], None] | None) -> list[dict[str, Any]]:
    tenant = plan.tenant_id
    payloads = []
    for r in chunk:
        body = dict(plan.payloads[int(r["nexudus_invoice_id"])])
        body["Contact"] = {"ContactID": contact_ids[r["contact_number"]]}
        payloads.append(body)
    key = batch_key(tenant, payloads)
    ledger.record_intents(tenant, key, [{**r, "nexudus_total": r["nexudus_total"]} for r in chunk])
    ledger.event("xero", f"create {kind}s", "sending", tenant_id=tenant, subject=key, detail=[r["invoice_number"] for r in chunk])
    try:
        if kind == "credit_note":
            elements = conn.xero.create_credit_notes(payloads, idempotency_key=key)
        else:
            elements = conn.xero.create_invoices(payloads, idempotency_key=key)
    except (AuthError, RateLimited):
        raise
    except ClientError as exc:
        # Whole batch refused or unanswered: Xero may or may not have saved it. Ask, by number.
        ledger.event("xero", f"create {kind}s", "error", tenant_id=tenant, subject=key, detail=str(exc))
        try:
            found = _lookup(conn, [r["invoice_number"] for r in chunk])
        except ClientError as lookup_exc:
            # Cannot tell whether Xero saved them: the intents stay open for the next run to resolve.
            message = f"unknown: Xero did not answer ({exc}) and could not be asked ({lookup_exc}); the next run resolves it"
            return [_outcome(r, "unknown", messages=[message]) for r in chunk]
        out = []
        for r in chunk:
            hit = found.get(r["invoice_number"])
            if hit:
                ledger.record_outcome(tenant, r["nexudus_invoice_id"], "created", xero_id=hit["id"], xero_total=hit["total"])
                out.append(_outcome(r, "created", xero_id=hit["id"], xero_total=hit["total"]))
            else:
                messages = getattr(exc, "messages", None) or [str(exc)]
                ledger.record_outcome(tenant, r["nexudus_invoice_id"], "failed", messages=messages)
                out.append(_outcome(r, "failed", messages=messages))
        return out
    if after_batch:
        after_batch(len(chunk), elements)
    out = []
    duplicates = []
    recorded = []
    id_key = "CreditNoteID" if kind == "credit_note" else "InvoiceID"
    for r, el in zip(chunk, elements, strict=True):
        messages = [m.get("Message", "") for m in el.get("ValidationErrors") or []]
        if el.get("StatusAttributeString") in ("OK", "WARNING") and el.get(id_key):
            total = Decimal(str(el.get("Total", 0)))
            recorded.append({"nexudus_invoice_id": r["nexudus_invoice_id"], "state": "created", "xero_id": el[id_key],
                             "xero_total": total})
            out.append(_outcome(r, "created", xero_id=el[id_key], xero_total=total))
        elif any("must be unique" in m for m in messages):
            duplicates.append(r)
        else:
            recorded.append({"nexudus_invoice_id": r["nexudus_invoice_id"], "state": "failed", "messages": messages})
            out.append(_outcome(r, "failed", messages=messages))
    ledger.record_outcomes(tenant, recorded)
    if duplicates:
        out.extend(_adopt(conn, ledger, tenant, duplicates, contact_ids))
    return out


def _adopt(conn: Any, ledger: Ledger, tenant: str, rows: list[dict[str, Any]], contact_ids: dict[str, str]) -> list[dict[str, Any]]:
    """Xero already has these numbers: the same invoice (contact and total agree) is adopted, else it fails."""
    found = _lookup(conn, [r["invoice_number"] for r in rows])
    out = []
    for r in rows:
        hit = found.get(r["invoice_number"])
        same = hit is not None and hit["total"] == abs(Decimal(r["nexudus_total"])) and hit["contact"] == contact_ids.get(r["contact_number"])
        if same:
            ledger.record_outcome(tenant, r["nexudus_invoice_id"], "created", xero_id=hit["id"], xero_total=hit["total"],
                                  messages=["adopted: Xero already had this invoice"])
            out.append(_outcome(r, "adopted", xero_id=hit["id"], xero_total=hit["total"]))
        else:
            messages = ["Invoice # must be unique.", "Xero has another invoice with this number (different customer or total)"]
            ledger.record_outcome(tenant, r["nexudus_invoice_id"], "failed", messages=messages)
            out.append(_outcome(r, "failed", messages=messages))
    return out


def _write_back(conn: Any, ledger: Ledger, tenant: str) -> None:
    """Store each new Xero id in the Nexudus invoice's SystemId (the only field its API lets us write)."""
    rows = ledger.transfers(tenant)
    for rec in rows[(rows["state"] == "created") & (rows["written_back"] == 0)].itertuples():
        try:
            conn.nexudus.update_invoice(int(rec.nexudus_invoice_id), SystemId=f"xero:{rec.xero_id}")
        except ClientError as exc:
            ledger.event("nexudus", "write back xero id", "error", tenant_id=tenant, subject=rec.invoice_number, detail=str(exc))
            continue
        ledger.record_written_back(tenant, int(rec.nexudus_invoice_id))
