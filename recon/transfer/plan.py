"""The transfer's plan (preview): what would go to Xero, what would not, and why. No writes.

Floor 2. ``plan_transfer(conn)`` reads both sides and returns a ``TransferPlan``:
every eligible invoice with the Xero payload recon will send and the totals
Xero will compute (per-line tax, rounded half away from zero to the cent), and
every excluded invoice with its reason (void, draft, already transferred,
blocked by the mapping, currency not in the organisation, a total Xero would
compute differently, a customer name Xero would refuse). It also counts the
write calls a push needs, against what is left of today's Xero limit, and the
Nexudus calls of the write-back when the params turn it on (off by default).

Before anything else, the location's binding to its Xero organisation (``recon.bindings``):
until a person confirmed it, or when the ledger binds the location to another organisation,
or when the organisation cannot book the location's currency, every invoice is held back
with that reason. The plan only reads the ledger's bindings; the push records a binding the
params confirm, before its first call (``settle_binding``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recon.bindings import BindingCheck, BindingState, binding_of, check_binding
from recon.cells import csv_safe
from recon.clients.nexudus_limits import NexudusLimits
from recon.clients.xero import BATCH_SIZE
from recon.ledger import Ledger
from recon.mapping import MappingResult, check_location
from recon.money import minor_or_zero
from recon.params import RunParams
from recon.session import Connection
from recon.transfer.amounts import currency_rates, work_out_amounts
from recon.transfer.contacts import (
    MAX_CONTACT_NAME,
    customers_frame,
    fetch_xero_contacts,
    match_contacts,
)
from recon.transfer.guards import (
    check_currencies,
    check_lock_dates,
    check_number_clashes,
    lock_date,
)
from recon.transfer.lookups import fetch_numbered_documents, lookup_file, lookup_window
from recon.values import decimal_sum, records

__all__ = [
    "WRITE_BACK_BUDGET",
    "WRITE_BACK_CALLS",
    "TransferOptions",
    "TransferPlan",
    "calls_needed",
    "day_calls_left",
    "fit_budget",
    "plan_transfer",
    "settle_binding",
    "write_back_calls",
]

MAX_DESCRIPTION = 4000  # Xero's limit on a line's Description
# Nexudus calls one write-back of a Xero id costs: a read by id, the whole-record PUT, a read
# back (nexudus.md §4: a PUT replaces the record, and only a read by id is a safe base).
WRITE_BACK_CALLS = 3
# Nexudus calls one push's write-back may make unless told otherwise: an hour of Nexudus' limit
# (5,000 calls, nexudus.md §5) less room for the other reads of that hour, about 1,500
# invoices. Past it the write-back would only wait for the hour to roll; the next push goes on.
WRITE_BACK_BUDGET = NexudusLimits().calls_per_hour - 500


# Beside the plan's CSV files: the organisation and ledger its push records in.
PLAN_RECORD = "transfer_plan.json"


@dataclass(frozen=True)
class TransferOptions:
    """How invoices go over. The defaults are Nexudus' own."""

    status: str = "AUTHORISED"  # DRAFT, SUBMITTED or AUTHORISED
    invoice_date: str = "issue"  # "issue" (CreatedOn) or "period" (InvoiceFromDate)
    # Store each new Xero id in its Nexudus invoice's SystemId (params
    # ``write_back_system_id``). Off by default: the ledger is the record, and each costs
    # WRITE_BACK_CALLS Nexudus calls under its limits (nexudus.md §4, §5).
    write_back: bool = False
    batch_size: int = BATCH_SIZE
    # Send quantity 1 x Nexudus' stored line amount when Xero's arithmetic cannot reproduce
    # Nexudus' rounding any other way (params ``send_line_amounts``).
    line_amounts: bool = False
    # A non-credit invoice with a negative total: "hold" it back, or send it as a "credit_note"
    # (params ``negative_invoices``).
    negative_invoices: str = "hold"

    @classmethod
    def from_params(cls, params: RunParams) -> TransferOptions:
        """The options a params file asks for (the rest at their defaults)."""
        return cls(
            status=params.xero_status,
            invoice_date=params.invoice_date,
            line_amounts=params.send_line_amounts,
            negative_invoices=params.negative_invoices,
            write_back=params.write_back_system_id,
        )


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
        return pd.DataFrame(
            {
                "invoices": grouped.size(),
                "total": grouped["nexudus_total"].agg(decimal_sum),
            }
        ).reset_index()

    def only(self, invoice_numbers: Iterable[str]) -> TransferPlan:
        """The same plan narrowed to some invoices (a notebook's filter)."""
        keep = set(invoice_numbers)
        eligible = self.eligible[self.eligible["invoice_number"].isin(keep)]
        ids = set(eligible["nexudus_invoice_id"])
        return TransferPlan(
            eligible.reset_index(drop=True),
            self.excluded,
            {k: v for k, v in self.payloads.items() if k in ids},
            self.new_contacts[self.new_contacts["coworker_id"].isin(set(eligible["coworker_id"]))],
            self.tenant_id,
            self.options,
            self.context,
        )

    def save(self, folder: str | Path) -> list[Path]:
        """Write the plan's eligible and excluded invoices and its contact preview as
        ``transfer_plan_*.csv`` in ``folder`` (formula-looking text made inert); returns the
        paths."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, frame in (
            ("transfer_plan_eligible.csv", self.eligible),
            ("transfer_plan_excluded.csv", self.excluded),
            ("transfer_plan_contacts.csv", self.contacts()),
        ):
            csv_safe(frame).to_csv(out / name, index=False)
            paths.append(out / name)
        # Where the push records its writes: an interrupted run's outcomes are read back from
        # there (recon.transfer.interrupted). No credential, only a path and ids.
        record = {
            "tenant_id": self.tenant_id,
            "ledger_path": self.context.get("ledger_path"),
            "push": bool(self.context.get("push")),
        }
        (out / PLAN_RECORD).write_text(json.dumps(record, indent=1), "utf-8")
        paths.append(out / PLAN_RECORD)
        return paths

    def contacts(self) -> pd.DataFrame:
        """The contact preview: per customer, the Xero contact it will use and why ("number",
        "pinned", "name", "email"), "new", or held back ("ambiguous", "archived")."""
        found = self.context.get("contacts")
        return found if isinstance(found, pd.DataFrame) else pd.DataFrame(columns=["match"])

    def ways(self) -> dict[str, int]:
        """How many eligible invoices go over each way ("as lines", "tax override", ...)."""
        if self.eligible.empty or "way" not in self.eligible.columns:
            return {}
        return {str(k): int(v) for k, v in self.eligible["way"].value_counts().items()}

    @property
    def write_calls(self) -> int:
        """Xero writes a full push needs: contact batches plus invoice and credit-note batches."""
        return calls_needed(self.eligible, self.new_contacts, self.options.batch_size)

    @property
    def write_back_calls(self) -> int:
        """Nexudus calls a full push's write-back needs (0 when the write-back is off)."""
        return write_back_calls(self.eligible, self.options.write_back)

    def describe(self) -> str:
        """'Transfer 297 invoices (GBP 249,653.80; EUR 641.70)'."""
        parts = "; ".join(f"{r.currency} {r.total:,.2f}" for r in self.totals().itertuples())
        return f"Transfer {len(self.eligible)} invoices" + (f" ({parts})" if parts else "")

    def __repr__(self) -> str:
        return f"<TransferPlan {len(self.eligible)} eligible, {len(self.excluded)} excluded>"

    def _repr_html_(self) -> str:
        from recon.display import transfer_plan_html

        return transfer_plan_html(self)


