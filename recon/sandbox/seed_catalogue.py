"""Fixed catalogue behind the demo data: locations, products, charts, tax rates, names.

Pure constants for ``recon.sandbox.seed``; nothing here is random. The
planted mismatches between the Nexudus and Xero sides live in these tables
(each marked ``PLANTED``), so a reader can see every case in one place.
Imports only the standard library (floor 0, like the rest of the sandbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

# --------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessSpec:
    """One Nexudus location and the Xero organisation it transfers to."""

    key: str  # also the invoice-number prefix: per-location, so Xero references never collide
    name: str
    currency: str
    # The location's "prices typed in the back-end include tax" setting. Nexudus' Business record
    # has no such field (nexudus.md §7.4): it only decides how the generator computes amounts.
    prices_include_tax: bool
    country: str
    time_zone: str  # the Windows-style name of its SimpleTimeZone (nexudus.md §6)
    city: str
    org: str  # key into XERO_ORGS
    share: Decimal  # of the ``invoices`` argument (see BUSINESSES and SHARED_ORG_BUSINESSES)
    # (tracking category, option) telling this location apart inside a shared organisation;
    # None for a location with an organisation of its own.
    tracking: tuple[str, str] | None = None
    # Nexudus' own automatic transfer to Xero is on for this location (nexudus.md §11): every
    # invoice carries AutoTransferToXeroOrQuickBooks true.
    auto_transfer: bool = False


SHOREDITCH: Final = BusinessSpec(
    "SHO",
    "Hive Shoreditch",
    "GBP",
    False,
    "GB",
    "GMT Standard Time",
    "London",
    "UK",
    Decimal("0.825"),
)
DUBLIN: Final = BusinessSpec(
    "DUB",
    "Hive Dublin Docklands",
    "EUR",
    True,
    "IE",
    "GMT Standard Time",
    "Dublin",
    "IE",
    Decimal("0.175"),
)
# The two locations with an organisation each; their shares add up to 1: ``invoices``
# is exactly their invoice count.
BUSINESSES: Final = (SHOREDITCH, DUBLIN)

# Nexudus' other set-up (nexudus.md §3, help.nexudus.com "setting up tracking categories in
# Xero"): several locations in ONE organisation, told apart by one option per location of a
# tracking category named Location. Generated after the two above from a random stream of
# their own, so adding them changed nothing of Shoreditch's or Dublin's data. Their shares are
# on top of ``invoices`` (a quarter more invoices in all).
LOCATION_CATEGORY: Final = "Location"
MANCHESTER: Final = BusinessSpec(
    "MAN",
    "Hive Manchester Ancoats",
    "GBP",
    False,
    "GB",
    "GMT Standard Time",
    "Manchester",
    "NORTH",
    Decimal("0.15"),
    (LOCATION_CATEGORY, "Manchester"),
)
LEEDS: Final = BusinessSpec(
    "LEE",
    "Hive Leeds Wellington Place",
    "GBP",
    False,
    "GB",
    "GMT Standard Time",
    "Leeds",
    "NORTH",
    Decimal("0.10"),
    (LOCATION_CATEGORY, "Leeds"),
    auto_transfer=True,  # PLANTED auto_transfer_location (nexudus.md §11)
)
SHARED_ORG_BUSINESSES: Final = (MANCHESTER, LEEDS)

# Two small locations far from London, each with its own organisation, so the demo has locations
# in three time zones (nexudus.md §6: ahead of UTC the UTC date of a local midnight is a day early).
# Generated last, from a random stream of their own, with ids after every other record; they map
# cleanly and carry no planted problem.
SINGAPORE: Final = BusinessSpec(
    "SIN",
    "Hive Singapore Raffles",
    "SGD",
    False,
    "SG",
    "Singapore Standard Time",
    "Singapore",
    "SG",
    Decimal("0.075"),
)
NEW_YORK: Final = BusinessSpec(
    "NYC",
    "Hive New York Flatiron",
    "USD",
    False,
    "US",
    "Eastern Standard Time",
    "New York",
    "US",
    Decimal("0.075"),
)
OVERSEAS_BUSINESSES: Final = (SINGAPORE, NEW_YORK)

COUNTRY_NAMES: Final = {
    "GB": "United Kingdom",
    "IE": "Ireland",
    "SG": "Singapore",
    "US": "United States",
}


@dataclass(frozen=True)
class TimeZoneSpec:
    """A Nexudus SimpleTimeZone (nexudus.md §6, §7.4) and the IANA zone the generator uses."""

    id: int
    name: str  # Windows-style, e.g. "GMT Standard Time"
    offset: int  # TimeOffset: ASSUMPTION whole hours of the standard offset (unit undocumented)
    summer: bool  # UsesSummerTime
    iana: dict[str, str]  # country -> IANA zone; "001" for any other country (CLDR windowsZones)


# ASSUMPTION: Nexudus' SimpleTimeZone ids are not published; ours are small fixed numbers.
SIMPLE_TIME_ZONES: Final = (
    TimeZoneSpec(1, "UTC", 0, False, {"001": "UTC"}),
    TimeZoneSpec(2, "GMT Standard Time", 0, True, {"001": "Europe/London", "IE": "Europe/Dublin"}),
    TimeZoneSpec(3, "Eastern Standard Time", -5, True, {"001": "America/New_York"}),
    TimeZoneSpec(4, "Singapore Standard Time", 8, False, {"001": "Asia/Singapore"}),
)


def iana_zone(windows_name: str, country: str) -> str:
    """The IANA zone of a Windows zone name in a country (the few zones the demo uses)."""
    spec = next(z for z in SIMPLE_TIME_ZONES if z.name == windows_name)
    return spec.iana.get(country, spec.iana["001"])


CURRENCY_NAMES: Final = {
    "GBP": "British Pound",
    "EUR": "Euro",
    "USD": "United States Dollar",
    "NZD": "New Zealand Dollar",
    "SGD": "Singapore Dollar",
}
# Shoreditch bills a few visitors in other currencies; prices convert at these
# fixed rates (units of the invoice currency per GBP), like the Xero sandbox's DEMO_FX.
FX_FROM_GBP: Final = {"EUR": Decimal("1.15"), "USD": Decimal("1.27")}

# --------------------------------------------------------------------------
# Nexudus charts and tax rates (per business)
# --------------------------------------------------------------------------

NEXUDUS_ACCOUNTS: Final[dict[str, dict[str, str]]] = {
    "SHO": {
        "4000": "Membership Fees",
        "4010": "Private Office Rent",
        "4040": "Meeting Room Hire",
        "4100": "Services Income",
        "4500": "Events Income",
        "2300": "Member Deposits",
        "4020": "Meeting Rooms",  # PLANTED name_differs_account (Xero: "Meeting Room Bookings")
        "4030": "Day Passes",  # PLANTED archived_account
        "4050": "Event Tickets",  # PLANTED missing_account
        "5100": "Printing",  # PLANTED not_revenue_account (Xero: an EXPENSE account)
    },
    "DUB": {
        "4000": "Membership Fees",
        "4010": "Private Office Rent",
        "4040": "Meeting Room Hire",
        "2300": "Member Deposits",
    },
    # Both map exactly onto "Hive Coworking North Ltd" (no planted problems in the north).
    "MAN": {
        "4000": "Membership Fees",
        "4010": "Private Office Rent",
        "4040": "Meeting Room Hire",
        "4100": "Services Income",
        "4500": "Events Income",
        "2300": "Member Deposits",
    },
    "LEE": {
        "4000": "Membership Fees",
        "4010": "Private Office Rent",
        "4040": "Meeting Room Hire",
        "4100": "Services Income",
        "2300": "Member Deposits",
    },
    "SIN": {
        "4000": "Membership Fees",
        "4010": "Private Office Rent",
        "4040": "Meeting Room Hire",
        "2300": "Member Deposits",
    },
    "NYC": {
        "4000": "Membership Fees",
        "4010": "Private Office Rent",
        "4040": "Meeting Room Hire",
        "2300": "Member Deposits",
    },
}
# FinancialAccount.AccountType (nexudus.md §7.4): 0 None, 1 Sales, 2 Payments, 3 Deposits. The
# charts above are Sales accounts but for the deposit liability.
SALES, PAYMENTS, DEPOSITS = 1, 2, 3
DEPOSIT_ACCOUNT_CODES: Final = frozenset({"2300"})
# Payments accounts (nexudus.md §11: Nexudus' own payment transfers land in them; their name and
# code must match a Xero account, here the organisation's bank account 090).
NEXUDUS_PAYMENT_ACCOUNTS: Final[dict[str, dict[str, str]]] = {
    "SHO": {
        "090": "Business Bank Account",
        "094": "GoCardless Payments",  # PLANTED missing_payments_account (no 094 in Xero UK)
    },
    "DUB": {"090": "Business Current Account"},
    "MAN": {"090": "Business Bank Account"},
    "LEE": {"090": "Business Bank Account"},
    "SIN": {"090": "DBS Business Account"},
    "NYC": {"090": "Business Checking"},
}

VAT20: Final = "20% (VAT on Income)"
VAT5: Final = "5% (VAT on Income)"
NO_VAT: Final = "No VAT"
IE_VAT23: Final = "23% Standard"
SG_GST9: Final = "Standard-Rated Supplies"
SG_NO_GST: Final = "No GST"
US_EXEMPT: Final = "Tax Exempt"

NEXUDUS_TAX_RATES: Final[dict[str, dict[str, Decimal]]] = {
    "SHO": {
        VAT20: Decimal("20.00"),
        VAT5: Decimal("5.00"),
        NO_VAT: Decimal("0.00"),
        "Hospitality VAT": Decimal("12.50"),  # PLANTED percentage_differs_tax (Xero TAX001 at 13.5)
        "Zero rate": Decimal("0.00"),  # PLANTED ambiguous_tax (no Xero name; three Xero rates at 0)
        "Old Standard 17.5%": Decimal("17.50"),  # PLANTED archived_tax (Xero TAX002 is DELETED)
        "20% (VAT on Expenses)": Decimal("20.00"),  # PLANTED tax_not_allowed_on_account (INPUT2)
        "Tourist Tax": Decimal("3.00"),  # PLANTED missing_tax
    },
    "DUB": {IE_VAT23: Decimal("23.00"), NO_VAT: Decimal("0.00")},
    "MAN": {VAT20: Decimal("20.00"), VAT5: Decimal("5.00"), NO_VAT: Decimal("0.00")},
    "LEE": {VAT20: Decimal("20.00"), NO_VAT: Decimal("0.00")},
    "SIN": {SG_GST9: Decimal("9.00"), SG_NO_GST: Decimal("0.00")},
    "NYC": {US_EXEMPT: Decimal("0.00")},
}
# TaxRate.ExemptionReason (nexudus.md §7.4): 1 None, M01…M99. Every demo rate: None.
EXEMPTION_NONE: Final = 1
# Rates that reach lines without being TaxRate records (nexudus.md §7.2): the untaxed label, the
# location's default rate (used when an item has none; 20 % unless edited) and a customer's personal
# rate. PLANTED at Shoreditch: no_tax, default_tax_rate, personal_tax_rate.
NO_TAX: Final = "[No Tax]"
DEFAULT_TAX_RATE: Final = "Default tax rate"
PERSONAL_TAX_RATE: Final = "Personal rate - charity"
LINE_ONLY_TAX_RATES: Final[dict[str, Decimal]] = {
    NO_TAX: Decimal("0.00"),
    DEFAULT_TAX_RATE: Decimal("20.00"),
    PERSONAL_TAX_RATE: Decimal("0.00"),
}


def line_tax_rate(key: str, name: str) -> Decimal:
    """The percentage a line of location ``key`` carries under the tax name ``name``."""
    rates = NEXUDUS_TAX_RATES[key]
    return rates[name] if name in rates else LINE_ONLY_TAX_RATES[name]


# --------------------------------------------------------------------------
# Products: what a line sells, its account, its tax rate and its source link
# --------------------------------------------------------------------------

# The CoworkerInvoiceLine source-link fields (nexudus.md §2); each line sets one.
CONTRACT = "CoworkerContractUniqueId"
BOOKING = "BookingUniqueId"
DEPOSIT = "ContractDepositUniqueId"
TIME_PASS = "CoworkerTimePassUniqueId"
CHARGE = "CoworkerChargeUniqueId"
PRODUCT = "CoworkerProductUniqueId"
EXTRA = "CoworkerExtraServiceUniqueId"
EVENT = "EventAttendeeUniqueId"
LINK_FIELDS: Final = (CONTRACT, BOOKING, DEPOSIT, TIME_PASS, CHARGE, PRODUCT, EXTRA, EVENT)


@dataclass(frozen=True)
class Product:
    """Something a location sells; ``prices`` are unit prices in the location's currency."""

    description: str
    link: str
    account: str | None
    tax: str
    prices: tuple[Decimal, ...]
    qty: tuple[int, int] = (1, 1)
    tariff: str | None = None  # TariffName, set on plan lines only


