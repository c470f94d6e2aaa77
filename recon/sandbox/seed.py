"""Deterministic demo data: a believable coworking business on both sides.

CONTRACT (shared by the Xero and Nexudus sandbox servers, the tests and the
notebooks; change it only together with them):

``generate(seed=2026, invoices=None, start=date(2026, 8, 1), months=3) -> DemoData``

* Same arguments → byte-identical data (``random.Random(seed)``, no clock).
* ``invoices=None`` gives the demo size (a few hundred invoices over the
  quarter); an int scales the same business (100,000+ for benchmarks) in
  seconds. ``invoices`` is the number of Shoreditch and Dublin invoices,
  plus nine fixed Shoreditch additions (below); Manchester and Leeds add
  15% and 10% of ``invoices`` on top, Singapore and New York 7.5% each plus
  one April invoice each, so the first two locations' data never depends on
  the others.
* Every record is a plain dict in the API's own shape (PascalCase field names
  exactly as in ``shared/reference``), money as ``Decimal`` with 2 places,
  Xero rates with 4 places. Xero dates as ISO ``YYYY-MM-DD`` strings (the
  Xero server renders them as ``/Date(ms+0000)/``). Nexudus date-times are
  UTC ``YYYY-MM-DDTHH:MM:SSZ`` as nexudus.md §6 describes them: date-like
  fields (InvoiceFromDate, InvoiceToDate, DueDate, SaleDate and the lines'
  CoworkerInvoiceDueDate) are the UTC instant of the location's local
  midnight (a London period from 1 April 2026 reads ``2026-03-31T23:00:00Z``);
  CreatedOn, UpdatedOn, SentOn and PaidOn are real instants, the location's
  wall-clock time (a plan run at 06:00, one-off sales in the day) in UTC.
* No secrets here: the sandbox makes client secrets and passwords at
  first start.

The business: "Hive Coworking", six Nexudus locations in three time zones and
Nexudus' two Xero set-ups (nexudus.md §11). Four transfer each to their own Xero
organisation (Hive Shoreditch → "Hive Coworking UK Ltd", GBP, London, prices
exclusive of VAT; Hive Dublin Docklands → "Hive Coworking Ireland Ltd", EUR,
Dublin, prices inclusive of VAT; Hive Singapore Raffles → "Hive Coworking
Singapore Pte Ltd", SGD, Singapore; Hive New York Flatiron → "Hive Coworking US
Inc", USD, New York). Two share one organisation, "Hive Coworking North Ltd"
(GBP, London time, prices exclusive), told apart by the options "Manchester" and
"Leeds" of its tracking category "Location" (Hive Manchester Ancoats, Hive Leeds
Wellington Place). The north and the far locations map cleanly and carry no
planted problem; Leeds has Nexudus' own automatic Xero transfer on. Plus one more
organisation no demo app may reach. The later locations are generated after the
first two, each group from a random stream of its own
(``random.Random(f"{seed}:north")``, ``f"{seed}:overseas"``) with ids continuing
the one counter, so Shoreditch's and Dublin's records never depend on them.
Invoices are monthly membership runs (one invoice per member per month, with
extras and deposits) and one-off invoices (bookings, passes, tickets).

Planted cases (``DemoData.planted``; the tables are in ``seed_catalogue``):
mapping problems (account missing, archived, renamed, not revenue, absent;
tax rate with another percentage, ambiguous, deleted, not allowed on the
account, missing), awkward invoices (void, credit note, foreign and
unsupported currencies, a zero line, a rounding difference) and awkward
customers (unicode, a name over 255 characters, a blank billing name, two
people with one name, a name shared with one Xero contact). Each
problem invoice carries exactly one problem, and together they stay near 10%
of Shoreditch's invoices, so a transfer demo moves most invoices. Eight
Shoreditch invoices are added after all others (so nothing of the rest moves):
lines whose tax rate is not a TaxRate record (``[No Tax]``, the default rate, a
personal rate; nexudus.md §7.2), three invoices Nexudus' own integration already
sent (§11), and the April 2026 period invoice (§6); a ninth, last of all (after
the Payments accounts), is a credit note cancelling a paid invoice.

Month-end situations, chosen from otherwise clean data without a random draw:
Xero UK already holds a customer twice (two ACTIVE contacts with its name) and
an invoice keyed by hand under one of Shoreditch's numbers (xero-api.md §3.1),
both taken out of the clean list; the US organisation's PeriodLockDate is the
period's first day (xero-api.md §6, §13), which locks New York's first
membership run (the North, where 23 invoices fall on that day, stays unlocked).
``planted["clean_invoices"]`` is derived from the data, not hand-listed.

``planted`` keys (values are codes, tax-rate names, invoice numbers, or
coworker Ids; lists are sorted or in date order):

* accounts: ``matching_accounts`` [codes], ``missing_account``,
  ``missing_account_suggestions`` [by name, by code], ``archived_account``,
  ``name_differs_account``, ``not_revenue_account``, ``deposit_account``;
  ``no_account_line`` (invoice number) and ``no_account_line_id`` (line Id).
* tax rates: ``matching_tax_rates`` {Nexudus name: Xero TaxType},
  ``percentage_differs_tax`` (+ ``_type``), ``ambiguous_tax``,
  ``archived_tax`` (+ ``_type``), ``tax_not_allowed_on_account``, ``missing_tax``.
* ``<case>_invoices`` [numbers] for each account and tax case above.
* invoices: ``void_invoice``, ``credit_note``, ``credit_note_original`` (its original:
  clean, unpaid, reversed in full), ``credit_note_with_original`` (the two as one
  (credit note, original) pair: OriginalInvoiceGuid names a transferable original,
  so recon can allocate it), ``credit_note_larger_than_due`` ((credit note,
  original): a one-off invoice paid in Nexudus, then cancelled in full three days
  later; its credit exceeds what the original has left due in Nexudus, nothing; in
  Xero the original is due in full until its payment is there too),
  ``tax_inclusive_invoices``, ``second_currency_invoices``,
  ``unsupported_currency_invoice``, ``zero_amount_line`` (+ ``_id``),
  ``rounding_difference_invoice`` and ``rounding_difference`` (Nexudus
  TotalAmount minus the per-line total, a Decimal).
* customers: ``unicode_coworker``/``_invoice``, ``long_name_coworker``/``_invoice``,
  ``blank_billing_name_coworker``/``_invoice``, ``same_name_coworkers`` [2 Ids]
  and ``same_name_invoices``, ``name_clash_contact`` (the shared name),
  ``name_clash_coworker``, ``name_clash_invoices``, ``same_name_contact_id`` (the
  ContactID of Xero UK's one ACTIVE contact of that name, without ContactNumber:
  recon must use it, not make "Name (email)").
* already in Xero UK: ``ambiguous_contact_name`` (a Shoreditch customer's name),
  ``ambiguous_contact_ids`` [two ACTIVE ContactIDs with that exact name, no
  ContactNumber, neither with its billing e-mail], ``ambiguous_contact_invoices``
  [its invoices, date order]; ``number_clash_invoice`` (a Shoreditch invoice number
  that an AUTHORISED Xero invoice, keyed by hand, already has),
  ``number_clash_xero_contact`` (that Xero invoice's contact, not the Nexudus
  customer) and ``number_clash_xero_total`` (its Total, a Decimal, not the Nexudus
  one). None of these invoices is in ``clean_invoices``.
* lock date: ``period_lock_date`` (ISO date), ``period_lock_org`` (organisation
  name), ``period_lock_location`` (the one location booking into it),
  ``locked_invoices`` [its final invoices of the period whose Xero date, issue or
  period start, is on or before the lock date; not in its clean list].
* derived: ``clean_invoices`` (Shoreditch), ``clean_invoices_dublin``,
  ``draft_invoices`` [Ids: drafts have no number], ``paid_in_nexudus_invoices``
  (these two: Shoreditch and Dublin),
  ``period_start``/``period_end`` (ISO dates, inclusive).
* shared organisation: ``shared_org_locations`` [the two business Ids],
  ``tracking_category`` ("Location"), ``clean_invoices_manchester``,
  ``clean_invoices_leeds`` (every final invoice of each),
  ``shared_org_draft_invoices`` [Ids], ``shared_org_paid_in_nexudus_invoices``,
  ``archived_tracking_option`` (an ARCHIVED option of Location),
  ``archived_tracking_category`` (an ARCHIVED category),
  ``auto_transfer_location`` (Leeds' business Id: AutoTransferToXeroOrQuickBooks).
* tax rates that are not TaxRate records (Shoreditch): ``no_tax_invoices``,
  ``default_tax_rate_invoices``, ``personal_tax_rate_invoices`` [numbers], each
  with ``_line_ids`` [line Ids] and ``_name`` ("[No Tax]", "Default tax rate",
  "Personal rate - charity").
* accounts of type Payments: ``payments_account`` ("090", in Xero UK),
  ``missing_payments_account`` ("094", not in Xero UK) and its ``_name``.
* Nexudus' own integration: ``already_sent_by_nexudus`` [numbers,
  XeroInvoiceTransfered true; clean but for that, so not in ``clean_invoices``].
* zones: ``april_period`` {location name: invoice number} for Shoreditch,
  Singapore and New York: billed local 1–30 April 2026, issued at local 01:30 on
  1 April (outside the demo period, so in no clean list).
* far locations: ``overseas_locations`` [Singapore's and New York's Ids],
  ``clean_invoices_singapore``, ``clean_invoices_new_york`` (every final
  invoice of the period, New York's ``locked_invoices`` excepted),
  ``overseas_paid_in_nexudus_invoices``.
"""

from __future__ import annotations

import calendar
import dataclasses
import random
import unicodedata
import uuid
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from recon.sandbox import seed_catalogue as cat
from recon.sandbox.decimals import round_cents
from recon.sandbox.nexudus_billing import LINE_ECHOES, due_fields

Record = dict[str, Any]


@dataclass(frozen=True)
class XeroOrgSeed:
    """One Xero organisation (tenant) and its settings."""

    organisation: Record  # Xero Organisation shape; OrganisationID is the tenant id
    accounts: list[Record]  # Xero Account shape
    tax_rates: list[Record]  # Xero TaxRate shape
    currencies: list[Record]  # [{"Code", "Description"}], base currency included
    contacts: list[Record] = field(default_factory=list)  # Xero Contact shape (pre-existing)
    # Xero TrackingCategory shape, Options included (ACTIVE and ARCHIVED ones).
    tracking_categories: list[Record] = field(default_factory=list)
    # Invoices already in Xero before recon's first run, keyed there by hand: the Invoice as the
    # Xero books store it (ISO Date and DueDate, Contact as {"ContactID"}, amounts computed as Xero
    # computes them); the loader adds only UpdatedDateUTC.
    invoices: list[Record] = field(default_factory=list)