def calls_needed(
    eligible: pd.DataFrame, new_contacts: pd.DataFrame, batch_size: int = BATCH_SIZE
) -> int:
    """The Xero write calls the batch size forces for these invoices and the contacts they need."""
    kinds = eligible["kind"].value_counts() if len(eligible) else pd.Series(dtype="int64")
    needed_contacts = (
        new_contacts[new_contacts["coworker_id"].isin(set(eligible["coworker_id"]))]
        if len(eligible)
        else new_contacts.iloc[0:0]
    )
    return sum(math.ceil(int(n) / batch_size) for n in kinds.to_numpy()) + math.ceil(
        len(needed_contacts) / batch_size
    )


def write_back_calls(eligible: pd.DataFrame, write_back: bool = True) -> int:
    """The Nexudus calls storing these invoices' Xero ids in Nexudus costs: ``WRITE_BACK_CALLS``
    an invoice when ``write_back`` is on, else 0. Nexudus' budget, not Xero's."""
    return WRITE_BACK_CALLS * len(eligible) if write_back else 0


def fit_budget(
    eligible: pd.DataFrame, new_contacts: pd.DataFrame, budget: int, batch_size: int = BATCH_SIZE
) -> int:
    """How many of the oldest eligible invoices (by date, then number) fit in ``budget`` write
    calls."""
    if calls_needed(eligible, new_contacts, batch_size) <= budget:
        return len(eligible)
    low, high = (
        0,
        len(eligible),
    )  # calls_needed grows with the prefix: binary search the longest that fits
    while low < high:
        mid = (low + high + 1) // 2
        if calls_needed(eligible.iloc[:mid], new_contacts, batch_size) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def prices_include_tax(
    invoices: pd.DataFrame, lines: pd.DataFrame, setting: bool | None
) -> tuple[pd.Series, pd.Series]:
    """Per invoice: whether its line amounts include tax, and whether that contradicts ``setting``.

    Nexudus keeps the "prices include tax" switch out of its API, so each
    invoice's own totals tell (nexudus.md §7.2): Σ SubTotal = TotalAmount means
    gross amounts, Σ SubTotal + Σ TaxAmount = TotalAmount net ones. An invoice
    without tax fits both and follows ``setting`` (net when None). With a
    ``setting``, an invoice whose totals say the other way is flagged.
    """
    sub = _cents_per_invoice(lines, "SubTotal")
    tax = _cents_per_invoice(lines, "TaxAmount")
    ids = invoices["Id"]
    sub_cents = ids.map(sub).fillna(0).astype("int64")
    tax_cents = ids.map(tax).fillna(0).astype("int64")
    total = invoices["TotalAmount"].map(minor_or_zero)
    taxed = tax_cents != 0
    gross = taxed & (sub_cents == total)
    net = taxed & (sub_cents + tax_cents == total)
    if setting is None:
        return gross, pd.Series(False, index=invoices.index)
    inclusive = pd.Series(setting, index=invoices.index)
    contradicts = (gross & ~net) if not setting else (net & ~gross)
    return inclusive, contradicts