def _p(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in values)


@dataclass(frozen=True)
class Plan:
    """A monthly membership plan and who buys it."""

    product: Product
    weight: int
    company_share: float  # chance the member is a company rather than a freelancer
    seats: tuple[int, int]  # quantity range for company members


def _plan(
    name: str,
    account: str,
    tax: str,
    price: str,
    weight: int,
    company_share: float,
    seats: tuple[int, int] = (1, 1),
) -> Plan:
    return Plan(
        Product(f"{name} – monthly membership", CONTRACT, account, tax, _p(price), tariff=name),
        weight,
        company_share,
        seats,
    )


PLANS: Final[dict[str, tuple[Plan, ...]]] = {
    "SHO": (
        _plan("Hot Desk", "4000", VAT20, "250.00", 30, 0.2, (2, 6)),
        _plan("Hot Desk Part-time (10 days)", "4000", VAT20, "165.00", 12, 0.0),
        _plan("Dedicated Desk", "4000", VAT20, "395.00", 22, 0.3, (2, 4)),
        _plan("Private Office (2 person)", "4010", VAT20, "1150.00", 12, 1.0),
        _plan("Private Office (4 person)", "4010", VAT20, "2200.00", 10, 1.0),
        _plan("Private Office (8 person)", "4010", VAT20, "4150.00", 5, 1.0),
        _plan("Virtual Office", "4000", VAT20, "49.00", 9, 0.5),
    ),
    "DUB": (
        _plan("Hot Desk", "4000", IE_VAT23, "290.00", 35, 0.2, (2, 5)),
        _plan("Dedicated Desk", "4000", IE_VAT23, "450.00", 30, 0.3, (2, 3)),
        _plan("Private Office (3 person)", "4010", IE_VAT23, "1650.00", 25, 1.0),
        _plan("Private Office (6 person)", "4010", IE_VAT23, "3100.00", 10, 1.0),
    ),
    "MAN": (
        _plan("Hot Desk", "4000", VAT20, "210.00", 32, 0.2, (2, 5)),
        _plan("Dedicated Desk", "4000", VAT20, "320.00", 25, 0.3, (2, 4)),
        _plan("Private Office (2 person)", "4010", VAT20, "925.00", 15, 1.0),
        _plan("Private Office (5 person)", "4010", VAT20, "2150.00", 10, 1.0),
        _plan("Virtual Office", "4000", VAT20, "39.00", 8, 0.5),
    ),
    "LEE": (
        _plan("Hot Desk", "4000", VAT20, "195.00", 35, 0.2, (2, 4)),
        _plan("Dedicated Desk", "4000", VAT20, "295.00", 30, 0.3, (2, 3)),
        _plan("Private Office (3 person)", "4010", VAT20, "1250.00", 20, 1.0),
        _plan("Private Office (6 person)", "4010", VAT20, "2350.00", 8, 1.0),
    ),
    "SIN": (
        _plan("Hot Desk", "4000", SG_GST9, "450.00", 35, 0.2, (2, 4)),
        _plan("Dedicated Desk", "4000", SG_GST9, "650.00", 30, 0.3, (2, 3)),
        _plan("Private Office (2 person)", "4010", SG_GST9, "2400.00", 20, 1.0),
        _plan("Virtual Office", "4000", SG_GST9, "120.00", 10, 0.5),
    ),
    "NYC": (
        _plan("Hot Desk", "4000", US_EXEMPT, "395.00", 35, 0.2, (2, 4)),
        _plan("Dedicated Desk", "4000", US_EXEMPT, "595.00", 30, 0.3, (2, 3)),
        _plan("Private Office (2 person)", "4010", US_EXEMPT, "1850.00", 20, 1.0),
        _plan("Private Office (4 person)", "4010", US_EXEMPT, "3400.00", 10, 1.0),
    ),
}