@dataclass(frozen=True)
class XeroAppSeed:
    """An OAuth2 app registered with the Xero sandbox (its secret is made at start)."""

    name: str
    client_id: str
    grant: str  # "client_credentials" (Custom Connection) or "authorization_code"
    tenant_ids: list[str]
    redirect_uris: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NexudusSeed:
    """The Nexudus side: locations, members, chart of accounts, tax rates, invoices."""

    businesses: list[Record]
    coworkers: list[Record]
    financial_accounts: list[Record]
    tax_rates: list[Record]
    invoices: list[Record]  # CoworkerInvoice shape, without lines
    invoice_lines: list[Record]  # CoworkerInvoiceLine shape, CoworkerInvoiceId -> invoice Id
    username: str = "admin@hive-coworking.example"
    currencies: list[Record] = field(default_factory=list)  # Currency shape (sys/currencies)
    # SimpleTimeZone shape (sys/simpletimezones): Id, Name, TimeOffset, UsesSummerTime
    simple_time_zones: list[Record] = field(default_factory=list)


@dataclass(frozen=True)
class DemoData:
    """Everything the sandbox servers load, plus where the planted cases are."""

    xero_orgs: list[XeroOrgSeed]
    xero_apps: list[XeroAppSeed]
    nexudus: NexudusSeed
    # Nexudus business Id -> Xero tenant id, as the demo params wire them.
    locations: dict[int, str]
    # Names of the planted cases -> what identifies them (codes, invoice numbers),
    # so tests and notebooks find them without hard-coding.
    planted: dict[str, Any]
    # Nexudus business Id -> (tracking category, option) that tells it apart inside a
    # shared organisation; None for a location with an organisation of its own.
    location_tracking: dict[int, tuple[str, str] | None] = field(default_factory=dict)


# --------------------------------------------------------------------------
# Sizes and shares (named so a reader can tune the demo in one place)
# --------------------------------------------------------------------------

DEMO_INVOICES = 400
MIN_INVOICES = 100  # below this the planted cases no longer fit beside clean invoices
PLAN_SHARE = 0.70  # share of a location's invoices that are monthly membership invoices
AD_HOC_PER_CUSTOMER = 2.5  # one-off invoices per drop-in customer over the period
CASE_SHARE = 0.007  # of Shoreditch invoices, per multi-invoice planted case (at least 2 each)
EUR_SHARE = 0.012  # Shoreditch invoices billed in EUR (at least 3)
DRAFT_SHARE = 0.012  # draft invoices per location (at least DRAFT_LEAST of each)
DRAFT_LEAST = {"SHO": 2, "DUB": 1, "MAN": 1, "LEE": 1, "SIN": 0, "NYC": 0}
PAID_FIRST_MONTH, PAID_LAST_MONTH = 0.5, 0.1  # older invoices are more often paid: ~30% overall
DUE_DAYS = 14
MAX_LINES = 6
ID_BASE = (
    1_400_000_001  # Nexudus ids are large ints; one counter keeps them unique across the dataset
)
DEPOSIT_ACCOUNTS = frozenset({"2300"})  # non-revenue accounts a sales line may legitimately use
EXCHANGE_RATE_ONE = Decimal("1.0000")
CENTS0 = Decimal("0.00")
HUNDRED = Decimal(100)
NAMESPACE = uuid.UUID(
    "5b0d7c52-8f0e-4a8e-9a57-2f3c6d1e9b40"
)  # for uuid5 ids of the fixed catalogue
TAX_FLAG = {
    "REVENUE": "CanApplyToRevenue",
    "EXPENSE": "CanApplyToExpenses",
    "ASSET": "CanApplyToAssets",
    "LIABILITY": "CanApplyToLiabilities",
    "EQUITY": "CanApplyToEquity",
}


def generate(
    seed: int = 2026, invoices: int | None = None, start: date = date(2026, 8, 1), months: int = 3
) -> DemoData:
    """Build the whole demo: the Xero organisations, the apps, and the Nexudus side.

    ``invoices`` is the exact number of Shoreditch and Dublin invoices (credit
    note and drafts included); ``None`` means ``DEMO_INVOICES``. Manchester and
    Leeds add their shares of it on top (a quarter more in all). All invoices
    fall in the ``months`` months from ``start``. Raises ``ValueError`` below
    ``MIN_INVOICES`` or for ``months < 1``.
    """
    total = DEMO_INVOICES if invoices is None else int(invoices)
    if total < MIN_INVOICES:
        raise ValueError(
            f"invoices must be at least {MIN_INVOICES} so the planted cases fit (got {total})"
        )
    if months < 1:
        raise ValueError(f"months must be at least 1 (got {months})")
    rng = random.Random(seed)
    period = _Period(start, months)
    orgs, tenants = _xero_orgs(seed, period)
    by_org = dict(zip(cat.XERO_ORGS, orgs, strict=True))
    apps = _xero_apps(seed, tenants)
    sho = int(Decimal(total) * cat.SHOREDITCH.share + Decimal("0.5"))
    gen = _Generator(rng, period, {"SHO": sho, "DUB": total - sho}, cat.BUSINESSES)
    own = gen.build()
    # What Xero UK holds already, chosen from Shoreditch's otherwise clean invoices (no random
    # draw, so nothing generated above or below changes): a customer entered twice, then an
    # invoice keyed by hand under one of Shoreditch's numbers.
    uk = by_org[cat.SHOREDITCH.org]
    uk.contacts.extend(_ambiguous_contacts(seed, cat.SHOREDITCH.org, gen.ambiguous_customer(uk)))
    clash = gen.number_clash(uk)
    uk.invoices.append(_number_clash_invoice(seed, cat.SHOREDITCH.org, uk, clash, period))
    # The shared organisation's locations: their own random stream, ids after every id above,
    # names never used above (so every customer name stays unique across the demo).
    north = _Generator(
        random.Random(f"{seed}:north"),
        period,
        {b.key: int(Decimal(total) * b.share + Decimal("0.5")) for b in cat.SHARED_ORG_BUSINESSES},
        cat.SHARED_ORG_BUSINESSES,
        after=gen,
    )
    shared = north.build()
    # Singapore and New York: last, from a stream of their own, ids after every id above.
    overseas = _Generator(
        random.Random(f"{seed}:overseas"),
        period,
        {b.key: int(Decimal(total) * b.share + Decimal("0.5")) for b in cat.OVERSEAS_BUSINESSES},
        cat.OVERSEAS_BUSINESSES,
        after=north,
    )
    far = overseas.build()
    parts = (own, shared, far)
    records: dict[str, Any] = {
        f.name: [r for part in parts for r in getattr(part, f.name)]
        for f in dataclasses.fields(NexudusSeed)
        if f.name not in ("username", "currencies", "simple_time_zones")
    }
    nexudus = NexudusSeed(
        **records,
        currencies=[
            {"Id": overseas.ref_ids[code], "Code": code, "Name": cat.CURRENCY_NAMES[code]}
            for code in cat.CURRENCY_NAMES
            if code in overseas.ref_ids
        ],
        simple_time_zones=[
            {
                "Id": z.id,
                "Name": z.name,
                "TimeOffset": z.offset,
                "UsesSummerTime": z.summer,
            }
            for z in cat.SIMPLE_TIME_ZONES
        ],
    )
    every = cat.BUSINESSES + cat.SHARED_ORG_BUSINESSES + cat.OVERSEAS_BUSINESSES
    business_ids = {**gen.business_ids, **north.business_ids, **overseas.business_ids}
    locations = {business_ids[b.key]: tenants[b.org] for b in every}
    location_tracking = {business_ids[b.key]: b.tracking for b in every}
    planted = gen.planted(by_org)
    planted.update(north.planted_shared(by_org))
    planted.update(overseas.planted_overseas(by_org))
    for part_gen in (gen, north, overseas):
        planted.update(part_gen.planted_lock(by_org))
    planted["april_period"] = {**gen.april, **overseas.april}
    return DemoData(
        xero_orgs=orgs,
        xero_apps=apps,
        nexudus=nexudus,
        locations=locations,
        planted=planted,
        location_tracking=location_tracking,
    )


# --------------------------------------------------------------------------
# Small helpers: period, ids, timestamps, names
# --------------------------------------------------------------------------


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class _Period:
    """The demo period: ``months`` billing months from ``start``."""

    start: date
    months: int

    @cached_property
    def month_starts(self) -> list[date]:
        """Start of each billing month, plus the (exclusive) end."""
        return [_add_months(self.start, i) for i in range(self.months + 1)]

    @cached_property
    def last(self) -> date:
        """The period's last day (inclusive)."""
        return self.month_starts[-1] - timedelta(days=1)

    def month_of(self, day: date) -> int:
        """0-based billing month of a day inside the period."""
        return bisect_right(self.month_starts, day) - 1


# Version-4 and RFC 4122 variant bits, as uuid.UUID(..., version=4) sets them.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_V4 = (4 << 76) | (0x8000 << 48)


class _Ids:
    """Int ids from one counter; UUIDs from the seeded generator (never uuid4)."""

    def __init__(self, rng: random.Random, start: int = ID_BASE) -> None:
        self._next = start
        self._bits = rng.getrandbits

    def id(self) -> int:
        self._next += 1
        return self._next - 1

    @property
    def next_id(self) -> int:
        """The id the next call of ``id()`` returns (where another counter may safely start)."""
        return self._next

    def uid(self) -> str:
        """``str(uuid.UUID(int=bits, version=4))``, built without the object (hot path)."""
        h = f"{self._bits(128) & _UUID_CLEAR | _UUID_V4:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Summer-time changes happen before 03:00 local time in every zone the demo uses (01:00 UTC in
# Europe, 02:00 local in New York): from 04:00 on, a local day has one UTC offset.
SETTLED_SECS = 4 * 3600