def _cents_per_invoice(lines: pd.DataFrame, column: str) -> pd.Series:
    """Σ ``column`` per CoworkerInvoiceId, in integer cents."""
    if column not in lines.columns or lines.empty:
        return pd.Series(dtype="int64")
    cents = lines[column].map(minor_or_zero)
    return cents.groupby(lines["CoworkerInvoiceId"].to_numpy()).sum()


def _warnings(invoices: pd.DataFrame, location: str) -> list[str]:
    """What a person should know before pushing (nexudus.md §11)."""
    found = []
    column = "AutoTransferToXeroOrQuickBooks"
    if column in invoices.columns and invoices[column].fillna(False).astype(bool).any():
        count = int(invoices[column].fillna(False).astype(bool).sum())
        found.append(
            f"Nexudus' own automatic transfer to Xero is on for {location} ({count} invoices "
            "flagged AutoTransferToXeroOrQuickBooks): Nexudus and recon would both send new "
            "invoices. Turn one of them off (Settings > Integrations > Xero) before pushing."
        )
    return found


def _contact_names(invoices: pd.DataFrame) -> pd.Series:
    """The Xero contact name per invoice: billing name, else company, else full name; spaces
    collapsed."""
    names = pd.Series("", index=invoices.index, dtype="string")
    for key in ("CoworkerFullName", "CoworkerCompanyName", "BillToName"):  # later keys win
        if key in invoices.columns:
            value = invoices[key].astype("string").str.split().str.join(" ").fillna("")
            names = value.where(value != "", names)
    return names