# Extras added to a monthly invoice: (product, chance per invoice). Private-office
# members also get an energy recharge at the reduced rate (keeps 5% VAT in use).
SHO_BOARDROOM: Final = Product(
    "Meeting room – The Boardroom (per hour)", BOOKING, "4040", VAT20, _p("45.00"), (1, 4)
)
SHO_STUDIO: Final = Product(
    "Meeting room – Studio 3 (per hour)", BOOKING, "4040", VAT20, _p("30.00"), (1, 3)
)
SHO_PODCAST: Final = Product(
    "Podcast studio (per hour)", BOOKING, "4040", VAT20, _p("35.00"), (1, 3)
)
SHO_DAY_PASS: Final = Product("Day pass", TIME_PASS, "4000", VAT20, _p("25.00"), (1, 5))
SHO_GUEST_PASS: Final = Product("Guest day pass", TIME_PASS, "4000", VAT20, _p("25.00"), (1, 3))
SHO_EVENT: Final = Product("Event – Product Thursdays", EVENT, "4500", VAT20, _p("15.00"), (1, 2))
SHO_PRINTING: Final = Product(
    "Printing credits – 100 pages", PRODUCT, "4100", VAT20, _p("8.00"), (1, 3)
)
SHO_LOCKER: Final = Product("Locker rental – monthly", EXTRA, "4100", VAT20, _p("20.00"))
SHO_MAIL: Final = Product("Mail handling & scanning", EXTRA, "4100", VAT20, _p("12.50"))
SHO_ENERGY: Final = Product(
    "Energy recharge", CHARGE, "4100", VAT5, _p("18.40", "26.75", "38.10", "52.35", "64.80")
)
DUB_LIFFEY: Final = Product(
    "Meeting room – Liffey Room (per hour)", BOOKING, "4040", IE_VAT23, _p("40.00"), (1, 4)
)
DUB_CANAL: Final = Product(
    "Meeting room – Grand Canal Suite (per hour)", BOOKING, "4040", IE_VAT23, _p("65.00"), (1, 3)
)
DUB_DAY_PASS: Final = Product("Day pass", TIME_PASS, "4000", IE_VAT23, _p("30.00"), (1, 5))
MAN_MILL: Final = Product(
    "Meeting room – The Mill Room (per hour)", BOOKING, "4040", VAT20, _p("35.00"), (1, 4)
)
MAN_COTTON: Final = Product(
    "Meeting room – Cotton Suite (per hour)", BOOKING, "4040", VAT20, _p("55.00"), (1, 3)
)
MAN_DAY_PASS: Final = Product("Day pass", TIME_PASS, "4000", VAT20, _p("20.00"), (1, 5))
MAN_EVENT: Final = Product(
    "Event – Ancoats Tech Breakfast", EVENT, "4500", VAT20, _p("12.00"), (1, 2)
)
MAN_PRINTING: Final = Product(
    "Printing credits – 100 pages", PRODUCT, "4100", VAT20, _p("7.50"), (1, 3)
)
MAN_LOCKER: Final = Product("Locker rental – monthly", EXTRA, "4100", VAT20, _p("18.00"))
MAN_ENERGY: Final = Product(
    "Energy recharge", CHARGE, "4100", VAT5, _p("16.20", "24.90", "35.40", "48.75")
)
LEE_AIRE: Final = Product(
    "Meeting room – Aire Room (per hour)", BOOKING, "4040", VAT20, _p("30.00"), (1, 4)
)
LEE_BOARDROOM: Final = Product(
    "Meeting room – Wellington Boardroom (per hour)", BOOKING, "4040", VAT20, _p("50.00"), (1, 3)
)
LEE_DAY_PASS: Final = Product("Day pass", TIME_PASS, "4000", VAT20, _p("18.00"), (1, 5))
LEE_MAIL: Final = Product("Mail handling & scanning", EXTRA, "4100", VAT20, _p("10.00"))
SIN_RAFFLES: Final = Product(
    "Meeting room – Raffles Room (per hour)", BOOKING, "4040", SG_GST9, _p("60.00"), (1, 4)
)
SIN_DAY_PASS: Final = Product("Day pass", TIME_PASS, "4000", SG_GST9, _p("35.00"), (1, 5))
NYC_FLATIRON: Final = Product(
    "Meeting room – Flatiron Room (per hour)", BOOKING, "4040", US_EXEMPT, _p("55.00"), (1, 4)
)
NYC_DAY_PASS: Final = Product("Day pass", TIME_PASS, "4000", US_EXEMPT, _p("40.00"), (1, 5))

EXTRAS: Final[dict[str, tuple[tuple[Product, float], ...]]] = {
    "SHO": (
        (SHO_BOARDROOM, 0.25),
        (SHO_STUDIO, 0.15),
        (SHO_PRINTING, 0.15),
        (SHO_LOCKER, 0.08),
        (SHO_MAIL, 0.08),
        (SHO_EVENT, 0.05),
        (SHO_GUEST_PASS, 0.05),
    ),
    "DUB": ((DUB_LIFFEY, 0.3), (DUB_DAY_PASS, 0.1)),
    "MAN": (
        (MAN_MILL, 0.25),
        (MAN_COTTON, 0.1),
        (MAN_PRINTING, 0.12),
        (MAN_LOCKER, 0.08),
        (MAN_EVENT, 0.05),
    ),
    "LEE": ((LEE_AIRE, 0.25), (LEE_MAIL, 0.1), (LEE_DAY_PASS, 0.05)),
    "SIN": ((SIN_RAFFLES, 0.25), (SIN_DAY_PASS, 0.05)),
    "NYC": ((NYC_FLATIRON, 0.25), (NYC_DAY_PASS, 0.05)),
}
OFFICE_EXTRA: Final[dict[str, tuple[Product, float] | None]] = {
    "SHO": (SHO_ENERGY, 0.5),
    "DUB": None,
    "MAN": (MAN_ENERGY, 0.4),
    "LEE": None,
    "SIN": None,
    "NYC": None,
}
# One-off invoices (bookings, passes, tickets): the menu, weighted.
AD_HOC: Final[dict[str, tuple[tuple[Product, int], ...]]] = {
    "SHO": (
        (SHO_BOARDROOM, 25),
        (SHO_STUDIO, 20),
        (SHO_PODCAST, 8),
        (SHO_DAY_PASS, 25),
        (SHO_EVENT, 15),
        (SHO_PRINTING, 7),
    ),
    "DUB": ((DUB_LIFFEY, 35), (DUB_CANAL, 15), (DUB_DAY_PASS, 50)),
    "MAN": (
        (MAN_MILL, 30),
        (MAN_COTTON, 15),
        (MAN_DAY_PASS, 35),
        (MAN_EVENT, 15),
        (MAN_PRINTING, 5),
    ),
    "LEE": ((LEE_AIRE, 35), (LEE_BOARDROOM, 20), (LEE_DAY_PASS, 45)),
    "SIN": ((SIN_RAFFLES, 50), (SIN_DAY_PASS, 50)),
    "NYC": ((NYC_FLATIRON, 50), (NYC_DAY_PASS, 50)),
}
# Deposits go to a liability account with no tax: a legitimate non-revenue mapping.
# A security deposit's price is the member's monthly plan fee (filled in by the generator).
SECURITY_DEPOSIT: Final[dict[str, Product]] = {
    "SHO": Product("Security deposit – one month", DEPOSIT, "2300", NO_VAT, ()),
    "DUB": Product("Security deposit – one month", DEPOSIT, "2300", NO_VAT, ()),
    "MAN": Product("Security deposit – one month", DEPOSIT, "2300", NO_VAT, ()),
    "LEE": Product("Security deposit – one month", DEPOSIT, "2300", NO_VAT, ()),
    "SIN": Product("Security deposit – one month", DEPOSIT, "2300", SG_NO_GST, ()),
    "NYC": Product("Security deposit – one month", DEPOSIT, "2300", US_EXEMPT, ()),
}
KEY_DEPOSIT: Final[dict[str, Product]] = {
    "SHO": Product("Key card deposit", DEPOSIT, "2300", NO_VAT, _p("20.00")),
    "DUB": Product("Key fob deposit", DEPOSIT, "2300", NO_VAT, _p("25.00")),
    "MAN": Product("Key card deposit", DEPOSIT, "2300", NO_VAT, _p("15.00")),
    "LEE": Product("Key card deposit", DEPOSIT, "2300", NO_VAT, _p("15.00")),
    "SIN": Product("Key card deposit", DEPOSIT, "2300", SG_NO_GST, _p("30.00")),
    "NYC": Product("Key card deposit", DEPOSIT, "2300", US_EXEMPT, _p("25.00")),
}


@dataclass(frozen=True)
class Discount:
    """A discount code: a percentage of the line's gross, or a fixed amount."""

    code: str
    percent: Decimal | None  # a percentage of the line's gross, or
    amount: Decimal | None  # a fixed amount (capped at the gross)


DISCOUNTS: Final = (
    Discount("FOUNDERS10", Decimal("10"), None),
    Discount("ANNUAL15", Decimal("15"), None),
    Discount("STARTUP20", Decimal("20"), None),
    Discount("WELCOME50", None, Decimal("50.00")),
)
# A member's contract discount repeats every month, so only percentages qualify.
CONTRACT_DISCOUNTS: Final = tuple(d for d in DISCOUNTS if d.percent is not None)

