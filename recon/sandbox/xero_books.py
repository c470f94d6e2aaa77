"""The Xero sandbox's books: organisations, chart, tax rates, contacts, invoices, payments.

No HTTP here: functions take API-shaped dicts, enforce what Xero enforces
(shared/reference/xero-api.md §3–§6, §13) and return documents or the
validation messages Xero would give. Records are stored as JSON documents in
one table, internal form: dates as ``YYYY-MM-DD``, timestamps as epoch ms in
``UpdatedMs``; ``render_*`` turns them into Xero's wire shape.

Message texts are Xero's verbatim where the reference has them; the few marked
UNVERIFIED are our best wording for a message no public source quotes.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from recon.sandbox import jsonutil
from recon.sandbox.clock import Clock
from recon.sandbox.seed import XeroOrgSeed
from recon.sandbox.store import Store
from recon.sandbox.xero_format import (
    iso_date_string,
    iso_utc_string,
    money,
    msdate,
    msdatetime,
    parse_request_date,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS orgs(tenant TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
    number TEXT, status TEXT, updated_ms INTEGER NOT NULL, created_by TEXT,
    doc TEXT NOT NULL,
    UNIQUE(tenant, kind, id));
CREATE INDEX IF NOT EXISTS records_number ON records(tenant, kind, number);
-- Ids are matched case-insensitively (Xero's GUIDs are), so the lookup index is on lower(id).
CREATE INDEX IF NOT EXISTS records_id_lower ON records(tenant, kind, lower(id));
CREATE INDEX IF NOT EXISTS records_updated ON records(tenant, kind, updated_ms);
CREATE INDEX IF NOT EXISTS records_status ON records(tenant, kind, status);
"""

NIL_UUID = "00000000-0000-0000-0000-000000000000"
INVOICE_TYPES = {"ACCREC", "ACCPAY"}
# A credit note is validated as the invoice type it reverses.
CREDIT_NOTE_TYPES = {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}
LINE_AMOUNT_TYPES = {"Exclusive", "Inclusive", "NoTax"}
CREATE_STATUSES = {"DRAFT", "SUBMITTED", "AUTHORISED"}
# Allowed status moves (reference §3.5). PAID is reached only through payments.
TRANSITIONS = {
    "DRAFT": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
    "SUBMITTED": {"SUBMITTED", "DRAFT", "AUTHORISED", "DELETED"},
    "AUTHORISED": {"AUTHORISED", "VOIDED"},
    "PAID": set(),
    "VOIDED": set(),
    "DELETED": set(),
}
# Which CanApplyTo* flag a tax rate needs for an account of each class.
CLASS_TAX_FLAG = {
    "REVENUE": "CanApplyToRevenue",
    "EXPENSE": "CanApplyToExpenses",
    "ASSET": "CanApplyToAssets",
    "LIABILITY": "CanApplyToLiabilities",
    "EQUITY": "CanApplyToEquity",
}
# System accounts no invoice line may post to (Xero: "not a valid code for this document").
LINE_FORBIDDEN_SYSTEM = {
    "DEBTORS",
    "CREDITORS",
    "GST",
    "RETAINEDEARNINGS",
    "UNPAIDEXPCLM",
    "BANKCURRENCYGAIN",
}
# "Any LineItem can have a maximum of 2 <TrackingCategory> elements" (spec: LineItem.Tracking;
# reference §3.3: Tracking (≤2)).
MAX_TRACKING_PER_LINE = 2
# Statuses of a document that is in the books: lock dates guard these (reference §13). Xero's
# help ("Set and work with lock dates"): after a lock date is set, users "can still create draft
# invoices, bills ... and submit these items for approval", so DRAFT and SUBMITTED are not locked.
POSTED_STATUSES = {"AUTHORISED", "PAID", "VOIDED"}
# Lock dates, most severe first: (Organisation field, the words Xero's messages use for it).
LOCK_DATES = (("EndOfYearLockDate", "end of year"), ("PeriodLockDate", "period"))
# Verbatim from the allocation refusals in waynerobinson/xeroizer#320 (an invoice with nothing
# outstanding) and calcinai/xero-php#251 (a credit note allocated beyond what it has left).
ALLOCATION_TOO_LARGE = (
    "Credit Note cannot be allocated as amount is greater than amount outstanding"
)
# Verbatim: waynerobinson/xeroizer#211 (an allocated credit note the caller tried to change).
ALLOCATED_DOCUMENT = (
    "This document cannot be edited as it has a payment or credit note allocated to it."
)
# ASSUMPTION: the sandbox has no XE.com feed; foreign invoices without a rate get this
# fixed table (units of the invoice currency per one unit of base currency).
DEMO_FX = {
    ("GBP", "EUR"): Decimal("1.150000"),
    ("EUR", "GBP"): Decimal("0.870000"),
    ("GBP", "USD"): Decimal("1.270000"),
    ("NZD", "AUD"): Decimal("0.910000"),
}


def new_id(*parts: object) -> str:
    """A fresh uuid; deterministic when parts are given."""
    if parts:
        return str(
            uuid.UUID(
                bytes=hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:16], version=4
            )
        )
    return str(uuid.uuid4())


def _pick(
    items: list[dict[str, Any]],
    wanted_id: Any,
    wanted_name: Any,
    *,
    id_key: str = "TrackingCategoryID",
) -> dict[str, Any] | None:
    """The tracking category (or option) with this id, else with this name (case-insensitive).

    ASSUMPTION: when both are given and disagree the id wins, as it does for AccountID/Code.
    DELETED ones are gone (Xero keeps them only for old documents).
    """
    live = [i for i in items if i.get("Status") != "DELETED"]
    if wanted_id:
        key = str(wanted_id).lower()
        return next((i for i in live if str(i.get(id_key, "")).lower() == key), None)
    if isinstance(wanted_name, str) and wanted_name.strip():
        key = wanted_name.strip().casefold()
        return next((i for i in live if str(i.get("Name", "")).casefold() == key), None)
    return None


def _dec(value: Any, what: str, errors: list[str]) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors.append(f"{what} must be a number.")
        return None
    if not d.is_finite():
        errors.append(f"{what} must be a number.")
        return None
    return d


def lock_date_errors(org: dict[str, Any], day: str | None, *, editing: bool = False) -> list[str]:
    """Xero's message when ``day`` (``YYYY-MM-DD``) falls in a period the organisation locked.

    A document dated ON a lock date is refused too: Xero's help says users cannot add or edit
    transactions "if the transaction date is on or before the lock date" (the message's word
    "before" notwithstanding). Both dates are enforced: ASSUMPTION an API connection is not an
    adviser, whom the period lock date alone may let through. ``editing`` gives the message for
    changing a document already dated in the locked period.
    """
    if not day:
        return []
    for key, words in LOCK_DATES:
        lock = org.get(key)
        if lock and day[:10] <= str(lock)[:10]:
            if editing:
                # Verbatim for the end of year lock date (help.tradifyhq.com article 23573535657241
                # quotes it); UNVERIFIED that the period variant reads the same.
                return [
                    f"Document cannot be edited as it is currently dated before {words} lock date"
                ]
            shown = date.fromisoformat(str(lock)[:10]).strftime("%d-%b-%Y")
            return [
                f"The document date cannot be before the {words} lock date, "
                f"currently set at {shown}"
            ]
    return []


class _Rollback(Exception):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors or ["The invoice could not be saved."]
        super().__init__(self.errors)


@dataclass
class Outcome:
    """The result of one element of a batch."""

    doc: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    created: bool = False