def settle_binding(
    conn: Connection,
    ledger: Ledger | None,
    enabled_currencies: Iterable[str] | None = None,
    *,
    record: bool = False,
) -> BindingCheck:
    """The verdict on writing this connection's location to its organisation (``recon.bindings``).

    ``ledger``: where bindings are recorded (None: none is known). ``record``: a binding the
    params confirm, or re-bind on purpose, is recorded there (compare-and-set) and the verdict
    read back; otherwise the ledger is only read. ``enabled_currencies``: the organisation's
    ``GET /Currencies`` codes, to check the location's currency; None skips that check. Makes
    no call.
    """
    target = binding_of(conn.business, {**conn.organisation, "OrganisationID": conn.xero.tenant_id})
    currency = conn.business.get("CurrencyCode")
    code = None if currency is None or pd.isna(currency) else str(currency)
    enabled = None if enabled_currencies is None else list(enabled_currencies)

    def check() -> BindingCheck:
        recorded = ledger.binding(target.business_id) if ledger is not None else None
        return check_binding(
            target,
            conn.params,
            recorded,
            location_currency=code,
            enabled_currencies=enabled,
        )

    verdict = check()
    if ledger is None or not record or not verdict.needs_recording:
        return verdict
    ledger.record_binding(
        target.business_id,
        target.location,
        target.organisation_id,
        target.organisation_name,
        target.base_currency,
        confirmed_by=str(verdict.confirmed_by),
        source=f"params {conn.params.source}",
        replaces=(
            verdict.recorded.organisation_id
            if verdict.state is BindingState.REBIND and verdict.recorded
            else None
        ),
    )
    # Read back: recorded now (CONFIRMED), or another run recorded something else meanwhile.
    return check()


def _own_copies(
    clash: pd.Series,
    clashes: pd.DataFrame,
    invoices: pd.DataFrame,
    ledger: Ledger | None,
    tenant: str,
) -> pd.Series:
    """``clash`` with each clash that is recon's own earlier copy of the invoice said as such.

    A push whose invoice Xero booked with other figures records it failed with Xero's id
    (``push.booked_differences``). On the next run that copy holds the invoice's number, but it
    is no clash with another customer's invoice: the invoice is in Xero, not as planned, and
    stays a write that is not done (``recon run`` exits 3) until it is voided or corrected.
    """
    if ledger is None or not (clash != "").any():
        return clash
    rows = ledger.transfers(tenant)
    failed = rows[(rows["state"] == "failed") & rows["xero_id"].notna()]
    if failed.empty:
        return clash
    recorded = pd.Series(
        failed["xero_id"].astype(str).str.lower().to_numpy(),
        index=failed["nexudus_invoice_id"].astype(int).to_numpy(),
    )
    theirs = clashes["clash_xero_id"].reindex(invoices.index).astype("object")
    ours = invoices["Id"].astype("Int64").map(recorded)
    own = (clash != "") & theirs.notna() & (theirs.astype(str).str.lower() == ours).fillna(False)
    if not own.any():
        return clash
    said = (
        "Xero holds it (id "
        + theirs[own].astype(str)
        + ") from an earlier push by recon, booked differently: "
        + clash[own].str.replace(r": renumber one of them$", "", regex=True)
        + ". Void or correct it in Xero, then run the status sync"
    )
    return clash.where(~own, said.reindex(clash.index)).astype("string")