# PLANTED problem lines, one product per case (all Shoreditch). Each is appended to
# an otherwise clean invoice, so every problem invoice carries exactly one problem.
PLANTED_LINES: Final[dict[str, Product]] = {
    "missing_account": Product(
        "Founders' Breakfast – ticket", EVENT, "4050", VAT20, _p("12.00"), (1, 3)
    ),
    "archived_account": Product("Weekend day pass", TIME_PASS, "4030", VAT20, _p("20.00"), (1, 2)),
    "name_differs_account": Product(
        "Phone booth (per hour)", BOOKING, "4020", VAT20, _p("8.00"), (1, 4)
    ),
    "not_revenue_account": Product(
        "Printing – colour A3 (per page)", PRODUCT, "5100", VAT20, _p("0.40"), (10, 60)
    ),
    "percentage_differs_tax": Product(
        "Meeting catering – sandwich platter",
        CHARGE,
        "4040",
        "Hospitality VAT",
        _p("42.00"),
        (1, 2),
    ),
    "ambiguous_tax": Product("Member handbook (printed)", PRODUCT, "4100", "Zero rate", _p("6.50")),
    "archived_tax": Product(
        "Legacy plan adjustment", CHARGE, "4000", "Old Standard 17.5%", _p("35.00")
    ),
    "tax_not_allowed_on_account": Product(
        "Monitor rental", EXTRA, "4000", "20% (VAT on Expenses)", _p("15.00")
    ),
    "missing_tax": Product(
        "Visitor levy (per night)", CHARGE, "4000", "Tourist Tax", _p("2.00"), (1, 6)
    ),
}
# Singular planted lines.
NO_ACCOUNT_LINE: Final = Product("Guest wifi voucher", CHARGE, None, VAT20, _p("5.00"))
ZERO_AMOUNT_LINE: Final = Product("Day pass (complimentary)", TIME_PASS, "4000", VAT20, _p("0.00"))
# Three lines of 3.33 at 20%: per line 0.67 × 3 = 2.01; on the total 9.99 × 20% = 2.00.
ROUNDING_LINE: Final = Product("Printing credits – 40 pages", PRODUCT, "4100", VAT20, _p("3.33"))
ROUNDING_LINES: Final = 3
# Lines whose tax rate is not a TaxRate record (nexudus.md §7.2), each on an otherwise clean
# Shoreditch invoice added after the rest: (product, number of invoices).
LINE_ONLY_TAX_LINES: Final[dict[str, tuple[Product, int]]] = {
    "no_tax": (Product("Bike storage – monthly", EXTRA, "4100", NO_TAX, _p("10.00")), 2),
    "default_tax_rate": (
        Product("Coffee bar tab", CHARGE, "4100", DEFAULT_TAX_RATE, _p("6.80"), (1, 3)),
        1,
    ),
    "personal_tax_rate": (
        Product("Day pass (charity rate)", TIME_PASS, "4000", PERSONAL_TAX_RATE, _p("25.00")),
        1,
    ),
}
# Clean Shoreditch invoices Nexudus' own integration already sent to Xero (nexudus.md §11:
# XeroInvoiceTransfered true). PLANTED already_sent_by_nexudus.
ALREADY_SENT_INVOICES: Final = 3
# The April 2026 period invoice of the Shoreditch, Singapore and New York locations (nexudus.md §6:
# period dates are the UTC instants of local midnights): billed for local 1–30 April 2026 and
# issued at local 01:30 on 1 April, which in Singapore is still 31 March in UTC.
# PLANTED april_period.
APRIL_PERIOD: Final = ((2026, 4, 1), (2026, 4, 30), 5400)
APRIL_PERIOD_LOCATIONS: Final = ("SHO", "SIN", "NYC")

# --------------------------------------------------------------------------
# Planted coworkers (Shoreditch)
# --------------------------------------------------------------------------

UNICODE_PERSON: Final = ("Zoë Łukasiewicz-Ångström", "Ærø Design ApS 🚀", "zoe@aero-design.example")
# A real-looking legal name longer than Xero's 255-character contact-name limit.
LONG_COMPANY: Final = (
    "The Honourable Society of Independent Architects, Landscape Designers, Urban Planners, "
    "Structural and Civil Engineers, Quantity Surveyors and Sustainable Building Consultants of "
    "Greater London, Hertfordshire, Essex and the Thames Gateway (Members' Cooperative) Limited"
)
LONG_COMPANY_PERSON: Final = "Rupert Ashdown-Whitfield"
BLANK_BILLING_PERSON: Final = "Priya Venkataraman"
SAME_NAME_PERSON: Final = "Alex Morgan"
SAME_NAME_EMAILS: Final = ("alex.morgan@mail.example", "alex.morgan@morgan-studio.example")
# A Nexudus company whose name is already that of one ACTIVE Xero contact made in Xero's UI (no
# ContactNumber, another e-mail): the one contact a transfer by name reaches.
NAME_CLASH_COMPANY: Final = "Brightline Analytics Ltd"
NAME_CLASH_PERSON: Final = "Gemma Okafor"

# --------------------------------------------------------------------------
# Planted month-end situations on the Xero side (chosen from the generated data by the generator)
# --------------------------------------------------------------------------

# PLANTED period_lock_date (xero-api.md §6 PeriodLockDate, §13 "The document date cannot be before
# the period lock date"): the US organisation's accountant locked its books through the period's
# first day, the day of its first membership run, so those invoices can no longer be approved there.
# New York, not the North: 23 North invoices are dated that day (a handful here), and the North
# organisation is where the tracking tests write approved invoices dated that day.
PERIOD_LOCK_ORG: Final = "US"
# The lock date is the period's start plus this many days.
PERIOD_LOCK_DAYS: Final = 0
# PLANTED number_clash_invoice: an invoice someone keyed by hand in Xero UK (xero-api.md §3.1:
# ACCREC numbers are unique, "Invoice # must be unique.") under a number Nexudus later gave one of
# Shoreditch's own invoices, for another customer and another amount. Its one line:
# (description, quantity, unit amount, account code, TaxType); dated these days before the
# Nexudus invoice (never before the period), due 14 days after.
NUMBER_CLASH_CONTACT: Final = "Meridian Legal LLP"
NUMBER_CLASH_LINE: Final = (
    "Private event hire – evening reception, 40 guests",
    Decimal("1"),
    Decimal("450.00"),
    "4500",
    "OUTPUT2",
)
NUMBER_CLASH_DAYS_BEFORE: Final = 6
# PLANTED ambiguous_contact_name: one Shoreditch company customer (chosen by the generator) entered
# twice in Xero's UI, two ACTIVE contacts with its exact name, no ContactNumber, neither with its
# billing e-mail (xero-api.md §6: Name "may no longer be a unique field"). The two e-mails' local
# parts, at the customer's own domain.
AMBIGUOUS_CONTACT_MAILBOXES: Final = ("finance", "office")
# PLANTED credit_note_larger_than_due: a Shoreditch one-off invoice paid in Nexudus and then
# cancelled in full (nexudus.md §7.1: a credit note is "raised when an invoice is cancelled or
# refunded"), these days after its payment: the credit exceeds what the original has left due.
REFUND_CREDIT_DAYS_AFTER_PAYMENT: Final = 3

# --------------------------------------------------------------------------
# Name pools (none contains a planted name, so generated names never clash with them)
# --------------------------------------------------------------------------