def _utc_text(moment: datetime) -> str:
    """Nexudus date-time text (nexudus.md §6): ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    u = moment.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


class _LocalTime:
    """A location's local dates and wall-clock times as Nexudus' UTC text (nexudus.md §6).

    Date-like fields (InvoiceFromDate, InvoiceToDate, DueDate, SaleDate) hold the
    UTC instant of the location's local midnight: a London period from 1 April
    2026 reads ``2026-03-31T23:00:00Z``. CreatedOn, PaidOn and the like are real
    instants: a local wall-clock time converted to UTC. Cached: this runs
    several times per invoice.
    """

    def __init__(self, iana: str) -> None:
        self.zone = ZoneInfo(iana)
        self._midnights: dict[date, str] = {}
        self._offsets: dict[date, timedelta] = {}

    def midnight(self, d: date) -> str:
        """The UTC instant of local midnight at the start of ``d``."""
        text = self._midnights.get(d)
        if text is None:
            start = datetime(d.year, d.month, d.day, tzinfo=self.zone)
            text = self._midnights[d] = _utc_text(start)
        return text

    def at(self, d: date, secs: int) -> str:
        """The UTC instant ``secs`` seconds of local wall-clock time into day ``d``."""
        if secs < SETTLED_SECS:
            local = datetime(d.year, d.month, d.day, tzinfo=self.zone) + timedelta(seconds=secs)
            return _utc_text(local)
        offset = self._offsets.get(d)
        if offset is None:
            noon = datetime(d.year, d.month, d.day, 12, tzinfo=self.zone).utcoffset()
            assert noon is not None
            offset = self._offsets[d] = noon
        u = datetime(d.year, d.month, d.day) + timedelta(seconds=secs) - offset
        return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


def _uuid5(seed: int, *parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join((str(seed), *parts))))


def _slug(text: str, sep: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = "".join(c if c.isalnum() or c == " " else "" for c in ascii_text).split()
    return sep.join(words)


class _UniqueNames:
    """Draws names without repeats from a mixed-radix space of parts.

    Level 0 uses only the base combinations (natural names at demo size); each
    further level adds a qualifier, and past the qualifiers a number, so even
    very large runs never repeat a name. Expected O(1) per draw.
    """

    def __init__(self, rng: random.Random, base: int, qualifiers: int) -> None:
        self.rng, self.base, self.qualifiers = rng, base, qualifiers
        self.used: set[int] = set()

    def draw(self) -> tuple[int, int, int]:
        """Return (base index, qualifier 0..q (0 = none), repeat number 0..)."""
        space = self.base
        if len(self.used) * 2 >= space:
            space = self.base * (self.qualifiers + 1)
            while len(self.used) * 2 >= space:
                space *= 2
        while True:
            idx = self.rng.randrange(space)
            if idx not in self.used:
                self.used.add(idx)
                full = self.base * (self.qualifiers + 1)
                return idx % self.base, idx % full // self.base, idx // full


_INITIALS = "ABCDEFGHJKLMNPRSTW"


def _person_name(draw: tuple[int, int, int]) -> str:
    rest, qualifier, repeat = draw
    first = cat.FIRST_NAMES[rest % len(cat.FIRST_NAMES)]
    last = cat.LAST_NAMES[rest // len(cat.FIRST_NAMES)]
    middle = f" {_INITIALS[qualifier - 1]}." if qualifier else ""
    return f"{first}{middle} {last}{f' {repeat + 1}' if repeat else ''}"


def _company_name(draw: tuple[int, int, int], forms: tuple[str, ...]) -> tuple[str, str]:
    """Company name and its e-mail domain."""
    rest, qualifier, repeat = draw
    core = (
        f"{cat.COMPANY_PREFIXES[rest % len(cat.COMPANY_PREFIXES)]} "
        f"{cat.COMPANY_NOUNS[rest // len(cat.COMPANY_PREFIXES)]}"
    )
    if qualifier:
        core += f" {cat.COMPANY_QUALIFIERS[qualifier - 1]}"
    if repeat:
        core += f" {repeat + 1}"
    return f"{core} {forms[rest % len(forms)]}", f"{_slug(core, '-')}.example"


# --------------------------------------------------------------------------
# Xero side
# --------------------------------------------------------------------------


def _xero_orgs(seed: int, period: _Period) -> tuple[list[XeroOrgSeed], dict[str, str]]:
    """The organisations (UK, IE, OTHER, NORTH, SG, US) and their tenant ids by key; the one of
    ``PERIOD_LOCK_ORG`` has its PeriodLockDate set (xero-api.md §6)."""
    orgs, tenants = [], {}
    for key, settings in cat.XERO_ORGS.items():
        tenant = _uuid5(seed, "org", key)
        tenants[key] = tenant
        organisation = {"OrganisationID": tenant, **settings}
        if key == cat.PERIOD_LOCK_ORG:
            lock = period.start + timedelta(days=cat.PERIOD_LOCK_DAYS)
            organisation["PeriodLockDate"] = lock.isoformat()
        orgs.append(
            XeroOrgSeed(
                organisation=organisation,
                accounts=[_xero_account(seed, key, spec) for spec in cat.XERO_ACCOUNTS[key]],
                tax_rates=[_xero_tax_rate(spec) for spec in cat.XERO_TAX_RATES[key]],
                currencies=[
                    {"Code": c, "Description": cat.CURRENCY_NAMES[c]}
                    for c in cat.XERO_CURRENCIES[key]
                ],
                contacts=[_xero_contact(seed, key, spec) for spec in cat.XERO_CONTACTS[key]],
                tracking_categories=[
                    _xero_tracking(seed, key, spec) for spec in cat.XERO_TRACKING.get(key, ())
                ],
            )
        )
    return orgs, tenants


def _xero_tracking(seed: int, org: str, spec: cat.TrackingSpec) -> Record:
    """A TrackingCategory as GET /TrackingCategories shows it (option flags as the spec shows)."""
    return {
        "TrackingCategoryID": _uuid5(seed, "tracking", org, spec.name),
        "Name": spec.name,
        "Status": spec.status,
        "Options": [
            {
                "TrackingOptionID": _uuid5(seed, "tracking", org, spec.name, name),
                "Name": name,
                "Status": status,
                "HasValidationErrors": False,
                "IsDeleted": status == "DELETED",
                "IsArchived": status == "ARCHIVED",
                "IsActive": status == "ACTIVE",
            }
            for name, status in spec.options
        ],
    }


def _xero_account(seed: int, org: str, spec: cat.AccountSpec) -> Record:
    cls = cat.ACCOUNT_CLASS[spec.type]
    code, code_name = cat.REPORTING[cls]
    record: Record = {
        "AccountID": _uuid5(seed, "account", org, spec.code),
        "Code": spec.code,
        "Name": spec.name,
        "Type": spec.type,
        "Status": spec.status,
        "Description": spec.description,
        "TaxType": spec.tax,
        "Class": cls,
        "EnablePaymentsToAccount": False,
        "ShowInExpenseClaims": spec.expense_claims,
        "BankAccountType": "BANK" if spec.type == "BANK" else "",
        "SystemAccount": spec.system,
        "ReportingCode": code,
        "ReportingCodeName": code_name,
        "HasAttachments": False,
        "AddToWatchlist": False,
        "UpdatedDateUTC": spec.updated,
    }
    if spec.type == "BANK":
        record["BankAccountNumber"] = spec.bank_number
        record["CurrencyCode"] = spec.currency
    return record


def _xero_tax_rate(spec: cat.TaxSpec) -> Record:
    return {
        "Name": spec.name,
        "TaxType": spec.tax_type,
        "ReportTaxType": spec.report,
        **cat.TAX_APPLIES[spec.kind],
        "DisplayTaxRate": spec.rate,
        "EffectiveRate": spec.rate,
        "Status": spec.status,
        "TaxComponents": [
            {
                "Name": spec.component,
                "Rate": spec.rate,
                "IsCompound": False,
                "IsNonRecoverable": False,
            }
        ],
    }


def _xero_contact(seed: int, org: str, spec: cat.ContactSpec, *twin: str) -> Record:
    # Contacts made in Xero's UI have no ContactNumber (an API-only key), so none here. ``twin``
    # tells apart the ids of contacts that share a name.
    record: Record = {
        "ContactID": _uuid5(seed, "contact", org, spec.name, *twin),
        "ContactStatus": "ACTIVE",
        "Name": spec.name,
    }
    if spec.first:
        record.update(FirstName=spec.first, LastName=spec.last)
    record.update(
        EmailAddress=spec.email,
        IsCustomer=spec.customer,
        IsSupplier=spec.supplier,
        DefaultCurrency=spec.currency,
        HasValidationErrors=False,
        UpdatedDateUTC=cat.CONTACTS_UPDATED,
    )
    return record


def _ambiguous_contacts(seed: int, org: str, member: _Member) -> list[Record]:
    """Two ACTIVE Xero contacts with the customer's exact name, no ContactNumber, each with an
    e-mail at its domain other than its billing e-mail (PLANTED ambiguous_contact_name)."""
    name = _contact_name(member.record)
    domain = str(member.record["BillingEmail"]).rpartition("@")[2]
    return [
        _xero_contact(
            seed,
            org,
            cat.ContactSpec(name, "", "", f"{box}@{domain}", True, False, member.biz.currency),
            box,
        )
        for box in cat.AMBIGUOUS_CONTACT_MAILBOXES
    ]


def _number_clash_invoice(
    seed: int, org_key: str, org: XeroOrgSeed, clash: _Inv, period: _Period
) -> Record:
    """An AUTHORISED sales invoice keyed by hand in Xero under the number of a Nexudus invoice,
    for another contact and amount, as the Xero books store one (PLANTED number_clash_invoice).

    Amounts as Xero computes them (xero-api.md §3.3): LineAmount = Quantity × UnitAmount,
    the line's tax rounded on its own, prices exclusive of tax.
    """
    number = clash.record["InvoiceNumber"]
    description, qty, unit, code, tax_type = cat.NUMBER_CLASH_LINE
    account = next(a for a in org.accounts if a["Code"] == code)
    rate = next(t for t in org.tax_rates if t["TaxType"] == tax_type)["EffectiveRate"]
    contact = next(c for c in org.contacts if c["Name"] == cat.NUMBER_CLASH_CONTACT)
    amount = round_cents(qty * unit)
    tax = round_cents(amount * rate / HUNDRED)
    day = max(clash.issued - timedelta(days=cat.NUMBER_CLASH_DAYS_BEFORE), period.start)
    return {
        "Type": "ACCREC",
        "InvoiceID": _uuid5(seed, "invoice", org_key, number),
        "InvoiceNumber": number,
        "Reference": "Event hire",
        "Payments": [],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "AmountPaid": CENTS0,
        "AmountCredited": CENTS0,
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "Status": "AUTHORISED",
        "SentToContact": True,
        "Contact": {"ContactID": contact["ContactID"]},
        "Date": day.isoformat(),
        "DueDate": (day + timedelta(days=DUE_DAYS)).isoformat(),
        "LineAmountTypes": "Exclusive",
        "CurrencyCode": org.organisation["BaseCurrency"],
        "CurrencyRate": Decimal("1.000000"),
        "LineItems": [
            {
                "LineItemID": _uuid5(seed, "invoice", org_key, number, "1"),
                "Description": description,
                "Quantity": qty.quantize(Decimal("0.0001")),
                "UnitAmount": unit,
                "AccountCode": code,
                "AccountID": account["AccountID"],
                "TaxType": tax_type,
                "TaxAmount": tax,
                "LineAmount": amount,
                "Tracking": [],
                "ValidationErrors": [],
            }
        ],
        "SubTotal": amount,
        "TotalTax": tax,
        "Total": amount + tax,
        "AmountDue": amount + tax,
    }


def _xero_apps(seed: int, tenants: dict[str, str]) -> list[XeroAppSeed]:
    # Xero client ids are 32 upper-case hex characters.
    return [
        XeroAppSeed(
            spec.name,
            uuid.uuid5(NAMESPACE, f"{seed}/app/{spec.key}").hex.upper(),
            spec.grant,
            [tenants[o] for o in spec.orgs],
            list(spec.redirect_uris),
        )
        for spec in cat.XERO_APPS
    ]


# --------------------------------------------------------------------------
# Nexudus side: working structures
# --------------------------------------------------------------------------


@dataclass(slots=True)
class _Member:
    """A coworker plus what the generator needs to bill them."""

    record: Record
    biz: cat.BusinessSpec
    address: tuple[str, str, str]  # street, city, postcode
    tax_id: str | None
    purchase_order: str | None
    plan: cat.Plan | None = None
    seats: int = 1
    discount: cat.Discount | None = None
    contract_uid: str | None = None
    is_new: bool = False  # joins in the first month: pays deposits on the first invoice
    planted: str | None = None


@dataclass(slots=True)
class _Line:
    product: cat.Product
    qty: int
    unit: Decimal  # in the location's currency; converted when the invoice is in another
    sale: date
    discount: cat.Discount | None = None
    link_uid: str | None = None  # set for contract lines (one contract across months)


@dataclass(slots=True)
class _Inv:
    """An invoice before it gets ids, number and amounts."""

    member: _Member
    issued: date
    secs: int
    period_from: date
    period_to: date
    month: int
    kind: str  # "plan" or "adhoc"
    lines: list[_Line]
    currency: str
    seq: int
    case: str | None = None
    draft: bool = False
    void: bool = False
    paid_on: tuple[date, int] | None = None
    credit_of: _Inv | None = None
    credited_by: _Inv | None = None
    xero_sent: bool = False  # already transferred by Nexudus' own Xero integration (§11)
    record: Record = field(default_factory=dict)  # the CoworkerInvoice, once built


# --------------------------------------------------------------------------
# Nexudus side: the generator
# --------------------------------------------------------------------------


class _Generator:
    """Builds the Nexudus side in order: catalogue, coworkers, invoices, plants, records."""

    def __init__(
        self,
        rng: random.Random,
        period: _Period,
        counts: dict[str, int],
        businesses: tuple[cat.BusinessSpec, ...],
        *,
        after: _Generator | None = None,
    ) -> None:
        """``counts``: invoices per business key. ``after``: a generator already run whose ids,
        currency and country ids and used names this one continues (the shared organisation's)."""
        self.rng, self.period = rng, period
        self.businesses = businesses
        self.after = after
        self.ids: _Ids = _Ids(rng) if after is None else _Ids(rng, after.ids.next_id)
        self.counts = dict(counts)
        self.business_ids: dict[str, int] = {}
        self.ref_ids: dict[str, int] = {}  # currency and country ids
        self.members: list[_Member] = []
        self.invs: list[_Inv] = []
        self.cases: dict[str, list[_Inv]] = {}
        self.lines: list[Record] = []
        self.spans: dict[int, tuple[int, int]] = {}  # invoice Id -> its slice of self.lines
        self.people = _UniqueNames(rng, len(cat.FIRST_NAMES) * len(cat.LAST_NAMES), len(_INITIALS))
        self.companies = _UniqueNames(
            rng, len(cat.COMPANY_PREFIXES) * len(cat.COMPANY_NOUNS), len(cat.COMPANY_QUALIFIERS)
        )
        if after is not None:
            self.people.used = set(after.people.used)
            self.companies.used = set(after.companies.used)
        # The planted cases (problem lines, awkward customers, void, credit note): at Shoreditch.
        self.plants = any(b.key == cat.SHOREDITCH.key for b in businesses)
        self._seq = 0
        self._numbers: Counter[tuple[str, int]] = Counter()  # invoice numbers per location and year
        self.local = {b.key: _LocalTime(cat.iana_zone(b.time_zone, b.country)) for b in businesses}
        self.april: dict[str, str] = {}  # location name -> its April 2026 period invoice
        self.ambiguous: _Member | None = None  # the customer Xero holds twice (ambiguous_customer)

    # ---- table of contents ----------------------------------------------
    def build(self) -> NexudusSeed:
        businesses, accounts, tax_rates = self._catalogue()
        for biz in self.businesses:
            self._bill_location(biz)
        if self.plants:
            self._plant_invoices()
        else:  # a new location's April invoice is numbered in date order with the rest
            for biz in self.businesses:
                if biz.key in cat.APRIL_PERIOD_LOCATIONS:
                    self._april_invoice(biz)
        self._choose_drafts()
        self._choose_paid()
        if self.plants:
            self._add_credit_note()
        invoices, lines = self._records()
        if self.plants:
            # Added after every other record, from the same stream: nothing above changes.
            invoices += self._shoreditch_extras()
        accounts += self._payment_accounts()
        if self.plants:
            # After every other record, the payment accounts' included: nothing above changes.
            invoices.append(self._add_refund_credit_note())
        for inv in self.invs:
            if inv.member.biz.key in cat.APRIL_PERIOD_LOCATIONS and inv.case == "april_period":
                self.april[inv.member.biz.name] = inv.record["InvoiceNumber"]
        return NexudusSeed(
            businesses=businesses,
            coworkers=[m.record for m in self.members],
            financial_accounts=accounts,
            tax_rates=tax_rates,
            invoices=invoices,
            invoice_lines=lines,
        )

    # ---- catalogue ------------------------------------------------------
    def _catalogue(self) -> tuple[list[Record], list[Record], list[Record]]:
        ids = self.ids
        businesses, accounts, tax_rates = [], [], []
        zone_ids = {z.name: z.id for z in cat.SIMPLE_TIME_ZONES}
        for biz in self.businesses:
            bid = self.business_ids[biz.key] = ids.id()
            # nexudus.md §7.4 Business: no "prices include tax" property (where that setting
            # lives in the API is open, §13). CurrencyId and CountryId are filled in below.
            businesses.append(
                {
                    "Id": bid,
                    "UniqueId": ids.uid(),
                    "Name": biz.name,
                    "CurrencyId": None,
                    "CurrencyCode": biz.currency,
                    "CountryId": None,
                    "CountryName": cat.COUNTRY_NAMES[biz.country],
                    "SimpleTimeZoneId": zone_ids[biz.time_zone],
                    "RootLocationId": None,
                }
            )
            accounts += [
                {
                    "Id": ids.id(),
                    "UniqueId": ids.uid(),
                    "Name": name,
                    "Code": code,
                    "BusinessId": bid,
                    "Description": None,
                    "AccountType": cat.DEPOSITS if code in cat.DEPOSIT_ACCOUNT_CODES else cat.SALES,
                }
                for code, name in cat.NEXUDUS_ACCOUNTS[biz.key].items()
            ]
            tax_rates += [
                {
                    "Id": ids.id(),
                    "UniqueId": ids.uid(),
                    "Name": name,
                    "Rate": rate,
                    "BusinessId": bid,
                    "ExemptionReason": cat.EXEMPTION_NONE,
                }
                for name, rate in cat.NEXUDUS_TAX_RATES[biz.key].items()
            ]
        # ASSUMPTION: Nexudus' own currency and country ids are not published; ours come
        # from the same counter so they stay unique too (one set for the whole dataset).
        if self.after is not None:
            self.ref_ids = dict(self.after.ref_ids)
        refs: tuple[str, ...] = ("GBP", "EUR", "USD", "GB", "IE")  # the first ones, in this order
        for biz in self.businesses:
            refs += (biz.currency, biz.country)
        for ref in refs:
            if ref not in self.ref_ids:
                self.ref_ids[ref] = ids.id()
        for record, biz in zip(businesses, self.businesses, strict=True):
            record["CurrencyId"] = self.ref_ids[biz.currency]
            record["CountryId"] = self.ref_ids[biz.country]
        return businesses, accounts, tax_rates

    def _payment_accounts(self) -> list[Record]:
        """Each location's Payments accounts (AccountType 2, nexudus.md §7.4, §11), made last."""
        return [
            {
                "Id": self.ids.id(),
                "UniqueId": self.ids.uid(),
                "Name": name,
                "Code": code,
                "BusinessId": self.business_ids[biz.key],
                "Description": None,
                "AccountType": cat.PAYMENTS,
            }
            for biz in self.businesses
            for code, name in cat.NEXUDUS_PAYMENT_ACCOUNTS[biz.key].items()
        ]

    # ---- coworkers ------------------------------------------------------
    def _new_member(
        self,
        biz: cat.BusinessSpec,
        *,
        company: bool,
        full_name: str | None = None,
        company_name: str | None = None,
        billing_name: str | None = None,
        email: str | None = None,
        billing_email: str | None = None,
        planted: str | None = None,
        active_chance: float = 0.9,
    ) -> _Member:
        rng = self.rng
        if full_name is None:
            full_name = _person_name(self.people.draw())
        domain = None
        if company and company_name is None:
            forms = cat.COMPANY_FORMS_BY_COUNTRY[biz.country]
            company_name, domain = _company_name(self.companies.draw(), forms)
        if email is None:
            person = _slug(full_name, ".")
            email = (
                f"{person}@{domain}"
                if domain
                else f"{person}@{rng.choice(cat.PERSONAL_MAIL_DOMAINS)}"
            )
        if billing_email is None:
            billing_email = f"accounts@{domain}" if domain else email
        if billing_name is None:
            billing_name = company_name if company else full_name
        created = self.period.start - timedelta(days=rng.randint(20, 1200))
        updated = created + timedelta(days=rng.randint(0, (self.period.start - created).days - 1))
        record = {
            "Id": self.ids.id(),
            "UniqueId": self.ids.uid(),
            "FullName": full_name,
            "CompanyName": company_name,
            "BillingName": billing_name,
            "BillingEmail": billing_email,
            "Email": email,
            # nexudus.md §7.4 Coworker: no BusinessId; the location that invoices them, and their
            # locations.
            "InvoicingBusinessId": self.business_ids[biz.key],
            "Businesses": [self.business_ids[biz.key]],
            "CoworkerType": "Company" if company else "Individual",
            "Active": planted is not None or rng.random() < active_chance,
            "CreatedOn": self.local[biz.key].at(created, rng.randint(28800, 64800)),
            "UpdatedOn": self.local[biz.key].at(updated, rng.randint(28800, 64800)),
        }
        street = f"{rng.randint(1, 180)} {rng.choice(cat.STREETS[biz.city])}"
        tax_id = None
        if company and rng.random() < 0.5:
            tax_id = _tax_id(rng, biz.country)
        record["TaxIDNumber"] = tax_id
        po = f"PO-{rng.randint(10000, 99999)}" if company and rng.random() < 0.2 else None
        member = _Member(
            record,
            biz,
            (street, biz.city, rng.choice(cat.POSTCODES[biz.city])),
            tax_id,
            po,
            planted=planted,
        )
        self.members.append(member)
        return member

    def _planted_members(self) -> list[tuple[_Member, int]]:
        """The awkward Shoreditch customers and how many invoices each gets."""
        sho = cat.SHOREDITCH
        name, company, email = cat.UNICODE_PERSON
        pairs = [
            (
                self._new_member(
                    sho,
                    company=True,
                    full_name=name,
                    company_name=company,
                    email=email,
                    billing_email="faktura@aero-design.example",
                    planted="unicode",
                ),
                2,
            ),
            (
                self._new_member(
                    sho,
                    company=True,
                    full_name=cat.LONG_COMPANY_PERSON,
                    company_name=cat.LONG_COMPANY,
                    email="rupert@honsoc-architects.example",
                    billing_email="accounts@honsoc-architects.example",
                    planted="long_name",
                ),
                2,
            ),
            # Blank, not missing: Nexudus keeps empty strings the user cleared.
            (
                self._new_member(
                    sho,
                    company=False,
                    full_name=cat.BLANK_BILLING_PERSON,
                    company_name="",
                    billing_name="",
                    email="priya.v@mail.example",
                    planted="blank_billing_name",
                ),
                2,
            ),
        ]
        for mail in cat.SAME_NAME_EMAILS:
            pairs.append(
                (
                    self._new_member(
                        sho,
                        company=False,
                        full_name=cat.SAME_NAME_PERSON,
                        email=mail,
                        planted="same_name",
                    ),
                    1,
                )
            )
        pairs.append(
            (
                self._new_member(
                    sho,
                    company=True,
                    full_name=cat.NAME_CLASH_PERSON,
                    company_name=cat.NAME_CLASH_COMPANY,
                    email="gemma@brightline-analytics.example",
                    billing_email="accounts@brightline-analytics.example",
                    planted="name_clash",
                ),
                2,
            )
        )
        return pairs

    # ---- invoices per location --------------------------------------------
    def _bill_location(self, biz: cat.BusinessSpec) -> None:
        rng, months = self.rng, self.period.months
        n = self.counts[biz.key]
        planted = self._planted_members() if biz.key == "SHO" else []
        reserved = sum(k for _, k in planted) + (1 if biz.key == "SHO" else 0)  # + the credit note
        n_members = int(n * PLAN_SHARE / months)
        n_ad_hoc = n - reserved - n_members * months
        plans = cat.PLANS[biz.key]
        weights = [p.weight for p in plans]
        members = []
        for _ in range(n_members):
            plan = rng.choices(plans, weights)[0]
            company = rng.random() < plan.company_share
            m = self._new_member(
                biz, company=company, active_chance=1.0
            )  # billed this period: active
            m.plan, m.contract_uid, m.is_new = plan, self.ids.uid(), rng.random() < 0.1
            m.seats = rng.randint(*plan.seats) if company else 1
            m.discount = rng.choice(cat.CONTRACT_DISCOUNTS) if rng.random() < 0.08 else None
            members.append(m)
        for month, (first, nxt) in enumerate(
            zip(self.period.month_starts, self.period.month_starts[1:], strict=False)
        ):
            for m in members:
                self._plan_invoice(m, month, first, nxt - timedelta(days=1))
        drop_ins = [
            self._new_member(biz, company=rng.random() < 0.3)
            for _ in range(max(3, round(n_ad_hoc / AD_HOC_PER_CUSTOMER)))
        ]
        for _ in range(n_ad_hoc):
            who = rng.choice(members) if members and rng.random() < 0.25 else rng.choice(drop_ins)
            self._ad_hoc_invoice(who)
        for member, count in planted:
            for _ in range(count):
                self._ad_hoc_invoice(member).case = "coworker"

    def _new_inv(
        self,
        member: _Member,
        issued: date,
        secs: int,
        frm: date,
        to: date,
        kind: str,
        lines: list[_Line],
    ) -> _Inv:
        month = self.period.month_of(issued)
        inv = _Inv(
            member, issued, secs, frm, to, month, kind, lines, member.biz.currency, self._seq
        )
        self._seq += 1
        self.invs.append(inv)
        return inv

    def _line(self, product: cat.Product, sale: date, *, discount_chance: float = 0.0) -> _Line:
        rng = self.rng
        unit = product.prices[0] if len(product.prices) == 1 else rng.choice(product.prices)
        qty = rng.randint(*product.qty) if product.qty[1] > 1 else 1
        discount = (
            rng.choice(cat.DISCOUNTS)
            if discount_chance and rng.random() < discount_chance
            else None
        )
        return _Line(product, qty, unit, sale, discount)

    def _plan_invoice(self, m: _Member, month: int, first: date, last: date) -> None:
        rng, key = self.rng, m.biz.key
        assert m.plan is not None
        plan = m.plan.product
        lines = [_Line(plan, m.seats, plan.prices[0], first, m.discount, m.contract_uid)]
        if m.is_new and month == 0:
            lines.append(_Line(cat.SECURITY_DEPOSIT[key], 1, plan.prices[0] * m.seats, first))
            lines.append(
                _Line(cat.KEY_DEPOSIT[key], min(m.seats, 4), cat.KEY_DEPOSIT[key].prices[0], first)
            )
        office = cat.OFFICE_EXTRA[key]
        if office and plan.account == "4010" and rng.random() < office[1]:
            lines.append(self._line(office[0], first))
        for product, chance in cat.EXTRAS[key]:
            if (
                len(lines) < MAX_LINES - 1 and rng.random() < chance
            ):  # leave room for a planted line
                # Usage extras are billed in arrears: sold during the month before.
                lines.append(
                    self._line(
                        product, first - timedelta(days=rng.randint(1, 28)), discount_chance=0.04
                    )
                )
        self._new_inv(m, first, 21600 + rng.randint(0, 1800), first, last, "plan", lines)

    def _ad_hoc_invoice(self, m: _Member) -> _Inv:
        rng = self.rng
        day = self.period.start + timedelta(
            days=rng.randrange((self.period.month_starts[-1] - self.period.start).days)
        )
        menu = cat.AD_HOC[m.biz.key]
        count = rng.choices((1, 2, 3), (60, 30, 10))[0]
        products = rng.choices([p for p, _ in menu], [w for _, w in menu], k=count)
        lines = [self._line(p, day, discount_chance=0.04) for p in products]
        return self._new_inv(m, day, rng.randint(28800, 68400), day, day, "adhoc", lines)

    # ---- planted invoices ---------------------------------------------------
    def _take(self, pool: list[_Inv], k: int, case: str) -> list[_Inv]:
        """Tag k untagged invoices of the pool with a case (drawn at random)."""
        free = [inv for inv in pool if inv.case is None]
        if len(free) < k:
            raise ValueError(f"not enough invoices to plant {case!r}; raise the invoice count")
        chosen = self.rng.sample(free, k)
        for inv in chosen:
            inv.case = case
        self.cases[case] = chosen
        return chosen

    def _plant_invoices(self) -> None:
        n = self.counts["SHO"]
        sho = [
            inv for inv in self.invs if inv.member.biz.key == "SHO" and inv.member.planted is None
        ]
        ad_hoc = [inv for inv in sho if inv.kind == "adhoc"]
        # Foreign currencies go to one-off customers (a visiting team billed at home rates).
        for inv in self._take(ad_hoc, max(3, round(n * EUR_SHARE)), "second_currency"):
            inv.currency = "EUR"
        self._take(ad_hoc, 1, "unsupported_currency")[0].currency = "USD"
        rounding = self._take(ad_hoc, 1, "rounding_difference")[0]
        rounding.lines = [
            _Line(cat.ROUNDING_LINE, 1, cat.ROUNDING_LINE.prices[0], rounding.issued)
            for _ in range(cat.ROUNDING_LINES)
        ]
        per_case = max(2, int(n * CASE_SHARE + 0.5))
        for case, product in cat.PLANTED_LINES.items():
            for inv in self._take(sho, per_case, case):
                self._append(inv, product)
        self._append(self._take(sho, 1, "no_account_line")[0], cat.NO_ACCOUNT_LINE)
        self._append(self._take(sho, 1, "zero_amount_line")[0], cat.ZERO_AMOUNT_LINE)
        self._take(sho, 1, "void")[0].void = True
        self._take(sho, 1, "credit_note_original")

    def _append(self, inv: _Inv, product: cat.Product) -> None:
        if len(inv.lines) >= MAX_LINES:
            inv.lines.pop()  # drop the last extra; index 0 (the plan line) stays
        inv.lines.append(self._line(product, inv.issued))

    def _choose_drafts(self) -> None:
        """A few invoices of the last month still waiting for a number (the next run, prepared)."""
        last_month = self.period.month_starts[-2]
        for biz in (b.key for b in self.businesses):
            pool = [
                i
                for i in self.invs
                if i.member.biz.key == biz and i.issued >= last_month and i.member.planted is None
            ]
            # Never more than the last month holds (a tiny location over many months may have few).
            k = min(max(DRAFT_LEAST[biz], round(self.counts[biz] * DRAFT_SHARE)), len(pool))
            for inv in self._take(pool, k, f"draft_{biz}"):
                inv.draft = True

    def _choose_paid(self) -> None:
        rng, months, last = self.rng, self.period.months, self.period.last
        for inv in self.invs:
            if inv.draft or inv.void or inv.case in ("credit_note_original", "april_period"):
                continue
            share = (
                0.3
                if months == 1
                else PAID_FIRST_MONTH
                - (PAID_FIRST_MONTH - PAID_LAST_MONTH) * inv.month / (months - 1)
            )
            if rng.random() < share:
                day = min(inv.issued + timedelta(days=rng.randint(0, 21)), last)
                # Paid on the day it was issued means after it was issued.
                low = 28800 if day > inv.issued else min(inv.secs + 300, 86399)
                inv.paid_on = (day, rng.randint(low, max(low, 72000)))

    def _add_credit_note(self) -> None:
        """Reverse one clean, unpaid invoice a few days later (it takes the reserved slot)."""
        orig = self.cases["credit_note_original"][0]
        issued = min(orig.issued + timedelta(days=3), self.period.last)
        secs = orig.secs + 600 if issued == orig.issued else orig.secs
        note = self._new_inv(
            orig.member, issued, secs, orig.period_from, orig.period_to, orig.kind, orig.lines
        )
        note.case, note.credit_of, note.currency = "credit_note", orig, orig.currency
        orig.credited_by = note
        self.cases["credit_note"] = [note]

    def _add_refund_credit_note(self) -> Record:
        """Cancel in full the first Shoreditch one-off invoice paid in Nexudus (any invoice if
        none), a few days after its payment (PLANTED credit_note_larger_than_due: its credit
        exceeds what the original has left due, nothing). Its number follows every other
        Shoreditch number."""
        gap = timedelta(days=cat.REFUND_CREDIT_DAYS_AFTER_PAYMENT)
        paid = [
            (i.kind != "adhoc", pos)
            for pos, i in enumerate(self.invs)
            if i.member.biz is cat.SHOREDITCH
            and i.member.planted is None
            and i.case is None
            and i.currency == cat.SHOREDITCH.currency
            and i.credited_by is None
            and i.paid_on is not None
            and i.paid_on[0] + gap <= self.period.last
        ]
        if not paid:
            raise ValueError("no paid invoice to plant 'credit_note_larger_than_due'")
        orig = self.invs[min(paid)[-1]]
        assert orig.paid_on is not None
        day, secs = orig.paid_on
        note = self._new_inv(
            orig.member, day + gap, secs, orig.period_from, orig.period_to, orig.kind, orig.lines
        )
        note.case, note.credit_of, note.currency = (
            "credit_note_larger_than_due",
            orig,
            orig.currency,
        )
        orig.credited_by = note
        self.cases[note.case] = [note]
        record = self._record(note)
        # The original, paid in full, learns it was credited (nexudus_desk's cancel does the same).
        orig.record["CreditedAmount"] = -record["TotalAmount"]
        orig.record["UpdatedOn"] = record["CreatedOn"]
        return record

    # ---- what Xero UK holds already (chosen after build) ------------------------
    def ambiguous_customer(self, org: XeroOrgSeed) -> _Member:
        """The Shoreditch customer whom Xero will hold twice (PLANTED ambiguous_contact_name):
        one whose invoices are all clean, none the first clean one nor credited; preferably a
        one-off company customer with two unpaid invoices, then the first by coworker Id."""
        clean = self._clean(cat.SHOREDITCH, org)
        ok, first = set(clean), clean[0]
        invoices: dict[int, list[_Inv]] = {}
        for inv in self.invs:
            if inv.record.get("InvoiceNumber"):
                invoices.setdefault(inv.member.record["Id"], []).append(inv)

        def fits(m: _Member) -> bool:
            mine = invoices.get(m.record["Id"], [])
            return bool(mine) and all(
                i.record["InvoiceNumber"] in ok
                and i.record["InvoiceNumber"] != first
                and i.credited_by is None
                for i in mine
            )

        def rank(m: _Member) -> tuple[bool, bool, bool, bool, int]:
            mine = invoices[m.record["Id"]]
            return (
                m.plan is not None,
                m.record["CoworkerType"] != "Company",
                len(mine) != 2,
                any(i.paid_on is not None for i in mine),
                m.record["Id"],
            )

        candidates = [
            m for m in self.members if m.biz is cat.SHOREDITCH and m.planted is None and fits(m)
        ]
        if not candidates:
            raise ValueError("no customer to plant 'ambiguous_contact_name'; raise the invoices")
        self.ambiguous = min(candidates, key=rank)
        return self.ambiguous

    def number_clash(self, org: XeroOrgSeed) -> _Inv:
        """The Shoreditch invoice whose number Xero UK already gives another invoice (PLANTED
        number_clash_invoice): a clean invoice, not the first clean one nor credited; preferably
        an unpaid one-off invoice of the period's second month (the first if it has one), then
        the earliest."""
        clean = self._clean(cat.SHOREDITCH, org)
        ok, first = set(clean), clean[0]
        month = min(1, self.period.months - 1)
        candidates = [
            (i.month != month, i.kind != "adhoc", i.paid_on is not None, pos)
            for pos, i in enumerate(self.invs)
            if i.record.get("InvoiceNumber") in ok
            and i.record["InvoiceNumber"] != first
            and i.credited_by is None
        ]
        if not candidates:
            raise ValueError("no invoice to plant 'number_clash_invoice'; raise the invoices")
        return self.invs[min(candidates)[-1]]

    # ---- records --------------------------------------------------------------
    def _records(self) -> tuple[list[Record], list[Record]]:
        """Give ids and numbers in date order, and compute every amount."""
        order = {b.key: i for i, b in enumerate(self.businesses)}
        self.invs.sort(key=lambda i: (i.issued, i.secs, order[i.member.biz.key], i.seq))
        invoices = [self._record(inv) for inv in self.invs]
        lines = self.lines
        for inv in self.invs:  # the original learns it was credited once the note has amounts
            if inv.credited_by is not None:
                inv.record["CreditedAmount"] = -inv.credited_by.record["TotalAmount"]
                inv.record["UpdatedOn"] = inv.credited_by.record["CreatedOn"]
        return invoices, lines

    def _record(self, inv: _Inv) -> Record:
        """Number (unless a draft), ids, lines and amounts of one invoice, in ``inv.record``."""
        number = None
        if not inv.draft:
            # Per-location prefix: Xero refuses two invoices with one reference.
            key = (inv.member.biz.key, inv.issued.year)
            self._numbers[key] += 1
            number = f"{key[0]}-{key[1]}-{self._numbers[key]:05d}"
        first = len(self.lines)
        inv.record.update(self._invoice_record(inv, number, self.lines))
        self.spans[inv.record["Id"]] = (first, len(self.lines))
        return inv.record

    # ---- additions after the first records --------------------------------------
    def _april_invoice(self, biz: cat.BusinessSpec) -> _Inv:
        """A member's monthly invoice for local 1–30 April 2026, issued at local 01:30 on 1 April.

        PLANTED april_period (nexudus.md §6): its period dates read as local midnights in UTC.
        """
        frm, to, secs = cat.APRIL_PERIOD
        first, last = date(*frm), date(*to)
        members = [m for m in self.members if m.biz is biz and m.plan and m.planted is None]
        m = self.rng.choice(members)
        assert m.plan is not None
        plan = m.plan.product
        lines = [_Line(plan, m.seats, plan.prices[0], first, m.discount, m.contract_uid)]
        inv = self._new_inv(m, first, secs, first, last, "plan", lines)
        inv.case = "april_period"
        return inv

    def _shoreditch_extras(self) -> list[Record]:
        """Shoreditch invoices added after all the others (so none of theirs changes).

        Their numbers continue Shoreditch's sequence (SHO-2026-00327 on), so the
        April invoice's number is out of date order.

        Each is a clean one-off invoice, plus: a line whose tax rate is not a TaxRate
        record (``[No Tax]``, the default rate, a personal rate; nexudus.md §7.2), or
        the flag of Nexudus' own Xero transfer (§11), or, for the April period
        invoice, nothing but its dates (§6).
        """
        sho = cat.SHOREDITCH
        drop_ins = [m for m in self.members if m.biz is sho and not m.plan and m.planted is None]
        added: list[_Inv] = []
        for case, (product, count) in cat.LINE_ONLY_TAX_LINES.items():
            chosen = []
            for _ in range(count):
                inv = self._ad_hoc_invoice(self.rng.choice(drop_ins))
                self._append(inv, product)
                inv.case = case
                chosen.append(inv)
            self.cases[case] = chosen
            added += chosen
        sent = []
        for _ in range(cat.ALREADY_SENT_INVOICES):
            inv = self._ad_hoc_invoice(self.rng.choice(drop_ins))
            inv.case, inv.xero_sent = "already_sent_by_nexudus", True
            sent.append(inv)
        self.cases["already_sent_by_nexudus"] = sent
        added += sent
        added.append(self._april_invoice(sho))
        return [self._record(inv) for inv in added]

    def _invoice_record(self, inv: _Inv, number: str | None, out: list[Record]) -> Record:
        ids, biz = self.ids, inv.member.biz
        inv_id = ids.id()
        first_line = len(out)
        local = self.local[biz.key]
        accounts = cat.NEXUDUS_ACCOUNTS[biz.key]
        inclusive = biz.prices_include_tax
        sign = -1 if inv.credit_of is not None else 1
        fx = None if inv.currency == biz.currency else cat.FX_FROM_GBP[inv.currency]
        tax_total = total = discount_total = net_total = CENTS0
        for pos, line in enumerate(inv.lines, 1):
            unit = line.unit if fx is None else round_cents(line.unit * fx)
            gross = unit * line.qty
            discount = CENTS0
            if line.discount is not None and gross:
                d = line.discount
                if d.percent is not None:
                    discount = round_cents(gross * d.percent / HUNDRED)
                elif d.amount is not None:
                    discount = min(d.amount, gross)
            if sign < 0:
                # ASSUMPTION: a Nexudus credit note carries negative prices and amounts
                # (quantities stay positive); the public docs do not show one.
                unit, gross, discount = -unit, -gross, -discount
            sub = gross - discount
            rate = cat.line_tax_rate(biz.key, line.product.tax)
            if inclusive:
                tax = round_cents(sub * rate / (HUNDRED + rate))
            else:
                tax = round_cents(sub * rate / HUNDRED)
            sub, tax, discount = sub or CENTS0, tax or CENTS0, discount or CENTS0  # no -0.00
            tax_total += tax
            net_total += sub
            discount_total += discount
            total += sub if inclusive else sub + tax
            code = line.product.account
            out.append(
                {
                    "Id": ids.id(),
                    "UniqueId": ids.uid(),
                    "CoworkerInvoiceId": inv_id,
                    # The invoice's echoes (nexudus.md §7.2), filled in once it has them.
                    **dict.fromkeys(LINE_ECHOES),
                    "Description": line.product.description,
                    "Quantity": line.qty,
                    # nexudus.md §7.2: UnitPrice "appears in real output though not in the docs'
                    # list" (FW): the price per unit before discount, so that
                    # SubTotal = Quantity * UnitPrice - DiscountAmount.
                    "UnitPrice": unit,
                    "SubTotal": sub,
                    "TaxAmount": tax,
                    "TaxRate": rate,
                    "TaxCategoryName": line.product.tax,
                    "FinancialAccountCode": code,
                    "FinancialAccountName": accounts[code] if code else None,
                    "DiscountAmount": discount,
                    "DiscountCode": line.discount.code if line.discount else None,
                    "Position": pos,
                    "Refunded": False,
                    "RefundedAmount": CENTS0,
                    "SaleDate": local.midnight(line.sale),
                    "TariffName": line.product.tariff,
                    **{f: None for f in cat.LINK_FIELDS},
                    line.product.link: line.link_uid or ids.uid(),
                    "CreatedOn": None,
                    "UpdatedOn": None,
                }
            )
        if inv.case == "rounding_difference":
            # PLANTED: this invoice's header tax was computed on the invoice total, not per line.
            rate = cat.line_tax_rate(biz.key, inv.lines[0].product.tax)
            tax_total = round_cents(net_total * rate / HUNDRED)
            total = net_total + tax_total
        header = self._header(inv, inv_id, number, tax_total, total, discount_total)
        echoes = {echo: header[source] for echo, source in LINE_ECHOES.items()}
        for ln in out[first_line:]:
            ln.update(echoes)
            # ASSUMPTION: a line is created with its invoice and not touched since.
            ln["CreatedOn"] = ln["UpdatedOn"] = header["CreatedOn"]
        return header

    def _header(
        self,
        inv: _Inv,
        inv_id: int,
        number: str | None,
        tax: Decimal,
        total: Decimal,
        discount: Decimal,
    ) -> Record:
        m, biz, rec = inv.member, inv.member.biz, inv.member.record
        local = self.local[biz.key]
        # Real instants: the local wall-clock time in UTC (nexudus.md §6).
        created = local.at(inv.issued, inv.secs)
        paid = inv.paid_on is not None
        paid_on = local.at(*inv.paid_on) if inv.paid_on else None
        sent_on = None if inv.draft else local.at(inv.issued, min(inv.secs + 120, 86399))
        updated = paid_on or sent_on or created
        if inv.void:
            voided = min(inv.issued + timedelta(days=2), self.period.last)
            updated = local.at(
                voided, 43200 if voided > inv.issued else min(inv.secs + 3600, 86399)
            )
        paid_amount = total if paid else CENTS0
        due_amount, is_due = due_fields(total, paid_amount)
        if inv.credit_of is not None:
            description = f"Credit note for {inv.credit_of.record['InvoiceNumber']}"
        elif inv.kind == "plan":
            description = f"Membership {inv.period_from:%B %Y}"
        else:
            description = f"Bookings and passes {inv.issued.day} {inv.issued:%b %Y}"
        return {
            "Id": inv_id,
            "UniqueId": self.ids.uid(),
            "InvoiceNumber": number,
            "BusinessId": self.business_ids[biz.key],
            "BusinessName": biz.name,
            "CoworkerId": rec["Id"],
            "CoworkerFullName": rec["FullName"],
            "CoworkerCompanyName": rec["CompanyName"],
            "CoworkerBillingEmail": rec["BillingEmail"],
            "BillToName": rec["BillingName"],
            "BillToAddress": m.address[0],
            "BillToCity": m.address[1],
            "BillToPostCode": m.address[2],
            "BillToState": None,
            "BillToCountryId": self.ref_ids[biz.country],
            "BillToTaxIDNumber": m.tax_id,
            "PurchaseOrder": m.purchase_order,
            "PaymentReference": number,
            "Description": description,
            "DiscountAmount": discount,
            # Date-like fields: the UTC instant of the local midnight (nexudus.md §6).
            "DueDate": local.midnight(inv.issued + timedelta(days=DUE_DAYS)),
            "InvoiceFromDate": local.midnight(inv.period_from),
            "InvoiceToDate": local.midnight(inv.period_to),
            "TotalAmount": total,
            "TaxAmount": tax,
            "PaidAmount": paid_amount,
            "DueAmount": due_amount,
            "IsDue": is_due,
            "CreditedAmount": CENTS0,
            "ReceivedAmount": paid_amount,
            "CurrencyId": self.ref_ids[inv.currency],
            "CurrencyCode": inv.currency,
            "TransactionCurrencyId": self.ref_ids[inv.currency],
            "TransactionCurrencyCode": inv.currency,
            "TransactionExchangeRate": EXCHANGE_RATE_ONE,
            "Draft": inv.draft,
            "Void": inv.void,
            "WaitingForInvoiceNumber": inv.draft,
            "Paid": paid,
            "PaidOn": paid_on,
            "Sent": not inv.draft,
            "SentOn": sent_on,
            "Refunded": False,
            "RefundedOn": None,
            "RefundedAmount": CENTS0,
            "CreditNote": inv.credit_of is not None,
            "OriginalInvoiceGuid": inv.credit_of.record["UniqueId"] if inv.credit_of else None,
            "CustomData": None,
            # Nexudus' own integration's state (nexudus.md §11).
            "XeroInvoiceTransfered": inv.xero_sent,
            "XeroPaymentTransfered": False,
            "QuickbooksInvoiceTransfered": False,
            "QuickbooksPaymentTransfered": False,
            "AutoTransferToXeroOrQuickBooks": biz.auto_transfer,
            "StorecoveInvoiceStatus": None,
            "DoNotApplyCreditAutomatically": False,
            "CreatedOn": created,
            "UpdatedOn": updated,
            "SystemId": None,
        }

    # ---- planted index ------------------------------------------------------
    def planted(self, orgs: dict[str, XeroOrgSeed]) -> dict[str, Any]:
        """What identifies each planted case: codes, names, invoice numbers, coworker ids."""

        def numbers(case: str) -> list[str]:
            return sorted(i.record["InvoiceNumber"] for i in self.cases[case])

        by_member: dict[
            str, list[str]
        ] = {}  # planted coworker kind -> invoice numbers, in date order
        for inv in self.invs:
            if inv.member.planted:
                by_member.setdefault(inv.member.planted, []).append(inv.record["InvoiceNumber"])
        members = {
            m.planted: m.record["Id"]
            for m in self.members
            if m.planted and m.planted != "same_name"
        }

        def line_id(case: str, product: cat.Product) -> int:
            return int(
                next(
                    ln["Id"]
                    for ln in self._lines_of(self.cases[case][0])
                    if ln["Description"] == product.description
                )
            )

        (refunded,) = (i.credit_of for i in self.cases["credit_note_larger_than_due"])
        assert refunded is not None
        planted: dict[str, Any] = {
            "period_start": self.period.start.isoformat(),
            "period_end": self.period.last.isoformat(),
            "matching_accounts": ["4000", "4010", "4040"],
            "missing_account": "4050",
            "missing_account_suggestions": ["4500", "4060"],
            "archived_account": "4030",
            "name_differs_account": "4020",
            "not_revenue_account": "5100",
            "deposit_account": "2300",
            "matching_tax_rates": {cat.VAT20: "OUTPUT2", cat.VAT5: "RROUTPUT", cat.NO_VAT: "NONE"},
            "percentage_differs_tax": "Hospitality VAT",
            "percentage_differs_tax_type": "TAX001",
            "ambiguous_tax": "Zero rate",
            "archived_tax": "Old Standard 17.5%",
            "archived_tax_type": "TAX002",
            "tax_not_allowed_on_account": "20% (VAT on Expenses)",
            "missing_tax": "Tourist Tax",
        }
        for case in cat.PLANTED_LINES:
            planted[f"{case}_invoices"] = numbers(case)
        planted.update(
            {
                "no_account_line": numbers("no_account_line")[0],
                "no_account_line_id": line_id("no_account_line", cat.NO_ACCOUNT_LINE),
                "zero_amount_line": numbers("zero_amount_line")[0],
                "zero_amount_line_id": line_id("zero_amount_line", cat.ZERO_AMOUNT_LINE),
                "void_invoice": numbers("void")[0],
                "credit_note": numbers("credit_note")[0],
                "credit_note_original": numbers("credit_note_original")[0],
                "credit_note_with_original": (
                    numbers("credit_note")[0],
                    numbers("credit_note_original")[0],
                ),
                "credit_note_larger_than_due": (
                    numbers("credit_note_larger_than_due")[0],
                    refunded.record["InvoiceNumber"],
                ),
                "second_currency_invoices": numbers("second_currency"),
                "unsupported_currency_invoice": numbers("unsupported_currency")[0],
                "rounding_difference_invoice": numbers("rounding_difference")[0],
                # Nexudus TotalAmount (tax on the total) minus the per-line total Xero computes.
                "rounding_difference": Decimal("-0.01"),
                "unicode_coworker": members["unicode"],
                "unicode_invoice": by_member["unicode"][0],
                "long_name_coworker": members["long_name"],
                "long_name_invoice": by_member["long_name"][0],
                "blank_billing_name_coworker": members["blank_billing_name"],
                "blank_billing_name_invoice": by_member["blank_billing_name"][0],
                "same_name_coworkers": [
                    m.record["Id"] for m in self.members if m.planted == "same_name"
                ],
                "same_name_invoices": by_member["same_name"],
                "name_clash_contact": cat.NAME_CLASH_COMPANY,
                "name_clash_coworker": members["name_clash"],
                "name_clash_invoices": by_member["name_clash"],
                "tax_inclusive_invoices": [
                    i.record["InvoiceNumber"]
                    for i in self.invs
                    if i.member.biz.key == "DUB" and not i.draft
                ],
                # Drafts have no number yet, so they are listed by Id.
                "draft_invoices": [i.record["Id"] for i in self.invs if i.draft],
                "paid_in_nexudus_invoices": [
                    i.record["InvoiceNumber"] for i in self.invs if i.paid_on is not None
                ],
            }
        )
        for case in cat.LINE_ONLY_TAX_LINES:
            planted[f"{case}_invoices"] = numbers(case)
            product = cat.LINE_ONLY_TAX_LINES[case][0]
            planted[f"{case}_line_ids"] = sorted(
                ln["Id"]
                for inv in self.cases[case]
                for ln in self._lines_of(inv)
                if ln["TaxCategoryName"] == product.tax
            )
        sho_accounts = cat.NEXUDUS_PAYMENT_ACCOUNTS[cat.SHOREDITCH.key]
        planted.update(
            {
                "no_tax_name": cat.NO_TAX,
                "default_tax_rate_name": cat.DEFAULT_TAX_RATE,
                "personal_tax_rate_name": cat.PERSONAL_TAX_RATE,
                "payments_account": "090",
                "missing_payments_account": "094",
                "missing_payments_account_name": sho_accounts["094"],
                "already_sent_by_nexudus": numbers("already_sent_by_nexudus"),
            }
        )
        planted.update(self._planted_xero_uk(orgs[cat.SHOREDITCH.org]))
        planted["clean_invoices"] = self._clean(cat.SHOREDITCH, orgs[cat.SHOREDITCH.org])
        planted["clean_invoices_dublin"] = self._clean(cat.DUBLIN, orgs[cat.DUBLIN.org])
        return planted

    def _planted_xero_uk(self, uk: XeroOrgSeed) -> dict[str, Any]:
        """What Xero UK holds already: the name-clash contact's id, the customer held twice, and
        the invoice keyed by hand under one of Shoreditch's numbers."""
        assert self.ambiguous is not None
        (same_name,) = (c for c in uk.contacts if c["Name"] == cat.NAME_CLASH_COMPANY)
        name = _contact_name(self.ambiguous.record)
        (clash,) = uk.invoices
        contacts = {c["ContactID"]: c for c in uk.contacts}
        return {
            "same_name_contact_id": same_name["ContactID"],
            "ambiguous_contact_name": name,
            "ambiguous_contact_ids": sorted(
                c["ContactID"] for c in uk.contacts if c["Name"] == name
            ),
            "ambiguous_contact_invoices": [
                i.record["InvoiceNumber"]
                for i in self.invs
                if i.member is self.ambiguous and i.record.get("InvoiceNumber")
            ],
            "number_clash_invoice": clash["InvoiceNumber"],
            "number_clash_xero_contact": contacts[clash["Contact"]["ContactID"]]["Name"],
            "number_clash_xero_total": clash["Total"],
        }

    def planted_lock(self, orgs: dict[str, XeroOrgSeed]) -> dict[str, Any]:
        """The lock-date keys, when one of this generator's locations books into the organisation
        whose PeriodLockDate is set; else nothing."""
        for biz in self.businesses:
            org = orgs[biz.org]
            if org.organisation.get("PeriodLockDate"):
                lock = date.fromisoformat(org.organisation["PeriodLockDate"])
                return {
                    "period_lock_date": lock.isoformat(),
                    "period_lock_org": org.organisation["Name"],
                    "period_lock_location": biz.name,
                    "locked_invoices": sorted(
                        inv.record["InvoiceNumber"]
                        for inv in self._final_in_period(biz)
                        if _xero_day(inv) <= lock
                    ),
                }
        return {}

    def _final_in_period(self, biz: cat.BusinessSpec) -> list[_Inv]:
        """The location's numbered invoices (not draft, void or credit note) created in the
        period's local days (nexudus.md §6), in date order."""
        local = self.local[biz.key]
        first, last = local.midnight(self.period.start), local.at(self.period.last, 86399)
        return [
            inv
            for inv in self.invs
            if inv.member.biz is biz
            and inv.record["InvoiceNumber"]
            and not (inv.draft or inv.void or inv.credit_of is not None)
            and first <= inv.record["CreatedOn"] <= last
        ]

    def planted_shared(self, orgs: dict[str, XeroOrgSeed]) -> dict[str, Any]:
        """The shared organisation's keys: locations, category, clean, draft and paid invoices."""
        planted: dict[str, Any] = {
            "shared_org_locations": [self.business_ids[b.key] for b in self.businesses],
            "tracking_category": cat.LOCATION_CATEGORY,
            "archived_tracking_option": cat.ARCHIVED_TRACKING_OPTION,
            "archived_tracking_category": cat.ARCHIVED_TRACKING_CATEGORY,
            "shared_org_draft_invoices": [i.record["Id"] for i in self.invs if i.draft],
            "shared_org_paid_in_nexudus_invoices": [
                i.record["InvoiceNumber"] for i in self.invs if i.paid_on is not None
            ],
        }
        for biz in self.businesses:
            planted[f"clean_invoices_{biz.city.lower()}"] = self._clean(biz, orgs[biz.org])
        (auto,) = (self.business_ids[b.key] for b in self.businesses if b.auto_transfer)
        planted["auto_transfer_location"] = auto
        return planted

    def planted_overseas(self, orgs: dict[str, XeroOrgSeed]) -> dict[str, Any]:
        """Singapore's and New York's keys: the locations, their clean and paid invoices."""
        planted: dict[str, Any] = {
            "overseas_locations": [self.business_ids[b.key] for b in self.businesses],
            "overseas_paid_in_nexudus_invoices": [
                i.record["InvoiceNumber"] for i in self.invs if i.paid_on is not None
            ],
        }
        for biz in self.businesses:
            key = biz.city.lower().replace(" ", "_")
            planted[f"clean_invoices_{key}"] = self._clean(biz, orgs[biz.org])
        return planted

    def _lines_of(self, inv: _Inv) -> list[Record]:
        start, end = self.spans[inv.record["Id"]]
        return self.lines[start:end]

    def _clean(self, biz: cat.BusinessSpec, org: XeroOrgSeed) -> list[str]:
        """Invoices of the period that transfer with no finding, judged from the data alone.

        Clean: final (numbered, not draft, void or credit note), not already sent
        by Nexudus' own integration (nexudus.md §11), created in the period's local
        days, in a currency the organisation has, under a number no invoice in Xero
        has (xero-api.md §3.1), dated after the organisation's lock dates (§13),
        header equal to its lines, a customer name Xero accepts that no other
        customer or Xero contact shares, and every line mapped exactly: account
        code and name equal, ACTIVE, revenue (or the deposit liability), and a tax
        rate of the same name and percentage, ACTIVE and allowed on that account's
        class.
        """
        business_id = self.business_ids[biz.key]
        # Contact names are unique per organisation: count every location that shares it.
        names = Counter(
            _contact_name(m.record).casefold() for m in self.members if m.biz.org == biz.org
        )
        names.update(c["Name"].casefold() for c in org.contacts)
        taken = {i["InvoiceNumber"] for i in org.invoices}  # numbers Xero already uses (§3.1)
        lock = _lock_date(org)
        currencies = {c["Code"] for c in org.currencies}
        line_ok = _line_checker(org)
        # The period's local days, as UTC instants (nexudus.md §6).
        local = self.local[biz.key]
        first, last = local.midnight(self.period.start), local.at(self.period.last, 86399)
        clean = []
        for inv in self.invs:
            rec = inv.record
            if (
                rec["BusinessId"] != business_id
                or rec["XeroInvoiceTransfered"]  # Nexudus already sent it (§11): skipped
                or rec["Draft"]
                or rec["Void"]
                or rec["CreditNote"]
                or not rec["InvoiceNumber"]
                or not first <= rec["CreatedOn"] <= last
                or rec["CurrencyCode"] not in currencies
                or rec["InvoiceNumber"] in taken
                or (lock is not None and _xero_day(inv) <= lock)
            ):
                continue
            name = _contact_name(inv.member.record)
            if not name or len(name) > 255 or names[name.casefold()] != 1:
                continue
            lines = self._lines_of(inv)
            tax = sum((ln["TaxAmount"] for ln in lines), CENTS0)
            net = sum((ln["SubTotal"] for ln in lines), CENTS0)
            if rec["TaxAmount"] != tax or rec["TotalAmount"] != (
                net if biz.prices_include_tax else net + tax
            ):
                continue
            if all(line_ok(ln) for ln in lines):
                clean.append(rec["InvoiceNumber"])
        return clean


def _tax_id(rng: random.Random, country: str) -> str:
    """A company's tax number in its country's shape (GB VAT, IE VAT, SG UEN, US EIN)."""
    if country == "GB":
        return f"GB{rng.randint(100000000, 999999999)}"
    if country == "IE":
        return f"IE{rng.randint(1000000, 9999999)}{rng.choice('ABCDEFGHW')}"
    if country == "SG":
        return f"{rng.randint(2010, 2025)}{rng.randint(10000, 99999)}{rng.choice('CDEGKMNRWZ')}"
    return f"{rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}"


def _xero_day(inv: _Inv) -> date:
    """The earlier of the invoice's two possible Xero dates: its local issue date and its
    period's first day (recon may send either)."""
    return min(inv.issued, inv.period_from)


def _lock_date(org: XeroOrgSeed) -> date | None:
    """The organisation's latest lock date (PeriodLockDate, EndOfYearLockDate), if any: Xero
    refuses approved documents dated on or before it (xero-api.md §13)."""
    dates = [
        date.fromisoformat(str(org.organisation[k]))
        for k in ("PeriodLockDate", "EndOfYearLockDate")
        if org.organisation.get(k)
    ]
    return max(dates, default=None)


def _contact_name(rec: Record) -> str:
    return (rec["BillingName"] or rec["CompanyName"] or rec["FullName"] or "").strip()


def _line_checker(org: XeroOrgSeed) -> Callable[[Record], bool]:
    """Whether one Nexudus line maps exactly onto the organisation's chart and tax rates."""
    accounts = {a["Code"]: a for a in org.accounts}
    taxes = {t["Name"]: t for t in org.tax_rates}
    seen: dict[tuple[Any, ...], bool] = {}

    def ok(line: Record) -> bool:
        key = (
            line["FinancialAccountCode"],
            line["FinancialAccountName"],
            line["TaxCategoryName"],
            line["TaxRate"],
        )
        hit = seen.get(key)
        if hit is None:
            acc = accounts.get(key[0] or "")
            tax = taxes.get(key[2])
            hit = seen[key] = bool(
                acc
                and tax
                and acc["Name"] == key[1]
                and acc["Status"] == "ACTIVE"
                and acc["Type"] != "BANK"
                and not acc["SystemAccount"]
                and (acc["Class"] == "REVENUE" or acc["Code"] in DEPOSIT_ACCOUNTS)
                and tax["Status"] == "ACTIVE"
                and tax["EffectiveRate"] == key[3]
                and tax[TAX_FLAG[acc["Class"]]]
            )
        return hit

    return ok