def plan_transfer(
    conn: Connection,
    mapping: MappingResult | None = None,
    options: TransferOptions | None = None,
    ledger: Ledger | None = None,
) -> TransferPlan:
    """Work out what would be transferred and why anything else is not. No writes."""
    options = options or TransferOptions.from_params(conn.params)
    mapping = mapping or check_location(conn)
    inputs = mapping.inputs
    assert inputs is not None, "plan_transfer needs a MappingResult from check_location"
    tenant = str(conn.xero.tenant_id)
    invoices = inputs.invoices.copy()
    lines = inputs.lines
    setting = conn.params.prices_include_tax_for(conn.location)
    base_currency = conn.organisation.get("BaseCurrency")
    ledger_done = ledger.transferred_ids(tenant) if ledger else set()
    enabled_currencies = conn.xero.fetch_currencies()["Code"]
    binding = settle_binding(conn, ledger, enabled_currencies)

    reasons = pd.Series("", index=invoices.index, dtype="string")

    def exclude(mask: pd.Series, reason: pd.Series | str) -> None:
        nonlocal reasons
        fresh = mask & (reasons == "")
        reasons = reasons.where(
            ~fresh, reason if isinstance(reason, str) else reason.astype("string")
        )

    if not binding.is_confirmed:
        # Every invoice of the location, whatever else is true of it: the books are not settled.
        exclude(pd.Series(True, index=invoices.index), binding.reason)
    exclude(invoices["Void"].astype(bool), "void in Nexudus")
    numbers = invoices["InvoiceNumber"].astype("string").str.strip().fillna("")
    exclude(
        (numbers == "") & ~invoices["Draft"].astype(bool),
        "no invoice number in Nexudus: Xero needs one (check the invoice in Nexudus)",
    )
    exclude(invoices["Draft"].astype(bool), "draft in Nexudus (no invoice number yet)")
    if "XeroInvoiceTransfered" in invoices.columns:
        # Nexudus' own integration already sent these (nexudus.md §11): never a second copy.
        exclude(
            invoices["XeroInvoiceTransfered"].fillna(False).astype(bool),
            "already sent to Xero by Nexudus' own integration (XeroInvoiceTransfered)",
        )
    exclude(invoices["Id"].isin(ledger_done), "already transferred (ledger)")
    verdicts = mapping.invoices.set_index("invoice_id")
    blocked = invoices["Id"].map(verdicts["reasons"]).fillna("")
    exclude(blocked != "", "mapping: " + blocked)
    currency_problems = check_currencies(
        invoices["CurrencyCode"], conn.organisation, enabled_currencies
    )
    exclude(currency_problems != "", currency_problems)
    names = _contact_names(invoices)
    exclude(names == "", "customer has no billing, company or full name")
    exclude(
        names.str.len() > MAX_CONTACT_NAME,
        f"customer name longer than {MAX_CONTACT_NAME} characters (Xero's limit): shorten it in "
        "Nexudus",
    )

    # Predict Xero's totals per invoice and hold back any that would not reconcile.
    tax_types = _tax_types(mapping, lines)
    rates = (
        lines["TaxCategoryName"]
        .astype("string")
        .fillna("")
        .map(tax_types.set_index("tax_rate_name")["xero_rate"] if len(tax_types) else {})
        .astype("object")  # all-missing maps come back as float NaN
        .fillna("0")
    )
    inclusive, contradicts = prices_include_tax(invoices, lines, setting)
    if setting is not None:
        exclude(
            contradicts,
            f"the location's prices_include_tax is {str(setting).lower()}, but this invoice's "
            "lines add up the other way (nexudus.md §7.2): check the setting in the params and "
            "Nexudus' Settings > Tax",
        )
    # How each invoice's money goes over (or why it cannot), on the invoices still in the running.
    candidates = invoices[reasons == ""]
    amounts = work_out_amounts(
        candidates,
        lines[lines["CoworkerInvoiceId"].isin(set(candidates["Id"]))],
        rates,
        pd.Series(inclusive.to_numpy(), index=invoices["Id"].to_numpy()),
        line_amounts=options.line_amounts,
        negative_as_credit=options.negative_invoices == "credit_note",
    )
    figures = amounts.invoices
    held = invoices["Id"].map(figures["reason"].astype("string")).astype("string").fillna("")
    exclude(held != "", held)
    fx = currency_rates(invoices, base_currency)
    as_credit = invoices["Id"].map(figures["as_credit"]).astype("object").fillna(False).astype(bool)

    # Guards before any write (each a held-back reason, never a failed call): the contact each
    # customer will use, an invoice number Xero already has, Xero's lock dates.
    coworkers = conn.nexudus.fetch_coworkers().set_index("Id")
    contact_plan = match_contacts(
        customers_frame(invoices["CoworkerId"], names, coworkers.reset_index()),
        fetch_xero_contacts(conn.xero),
        conn.params.contact_pins,
        conn.params.contact_key,
    )
    per_invoice = contact_plan.for_invoices(invoices["CoworkerId"])
    contact_problems = per_invoice["reason"].fillna("").astype("string")
    exclude(contact_problems != "", contact_problems)
    open_rows = (reasons == "") & ~invoices["Id"].isin(ledger_done)
    planned = pd.DataFrame(
        {
            "invoice_number": invoices["InvoiceNumber"].astype("string"),
            "kind": np.where(as_credit, "credit_note", "invoice"),
            "contact_number": per_invoice["contact_number"],
            "contact_name": names,
            "xero_contact_id": per_invoice["xero_contact_id"],
            "total": invoices["TotalAmount"],
            "currency": invoices["CurrencyCode"],
        },
        index=invoices.index,
    )[open_rows]
    date_field = "InvoiceFromDate" if options.invoice_date == "period" else "CreatedOn"
    xero_dates = (
        invoices[date_field]
        .where(invoices[date_field].notna(), invoices["CreatedOn"])
        .map(_date)
        .map(lambda d: date.fromisoformat(d) if d else None)
    )
    if len(planned):
        # One paged read of the dates these invoices will carry, kept beside the ledger so the
        # next plan asks Xero only for what changed since (lookups.fetch_numbered_documents).
        found = fetch_numbered_documents(
            conn.xero,
            planned,
            window=lookup_window(xero_dates[open_rows]),
            kept=lookup_file(ledger.path, tenant) if ledger is not None else None,
        )
        clashes = check_number_clashes(planned, found)
        already = clashes["already_in_xero"].reindex(invoices.index, fill_value=False)
        exclude(already.astype(bool), "already in Xero (same invoice number)")
        clash = clashes["reason"].reindex(invoices.index).fillna("").astype("string")
        exclude(clash != "", _own_copies(clash, clashes, invoices, ledger, tenant))
    locked = check_lock_dates(xero_dates, conn.organisation, options.status)
    exclude(locked != "", locked.astype("string"))
    eligible_mask = reasons == ""
    excluded = pd.DataFrame(
        {
            "nexudus_invoice_id": invoices["Id"],
            "invoice_number": invoices["InvoiceNumber"],
            "currency": invoices["CurrencyCode"],
            "nexudus_total": invoices["TotalAmount"],
            "reason": reasons,
        }
    )[~eligible_mask].reset_index(drop=True)
    chosen = invoices[eligible_mask]
    chosen_figures = figures.reindex(chosen["Id"].to_numpy())
    eligible = pd.DataFrame(
        {
            "nexudus_invoice_id": chosen["Id"],
            "invoice_number": chosen["InvoiceNumber"],
            "kind": np.where(
                chosen_figures["as_credit"].fillna(False).astype(bool), "credit_note", "invoice"
            ),
            "coworker_id": chosen["CoworkerId"],
            "contact_number": per_invoice.loc[chosen.index, "contact_number"].to_numpy(),
            "contact_match": per_invoice.loc[chosen.index, "match"].to_numpy(),
            "contact_name": names[eligible_mask],
            "currency": chosen["CurrencyCode"],
            "way": chosen_figures["way"].to_numpy(),
            "nexudus_subtotal": chosen_figures["nexudus_subtotal"].to_numpy(),
            "nexudus_tax": chosen_figures["nexudus_tax"].to_numpy(),
            "nexudus_total": chosen_figures["nexudus_total"].to_numpy(),
            "xero_subtotal": chosen_figures["xero_subtotal"].to_numpy(),
            "xero_tax": chosen_figures["xero_tax"].to_numpy(),
            "xero_total": chosen_figures["xero_total"].to_numpy(),
            "difference": chosen_figures["difference"].to_numpy(),
            "currency_rate": fx.loc[chosen.index, "currency_rate"].to_numpy(),
            "rate_note": fx.loc[chosen.index, "rate_note"].to_numpy(),
            "date": chosen["CreatedOn"],
        }
    ).reset_index(drop=True)
    eligible["xero_contact_id"] = per_invoice.loc[chosen.index, "xero_contact_id"].to_numpy()
    new_contacts = contact_plan.new_contacts[
        contact_plan.new_contacts["coworker_id"].isin(set(eligible["coworker_id"]))
    ].reset_index(drop=True)
    # Each line as it goes: Nexudus' line joined to what the chosen way sends for it.
    wanted_lines = (
        lines[lines["CoworkerInvoiceId"].isin(set(eligible["nexudus_invoice_id"]))]
        .join(amounts.lines, how="inner")
        .sort_values(["CoworkerInvoiceId", "Position"])
    )
    line_groups: dict[int, list[dict[str, Any]]] = {}
    for line in records(wanted_lines):
        line_groups.setdefault(int(line["CoworkerInvoiceId"]), []).append(line)
    tax_by_name: dict[str, str] = (
        {
            str(k): str(v)
            for k, v in zip(tax_types["tax_rate_name"], tax_types["xero_tax_type"], strict=True)
        }
        if len(tax_types)
        else {}
    )
    tracking = getattr(conn, "tracking", None)
    inclusive_by_id = {int(i): bool(v) for i, v in zip(invoices["Id"], inclusive, strict=True)}
    rate_by_index: dict[object, Decimal | None] = {
        k: (v if isinstance(v, Decimal) else None) for k, v in fx["currency_rate"].items()
    }
    payloads = {
        int(inv["Id"]): _payload(
            inv,
            line_groups.get(int(inv["Id"]), []),
            tax_by_name,
            inclusive_by_id.get(int(inv["Id"]), False),
            options,
            tracking,
            as_credit=bool(figures.at[int(inv["Id"]), "as_credit"]),
            currency_rate=rate_by_index.get(index),
        )
        for index, inv in zip(chosen.index, records(chosen), strict=True)
    }
    context = {
        "location": conn.location,
        "organisation": conn.organisation.get("Name"),
        "tenant_id": tenant,
        "period": mapping.context.get("period"),
        "prices_include_tax": setting,
        "warnings": ([] if binding.is_confirmed else [binding.reason])
        + _warnings(invoices, conn.location),
        "binding": binding.to_dict(),
        # Where the push records and checks the binding when it is not handed a ledger.
        "ledger_path": str(ledger.path) if ledger is not None else None,
        # Whether an unattended run asked this plan to be pushed (params ``push``).
        "push": bool(conn.params.push),
        "day_calls_left": day_calls_left(conn),
        "tracking": getattr(conn, "tracking", None),
        "contacts": contact_plan.contacts,
        "lock_date": lock_date(conn.organisation),
    }
    return TransferPlan(eligible, excluded, payloads, new_contacts, tenant, options, context)