FIRST_NAMES: Final = (
    "Aisha",
    "Ben",
    "Chloe",
    "Daniel",
    "Eleanor",
    "Femi",
    "Grace",
    "Hannah",
    "Isaac",
    "Jasmine",
    "Kwame",
    "Laura",
    "Mohammed",
    "Nadia",
    "Oliver",
    "Poppy",
    "Quentin",
    "Rachel",
    "Samuel",
    "Tara",
    "Umar",
    "Victoria",
    "William",
    "Yasmin",
    "Zara",
    "Arjun",
    "Beatrice",
    "Callum",
    "Deepa",
    "Ethan",
    "Fiona",
    "George",
    "Harriet",
    "Imogen",
    "Jack",
    "Kiran",
    "Liam",
    "Maya",
    "Niamh",
    "Owen",
    "Pietro",
    "Rosa",
    "Sean",
    "Thea",
    "Tomasz",
    "Ursula",
    "Vikram",
    "Wen",
    "Xavier",
    "Yusuf",
    "Aoife",
    "Bartosz",
    "Ciara",
    "Dmitri",
    "Esme",
    "Farah",
    "Giulia",
    "Hugo",
    "Ines",
    "Jonas",
    "Kofi",
    "Lucia",
    "Marek",
    "Noor",
)
LAST_NAMES: Final = (
    "Adeyemi",
    "Bennett",
    "Chowdhury",
    "Doyle",
    "Evans",
    "Fitzgerald",
    "Gallagher",
    "Hughes",
    "Iqbal",
    "Jenkins",
    "Kowalski",
    "Lambert",
    "Mensah",
    "Nowak",
    "O'Brien",
    "Patel",
    "Quinn",
    "Robinson",
    "Shah",
    "Thompson",
    "Underwood",
    "Vasquez",
    "Walsh",
    "Xu",
    "Young",
    "Zielinski",
    "Ahmed",
    "Brennan",
    "Campbell",
    "Dubois",
    "Ellis",
    "Fernandes",
    "Green",
    "Hassan",
    "Ivanova",
    "Jones",
    "Kelly",
    "Lopez",
    "Murphy",
    "Nguyen",
    "Osei",
    "Price",
    "Rahman",
    "Santos",
    "Taylor",
    "Ueda",
    "Vaughan",
    "Wright",
    "Yilmaz",
    "Zhang",
    "Byrne",
    "Carter",
    "Davies",
    "Edwards",
    "Foster",
    "Gupta",
    "Harris",
    "Jackson",
    "Khan",
    "Lewis",
    "Moore",
    "Novak",
    "Okonkwo",
    "Parker",
    "Reid",
    "Singh",
    "Turner",
    "Walker",
    "Ward",
    "Williams",
    "Wilson",
    "Wood",
)
COMPANY_PREFIXES: Final = (
    "Northwind",
    "Bluebell",
    "Copperleaf",
    "Driftwood",
    "Emberline",
    "Foxglove",
    "Granite",
    "Harbourside",
    "Ironbark",
    "Juniper",
    "Kestrel",
    "Lanternfish",
    "Meadowlark",
    "Nimbus",
    "Oakridge",
    "Pebblestone",
    "Quayside",
    "Redwood",
    "Saltmarsh",
    "Tidewater",
    "Umbra",
    "Vantage",
    "Willowby",
    "Yarrow",
    "Zephyr",
    "Aldgate",
    "Bramble",
    "Cobalt",
    "Daybreak",
    "Evergreen",
    "Fieldstone",
    "Goldcrest",
    "Hollybush",
    "Inkwell",
    "Jetstream",
    "Kingfisher",
    "Lodestar",
    "Moorgate",
    "Nettlebed",
    "Orchard",
    "Pinecone",
    "Riverbend",
    "Silverline",
    "Thistle",
    "Upland",
    "Velvet",
    "Wildflower",
    "Yellowhammer",
    "Atlas",
    "Beacon",
    "Cedar",
    "Delta",
    "Echo",
    "Falcon",
    "Glasshouse",
    "Hopscotch",
    "Indigo",
    "Jigsaw",
    "Keystone",
    "Larkspur",
)
COMPANY_NOUNS: Final = (
    "Analytics",
    "Architects",
    "Labs",
    "Studio",
    "Digital",
    "Media",
    "Consulting",
    "Ventures",
    "Robotics",
    "Design",
    "Partners",
    "Software",
    "Health",
    "Energy",
    "Foods",
    "Films",
    "Legal",
    "Capital",
    "Learning",
    "Games",
    "Logistics",
    "Research",
    "Creative",
    "Systems",
    "Collective",
    "Works",
    "Cloud",
    "Bio",
    "Sound",
    "Print",
    "Mobility",
    "Data",
    "Interiors",
    "Recruitment",
    "Events",
    "Translations",
)
COMPANY_QUALIFIERS: Final = (
    "Hoxton",
    "Docklands",
    "Northern",
    "Atlantic",
    "Global",
    "Urban",
    "Coastal",
    "Metro",
    "Pacific",
    "Highland",
    "Riverside",
    "Central",
)
COMPANY_FORMS: Final = ("Ltd", "Ltd", "Ltd", "LLP", "Limited")
IE_COMPANY_FORMS: Final = ("Ltd", "Limited", "DAC", "Teoranta")
COMPANY_FORMS_BY_COUNTRY: Final = {
    "GB": COMPANY_FORMS,
    "IE": IE_COMPANY_FORMS,
    "SG": ("Pte Ltd", "Pte Ltd", "Pte Ltd", "LLP"),
    "US": ("Inc", "Inc", "LLC"),
}
PERSONAL_MAIL_DOMAINS: Final = ("mail.example", "inbox.example", "post.example")
STREETS: Final[dict[str, tuple[str, ...]]] = {
    "London": (
        "Great Eastern Street",
        "Curtain Road",
        "Rivington Street",
        "Old Street",
        "Leonard Street",
        "Paul Street",
        "Charlotte Road",
        "Hackney Road",
        "Kingsland Road",
        "Shoreditch High Street",
    ),
    "Dublin": (
        "Sir John Rogerson's Quay",
        "Hanover Quay",
        "Grand Canal Street",
        "Pearse Street",
        "Barrow Street",
        "Mayor Street Upper",
        "North Wall Quay",
        "Misery Hill",
    ),
    "Manchester": (
        "Blossom Street",
        "Jersey Street",
        "Great Ancoats Street",
        "Hood Street",
        "Murray Street",
        "Redhill Street",
        "Pollard Street",
        "Cutting Room Square",
    ),
    "Leeds": (
        "Wellington Place",
        "Whitehall Road",
        "Wellington Street",
        "Aire Street",
        "Park Row",
        "King Street",
        "Infirmary Street",
    ),
    "Singapore": (
        "Raffles Place",
        "Cecil Street",
        "Robinson Road",
        "Telok Ayer Street",
        "Amoy Street",
        "Collyer Quay",
    ),
    "New York": (
        "Fifth Avenue",
        "Broadway",
        "West 23rd Street",
        "East 21st Street",
        "Park Avenue South",
        "West 19th Street",
    ),
}
POSTCODES: Final[dict[str, tuple[str, ...]]] = {
    "London": ("EC2A 3AY", "EC2A 4HJ", "EC2A 3PT", "EC1V 9HX", "E2 8AA", "N1 6HP", "E1 6JE"),
    "Dublin": ("D02 X285", "D02 T380", "D02 VF25", "D01 K0Y6", "D04 R2C4"),
    "Manchester": ("M4 6AJ", "M4 6JG", "M4 5BU", "M4 7DB", "M1 2NP"),
    "Leeds": ("LS1 4AP", "LS1 4AN", "LS1 2DE", "LS1 2HL", "LS12 1DT"),
    "Singapore": ("048619", "069543", "068902", "048423", "049315"),
    "New York": ("10010", "10011", "10003", "10016", "10001"),
}

# --------------------------------------------------------------------------
# Xero organisations
# --------------------------------------------------------------------------