class Books:
    """All tenants' books in one SQLite file."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.RLock()
        self._names: dict[str, dict[str, str]] = {}  # a cache of active contact names, per tenant
        self._request = threading.local()  # the lookups one request keeps (``lookups``)
        store.ensure_schema(SCHEMA)

    @contextmanager
    def lookups(self) -> Iterator[None]:
        """Within the block, this thread reads each organisation, its accounts, tax rates,
        currencies and tracking categories once (a batch write's elements share them)."""
        if getattr(self._request, "cache", None) is not None:
            yield
            return
        self._request.cache = {}
        try:
            yield
        finally:
            self._request.cache = None

    def _kept(self, what: str, tenant: str, load: Callable[[], Any]) -> Any:
        cache: dict[tuple[str, str], Any] | None = getattr(self._request, "cache", None)
        if cache is None:
            return load()
        if (what, tenant) not in cache:
            cache[(what, tenant)] = load()
        return cache[(what, tenant)]

    # ---- loading -------------------------------------------------------
    def load_seed(self, orgs: Iterable[XeroOrgSeed]) -> None:
        """Store each organisation of the seed with its accounts, tax rates, currencies, contacts
        and tracking categories, replacing records of the same id."""
        now = self.now_ms()
        with self.store.write() as db:
            for org in orgs:
                tenant = org.organisation["OrganisationID"]
                db.execute(
                    "INSERT OR REPLACE INTO orgs VALUES(?,?)",
                    (tenant, jsonutil.dumps(org.organisation)),
                )
                rows = []
                for kind, docs, key, num in (
                    ("Account", org.accounts, "AccountID", "Code"),
                    ("TaxRate", org.tax_rates, "TaxType", "Name"),
                    ("Currency", org.currencies, "Code", "Code"),
                    ("Contact", org.contacts, "ContactID", "ContactNumber"),
                    ("Invoice", org.invoices, "InvoiceID", "InvoiceNumber"),
                    ("TrackingCategory", org.tracking_categories, "TrackingCategoryID", "Name"),
                ):
                    for d in docs:
                        doc = dict(d)
                        doc["UpdatedMs"] = now
                        status = doc.get("Status") or doc.get("ContactStatus")
                        rows.append(
                            (
                                tenant,
                                kind,
                                doc[key],
                                doc.get(num),
                                status,
                                now,
                                None,
                                jsonutil.dumps(doc),
                            )
                        )
                db.executemany(
                    "INSERT OR REPLACE INTO records(tenant,kind,id,number,status,updated_ms,"
                    "created_by,doc) VALUES(?,?,?,?,?,?,?,?)",
                    rows,
                )

    # ---- reading -------------------------------------------------------
    def now_ms(self) -> int:
        """Sandbox time now, in milliseconds since the epoch."""
        return int(self.clock.time() * 1000)

    def tenants(self) -> list[str]:
        """The tenant id of every organisation."""
        return [r[0] for r in self.store.query("SELECT tenant FROM orgs")]

    def org(self, tenant: str) -> dict[str, Any] | None:
        """An organisation's record, or None if there is no such tenant."""
        raw = self._kept(
            "org",
            tenant,
            lambda: self.store.scalar("SELECT doc FROM orgs WHERE tenant=?", (tenant,)),
        )
        return None if raw is None else jsonutil.loads(raw)

    def records(
        self,
        tenant: str,
        kind: str,
        *,
        ids: Iterable[str] | None = None,
        numbers: Iterable[str] | None = None,
        statuses: Iterable[str] | None = None,
        modified_since_ms: int | None = None,
        created_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """Records of one kind, in creation order, pre-filtered in SQL."""
        sql = ["SELECT doc FROM records WHERE tenant=? AND kind=?"]
        args: list[Any] = [tenant, kind]
        for column, values, fold in (
            ("id", ids, str.lower),
            ("number", numbers, None),
            ("status", statuses, str.upper),
        ):
            if values is not None:
                vals = [fold(v) if fold else v for v in values]
                if column == "id":
                    sql.append(f"AND lower(id) IN ({','.join('?' * len(vals))})")
                else:
                    sql.append(f"AND {column} IN ({','.join('?' * len(vals))})")
                args.extend(vals)
        if modified_since_ms is not None:
            # Xero: records "created or modified since" the timestamp (strictly after).
            sql.append("AND updated_ms > ?")
            args.append(modified_since_ms)
        if created_by is not None:
            sql.append("AND created_by=?")
            args.append(created_by)
        sql.append("ORDER BY seq")
        return [jsonutil.loads(r[0]) for r in self.store.query(" ".join(sql), args)]

    def record(self, tenant: str, kind: str, rid: str) -> dict[str, Any] | None:
        """A record of one kind by its id (any case), or None."""
        raw = self.store.scalar(
            "SELECT doc FROM records WHERE tenant=? AND kind=? AND lower(id)=lower(?)",
            (tenant, kind, rid),
        )
        return None if raw is None else jsonutil.loads(raw)

    def by_id_or_number(self, tenant: str, kind: str, ref: str) -> dict[str, Any] | None:
        """A record by its id, else the first live one with that number (Xero's routes take
        either)."""
        doc = self.record(tenant, kind, ref)
        if doc is None:
            doc = next(
                (d for d in self.by_number(tenant, kind, ref) if d.get("Status") != "DELETED"), None
            )
        return doc

    def by_number(self, tenant: str, kind: str, number: str) -> list[dict[str, Any]]:
        """Every record of one kind with this number, in creation order."""
        return [
            jsonutil.loads(r[0])
            for r in self.store.query(
                "SELECT doc FROM records WHERE tenant=? AND kind=? AND number=? ORDER BY seq",
                (tenant, kind, number),
            )
        ]

    def _save(
        self,
        db: Any,
        tenant: str,
        kind: str,
        rid: str,
        doc: dict[str, Any],
        *,
        number: str | None,
        status: str | None,
        created_by: str | None = None,
    ) -> None:
        doc["UpdatedMs"] = self.now_ms()
        db.execute(
            "INSERT INTO records(tenant,kind,id,number,status,updated_ms,created_by,doc) "
            "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(tenant,kind,id) DO UPDATE SET "
            "number=excluded.number, status=excluded.status, updated_ms=excluded.updated_ms, "
            "doc=excluded.doc",
            (tenant, kind, rid, number, status, doc["UpdatedMs"], created_by, jsonutil.dumps(doc)),
        )
        names = self._names.get(tenant) if kind == "Contact" else None
        if names is not None:
            # Keep the name cache in step; a rolled-back transaction drops it (see save_invoice).
            for key in [k for k, v in names.items() if v == rid]:
                del names[key]
            if doc.get("ContactStatus") == "ACTIVE":
                names[str(doc.get("Name", "")).casefold()] = rid

    def accounts_by_code(self, tenant: str) -> dict[str, dict[str, Any]]:
        """The organisation's accounts that have a code, by code."""
        accounts: dict[str, dict[str, Any]] = self._kept(
            "accounts",
            tenant,
            lambda: {a["Code"]: a for a in self.records(tenant, "Account") if a.get("Code")},
        )
        return accounts

    def tax_rates_by_type(self, tenant: str) -> dict[str, dict[str, Any]]:
        """The organisation's tax rates by TaxType."""
        rates: dict[str, dict[str, Any]] = self._kept(
            "tax rates", tenant, lambda: {t["TaxType"]: t for t in self.records(tenant, "TaxRate")}
        )
        return rates

    def tracking_categories(self, tenant: str) -> list[dict[str, Any]]:
        """Every tracking category of the organisation (any status), options included, in seed
        order."""
        categories: list[dict[str, Any]] = self._kept(
            "tracking", tenant, lambda: self.records(tenant, "TrackingCategory")
        )
        return categories

    def currency_codes(self, tenant: str) -> set[str]:
        """The currencies the organisation may use: those it has, and its base currency."""
        codes: set[str] = self._kept(
            "currencies", tenant, lambda: {c["Code"] for c in self.records(tenant, "Currency")}
        )
        return codes | {(self.org(tenant) or {}).get("BaseCurrency", "")}

    # ---- contacts ------------------------------------------------------
    def _find_contact(self, tenant: str, ref: dict[str, Any]) -> dict[str, Any] | None:
        if ref.get("ContactID"):
            return self.record(tenant, "Contact", str(ref["ContactID"]))
        if ref.get("ContactNumber"):
            found = self.by_number(tenant, "Contact", str(ref["ContactNumber"]))
            if found:
                return found[0]
        if ref.get("Name"):
            contact_id = self._active_names(tenant).get(str(ref["Name"]).casefold())
            return self.record(tenant, "Contact", contact_id) if contact_id else None
        return None

    def _active_names(self, tenant: str) -> dict[str, str]:
        """Folded name -> ContactID of the tenant's ACTIVE contacts (kept in step by ``_save``)."""
        names = self._names.get(tenant)
        if names is None:
            names = {
                str(c.get("Name", "")).casefold(): c["ContactID"]
                for c in self.records(tenant, "Contact", statuses=["ACTIVE"])
            }
            self._names[tenant] = names
        return names

    @staticmethod
    def _contact_name_errors(name: Any) -> list[str]:
        if not isinstance(name, str) or not name.strip():
            return ["The contact name must be specified."]  # UNVERIFIED wording
        if len(name) > 255:
            return [
                "The contact name must be 255 characters or less."
            ]  # UNVERIFIED wording (limit: spec maxLength 255)
        if name != name.strip() or "  " in name or "<" in name or ">" in name:
            return [
                "The contact name contains characters that are not allowed."
            ]  # UNVERIFIED wording ([3p-S] rule)
        return []

    def save_contact(
        self,
        tenant: str,
        element: dict[str, Any],
        *,
        create_only: bool,
        created_by: str | None = None,
    ) -> Outcome:
        """PUT (create_only) or POST (upsert) one contact."""
        with self._lock, self.store.write() as db:
            existing = self._find_contact(
                tenant, {k: element.get(k) for k in ("ContactID", "ContactNumber")}
            )
            if element.get("ContactID") and existing is None:
                return Outcome(
                    errors=["The contact with the specified ContactID could not be found."]
                )  # UNVERIFIED
            name = element.get("Name", existing.get("Name") if existing else None)
            errors = self._contact_name_errors(name)
            if not errors:
                clash = self._find_contact(tenant, {"Name": name})
                if clash and (existing is None or clash["ContactID"] != existing["ContactID"]):
                    errors.append(
                        f"The contact name {name} is already assigned to another contact. "
                        "The contact name must be unique across all active contacts."
                    )
            if existing is not None and create_only:
                errors.append(
                    "The contact number is already assigned to another contact."
                )  # UNVERIFIED
            if errors:
                return Outcome(errors=errors)
            doc = dict(
                existing
                or {
                    "ContactID": new_id(),
                    "ContactStatus": "ACTIVE",
                    "IsSupplier": False,
                    "IsCustomer": False,
                    "HasValidationErrors": False,
                }
            )
            for key in (
                "Name",
                "ContactNumber",
                "FirstName",
                "LastName",
                "EmailAddress",
                "AccountNumber",
                "DefaultCurrency",
                "TaxNumber",
                "Addresses",
                "Phones",
                "ContactStatus",
            ):
                if key in element:
                    doc[key] = element[key]
            self._save(
                db,
                tenant,
                "Contact",
                doc["ContactID"],
                doc,
                number=doc.get("ContactNumber"),
                status=doc.get("ContactStatus"),
                created_by=created_by,
            )
            return Outcome(doc=doc, created=existing is None)

    def _contact_for_invoice(
        self, db: Any, tenant: str, ref: Any, errors: list[str], created_by: str | None
    ) -> dict[str, Any] | None:
        if not isinstance(ref, dict) or not any(
            ref.get(k) for k in ("ContactID", "ContactNumber", "Name")
        ):
            errors.append("A Contact must be specified for this type of transaction")
            return None
        contact = self._find_contact(tenant, ref)
        if contact is None:
            if ref.get("ContactID"):
                errors.append(
                    "The contact with the specified ContactID could not be found."
                )  # UNVERIFIED
                return None
            name_errors = self._contact_name_errors(ref.get("Name"))
            if name_errors:
                errors.extend(name_errors)
                return None
            # Xero creates a new contact from an unknown Name (reference §3.2: no de-duplication).
            contact = {
                "ContactID": new_id(),
                "ContactStatus": "ACTIVE",
                "Name": ref["Name"],
                "IsSupplier": False,
                "IsCustomer": True,
                "HasValidationErrors": False,
            }
            for key in ("ContactNumber", "EmailAddress", "FirstName", "LastName"):
                if ref.get(key):
                    contact[key] = ref[key]
            self._save(
                db,
                tenant,
                "Contact",
                contact["ContactID"],
                contact,
                number=contact.get("ContactNumber"),
                status="ACTIVE",
                created_by=created_by,
            )
        if contact.get("ContactStatus") == "ARCHIVED":
            errors.append("Unable to assign an Archived contact.")
            return None
        if not contact.get("IsCustomer"):
            contact["IsCustomer"] = True
            self._save(
                db,
                tenant,
                "Contact",
                contact["ContactID"],
                contact,
                number=contact.get("ContactNumber"),
                status=contact.get("ContactStatus"),
            )
        return contact

    # ---- invoices ------------------------------------------------------
    def save_invoice(
        self,
        tenant: str,
        element: Any,
        *,
        mode: str,
        client_id: str | None,
        invoice_id: str | None = None,
        unitdp: int = 2,
    ) -> Outcome:
        """Create (mode ``create``), upsert (``upsert``) or update (``update``) one invoice."""
        if not isinstance(element, dict):
            return Outcome(errors=["Invoice element must be an object."])
        try:
            with self._lock, self.store.write() as db:
                existing = self._find_existing_invoice(tenant, element, mode, invoice_id)
                if isinstance(existing, Outcome):
                    return existing
                errors: list[str] = []
                if existing is not None:
                    doc = self._update_invoice(
                        tenant, existing, element, errors, db, client_id, unitdp
                    )
                else:
                    doc = self._new_invoice(tenant, element, errors, db, client_id, unitdp)
                if doc is not None and not errors:
                    errors.extend(self.document_errors(tenant, existing, doc))
                if errors or doc is None:
                    # Roll back everything this element wrote (e.g. a contact made from its Name).
                    raise _Rollback(errors)
                self._save(
                    db,
                    tenant,
                    "Invoice",
                    doc["InvoiceID"],
                    doc,
                    number=doc.get("InvoiceNumber"),
                    status=doc["Status"],
                    created_by=client_id if existing is None else None,
                )
                return Outcome(doc=doc, created=existing is None)
        except _Rollback as rollback:
            self._names.pop(tenant, None)  # it may hold a contact the rollback undid
            return Outcome(errors=rollback.errors)

    def _find_existing_invoice(
        self, tenant: str, element: dict[str, Any], mode: str, invoice_id: str | None
    ) -> dict[str, Any] | Outcome | None:
        target_id = invoice_id or element.get("InvoiceID")
        if target_id and target_id != NIL_UUID:
            found = self.record(tenant, "Invoice", str(target_id))
            if found is None:
                return (
                    Outcome(errors=["The resource you're looking for cannot be found"])
                    if mode != "create"
                    else None
                )
            if mode == "create":
                return Outcome(errors=["Invoice # must be unique."])
            return found
        number = element.get("InvoiceNumber")
        if number:
            live = [
                i
                for i in self.by_number(tenant, "Invoice", str(number))
                if i["Status"] != "DELETED" and i["Type"] == "ACCREC"
            ]
            if live and element.get("Type", "ACCREC") == "ACCREC":
                if mode == "create":
                    return Outcome(errors=["Invoice # must be unique."])
                return live[0]
        if mode == "update":
            return Outcome(errors=["The resource you're looking for cannot be found"])
        return None

    def _new_invoice(
        self,
        tenant: str,
        el: dict[str, Any],
        errors: list[str],
        db: Any,
        client_id: str | None,
        unitdp: int,
        *,
        credit_note: bool = False,
    ) -> dict[str, Any] | None:
        org = self.org(tenant) or {}
        inv_type = el.get("Type")
        if inv_type not in INVOICE_TYPES:
            errors.append(
                "Invoice Type must be specified."
                if not inv_type
                else f"'{inv_type}' is not a valid invoice type."
            )  # UNVERIFIED
            return None
        status = (el.get("Status") or "DRAFT").upper()
        if status not in CREATE_STATUSES:
            errors.append("Invoice not of valid status for creation")  # UNVERIFIED
        doc: dict[str, Any] = {
            "Type": inv_type,
            "InvoiceID": new_id(),
            "InvoiceNumber": el.get("InvoiceNumber")
            or "",  # a bill without a number: "" (the spec has no null)
            "Reference": el.get("Reference") or "",
            "Payments": [],
            "CreditNotes": [],
            "Prepayments": [],
            "Overpayments": [],
            "AmountPaid": Decimal("0.00"),
            "AmountCredited": Decimal("0.00"),
            "IsDiscounted": False,
            "HasAttachments": False,
            "HasErrors": False,
            "Status": status,
            "SentToContact": bool(el.get("SentToContact", False)),
        }
        self._apply_header(tenant, org, doc, el, errors, db, client_id, creating=True)
        self._apply_lines(
            tenant,
            doc,
            el.get("LineItems"),
            errors,
            unitdp,
            require_accounts=status != "DRAFT",
            credit_note=credit_note,
        )
        if inv_type == "ACCREC" and not doc["InvoiceNumber"]:
            doc["InvoiceNumber"] = self._next_number(tenant)
        return None if errors else doc

    def _update_invoice(
        self,
        tenant: str,
        existing: dict[str, Any],
        el: dict[str, Any],
        errors: list[str],
        db: Any,
        client_id: str | None,
        unitdp: int,
        *,
        credit_note: bool = False,
    ) -> dict[str, Any] | None:
        current = existing["Status"]
        target = (el.get("Status") or current).upper()
        editing = any(
            k in el
            for k in ("LineItems", "Contact", "Date", "DueDate", "CurrencyCode", "LineAmountTypes")
        )
        if target not in TRANSITIONS.get(current, set()) or (
            current == "AUTHORISED" and existing["AmountPaid"] and (editing or target == "VOIDED")
        ):
            errors.append("Invoice not of valid status for modification")
            return None
        if (
            current == "AUTHORISED"
            and existing.get("AmountCredited")
            and (editing or target == "VOIDED")
        ):
            errors.append(ALLOCATED_DOCUMENT)
            return None
        doc: dict[str, Any] = jsonutil.loads(jsonutil.dumps(existing))
        doc["Status"] = target
        if target in ("VOIDED", "DELETED"):
            doc["AmountDue"] = Decimal("0.00")
            return doc
        org = self.org(tenant) or {}
        self._apply_header(tenant, org, doc, el, errors, db, client_id, creating=False)
        if "LineItems" in el:
            self._apply_lines(
                tenant,
                doc,
                el["LineItems"],
                errors,
                unitdp,
                require_accounts=target != "DRAFT",
                credit_note=credit_note,
            )
        else:
            self._totals(doc)
        if (
            "InvoiceNumber" in el
            and el["InvoiceNumber"]
            and el["InvoiceNumber"] != existing.get("InvoiceNumber")
        ):
            clash = [
                i
                for i in self.by_number(tenant, "Invoice", el["InvoiceNumber"])
                if i["Status"] != "DELETED"
            ]
            if clash:
                errors.append("Invoice # must be unique.")
            doc["InvoiceNumber"] = el["InvoiceNumber"]
        return None if errors else doc

    def _next_number(self, tenant: str) -> str:
        count = (
            self.store.scalar(
                "SELECT COUNT(*) FROM records WHERE tenant=? AND kind='Invoice'", (tenant,)
            )
            or 0
        )
        n = count + 1
        while self.by_number(
            tenant, "Invoice", f"INV-{n:04d}"
        ):  # a caller may have used the next number already
            n += 1
        return f"INV-{n:04d}"

    def _apply_header(
        self,
        tenant: str,
        org: dict[str, Any],
        doc: dict[str, Any],
        el: dict[str, Any],
        errors: list[str],
        db: Any,
        client_id: str | None,
        *,
        creating: bool,
    ) -> None:
        if creating or "Contact" in el:
            contact = self._contact_for_invoice(db, tenant, el.get("Contact"), errors, client_id)
            if contact is not None:
                doc["Contact"] = {"ContactID": contact["ContactID"]}
        for key in ("Date", "DueDate"):
            if el.get(key):
                try:
                    doc[key] = parse_request_date(el[key]).isoformat()
                except ValueError:
                    errors.append(f"{key} is not a valid date.")  # UNVERIFIED
            elif creating:
                doc[key] = self.clock.now().date().isoformat() if key == "Date" else None
        if "Reference" in el:
            doc["Reference"] = el.get("Reference") or ""
        lat = el.get("LineAmountTypes", doc.get("LineAmountTypes", "Exclusive"))
        if lat not in LINE_AMOUNT_TYPES:
            errors.append(f"LineAmountTypes '{lat}' is not valid.")  # UNVERIFIED
        doc["LineAmountTypes"] = lat
        base = org.get("BaseCurrency", "")
        code = (el.get("CurrencyCode") or doc.get("CurrencyCode") or base).upper()
        if code not in self.currency_codes(tenant):
            errors.append(f"Organisation is not subscribed to currency {code}")
        doc["CurrencyCode"] = code
        rate = _dec(el.get("CurrencyRate"), "CurrencyRate", errors)
        if code == base:
            doc["CurrencyRate"] = Decimal("1.000000")
        elif rate is not None and rate > 0:
            doc["CurrencyRate"] = money(rate, 6)
        elif "CurrencyRate" not in doc or creating:
            doc["CurrencyRate"] = DEMO_FX.get((base, code), Decimal("1.000000"))

    def _apply_lines(
        self,
        tenant: str,
        doc: dict[str, Any],
        lines: Any,
        errors: list[str],
        unitdp: int,
        *,
        require_accounts: bool,
        credit_note: bool = False,
    ) -> None:
        if not isinstance(lines, list) or not lines:
            if require_accounts:
                errors.append("Invoices must have at least one line item.")  # UNVERIFIED wording
            doc["LineItems"] = []
            self._totals(doc)
            return
        accounts = self.accounts_by_code(tenant)
        taxes = self.tax_rates_by_type(tenant)
        # Read only when a line carries tracking (the common transfer sends none).
        tracked = any(isinstance(raw, dict) and raw.get("Tracking") for raw in lines)
        categories = self.tracking_categories(tenant) if tracked else []
        out = []
        for raw in lines:
            if not isinstance(raw, dict):
                errors.append("Line item must be an object.")
                continue
            line = self._line(
                raw,
                doc["Type"],
                doc["LineAmountTypes"],
                accounts,
                taxes,
                errors,
                unitdp,
                require_accounts,
                credit_note=credit_note,
            )
            line["Tracking"] = self._line_tracking(raw.get("Tracking"), categories, errors)
            out.append(line)
        doc["LineItems"] = out
        self._totals(doc)

    def _line(
        self,
        raw: dict[str, Any],
        inv_type: str,
        lat: str,
        accounts: dict[str, Any],
        taxes: dict[str, Any],
        errors: list[str],
        unitdp: int,
        require_accounts: bool,
        *,
        credit_note: bool = False,
    ) -> dict[str, Any]:
        """One line as Xero stores it (reference §3.3, spec ``LineItem``).

        UnitAmount is kept to ``unitdp`` places (2, or 4 with ``unitdp=4``), rounded half away
        from zero before anything is multiplied; LineAmount is Quantity × UnitAmount less the
        discount, rounded to the cent; the line's tax is rounded to the cent on its own
        (Exclusive: LineAmount × rate / 100; Inclusive: LineAmount × rate / (100 + rate);
        NoTax: none) unless the caller supplies the line's TaxAmount.
        """
        desc = raw.get("Description")
        if not isinstance(desc, str) or not desc.strip():
            errors.append("The description field is mandatory for each line item.")
        qty = _dec(raw.get("Quantity"), "Quantity", errors)
        unit = _dec(raw.get("UnitAmount"), "UnitAmount", errors)
        if qty is not None and qty < 0:
            # UNVERIFIED wording and rule: the text users report from Xero; no primary source
            # found. A negative amount goes on UnitAmount instead.
            errors.append("Quantity must not be less than zero")
        qty = Decimal("1.0000") if qty is None else money(qty, 4)
        unit = Decimal("0.00") if unit is None else money(unit, unitdp)
        disc_rate = _dec(raw.get("DiscountRate"), "DiscountRate", errors)
        disc_amt = _dec(raw.get("DiscountAmount"), "DiscountAmount", errors)
        gross = qty * unit
        errors.extend(self._discount_errors(inv_type, gross, disc_rate, disc_amt, credit_note))
        # With both, DiscountRate wins (waynerobinson/xeroizer#483, from testing against Xero).
        if disc_rate is not None:
            line_amount = money(gross * (Decimal(100) - disc_rate) / Decimal(100))
        elif disc_amt is not None:
            line_amount = money(gross - disc_amt)
        else:
            line_amount = money(gross)
        line: dict[str, Any] = {
            "LineItemID": raw.get("LineItemID") or new_id(),
            "Description": desc or "",
            "Quantity": qty,
            "UnitAmount": unit,
        }
        code = raw.get("AccountCode")
        account = None
        if code:
            account = accounts.get(str(code))
            if (
                account is None
                or account.get("Type") == "BANK"
                or account.get("SystemAccount") in LINE_FORBIDDEN_SYSTEM
            ):
                errors.append(f"Account code '{code}' is not a valid code for this document.")
                account = None
            elif account.get("Status") != "ACTIVE":
                # UNVERIFIED wording; the reference lists archived accounts among the failures users
                # meet.
                errors.append(
                    f"Account code '{code}' has been archived, or deleted. Each line item must "
                    "reference a valid account."
                )
                account = None
            line["AccountCode"] = str(code)
            if account is not None:
                line["AccountID"] = account["AccountID"]
        elif require_accounts:
            errors.append("Account code or ID must be specified.")
        tax_type = (
            raw.get("TaxType")
            or (account or {}).get("TaxType")
            or ("NONE" if lat == "NoTax" else None)
        )
        rate = Decimal("0")
        if lat == "NoTax":
            tax_type = "NONE"
        if tax_type:
            tax = taxes.get(str(tax_type))
            if tax is None or tax.get("Status") != "ACTIVE":
                errors.append(
                    f"The TaxType code {tax_type} does not exist or cannot be used for this type "
                    "of transaction."
                )
            else:
                flag = CLASS_TAX_FLAG.get(str((account or {}).get("Class", "")))
                if account is not None and flag and not tax.get(flag, False):
                    errors.append(
                        f"The TaxType code '{tax_type}' cannot be used with account code '{code}'."
                    )
                rate = Decimal(str(tax.get("EffectiveRate") or 0))
            line["TaxType"] = str(tax_type)
        if lat == "NoTax":
            tax_amount = Decimal("0.00")
        elif lat == "Inclusive":
            tax_amount = money(line_amount * rate / (Decimal(100) + rate))
        else:
            tax_amount = money(line_amount * rate / Decimal(100))
        override = _dec(raw.get("TaxAmount"), "TaxAmount", errors)
        if override is not None and lat != "NoTax":
            # Xero lets a caller override the computed tax (reference §3.3; spec LineItem.TaxAmount
            # "can be overriden"); no tolerance is documented for invoices and credit notes, so
            # any amount is kept. On a line whose tax rate is zero a non-zero tax is refused, in
            # the words Xero uses for a wrong bank-transaction tax (XeroAPI/xero-node#768);
            # UNVERIFIED that invoices answer the same.
            if rate == 0 and money(override) != 0:
                errors.append(
                    f"Tax amount {money(override)} is incorrect for {tax_type} tax type, "
                    "should be 0.00"
                )
            else:
                tax_amount = money(override)
        line["TaxAmount"] = tax_amount
        line["LineAmount"] = line_amount
        if disc_rate is not None:
            line["DiscountRate"] = money(disc_rate)
        if disc_amt is not None:
            line["DiscountAmount"] = money(disc_amt)
        if raw.get("ItemCode"):
            line["ItemCode"] = raw["ItemCode"]
        line["Tracking"] = []  # filled in by _apply_lines once validated (_line_tracking)
        line["ValidationErrors"] = []
        return line

    @staticmethod
    def _discount_errors(
        inv_type: str,
        gross: Decimal,
        rate: Decimal | None,
        amount: Decimal | None,
        credit_note: bool,
    ) -> list[str]:
        """Xero's refusals of a line's DiscountRate / DiscountAmount (spec ``LineItem``)."""
        if rate is None and amount is None:
            return []
        field_name = "DiscountRate" if rate is not None else "DiscountAmount"
        if credit_note:
            # The rule is the spec's (LineItem.DiscountRate/DiscountAmount: "ACCPAY invoices and
            # credit notes in Xero do not support discounts"); UNVERIFIED wording. Even a zero is
            # refused: a zero discount broke purchase orders (XeroAPI/Xero-NetStandard#412).
            return ["Credit notes do not support discounts."]
        if inv_type != "ACCREC":
            return [f"{field_name} can only be used on sales invoices."]  # UNVERIFIED wording
        given = rate if rate is not None else amount
        assert given is not None
        shown = money(given)
        invalid = [
            f"The discount rate '{shown}' is invalid. Discount must not be greater than the line "
            "total."
        ]  # verbatim: XeroAPI/Xero-OpenAPI#429, XeroAPI/xero-php-oauth2#288
        if rate is not None:
            # A zero rate on a negative line is accepted (Xero-OpenAPI#429); UNVERIFIED that any
            # other rate on one, or one outside 0–100, is refused with the same text.
            if rate < 0 or rate > 100 or (gross < 0 and rate != 0):
                return invalid
            return []
        # Any DiscountAmount on a negative line, even 0.00, is refused (Xero-OpenAPI#429), as is
        # one above the line's total (xero-php-oauth2#288).
        if gross < 0 or given < 0 or given > gross:
            return invalid
        return []

    @staticmethod
    def _line_tracking(
        raw: Any, categories: list[dict[str, Any]], errors: list[str]
    ) -> list[dict[str, Any]]:
        """Validate one line's ``Tracking`` and return it as Xero stores it (names and ids).

        Each element names its category by ``TrackingCategoryID`` or ``Name`` and its option
        by ``TrackingOptionID`` or ``Option`` (an id wins over a name; names match without
        regard to case). The category must exist and be ACTIVE, the option must exist in it
        and be ACTIVE; at most two categories per line, one option each. The echo carries
        the organisation's own spelling of both names and both ids.
        """
        if raw is None or raw == []:
            return []
        if not isinstance(raw, list):
            # UNVERIFIED wording: live Xero answers a non-array Tracking with a bare 500
            # (XeroAPI/xero-ruby#86); the sandbox refuses it as a validation error instead.
            errors.append("Tracking must be a list of tracking categories.")
            return []
        if len(raw) > MAX_TRACKING_PER_LINE:
            # UNVERIFIED wording; the rule is Xero's documented maximum of two per line item.
            errors.append(
                f"A line item can have a maximum of {MAX_TRACKING_PER_LINE} tracking categories."
            )
            return []
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for element in raw:
            if not isinstance(element, dict):
                errors.append(
                    "Tracking must be a list of tracking categories."
                )  # UNVERIFIED wording
                continue
            category = _pick(categories, element.get("TrackingCategoryID"), element.get("Name"))
            if category is None and element.get("TrackingCategoryID"):
                errors.append(
                    "There is no ACTIVE tracking category with the TrackingCategoryID "
                    f"'{element['TrackingCategoryID']}'."
                )  # UNVERIFIED wording
                continue
            if category is None or category.get("Status") != "ACTIVE":
                # Xero's wording for a contact's SalesTrackingCategories (calcinai/xero-php#386);
                # UNVERIFIED that invoice lines use the same text.
                label = category["Name"] if category else (element.get("Name") or "")
                errors.append(f"There is no ACTIVE tracking category with the name '{label}'.")
                continue
            if category["TrackingCategoryID"] in seen:
                # UNVERIFIED wording for two options of one category on one line.
                errors.append(
                    f"The tracking category '{category['Name']}' can only be used once per line "
                    "item."
                )
                continue
            seen.add(category["TrackingCategoryID"])
            option = _pick(
                category.get("Options") or [],
                element.get("TrackingOptionID"),
                element.get("Option"),
                id_key="TrackingOptionID",
            )
            if option is None and element.get("TrackingOptionID"):
                errors.append(
                    "There is no ACTIVE tracking option with the TrackingOptionID "
                    f"'{element['TrackingOptionID']}' in the tracking category "
                    f"'{category['Name']}'."
                )  # UNVERIFIED wording
                continue
            if option is None or option.get("Status") != "ACTIVE":
                # UNVERIFIED wording, modelled on the category message above.
                wanted = option["Name"] if option else (element.get("Option") or "")
                errors.append(
                    f"There is no ACTIVE tracking option with the name '{wanted}' "
                    f"in the tracking category '{category['Name']}'."
                )
                continue
            out.append(
                {
                    "Name": category["Name"],
                    "Option": option["Name"],
                    "TrackingCategoryID": category["TrackingCategoryID"],
                    "TrackingOptionID": option["TrackingOptionID"],
                }
            )
        return out

    @staticmethod
    def _totals(doc: dict[str, Any]) -> None:
        lines = doc.get("LineItems") or []
        tax = sum((li["TaxAmount"] for li in lines), Decimal("0.00"))
        amounts = sum((li["LineAmount"] for li in lines), Decimal("0.00"))
        sub = amounts - tax if doc.get("LineAmountTypes") == "Inclusive" else amounts
        discount = sum(
            (money(li["Quantity"] * li["UnitAmount"]) - li["LineAmount"] for li in lines),
            Decimal("0.00"),
        )
        doc["SubTotal"] = money(sub)
        doc["TotalTax"] = money(tax)
        doc["Total"] = money(sub + tax)
        if discount:
            doc["TotalDiscount"] = money(discount)
        else:
            doc.pop("TotalDiscount", None)
        doc["AmountDue"] = money(
            doc["Total"] - doc.get("AmountPaid", 0) - doc.get("AmountCredited", 0)
        )

    @staticmethod
    def invoice_total_errors(doc: dict[str, Any]) -> list[str]:
        """Xero's message for a document below zero that is being approved; ``[]`` otherwise.

        A negative total is accepted while the document is a DRAFT (ASSUMPTION: Xero checks the
        total when the document is submitted or approved, as its app does); SUBMITTED or
        AUTHORISED ones are refused, on create or on a later update to that status.
        """
        if doc["Total"] >= 0 or doc.get("Status") not in ("SUBMITTED", "AUTHORISED"):
            return []
        return ["Invoice Total must be greater than or equal to zero."]  # UNVERIFIED wording

    def document_errors(
        self, tenant: str, before: dict[str, Any] | None, after: dict[str, Any]
    ) -> list[str]:
        """What Xero refuses in a document as a whole once its lines are valid: a negative total
        being approved, a date in a locked period (reference §13), or a change to an approved
        document dated in one. ``before`` is the stored document of an update, else None."""
        errors = self.invoice_total_errors(after)
        org = self.org(tenant) or {}
        if before is not None and before.get("Status") in POSTED_STATUSES:
            locked = lock_date_errors(org, before.get("Date"), editing=True)
            if locked:
                return errors + locked
        if after.get("Status") in POSTED_STATUSES:
            errors.extend(lock_date_errors(org, after.get("Date")))
        return errors

    def set_lock_dates(
        self, tenant: str, *, period: date | None = None, end_of_year: date | None = None
    ) -> dict[str, Any]:
        """Set (a date) or clear (None) the organisation's PeriodLockDate and EndOfYearLockDate.

        Returns the organisation as stored. A sandbox control: in Xero an adviser sets them in
        Financial settings; the API only reads them (reference §6).
        """
        with self._lock, self.store.write() as db:
            org = self.org(tenant)
            if org is None:
                raise KeyError(f"no organisation {tenant}")
            org["PeriodLockDate"] = period.isoformat() if period else None
            org["EndOfYearLockDate"] = end_of_year.isoformat() if end_of_year else None
            db.execute("UPDATE orgs SET doc=? WHERE tenant=?", (jsonutil.dumps(org), tenant))
            return org

    # ---- payments ------------------------------------------------------
    def create_payment(self, tenant: str, el: Any, *, client_id: str | None) -> Outcome:
        """Create one payment against an authorised invoice, into a bank account or one that takes
        payments.

        The outcome holds the payment, or the messages Xero would give (no such invoice or
        account, an amount not above zero or above what is due...). A payment of everything due
        marks the invoice PAID.
        """
        if not isinstance(el, dict):
            return Outcome(errors=["Payment element must be an object."])
        errors: list[str] = []
        with self._lock, self.store.write() as db:
            inv_ref = el.get("Invoice") or {}
            invoice = None
            if inv_ref.get("InvoiceID"):
                invoice = self.record(tenant, "Invoice", str(inv_ref["InvoiceID"]))
            elif inv_ref.get("InvoiceNumber") or el.get("InvoiceNumber"):
                found = [
                    i
                    for i in self.by_number(
                        tenant, "Invoice", inv_ref.get("InvoiceNumber") or el["InvoiceNumber"]
                    )
                    if i["Status"] != "DELETED"
                ]
                invoice = found[0] if found else None
            if invoice is None:
                errors.append("Invoice could not be found")  # UNVERIFIED wording
            acc_ref = el.get("Account") or {}
            account = None
            if acc_ref.get("AccountID"):
                account = self.record(tenant, "Account", str(acc_ref["AccountID"]))
            elif acc_ref.get("Code"):
                account = self.accounts_by_code(tenant).get(str(acc_ref["Code"]))
            if account is None:
                errors.append("Account could not be found")  # UNVERIFIED wording
            elif not (account.get("Type") == "BANK" or account.get("EnablePaymentsToAccount")):
                errors.append(
                    "Payments cannot be made to this account"
                )  # UNVERIFIED wording (reference §6 rule)
            amount = _dec(el.get("Amount"), "Amount", errors)
            if amount is None or amount <= 0:
                errors.append("Payment amount must be greater than zero")  # UNVERIFIED wording
            try:
                pay_date = (
                    parse_request_date(el.get("Date"))
                    if el.get("Date")
                    else self.clock.now().date()
                )
            except ValueError:
                errors.append("Date is not a valid date.")
                pay_date = self.clock.now().date()
            # Lock dates guard payments as they do documents (reference §13); UNVERIFIED that a
            # payment's refusal reads as a document's.
            errors.extend(lock_date_errors(self.org(tenant) or {}, pay_date.isoformat()))
            if invoice is not None and not errors:
                if invoice["Status"] != "AUTHORISED":
                    errors.append("Payments can only be made against Authorised documents")
                elif amount is not None and money(amount) > invoice["AmountDue"]:
                    errors.append("Payment amount exceeds the amount outstanding on this document")
            if errors or invoice is None or account is None or amount is None:
                return Outcome(errors=errors)
            amount = money(amount)
            payment = {
                "PaymentID": new_id(),
                "Date": pay_date.isoformat(),
                "Amount": amount,
                "BankAmount": amount,
                "Reference": el.get("Reference") or "",
                "CurrencyRate": invoice.get("CurrencyRate", Decimal("1.000000")),
                "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
                "Status": "AUTHORISED",
                "IsReconciled": bool(el.get("IsReconciled", False)),
                "HasAccount": True,
                "HasValidationErrors": False,
                "Account": {"AccountID": account["AccountID"], "Code": account.get("Code")},
                "Invoice": {"InvoiceID": invoice["InvoiceID"]},
            }
            invoice["Payments"].append(
                {
                    "PaymentID": payment["PaymentID"],
                    "Date": payment["Date"],
                    "Amount": amount,
                    "CurrencyRate": payment["CurrencyRate"],
                    "HasAccount": True,
                    "HasValidationErrors": False,
                }
            )
            invoice["AmountPaid"] = money(invoice["AmountPaid"] + amount)
            invoice["AmountDue"] = money(
                invoice["Total"] - invoice["AmountPaid"] - invoice["AmountCredited"]
            )
            if invoice["AmountDue"] == 0:
                invoice["Status"] = "PAID"
                invoice["FullyPaidOnDate"] = payment["Date"]
            self._save(
                db,
                tenant,
                "Invoice",
                invoice["InvoiceID"],
                invoice,
                number=invoice.get("InvoiceNumber"),
                status=invoice["Status"],
            )
            self._save(
                db,
                tenant,
                "Payment",
                payment["PaymentID"],
                payment,
                number=None,
                status="AUTHORISED",
                created_by=client_id,
            )
            return Outcome(doc=payment, created=True)

    def delete_payment(self, tenant: str, payment_id: str) -> Outcome:
        """Delete a payment and take it off its invoice (a PAID invoice is AUTHORISED again).

        The outcome holds the payment, or why it cannot be deleted (unknown, or already deleted).
        """
        with self._lock, self.store.write() as db:
            payment = self.record(tenant, "Payment", payment_id)
            if payment is None:
                return Outcome(errors=["The resource you're looking for cannot be found"])
            if payment["Status"] == "DELETED":
                return Outcome(errors=["Payment has already been deleted"])  # UNVERIFIED wording
            locked = lock_date_errors(self.org(tenant) or {}, payment["Date"], editing=True)
            if locked:
                return Outcome(errors=locked)
            invoice = self.record(tenant, "Invoice", payment["Invoice"]["InvoiceID"])
            payment["Status"] = "DELETED"
            if invoice is not None:
                invoice["Payments"] = [
                    p for p in invoice["Payments"] if p["PaymentID"] != payment_id
                ]
                invoice["AmountPaid"] = money(invoice["AmountPaid"] - payment["Amount"])
                invoice["AmountDue"] = money(
                    invoice["Total"] - invoice["AmountPaid"] - invoice["AmountCredited"]
                )
                if invoice["Status"] == "PAID":
                    invoice["Status"] = "AUTHORISED"
                    invoice.pop("FullyPaidOnDate", None)
                self._save(
                    db,
                    tenant,
                    "Invoice",
                    invoice["InvoiceID"],
                    invoice,
                    number=invoice.get("InvoiceNumber"),
                    status=invoice["Status"],
                )
            self._save(db, tenant, "Payment", payment_id, payment, number=None, status="DELETED")
            return Outcome(doc=payment)

    # ---- credit notes --------------------------------------------------
    def save_credit_note(
        self,
        tenant: str,
        element: Any,
        *,
        client_id: str | None,
        unitdp: int = 2,
        mode: str = "create",
        credit_note_id: str | None = None,
    ) -> Outcome:
        """Create (``PUT /CreditNotes``), upsert (``POST /CreditNotes``) or update
        (``POST /CreditNotes/{id}``) one credit note: lines and totals exactly as an invoice's.

        Credit notes are validated by the invoice rules (accounts, tax types, currency, lock
        dates, status moves), except that their lines take no discount, and are stored apart,
        keyed by ``CreditNoteID``. An upsert matches by CreditNoteID, else by CreditNoteNumber.
        UNVERIFIED: Xero's wording for a repeated credit note number; the sandbox refuses it as
        it does for invoices.
        """
        if not isinstance(element, dict):
            return Outcome(errors=["Credit note element must be an object."])
        try:
            with self._lock, self.store.write() as db:
                existing = self._find_existing_credit_note(tenant, element, mode, credit_note_id)
                if isinstance(existing, Outcome):
                    return existing
                note_type = element.get("Type") or (existing or {}).get("Type")
                if note_type not in CREDIT_NOTE_TYPES:
                    return Outcome(
                        errors=["Credit note Type must be ACCRECCREDIT or ACCPAYCREDIT."]
                    )  # UNVERIFIED wording
                as_invoice = {
                    k: v
                    for k, v in element.items()
                    if k not in ("CreditNoteNumber", "CreditNoteID", "DueDate", "Type")
                }
                errors: list[str] = []
                before = None if existing is None else self._note_as_invoice(existing)
                if before is None:
                    as_invoice["Type"] = CREDIT_NOTE_TYPES[note_type]
                    as_invoice["InvoiceNumber"] = element.get("CreditNoteNumber") or "CN"
                    doc = self._new_invoice(
                        tenant, as_invoice, errors, db, client_id, unitdp, credit_note=True
                    )
                else:
                    doc = self._update_invoice(
                        tenant, before, as_invoice, errors, db, client_id, unitdp, credit_note=True
                    )
                if doc is not None and not errors:
                    errors.extend(self.document_errors(tenant, before, doc))
                if errors or doc is None:
                    raise _Rollback(errors)
                note = self._invoice_as_note(tenant, doc, note_type, existing, element)
                self._save(
                    db,
                    tenant,
                    "CreditNote",
                    note["CreditNoteID"],
                    note,
                    number=note["CreditNoteNumber"],
                    status=note["Status"],
                    created_by=client_id if existing is None else None,
                )
                return Outcome(doc=note, created=existing is None)
        except _Rollback as rollback:
            self._names.pop(tenant, None)  # it may hold a contact the rollback undid
            return Outcome(errors=rollback.errors)

    def _find_existing_credit_note(
        self, tenant: str, element: dict[str, Any], mode: str, credit_note_id: str | None
    ) -> dict[str, Any] | Outcome | None:
        target = credit_note_id or element.get("CreditNoteID")
        if target and target != NIL_UUID:
            found = self.record(tenant, "CreditNote", str(target))
            if found is None:
                return (
                    None
                    if mode == "create"
                    else Outcome(errors=["The resource you're looking for cannot be found"])
                )
            if mode == "create":
                return Outcome(errors=["Credit Note # must be unique."])  # UNVERIFIED wording
            return found
        number = element.get("CreditNoteNumber")
        if number:
            live = [
                n for n in self.by_number(tenant, "CreditNote", number) if n["Status"] != "DELETED"
            ]
            if live:
                if mode == "create":
                    return Outcome(errors=["Credit Note # must be unique."])  # UNVERIFIED wording
                return live[0]
        if mode == "update":
            return Outcome(errors=["The resource you're looking for cannot be found"])
        return None

    @staticmethod
    def _note_as_invoice(note: dict[str, Any]) -> dict[str, Any]:
        """A stored credit note in the invoice form the shared rules work on; what it has
        allocated counts as credited, so an allocated note cannot be edited or voided."""
        doc: dict[str, Any] = jsonutil.loads(jsonutil.dumps(note))
        doc["InvoiceID"] = note["CreditNoteID"]
        doc["InvoiceNumber"] = note["CreditNoteNumber"]
        doc["Type"] = CREDIT_NOTE_TYPES[note["Type"]]
        doc["AmountPaid"] = Decimal("0.00")
        doc["AmountCredited"] = money(note["Total"] - note.get("RemainingCredit", note["Total"]))
        return doc

    def _invoice_as_note(
        self,
        tenant: str,
        doc: dict[str, Any],
        note_type: str,
        existing: dict[str, Any] | None,
        element: dict[str, Any],
    ) -> dict[str, Any]:
        note: dict[str, Any] = {
            "Type": note_type,
            "CreditNoteID": doc["InvoiceID"],
            "CreditNoteNumber": (existing or {}).get("CreditNoteNumber")
            or element.get("CreditNoteNumber")
            or self._next_credit_note_number(tenant),
        }
        for key in (
            "Reference",
            "Contact",
            "Date",
            "Status",
            "LineAmountTypes",
            "LineItems",
            "SubTotal",
            "TotalTax",
            "Total",
            "TotalDiscount",
            "CurrencyCode",
            "CurrencyRate",
            "HasAttachments",
            "HasErrors",
            "SentToContact",
            "FullyPaidOnDate",
        ):
            if key in doc:
                note[key] = doc[key]
        allocated = Decimal("0.00")
        if existing is not None:
            left = existing.get("RemainingCredit", existing["Total"])
            allocated = money(existing["Total"] - left)
        note["RemainingCredit"] = (
            Decimal("0.00")
            if note["Status"] in ("VOIDED", "DELETED")
            else money(note["Total"] - allocated)
        )
        note["Allocations"] = (existing or {}).get("Allocations", [])
        note["Payments"] = (existing or {}).get("Payments", [])
        return note

    def _next_credit_note_number(self, tenant: str) -> str:
        n = (
            self.store.scalar(
                "SELECT COUNT(*) FROM records WHERE tenant=? AND kind='CreditNote'", (tenant,)
            )
            or 0
        ) + 1
        while self.by_number(tenant, "CreditNote", f"CN-{n:04d}"):
            n += 1
        return f"CN-{n:04d}"

    # ---- allocations ---------------------------------------------------
    def allocate_credit_note(
        self, tenant: str, credit_note_id: str, el: Any, *, client_id: str | None
    ) -> Outcome:
        """Allocate part or all of a credit note to an invoice
        (``PUT /CreditNotes/{CreditNoteID}/Allocations``, one element of its ``Allocations``).

        The invoice's AmountCredited rises and AmountDue falls (PAID at zero, with
        FullyPaidOnDate), and it lists the credit note with the amount applied; the credit
        note's RemainingCredit falls (PAID at zero) and it lists the allocation. The outcome
        holds the stored allocation, or every message Xero would give for it.
        """
        if not isinstance(el, dict):
            return Outcome(errors=["Allocation element must be an object."])  # UNVERIFIED
        with self._lock, self.store.write() as db:
            note = self.record(tenant, "CreditNote", credit_note_id)
            if note is None:
                return Outcome(errors=["The resource you're looking for cannot be found"])
            errors: list[str] = []
            invoice = self._invoice_ref(tenant, el.get("Invoice"))
            if invoice is None:
                errors.append("Invoice could not be found")  # UNVERIFIED wording (as payments)
            amount = _dec(el.get("Amount"), "Amount", errors)
            if amount is None or amount <= 0:
                # Xero refuses a zero amount (XeroAPI/xero-node#239: "a validation error about
                # amount being 0"); UNVERIFIED wording.
                errors.append("Allocation amount must be greater than zero.")
            when = self._allocation_date(el.get("Date"), errors)
            if note["Status"] not in ("AUTHORISED", "PAID"):
                # UNVERIFIED wording; the rule: only an approved credit note holds credit.
                errors.append("Credit Note must be AUTHORISED before it can be allocated.")
            if invoice is not None:
                errors.extend(self._allocation_pair_errors(note, invoice))
            if amount is not None and amount > 0:
                amount = money(amount)
                outstanding = (invoice or {}).get("AmountDue", amount)
                if amount > note.get("RemainingCredit", Decimal(0)) or amount > outstanding:
                    errors.append(ALLOCATION_TOO_LARGE)
            if when is not None:
                errors.extend(lock_date_errors(self.org(tenant) or {}, when.isoformat()))
            if errors or invoice is None or amount is None or when is None:
                return Outcome(errors=errors)
            allocation = {
                "AllocationID": new_id(),
                "CreditNoteID": note["CreditNoteID"],
                "CreditNoteNumber": note["CreditNoteNumber"],
                "Invoice": {
                    "InvoiceID": invoice["InvoiceID"],
                    "InvoiceNumber": invoice.get("InvoiceNumber") or "",
                },
                "Amount": amount,
                "Date": when.isoformat(),
                "IsDeleted": False,
            }
            self._apply_allocation(db, tenant, note, invoice, allocation, sign=1)
            self._save(
                db,
                tenant,
                "Allocation",
                allocation["AllocationID"],
                allocation,
                number=None,
                status="AUTHORISED",
                created_by=client_id,
            )
            return Outcome(doc=allocation, created=True)

    def delete_allocation(self, tenant: str, credit_note_id: str, allocation_id: str) -> Outcome:
        """Delete an allocation (``DELETE /CreditNotes/{id}/Allocations/{AllocationID}``): the
        amounts go back and a PAID invoice or credit note is AUTHORISED again. The outcome holds
        the allocation (``IsDeleted`` true), or why not (unknown, or dated in a locked period).
        """
        with self._lock, self.store.write() as db:
            allocation = self.record(tenant, "Allocation", allocation_id)
            note = self.record(tenant, "CreditNote", credit_note_id)
            if (
                allocation is None
                or note is None
                or allocation["IsDeleted"]
                or allocation["CreditNoteID"].lower() != note["CreditNoteID"].lower()
            ):
                return Outcome(errors=["The resource you're looking for cannot be found"])
            locked = lock_date_errors(self.org(tenant) or {}, allocation["Date"], editing=True)
            if locked:
                return Outcome(errors=locked)
            invoice = self.record(tenant, "Invoice", allocation["Invoice"]["InvoiceID"])
            if invoice is not None:
                self._apply_allocation(db, tenant, note, invoice, allocation, sign=-1)
            allocation["IsDeleted"] = True
            self._save(
                db, tenant, "Allocation", allocation_id, allocation, number=None, status="DELETED"
            )
            return Outcome(doc=allocation)

    def _invoice_ref(self, tenant: str, ref: Any) -> dict[str, Any] | None:
        if not isinstance(ref, dict):
            return None
        if ref.get("InvoiceID"):
            return self.record(tenant, "Invoice", str(ref["InvoiceID"]))
        if ref.get("InvoiceNumber"):
            live = [
                i
                for i in self.by_number(tenant, "Invoice", str(ref["InvoiceNumber"]))
                if i["Status"] != "DELETED"
            ]
            return live[0] if live else None
        return None

    def _allocation_date(self, value: Any, errors: list[str]) -> date | None:
        if value is None or value == "":
            # The spec makes Allocation.Date required; UNVERIFIED wording.
            errors.append("Date must be specified for an allocation.")
            return None
        try:
            return parse_request_date(value)
        except ValueError:
            errors.append("Date is not a valid date.")  # UNVERIFIED wording
            return None

    @staticmethod
    def _allocation_pair_errors(note: dict[str, Any], invoice: dict[str, Any]) -> list[str]:
        """Why this credit note may not go against this invoice, whatever the amount."""
        errors = []
        if invoice["Status"] == "PAID":
            # Verbatim: waynerobinson/xeroizer#320.
            errors.append("The invoice you are trying to allocate to has already been paid off")
        elif invoice["Status"] != "AUTHORISED":
            # UNVERIFIED wording; the rule is Xero's (only approved invoices take credit).
            errors.append("Credit Note can only be allocated to an AUTHORISED invoice.")
        if CREDIT_NOTE_TYPES[note["Type"]] != invoice["Type"]:
            # xeroizer#320 shows "Credit Note cannot be allocated to an incorrect invoice t…"
            # (cut off there); the last word is our reading.
            errors.append("Credit Note cannot be allocated to an incorrect invoice type")
        if note.get("CurrencyCode") != invoice.get("CurrencyCode"):
            errors.append(
                "The credit note and the invoice must be in the same currency."
            )  # UNVERIFIED wording; the rule: Xero allocates only within one currency
        note_contact = str(note.get("Contact", {}).get("ContactID", "")).lower()
        if note_contact != str(invoice.get("Contact", {}).get("ContactID", "")).lower():
            # ASSUMPTION and UNVERIFIED wording: Xero offers a credit note only to the same
            # contact's outstanding invoices ("Allocate credit"); the API is taken to refuse
            # another contact's invoice too.
            errors.append("The credit note and the invoice must be for the same contact.")
        return errors

    def _apply_allocation(
        self,
        db: Any,
        tenant: str,
        note: dict[str, Any],
        invoice: dict[str, Any],
        allocation: dict[str, Any],
        *,
        sign: int,
    ) -> None:
        """Add (sign 1) or take back (-1) an allocation on both documents and save them."""
        amount = allocation["Amount"] * sign
        invoice["AmountCredited"] = money(invoice["AmountCredited"] + amount)
        invoice["AmountDue"] = money(
            invoice["Total"] - invoice["AmountPaid"] - invoice["AmountCredited"]
        )
        entries = [c for c in invoice["CreditNotes"] if c["CreditNoteID"] != note["CreditNoteID"]]
        applied = money(
            sum(
                (
                    c["AppliedAmount"]
                    for c in invoice["CreditNotes"]
                    if c["CreditNoteID"] == note["CreditNoteID"]
                ),
                Decimal("0.00"),
            )
            + amount
        )
        if applied > 0:
            entries.append(
                {
                    "CreditNoteID": note["CreditNoteID"],
                    "CreditNoteNumber": note["CreditNoteNumber"],
                    "ID": note["CreditNoteID"],
                    "AppliedAmount": applied,
                    "Date": note.get("Date") or allocation["Date"],
                    "Total": note["Total"],
                    "LineItems": [],
                }
            )
        invoice["CreditNotes"] = entries
        note["RemainingCredit"] = money(note["RemainingCredit"] - amount)
        if sign > 0:
            note["Allocations"] = [
                *note.get("Allocations", []),
                {
                    "AllocationID": allocation["AllocationID"],
                    "Amount": allocation["Amount"],
                    "Date": allocation["Date"],
                    "Invoice": dict(allocation["Invoice"]),
                },
            ]
        else:
            note["Allocations"] = [
                a
                for a in note.get("Allocations", [])
                if a.get("AllocationID") != allocation["AllocationID"]
            ]
        for doc, left in ((invoice, invoice["AmountDue"]), (note, note["RemainingCredit"])):
            if left == 0 and doc["Status"] == "AUTHORISED":
                doc["Status"] = "PAID"
                doc["FullyPaidOnDate"] = allocation["Date"]
            elif left > 0 and doc["Status"] == "PAID":
                doc["Status"] = "AUTHORISED"
                doc.pop("FullyPaidOnDate", None)
        self._save(
            db,
            tenant,
            "Invoice",
            invoice["InvoiceID"],
            invoice,
            number=invoice.get("InvoiceNumber"),
            status=invoice["Status"],
        )
        self._save(
            db,
            tenant,
            "CreditNote",
            note["CreditNoteID"],
            note,
            number=note["CreditNoteNumber"],
            status=note["Status"],
        )

    def render_allocation(self, doc: dict[str, Any]) -> dict[str, Any]:
        """An allocation as ``PUT /CreditNotes/{id}/Allocations`` answers it (the spec's
        example: the amount, an MS-JSON date, an invoice stub and a credit note stub)."""
        return {
            "AllocationID": doc["AllocationID"],
            "Amount": doc["Amount"],
            "Date": msdate(date.fromisoformat(doc["Date"])),
            "Invoice": {
                "InvoiceID": doc["Invoice"]["InvoiceID"],
                "InvoiceNumber": doc["Invoice"].get("InvoiceNumber", ""),
                "Payments": [],
                "CreditNotes": [],
                "Prepayments": [],
                "Overpayments": [],
                "HasErrors": False,
                "IsDiscounted": False,
                "LineItems": [],
                "ValidationErrors": [],
            },
            "CreditNote": {
                "CreditNoteID": doc["CreditNoteID"],
                "ID": doc["CreditNoteID"],
                "LineItems": [],
            },
            "ValidationErrors": [],
        }

    @staticmethod
    def render_deleted_allocation(doc: dict[str, Any]) -> dict[str, Any]:
        """A deleted allocation as ``DELETE /CreditNotes/{id}/Allocations/{id}`` answers it: a
        bare Allocation (no envelope) with ``IsDeleted`` true.

        No ``Invoice``: live Xero leaves it out (XeroAPI/xero-python#159, whose SDK then fails on
        the missing invoice), although the spec's example shows one.
        """
        return {
            "AllocationID": doc["AllocationID"],
            "Amount": doc["Amount"],
            "Date": msdate(date.fromisoformat(doc["Date"])),
            "IsDeleted": True,
        }

    def render_credit_note(
        self, tenant: str, doc: dict[str, Any], *, contacts: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A stored credit note in Xero's wire shape (MS-JSON dates, a contact stub, its
        allocations).

        ``contacts`` (by ContactID), when given, is where the contact is looked up.
        """
        out = {
            k: v
            for k, v in doc.items()
            if k not in ("UpdatedMs", "Date", "Contact", "FullyPaidOnDate")
        }
        cid = doc.get("Contact", {}).get("ContactID")
        contact = (
            (contacts or {}).get(cid)
            if contacts is not None
            else self.record(tenant, "Contact", cid)
            if cid
            else None
        )
        out["Contact"] = self.render_contact_stub(contact or {"ContactID": cid})
        out["ID"] = doc["CreditNoteID"]
        if doc.get("Date"):
            d = date.fromisoformat(doc["Date"])
            out["DateString"] = iso_date_string(d)
            out["Date"] = msdate(d)
        if doc.get("FullyPaidOnDate"):
            out["FullyPaidOnDate"] = msdate(date.fromisoformat(doc["FullyPaidOnDate"]))
        out["Allocations"] = [
            dict(a, Date=msdate(date.fromisoformat(a["Date"]))) for a in doc.get("Allocations", [])
        ]
        out["UpdatedDateUTC"] = msdatetime(doc["UpdatedMs"])
        out["UpdatedDateUTCString"] = iso_utc_string(doc["UpdatedMs"])
        return out

    # ---- rendering -----------------------------------------------------
    def render_invoice(
        self,
        tenant: str,
        doc: dict[str, Any],
        *,
        with_lines: bool,
        contacts: dict[str, Any] | None = None,
        summary_only: bool = False,
    ) -> dict[str, Any]:
        """A stored invoice in Xero's wire shape (MS-JSON dates, a contact stub, its payments).

        Line items only ``with_lines``; ``summary_only`` leaves out line items, payments, credit
        notes, prepayments and overpayments. ``contacts`` (by ContactID), when given, is where the
        contact is looked up.
        """
        out = {
            k: v
            for k, v in doc.items()
            if k not in ("UpdatedMs", "Date", "DueDate", "FullyPaidOnDate", "LineItems", "Contact")
        }
        cid = doc.get("Contact", {}).get("ContactID")
        contact = (
            (contacts or {}).get(cid)
            if contacts is not None
            else self.record(tenant, "Contact", cid)
            if cid
            else None
        )
        out["Contact"] = self.render_contact_stub(contact or {"ContactID": cid})
        for key in ("Date", "DueDate"):
            if doc.get(key):
                d = date.fromisoformat(doc[key])
                out[f"{key}String"] = iso_date_string(d)
                out[key] = msdate(d)
        if doc.get("FullyPaidOnDate"):
            out["FullyPaidOnDate"] = msdate(date.fromisoformat(doc["FullyPaidOnDate"]))
        out["Payments"] = [
            dict(p, Date=msdate(date.fromisoformat(p["Date"]))) for p in doc.get("Payments", [])
        ]
        # Each credit note allocated to the invoice, with the amount it applied (spec
        # CreditNote.AppliedAmount), its date as a credit note carries it.
        out["CreditNotes"] = [
            dict(
                c,
                Date=msdate(date.fromisoformat(c["Date"])),
                DateString=iso_date_string(date.fromisoformat(c["Date"])),
            )
            for c in doc.get("CreditNotes", [])
        ]
        out["UpdatedDateUTC"] = msdatetime(doc["UpdatedMs"])
        out["UpdatedDateUTCString"] = iso_utc_string(doc["UpdatedMs"])
        if with_lines and not summary_only:
            out["LineItems"] = doc.get("LineItems", [])
        else:
            out["LineItems"] = []
        if summary_only:
            for key in ("Payments", "CreditNotes", "Prepayments", "Overpayments"):
                out.pop(key, None)
        return out

    @staticmethod
    def render_contact_stub(contact: dict[str, Any]) -> dict[str, Any]:
        """The contact fields an invoice or credit note carries."""
        keys = (
            "ContactID",
            "ContactNumber",
            "Name",
            "ContactStatus",
            "EmailAddress",
            "HasValidationErrors",
        )
        return {k: contact[k] for k in keys if k in contact}

    def render_record(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A stored record in Xero's wire shape: ``UpdatedMs`` becomes ``UpdatedDateUTC``."""
        out = {k: v for k, v in doc.items() if k != "UpdatedMs"}
        if "UpdatedMs" in doc:
            out["UpdatedDateUTC"] = msdatetime(doc["UpdatedMs"])
        return out

    def render_payment(self, tenant: str, doc: dict[str, Any]) -> dict[str, Any]:
        """A stored payment in Xero's wire shape, with its invoice (without line items)."""
        out = self.render_record(doc)
        out["UpdatedDateUTCString"] = iso_utc_string(doc["UpdatedMs"])
        out["Date"] = msdate(date.fromisoformat(doc["Date"]))
        invoice = self.record(tenant, "Invoice", doc["Invoice"]["InvoiceID"])
        if invoice is not None:
            out["Invoice"] = self.render_invoice(tenant, invoice, with_lines=False)
            out["Invoice"].pop("LineItems", None)
        return out

    def render_org(self, org: dict[str, Any]) -> dict[str, Any]:
        """An organisation in Xero's wire shape: lock and creation dates as MS-JSON dates, unset
        lock dates left out."""
        out = dict(org)
        for key in ("PeriodLockDate", "EndOfYearLockDate"):
            if out.get(key):
                out[key] = msdate(date.fromisoformat(str(out[key])[:10]))
            else:
                out.pop(key, None)
        if out.get("CreatedDateUTC") and not str(out["CreatedDateUTC"]).startswith("/Date"):
            out["CreatedDateUTC"] = msdate(date.fromisoformat(str(out["CreatedDateUTC"])[:10]))
        return out