def _tax_types(mapping: MappingResult, lines: pd.DataFrame) -> pd.DataFrame:
    """Nexudus tax rate name -> the Xero tax type and rate it resolved to.

    Every resolved row counts, even one flagged for some accounts only (a tax type
    refused on one account is fine on the others); invoices whose lines are blocked
    never reach a payload.
    """
    taxes = mapping.tax_rates.dropna(subset=["xero_tax_type"])
    taxes = taxes[taxes["tax_rate"] != ""]
    return taxes[["tax_rate_name", "xero_tax_type", "xero_rate"]].drop_duplicates("tax_rate_name")


def _date(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).date().isoformat()


def _payload(
    inv: dict[str, Any],
    lines: list[dict[str, Any]],
    tax_by_name: dict[str, str],
    inclusive: bool,
    options: TransferOptions,
    tracking: tuple[str, str] | None = None,
    *,
    as_credit: bool,
    currency_rate: Decimal | None,
) -> dict[str, Any]:
    """The Xero invoice (or credit note) for one Nexudus invoice, its lines as
    ``work_out_amounts`` shaped them; ``tracking`` tags every line with the location."""
    items = []
    for line in lines:
        description = next(
            (
                str(v)
                for v in (line.get("Description"), line.get("TariffName"))
                if isinstance(v, str) and v.strip()
            ),
            f"Nexudus line {line['Id']}",
        )
        note = str(line.get("note") or "")
        item: dict[str, Any] = {
            "Description": description[: MAX_DESCRIPTION - len(note)] + note,
            "Quantity": line["quantity"],
            "UnitAmount": line["unit_amount"],
            "AccountCode": str(line["FinancialAccountCode"]),
            "TaxType": tax_by_name.get(str(line["TaxCategoryName"])),
        }
        if line["discount"]:
            item["DiscountAmount"] = line["discount"]
        if line.get("tax_override") is not None:
            item["TaxAmount"] = line["tax_override"]
        if tracking:
            item["Tracking"] = [{"Name": tracking[0], "Option": tracking[1]}]
        items.append(item)
    date_field = "InvoiceFromDate" if options.invoice_date == "period" else "CreatedOn"
    payload: dict[str, Any] = {
        "Type": "ACCRECCREDIT" if as_credit else "ACCREC",
        "Reference": str(inv["InvoiceNumber"]),
        "Date": _date(inv[date_field]) or _date(inv["CreatedOn"]),
        "CurrencyCode": str(inv["CurrencyCode"]),
        "LineAmountTypes": "Inclusive" if inclusive else "Exclusive",
        "Status": options.status,
        "LineItems": items,
    }
    if currency_rate is not None:
        payload["CurrencyRate"] = currency_rate
    if as_credit:
        payload["CreditNoteNumber"] = str(inv["InvoiceNumber"])
    else:
        payload["InvoiceNumber"] = str(inv["InvoiceNumber"])
        payload["DueDate"] = _date(inv["DueDate"])
    return payload


def day_calls_left(conn: Connection) -> int | None:
    """What Xero's last answer said is left of today's calls for this organisation (None: not known
    yet)."""
    remaining = getattr(conn.xero, "pacer", None)
    value = remaining.remaining[str(conn.xero.tenant_id)].day if remaining is not None else None
    return value