# Organisation fields the OpenAPI schema lists and Xero fills; ids and dates are added by the
# generator. EndOfYearLockDate / PeriodLockDate are "shown if set": None here, and the Xero
# sandbox drops them when it renders.
XERO_ORGS: Final[dict[str, dict[str, Any]]] = {
    "UK": {
        "Name": "Hive Coworking UK Ltd",
        "LegalName": "Hive Coworking UK Limited",
        "PaysTax": True,
        "Version": "UK",
        "OrganisationType": "COMPANY",
        "OrganisationEntityType": "COMPANY",
        "BaseCurrency": "GBP",
        "CountryCode": "GB",
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "RegistrationNumber": "11876543",
        "TaxNumber": "GB 284 6913 57",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3,
        "SalesTaxBasis": "ACCRUALS",
        "SalesTaxPeriod": "QUARTERLY1",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "PeriodLockDate": None,
        "EndOfYearLockDate": None,
        "CreatedDateUTC": "2019-03-14T10:22:31Z",
        "Timezone": "GMTSTANDARDTIME",
        "ShortCode": "!Hv7Qk",
        "Class": "PREMIUM",
        "Edition": "BUSINESS",
        "LineOfBusiness": "Coworking",
        "Addresses": [
            {
                "AddressType": "STREET",
                "AddressLine1": "86-90 Paul Street",
                "City": "London",
                "PostalCode": "EC2A 4NE",
                "Country": "United Kingdom",
            }
        ],
        "Phones": [
            {
                "PhoneType": "OFFICE",
                "PhoneNumber": "7946 0958",
                "PhoneAreaCode": "020",
                "PhoneCountryCode": "44",
            }
        ],
        "ExternalLinks": [{"LinkType": "Website", "Url": "https://hive-coworking.example"}],
        "PaymentTerms": {"Sales": {"Day": 14, "Type": "DAYSAFTERBILLDATE"}},
    },
    "IE": {
        "Name": "Hive Coworking Ireland Ltd",
        "LegalName": "Hive Coworking Ireland Limited",
        "PaysTax": True,
        "Version": "GLOBAL",
        "OrganisationType": "COMPANY",
        "OrganisationEntityType": "COMPANY",
        "BaseCurrency": "EUR",
        "CountryCode": "IE",
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "TaxNumber": "IE 3456789KH",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 12,
        # Irish VAT returns are bi-monthly.
        "SalesTaxBasis": "INVOICE",
        "SalesTaxPeriod": "TWOMONTHS",
        "DefaultSalesTax": "Tax Inclusive",
        "DefaultPurchasesTax": "Tax Inclusive",
        "PeriodLockDate": None,
        "EndOfYearLockDate": None,
        "CreatedDateUTC": "2022-01-10T09:05:12Z",
        "Timezone": "GMTSTANDARDTIME",
        "ShortCode": "!Ie3Dk",
        "Class": "PREMIUM",
        "Edition": "BUSINESS",
        "LineOfBusiness": "Coworking",
        "Addresses": [
            {
                "AddressType": "STREET",
                "AddressLine1": "1 Hanover Quay",
                "City": "Dublin",
                "PostalCode": "D02 X285",
                "Country": "Ireland",
            }
        ],
        "Phones": [
            {
                "PhoneType": "OFFICE",
                "PhoneNumber": "555 0142",
                "PhoneAreaCode": "01",
                "PhoneCountryCode": "353",
            }
        ],
        "ExternalLinks": [{"LinkType": "Website", "Url": "https://hive-coworking.example/dublin"}],
        "PaymentTerms": {"Sales": {"Day": 14, "Type": "DAYSAFTERBILLDATE"}},
    },
    # No demo app connects to this one: its tenant id proves another tenant is refused.
    "OTHER": {
        "Name": "Other Company Ltd",
        "LegalName": "Other Company Limited",
        "PaysTax": True,
        "Version": "NZ",
        "OrganisationType": "COMPANY",
        "OrganisationEntityType": "COMPANY",
        "BaseCurrency": "NZD",
        "CountryCode": "NZ",
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "RegistrationNumber": "8123456",
        "TaxNumber": "123-456-789",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3,
        "SalesTaxBasis": "PAYMENTS",
        "SalesTaxPeriod": "TWOMONTHS",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "PeriodLockDate": None,
        "EndOfYearLockDate": None,
        "CreatedDateUTC": "2017-07-03T21:40:00Z",
        "Timezone": "NEWZEALANDSTANDARDTIME",
        "ShortCode": "!Nz9Xp",
        "Class": "STANDARD",
        "Edition": "BUSINESS",
        "LineOfBusiness": "Management consulting",
        "Addresses": [
            {
                "AddressType": "STREET",
                "AddressLine1": "12 Queen Street",
                "City": "Auckland",
                "PostalCode": "1010",
                "Country": "New Zealand",
            }
        ],
        "Phones": [],
        "ExternalLinks": [],
        "PaymentTerms": {"Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"}},
    },
    # Manchester and Leeds share this one, told apart by the Location tracking category.
    "NORTH": {
        "Name": "Hive Coworking North Ltd",
        "LegalName": "Hive Coworking North Limited",
        "PaysTax": True,
        "Version": "UK",
        "OrganisationType": "COMPANY",
        "OrganisationEntityType": "COMPANY",
        "BaseCurrency": "GBP",
        "CountryCode": "GB",
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "RegistrationNumber": "13570246",
        "TaxNumber": "GB 371 5820 46",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3,
        "SalesTaxBasis": "ACCRUALS",
        "SalesTaxPeriod": "QUARTERLY2",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "PeriodLockDate": None,
        "EndOfYearLockDate": None,
        "CreatedDateUTC": "2023-05-02T08:40:17Z",
        "Timezone": "GMTSTANDARDTIME",
        "ShortCode": "!Nt4Wp",
        "Class": "PREMIUM",
        "Edition": "BUSINESS",
        "LineOfBusiness": "Coworking",
        "Addresses": [
            {
                "AddressType": "STREET",
                "AddressLine1": "30 Blossom Street",
                "City": "Manchester",
                "PostalCode": "M4 6AJ",
                "Country": "United Kingdom",
            }
        ],
        # 0161 496 0xxx: Ofcom's range for drama (never a real line).
        "Phones": [
            {
                "PhoneType": "OFFICE",
                "PhoneNumber": "496 0731",
                "PhoneAreaCode": "0161",
                "PhoneCountryCode": "44",
            }
        ],
        "ExternalLinks": [{"LinkType": "Website", "Url": "https://hive-coworking.example/north"}],
        "PaymentTerms": {"Sales": {"Day": 14, "Type": "DAYSAFTERBILLDATE"}},
    },
    # Hive Singapore Raffles books here (its own organisation, SGD).
    "SG": {
        "Name": "Hive Coworking Singapore Pte Ltd",
        "LegalName": "Hive Coworking Singapore Pte. Ltd.",
        "PaysTax": True,
        "Version": "GLOBAL",
        "OrganisationType": "COMPANY",
        "OrganisationEntityType": "COMPANY",
        "BaseCurrency": "SGD",
        "CountryCode": "SG",
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "RegistrationNumber": "202312345K",
        "TaxNumber": "202312345K",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 12,
        "SalesTaxBasis": "INVOICE",
        "SalesTaxPeriod": "QUARTERLY1",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "PeriodLockDate": None,
        "EndOfYearLockDate": None,
        "CreatedDateUTC": "2024-02-19T03:15:44Z",
        "Timezone": "SINGAPORESTANDARDTIME",
        "ShortCode": "!Sg5Rf",
        "Class": "PREMIUM",
        "Edition": "BUSINESS",
        "LineOfBusiness": "Coworking",
        "Addresses": [
            {
                "AddressType": "STREET",
                "AddressLine1": "1 Raffles Place",
                "City": "Singapore",
                "PostalCode": "048616",
                "Country": "Singapore",
            }
        ],
        "Phones": [],
        "ExternalLinks": [
            {"LinkType": "Website", "Url": "https://hive-coworking.example/singapore"}
        ],
        "PaymentTerms": {"Sales": {"Day": 14, "Type": "DAYSAFTERBILLDATE"}},
    },
    # Hive New York Flatiron books here (its own organisation, USD).
    "US": {
        "Name": "Hive Coworking US Inc",
        "LegalName": "Hive Coworking US, Inc.",
        "PaysTax": True,
        "Version": "US",
        "OrganisationType": "COMPANY",
        "OrganisationEntityType": "COMPANY",
        "BaseCurrency": "USD",
        "CountryCode": "US",
        "IsDemoCompany": False,
        "OrganisationStatus": "ACTIVE",
        "TaxNumber": "87-1234567",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 12,
        "SalesTaxBasis": "ACCRUALS",
        "SalesTaxPeriod": "MONTHLY",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "PeriodLockDate": None,
        "EndOfYearLockDate": None,
        "CreatedDateUTC": "2024-09-03T14:02:10Z",
        "Timezone": "EASTERNSTANDARDTIME",
        "ShortCode": "!Us8Fl",
        "Class": "PREMIUM",
        "Edition": "BUSINESS",
        "LineOfBusiness": "Coworking",
        "Addresses": [
            {
                "AddressType": "STREET",
                "AddressLine1": "170 Fifth Avenue",
                "City": "New York",
                "Region": "NY",
                "PostalCode": "10010",
                "Country": "United States",
            }
        ],
        "Phones": [],
        "ExternalLinks": [
            {"LinkType": "Website", "Url": "https://hive-coworking.example/new-york"}
        ],
        "PaymentTerms": {"Sales": {"Day": 14, "Type": "DAYSAFTERBILLDATE"}},
    },
}
XERO_CURRENCIES: Final = {
    "UK": ("GBP", "EUR"),
    "IE": ("EUR", "GBP"),
    "OTHER": ("NZD",),
    "NORTH": ("GBP",),
    "SG": ("SGD",),
    "US": ("USD",),
}

# Account Type -> Class, as Xero derives it.
ACCOUNT_CLASS: Final = {
    **dict.fromkeys(("REVENUE", "SALES", "OTHERINCOME"), "REVENUE"),
    **dict.fromkeys(("EXPENSE", "OVERHEADS", "DIRECTCOSTS", "DEPRECIATN"), "EXPENSE"),
    **dict.fromkeys(("BANK", "CURRENT", "FIXED", "INVENTORY", "NONCURRENT", "PREPAYMENT"), "ASSET"),
    **dict.fromkeys(("CURRLIAB", "LIABILITY", "TERMLIAB", "PAYG"), "LIABILITY"),
    "EQUITY": "EQUITY",
}
# ASSUMPTION: Xero's reporting codes (standard chart tags) per class; the exact
# codes Xero assigns to each default account are not in the reference.
REPORTING: Final = {
    "REVENUE": ("REV.TRA", "Revenue from trading"),
    "EXPENSE": ("EXP", "Expenses"),
    "ASSET": ("ASS.CUR", "Current assets"),
    "LIABILITY": ("LIA.CUR", "Current liabilities"),
    "EQUITY": ("EQU", "Equity"),
}


@dataclass(frozen=True)
class AccountSpec:
    """One Xero account; extra carries bank details and SystemAccount."""

    code: str
    name: str
    type: str
    tax: str
    status: str = "ACTIVE"
    system: str = ""
    bank_number: str | None = None
    currency: str | None = None
    description: str = ""
    expense_claims: bool = False
    updated: str = "2019-03-14T10:30:00Z"


def _bank(code: str, name: str, number: str, currency: str) -> AccountSpec:
    return AccountSpec(code, name, "BANK", "NONE", bank_number=number, currency=currency)


XERO_ACCOUNTS: Final[dict[str, tuple[AccountSpec, ...]]] = {
    "UK": (
        _bank("090", "Business Bank Account", "20320643987612", "GBP"),
        _bank("091", "Business Savings Account", "20320655501234", "GBP"),
        _bank("092", "EUR Account", "GB29NWBK60161331926819", "EUR"),
        AccountSpec(
            "610",
            "Accounts Receivable",
            "CURRENT",
            "NONE",
            system="DEBTORS",
            description="Outstanding invoices the company has issued out to the client but has "
            "not yet received in cash at balance date.",
        ),
        AccountSpec("620", "Prepayments", "CURRENT", "NONE"),
        AccountSpec("710", "Office Equipment", "FIXED", "INPUT2"),
        AccountSpec("711", "Less Accumulated Depreciation on Office Equipment", "FIXED", "NONE"),
        AccountSpec("800", "Accounts Payable", "CURRLIAB", "NONE", system="CREDITORS"),
        AccountSpec("820", "VAT", "CURRLIAB", "NONE", system="GST"),
        AccountSpec("825", "PAYE Payable", "CURRLIAB", "NONE"),
        AccountSpec("860", "Rounding", "CURRLIAB", "NONE", system="ROUNDING"),
        AccountSpec(
            "2300",
            "Member Deposits",
            "CURRLIAB",
            "NONE",
            description="Refundable security and key deposits held for members.",
        ),
        AccountSpec("900", "Loan", "TERMLIAB", "NONE"),
        AccountSpec("960", "Retained Earnings", "EQUITY", "NONE", system="RETAINEDEARNINGS"),
        AccountSpec("970", "Owner A Funds Introduced", "EQUITY", "NONE"),
        AccountSpec(
            "4000",
            "Membership Fees",
            "REVENUE",
            "OUTPUT2",
            description="Hot desk, dedicated desk, virtual office and day-pass income.",
        ),
        AccountSpec("4010", "Private Office Rent", "REVENUE", "OUTPUT2"),
        AccountSpec("4020", "Meeting Room Bookings", "REVENUE", "OUTPUT2"),  # PLANTED name differs
        AccountSpec(
            "4030",
            "Day Passes",
            "REVENUE",
            "OUTPUT2",
            status="ARCHIVED",  # PLANTED archived
            description="Archived: day passes now go to 4000.",
            updated="2026-04-01T10:12:00Z",
        ),
        AccountSpec("4040", "Meeting Room Hire", "REVENUE", "OUTPUT2"),
        AccountSpec("4060", "Virtual Office Fees", "REVENUE", "OUTPUT2"),  # near 4050 by code
        AccountSpec("4100", "Services Income", "REVENUE", "OUTPUT2"),
        AccountSpec("4500", "Events Income", "REVENUE", "OUTPUT2"),  # near "Event Tickets" by name
        AccountSpec("260", "Other Revenue", "REVENUE", "OUTPUT2"),
        AccountSpec("270", "Interest Income", "OTHERINCOME", "EXEMPTOUTPUT"),
        AccountSpec("310", "Cost of Goods Sold", "DIRECTCOSTS", "INPUT2"),
        AccountSpec("400", "Advertising & Marketing", "OVERHEADS", "INPUT2"),
        AccountSpec("404", "Bank Fees", "OVERHEADS", "EXEMPTINPUT"),
        AccountSpec("429", "General Expenses", "OVERHEADS", "INPUT2", expense_claims=True),
        AccountSpec("445", "Light, Power, Heating", "OVERHEADS", "INPUT2"),
        AccountSpec("469", "Rent", "OVERHEADS", "EXEMPTINPUT"),
        AccountSpec("473", "Repairs & Maintenance", "OVERHEADS", "INPUT2", expense_claims=True),
        AccountSpec("477", "Salaries", "OVERHEADS", "NONE"),
        AccountSpec("489", "Telephone & Internet", "OVERHEADS", "INPUT2", expense_claims=True),
        AccountSpec("493", "Travel - National", "OVERHEADS", "INPUT2", expense_claims=True),
        AccountSpec(
            "499", "Realised Currency Gains", "OVERHEADS", "NONE", system="REALISEDCURRENCYGAIN"
        ),
        AccountSpec(
            "5100", "Printing", "EXPENSE", "INPUT2", expense_claims=True
        ),  # PLANTED not revenue
    ),
    "IE": (
        _bank("090", "Business Current Account", "IE29AIBK93115212345678", "EUR"),
        AccountSpec("610", "Accounts Receivable", "CURRENT", "NONE", system="DEBTORS"),
        AccountSpec("800", "Accounts Payable", "CURRLIAB", "NONE", system="CREDITORS"),
        AccountSpec("820", "VAT", "CURRLIAB", "NONE", system="GST"),
        AccountSpec("860", "Rounding", "CURRLIAB", "NONE", system="ROUNDING"),
        AccountSpec("2300", "Member Deposits", "CURRLIAB", "NONE"),
        AccountSpec("960", "Retained Earnings", "EQUITY", "NONE", system="RETAINEDEARNINGS"),
        AccountSpec("4000", "Membership Fees", "REVENUE", "OUTPUT"),
        AccountSpec("4010", "Private Office Rent", "REVENUE", "OUTPUT"),
        AccountSpec("4040", "Meeting Room Hire", "REVENUE", "OUTPUT"),
        AccountSpec("429", "General Expenses", "OVERHEADS", "INPUT", expense_claims=True),
        AccountSpec("445", "Light, Power, Heating", "OVERHEADS", "INPUT"),
        AccountSpec("469", "Rent", "OVERHEADS", "INPUT"),
    ),
    "OTHER": (
        _bank("090", "Business Bank Account", "0123450123456700", "NZD"),
        AccountSpec("200", "Sales", "REVENUE", "OUTPUT2"),
        AccountSpec("610", "Accounts Receivable", "CURRENT", "NONE", system="DEBTORS"),
        AccountSpec("800", "Accounts Payable", "CURRLIAB", "NONE", system="CREDITORS"),
        AccountSpec("820", "GST", "CURRLIAB", "NONE", system="GST"),
        AccountSpec("429", "General Expenses", "OVERHEADS", "INPUT2"),
    ),
    "NORTH": (
        _bank("090", "Business Bank Account", "30964712845531", "GBP"),
        AccountSpec("610", "Accounts Receivable", "CURRENT", "NONE", system="DEBTORS"),
        AccountSpec("620", "Prepayments", "CURRENT", "NONE"),
        AccountSpec("800", "Accounts Payable", "CURRLIAB", "NONE", system="CREDITORS"),
        AccountSpec("820", "VAT", "CURRLIAB", "NONE", system="GST"),
        AccountSpec("860", "Rounding", "CURRLIAB", "NONE", system="ROUNDING"),
        AccountSpec(
            "2300",
            "Member Deposits",
            "CURRLIAB",
            "NONE",
            description="Refundable security and key deposits held for members.",
        ),
        AccountSpec("960", "Retained Earnings", "EQUITY", "NONE", system="RETAINEDEARNINGS"),
        AccountSpec("4000", "Membership Fees", "REVENUE", "OUTPUT2"),
        AccountSpec("4010", "Private Office Rent", "REVENUE", "OUTPUT2"),
        AccountSpec("4040", "Meeting Room Hire", "REVENUE", "OUTPUT2"),
        AccountSpec("4100", "Services Income", "REVENUE", "OUTPUT2"),
        AccountSpec("4500", "Events Income", "REVENUE", "OUTPUT2"),
        AccountSpec("429", "General Expenses", "OVERHEADS", "INPUT2", expense_claims=True),
        AccountSpec("445", "Light, Power, Heating", "OVERHEADS", "INPUT2"),
        AccountSpec("469", "Rent", "OVERHEADS", "EXEMPTINPUT"),
    ),
    # Singapore and New York map exactly onto their Nexudus charts (no planted problem).
    "SG": (
        _bank("090", "DBS Business Account", "0721234567", "SGD"),
        AccountSpec("610", "Accounts Receivable", "CURRENT", "NONE", system="DEBTORS"),
        AccountSpec("800", "Accounts Payable", "CURRLIAB", "NONE", system="CREDITORS"),
        AccountSpec("820", "GST", "CURRLIAB", "NONE", system="GST"),
        AccountSpec("860", "Rounding", "CURRLIAB", "NONE", system="ROUNDING"),
        AccountSpec("2300", "Member Deposits", "CURRLIAB", "NONE"),
        AccountSpec("960", "Retained Earnings", "EQUITY", "NONE", system="RETAINEDEARNINGS"),
        AccountSpec("4000", "Membership Fees", "REVENUE", "OUTPUTY24"),
        AccountSpec("4010", "Private Office Rent", "REVENUE", "OUTPUTY24"),
        AccountSpec("4040", "Meeting Room Hire", "REVENUE", "OUTPUTY24"),
        AccountSpec("429", "General Expenses", "OVERHEADS", "INPUTY24", expense_claims=True),
    ),
    "US": (
        _bank("090", "Business Checking", "021000021483920175", "USD"),
        AccountSpec("610", "Accounts Receivable", "CURRENT", "NONE", system="DEBTORS"),
        AccountSpec("800", "Accounts Payable", "CURRLIAB", "NONE", system="CREDITORS"),
        AccountSpec("820", "Sales Tax Payable", "CURRLIAB", "NONE", system="GST"),
        AccountSpec("860", "Rounding", "CURRLIAB", "NONE", system="ROUNDING"),
        AccountSpec("2300", "Member Deposits", "CURRLIAB", "NONE"),
        AccountSpec("960", "Retained Earnings", "EQUITY", "NONE", system="RETAINEDEARNINGS"),
        AccountSpec("4000", "Membership Fees", "REVENUE", "NONE"),
        AccountSpec("4010", "Private Office Rent", "REVENUE", "NONE"),
        AccountSpec("4040", "Meeting Room Hire", "REVENUE", "NONE"),
        AccountSpec("429", "General Expenses", "OVERHEADS", "NONE", expense_claims=True),
    ),
}


@dataclass(frozen=True)
class TaxSpec:
    """One Xero tax rate; ``kind`` decides which account classes it may apply to."""

    tax_type: str
    name: str
    rate: Decimal
    report: str
    kind: str  # "output" (sales), "input" (purchases) or "any"
    status: str = "ACTIVE"
    component: str = "VAT"


def _tax(
    tax_type: str,
    name: str,
    rate: str,
    report: str,
    kind: str,
    status: str = "ACTIVE",
    component: str = "VAT",
) -> TaxSpec:
    return TaxSpec(
        tax_type, name, Decimal(rate).quantize(Decimal("0.0001")), report, kind, status, component
    )


XERO_TAX_RATES: Final[dict[str, tuple[TaxSpec, ...]]] = {
    "UK": (
        _tax("OUTPUT2", VAT20, "20", "OUTPUT", "output"),
        _tax("RROUTPUT", VAT5, "5", "OUTPUT", "output"),
        _tax("ZERORATEDOUTPUT", "Zero Rated Income", "0", "ZERORATEDOUTPUT", "output"),
        _tax("EXEMPTOUTPUT", "Exempt Income", "0", "EXEMPTOUTPUT", "output"),
        _tax("NONE", NO_VAT, "0", "NONE", "any"),
        _tax("INPUT2", "20% (VAT on Expenses)", "20", "INPUT", "input"),
        _tax("RRINPUT", "5% (VAT on Expenses)", "5", "INPUT", "input"),
        _tax("ZERORATEDINPUT", "Zero Rated Expenses", "0", "ZERORATEDINPUT", "input"),
        _tax("EXEMPTINPUT", "Exempt Expenses", "0", "EXEMPTINPUT", "input"),
        _tax(
            "TAX001", "Hospitality VAT", "13.5", "OUTPUT", "any"
        ),  # PLANTED rate differs (Nexudus 12.5)
        _tax(
            "TAX002", "Old Standard 17.5%", "17.5", "OUTPUT", "any", status="DELETED"
        ),  # PLANTED archived
    ),
    "IE": (
        _tax("OUTPUT", IE_VAT23, "23", "OUTPUT", "output"),
        _tax("INPUT", "23% VAT on Purchases", "23", "INPUT", "input"),
        _tax("NONE", NO_VAT, "0", "NONE", "any"),
        _tax("TAX001", "13.5% Reduced", "13.5", "OUTPUT", "any"),
    ),
    "OTHER": (
        _tax("OUTPUT2", "15% GST on Income", "15", "OUTPUT", "output", component="GST"),
        _tax("INPUT2", "15% GST on Expenses", "15", "INPUT", "input", component="GST"),
        _tax("NONE", "No GST", "0", "NONE", "any", component="GST"),
        _tax("ZERORATED", "Zero Rated", "0", "NONE", "output", component="GST"),
    ),
    "NORTH": (
        _tax("OUTPUT2", VAT20, "20", "OUTPUT", "output"),
        _tax("RROUTPUT", VAT5, "5", "OUTPUT", "output"),
        _tax("ZERORATEDOUTPUT", "Zero Rated Income", "0", "ZERORATEDOUTPUT", "output"),
        _tax("EXEMPTOUTPUT", "Exempt Income", "0", "EXEMPTOUTPUT", "output"),
        _tax("NONE", NO_VAT, "0", "NONE", "any"),
        _tax("INPUT2", "20% (VAT on Expenses)", "20", "INPUT", "input"),
        _tax("ZERORATEDINPUT", "Zero Rated Expenses", "0", "ZERORATEDINPUT", "input"),
        _tax("EXEMPTINPUT", "Exempt Expenses", "0", "EXEMPTINPUT", "input"),
    ),
    "SG": (
        _tax("OUTPUTY24", SG_GST9, "9", "OUTPUT", "output", component="GST"),
        _tax(
            "ZERORATEDOUTPUT",
            "Zero-Rated Supplies",
            "0",
            "ZERORATEDOUTPUT",
            "output",
            "ACTIVE",
            "GST",
        ),
        _tax("NONE", SG_NO_GST, "0", "NONE", "any", component="GST"),
        _tax("INPUTY24", "Standard-Rated Purchases", "9", "INPUT", "input", component="GST"),
    ),
    "US": (
        _tax("NONE", US_EXEMPT, "0", "NONE", "any", component="Sales Tax"),
        _tax("TAX001", "New York Sales Tax", "8.875", "OUTPUT", "output", component="Sales Tax"),
    ),
}
# CanApplyTo* per kind, as Xero's default UK rates have them (sales rates not on
# expenses, purchase rates not on revenue).
TAX_APPLIES: Final = {
    "output": {
        "CanApplyToAssets": True,
        "CanApplyToEquity": True,
        "CanApplyToExpenses": False,
        "CanApplyToLiabilities": True,
        "CanApplyToRevenue": True,
    },
    "input": {
        "CanApplyToAssets": True,
        "CanApplyToEquity": True,
        "CanApplyToExpenses": True,
        "CanApplyToLiabilities": True,
        "CanApplyToRevenue": False,
    },
    "any": {
        "CanApplyToAssets": True,
        "CanApplyToEquity": True,
        "CanApplyToExpenses": True,
        "CanApplyToLiabilities": True,
        "CanApplyToRevenue": True,
    },
}


@dataclass(frozen=True)
class ContactSpec:
    """A contact already in Xero before recon's first run."""

    name: str
    first: str
    last: str
    email: str
    customer: bool
    supplier: bool
    currency: str


XERO_CONTACTS: Final[dict[str, tuple[ContactSpec, ...]]] = {
    "UK": (
        ContactSpec(
            "British Gas Business",
            "",
            "",
            "business.billing@britishgas.example",
            False,
            True,
            "GBP",
        ),
        ContactSpec(
            "Shoreditch Cleaning Services Ltd",
            "Marta",
            "Silva",
            "accounts@sdcleaning.example",
            False,
            True,
            "GBP",
        ),
        ContactSpec("Ricoh UK Ltd", "", "", "invoices@ricoh.example", False, True, "GBP"),
        ContactSpec("BT Business", "", "", "billing@bt.example", False, True, "GBP"),
        ContactSpec(
            NUMBER_CLASH_CONTACT,
            "Oscar",
            "Pembroke",
            "finance@meridian-legal.example",
            True,
            False,
            "GBP",
        ),
        # PLANTED name_clash_contact: same name as a Nexudus company, ACTIVE, no ContactNumber
        # (made in Xero's UI), another e-mail: a transfer must use it rather than make a second
        # contact "Name (email)" (xero-api.md §6: PUT errors on a Name that already exists).
        ContactSpec(
            NAME_CLASH_COMPANY, "Harriet", "Lowe", "finance@brightline.example", True, False, "GBP"
        ),
    ),
    "IE": (
        ContactSpec(
            "Electric Ireland", "", "", "business@electricireland.example", False, True, "EUR"
        ),
        ContactSpec(
            "Docklands Facilities Ltd",
            "Ciaran",
            "Byrne",
            "accounts@docklandsfm.example",
            False,
            True,
            "EUR",
        ),
    ),
    "OTHER": (
        ContactSpec(
            "Kiwi Traders Ltd", "Aroha", "Ngata", "accounts@kiwitraders.example", True, False, "NZD"
        ),
    ),
    "NORTH": (
        ContactSpec("Electricity North West", "", "", "business@enwl.example", False, True, "GBP"),
        ContactSpec(
            "Ancoats Facilities Ltd",
            "Dev",
            "Mistry",
            "accounts@ancoatsfm.example",
            False,
            True,
            "GBP",
        ),
        ContactSpec(
            "Yorkshire Water Business", "", "", "billing@yorkshirewater.example", False, True, "GBP"
        ),
    ),
    "SG": (ContactSpec("SP Group", "", "", "business@spgroup.example", False, True, "SGD"),),
    "US": (ContactSpec("Con Edison", "", "", "business@coned.example", False, True, "USD"),),
}
CONTACTS_UPDATED: Final = "2026-06-30T08:15:00Z"


@dataclass(frozen=True)
class TrackingSpec:
    """A Xero tracking category and its options, each (name, status)."""

    name: str
    options: tuple[tuple[str, str], ...]
    status: str = "ACTIVE"


# Per organisation; the own-organisation ones (UK, IE) have none.
XERO_TRACKING: Final[dict[str, tuple[TrackingSpec, ...]]] = {
    "NORTH": (
        # One option per location (help.nexudus.com "setting up tracking categories in Xero").
        # PLANTED archived_tracking_option: a closed site's option, kept for its history.
        TrackingSpec(
            LOCATION_CATEGORY,
            (("Manchester", "ACTIVE"), ("Leeds", "ACTIVE"), ("Sheffield", "ARCHIVED")),
        ),
        # The accountant's own second category (Xero allows two active ones per line).
        TrackingSpec(
            "Revenue stream",
            (("Memberships", "ACTIVE"), ("Meeting rooms", "ACTIVE"), ("Events", "ACTIVE")),
        ),
        # PLANTED archived_tracking_category: last year's campaign, archived.
        TrackingSpec("Campaign", (("Open Day 2025", "ACTIVE"),), status="ARCHIVED"),
    ),
}
ARCHIVED_TRACKING_OPTION: Final = "Sheffield"
ARCHIVED_TRACKING_CATEGORY: Final = "Campaign"


@dataclass(frozen=True)
class AppSpec:
    """A demo Xero app: its key, name, grant, the organisations it reaches and its redirect URIs."""

    key: str
    name: str
    grant: str
    orgs: tuple[str, ...]
    redirect_uris: tuple[str, ...] = ()


# The first client-credentials app is the sandbox's default (UK). A Custom Connection reaches
# one organisation, so each Hive organisation has its own; the web app reaches all five.
XERO_APPS: Final = (
    AppSpec("uk", "recon demo (Custom Connection UK)", "client_credentials", ("UK",)),
    AppSpec("ie", "recon demo (Custom Connection IE)", "client_credentials", ("IE",)),
    AppSpec("north", "recon demo (Custom Connection North)", "client_credentials", ("NORTH",)),
    AppSpec("sg", "recon demo (Custom Connection SG)", "client_credentials", ("SG",)),
    AppSpec("us", "recon demo (Custom Connection US)", "client_credentials", ("US",)),
    AppSpec(
        "web",
        "recon demo (web app)",
        "authorization_code",
        ("UK", "IE", "NORTH", "SG", "US"),
        ("http://localhost:8765/callback",),
    ),
)
