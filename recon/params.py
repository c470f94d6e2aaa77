"""Typed run parameters, read from ``params/*.yaml``.

A leaf: imports only recon.errors. One set of names serves the YAML files,
the notebooks' ``parameters`` cells and the step functions (a test keeps them
in step). Connection settings name environment variables for secrets; a
params file never holds a secret, and ``recon run`` never passes one to a
notebook.

``target: sandbox`` points every client at the embedded sandbox (URLs and demo
credentials come from it); ``target: live`` uses the ``xero`` and ``nexudus``
sections.

The period is ``period_start``/``period_end`` (dates), or ``period``: one of
``PERIODS`` (``last-month``...), evaluated as of ``period_as_of`` (default: now)
in the location's time zone. The zone is Nexudus' and known only once a run has
connected, so ``RunParams.in_zone`` is called there (``recon.session.connect``);
until then the dates of a relative period are those of UTC.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from recon.errors import ParamsError

__all__ = [
    "CONTACT_KEY_CHOICES",
    "INVOICE_DATE_CHOICES",
    "PERIODS",
    "REQUIRED_KEYS",
    "SANDBOX_LATENCY_CHOICES",
    "XERO_STATUS_CHOICES",
    "LocationMap",
    "NexudusSettings",
    "OrganisationBinding",
    "RunParams",
    "XeroSettings",
    "is_env_name",
    "load_params",
    "period_dates",
]


@dataclass(frozen=True)
class XeroSettings:
    """Where the real Xero is and which environment variables hold the app's credentials."""

    api_url: str = "https://api.xero.com/api.xro/2.0"
    identity_url: str = "https://api.xero.com"
    token_url: str = "https://identity.xero.com/connect/token"
    authorize_url: str = "https://login.xero.com/identity/connect/authorize"
    grant: str = "client_credentials"
    client_id_env: str = "XERO_CLIENT_ID"
    client_secret_env: str = "XERO_CLIENT_SECRET"
    redirect_uri: str | None = None
    scopes: str = (
        "accounting.invoices accounting.payments accounting.contacts accounting.settings.read"
    )
    per_minute: int = 60


@dataclass(frozen=True)
class NexudusSettings:
    """Where the real Nexudus is and which environment variables hold the user's credentials."""

    api_url: str = "https://spaces.nexudus.com/api"
    username_env: str = "NEXUDUS_USERNAME"
    password_env: str = "NEXUDUS_PASSWORD"


@dataclass(frozen=True)
class LocationMap:
    """Where one Nexudus location books: its Xero organisation and, when several share one, its
    tracking option."""

    organisation: str
    tracking_category: str | None = None
    tracking_option: str | None = None
    # This location's "prices typed in the back-end include tax" (None: the run's setting).
    prices_include_tax: bool | None = None


@dataclass(frozen=True)
class OrganisationBinding:
    """A person's confirmation that one Nexudus location books into one Xero organisation,
    named by both its id and its name (params ``bindings``)."""

    organisation_id: str
    organisation: str
    # Who confirmed it (recorded in the ledger); None: the params file itself.
    confirmed_by: str | None = None
    # Replace a binding the ledger recorded to another organisation: moving books on purpose.
    rebind: bool = False


@dataclass(frozen=True)
class RunParams:
    """Everything one run needs to know, validated."""

    source: str = "(defaults)"
    target: str = "sandbox"
    period_start: date = date(2026, 8, 1)
    period_end: date = date(2026, 10, 31)
    location: str = "Hive Shoreditch"
    organisation: str | None = None
    tax_map_file: str | None = None
    output_dir: str = "out"
    ledger_file: str | None = None
    sandbox_dir: str | None = None
    # How long the sandbox's Xero takes to answer when a run starts the sandbox (``target:
    # sandbox``): "xero" (as slowly as the real Xero, 0.3 s a call + 20 ms per element written),
    # "off" (at once), or "<per_call>,<per_element>" seconds. The environment variable
    # RECON_SANDBOX_XERO_LATENCY, when set, wins (recon.sandbox.start).
    sandbox_xero_latency: str = "xero"
    push: bool = False
    apply: bool = False
    # Under papermill: void in Xero what was voided or deleted in Nexudus, and allocate credit
    # notes, as the status sync proposes (notebooks ask with a button instead). Never automatic.
    apply_xero: bool = False
    # Whether the location's prices typed in Nexudus include tax (Settings > Tax, "Prices
    # typed in the back-end include tax"). The API has no such field (nexudus.md §7.4, §13),
    # so it is a parameter, checked against each invoice's own totals (§7.2). None: decided
    # per invoice from those totals. A location in ``locations`` may set its own.
    prices_include_tax: bool | None = None
    # Write each new Xero invoice id into the Nexudus invoice's SystemId. A whole-record PUT
    # costs three Nexudus calls an invoice (§4) under a limit of 60 writes a minute (§5), so
    # it is off by default: recon's ledger is the record of what went to Xero.
    write_back_system_id: bool = False
    # When Xero's arithmetic cannot reproduce Nexudus' rounding of an invoice any other way,
    # send each line as quantity 1 x Nexudus' stored line amount (the original quantity and
    # price kept in the description). Off: such an invoice is held back with the reason.
    send_line_amounts: bool = False
    # Nexudus coworker id -> the Xero ContactID its invoices go to, for a customer the contact
    # preview finds ambiguous (or matches wrongly). Pins win over every other match.
    contact_pins: dict[int, str] = field(default_factory=dict)
    # A non-credit invoice whose total is below zero: "hold" it back (Xero refuses to approve
    # one), or send it to Xero as a "credit_note".
    negative_invoices: str = "hold"
    # How a Nexudus customer finds its Xero contact after any pin (recon.transfer.contacts):
    # "number" (only recon's own ContactNumber NX-<id>; anything else becomes a new contact),
    # "name" (also one active contact of the same name: Nexudus' own integration matches on
    # the billing name, nexudus.md §11), or "name_or_email" (also a single contact with the
    # customer's billing e-mail and an agreeing name).
    contact_key: str = "name_or_email"
    xero: XeroSettings = field(default_factory=XeroSettings)
    nexudus: NexudusSettings = field(default_factory=NexudusSettings)
    # Nexudus location name -> where it books. Empty: the run's one location books into
    # ``organisation`` (or, on the sandbox, the organisation the sandbox wires it to).
    locations: dict[str, LocationMap] = field(default_factory=dict)
    # Nexudus location name -> the Xero organisation a person confirmed it books into
    # (recon.bindings): until one is confirmed, every invoice of the location is held back.
    bindings: dict[str, OrganisationBinding] = field(default_factory=dict)
    # The status new invoices and credit notes get in Xero: DRAFT ("Draft"), SUBMITTED
    # ("Awaiting approval") or AUTHORISED ("Approved", Nexudus' own choice). Never PAID or
    # VOIDED: Xero reaches those through payments and voids, not on creation.
    xero_status: str = "AUTHORISED"
    # The Xero invoice date: "issue" (the Nexudus invoice's creation date, Nexudus' own choice)
    # or "period" (the first day of the period it bills, InvoiceFromDate).
    invoice_date: str = "issue"
    # A relative period (one of PERIODS) instead of period_start/period_end; the dates follow
    # from it (see the module docstring). None: the dates are the file's.
    period: str | None = None
    # The instant a relative period is evaluated at (default: now). ``recon run`` fixes it at
    # the run's start, so every step of a run sees the same month even across midnight.
    period_as_of: datetime | None = None
    # Plan and report, write nothing: push, apply and apply_xero are false whatever is asked.
    dry_run: bool = False
    # The zone a relative period was evaluated in (set by ``in_zone``; None: UTC). Not a key.
    period_zone: str | None = None

    def binding_for(self, name: str) -> OrganisationBinding | None:
        """The ``bindings`` entry of a location (names compared case-insensitively)."""
        folded = name.casefold()
        return next((b for n, b in self.bindings.items() if n.casefold() == folded), None)

    def location_map(self, name: str) -> LocationMap | None:
        """The map entry of a location (names compared case-insensitively)."""
        folded = name.casefold()
        return next((m for n, m in self.locations.items() if n.casefold() == folded), None)

    def prices_include_tax_for(self, name: str) -> bool | None:
        """The "prices include tax" setting of a location: its own, else the run's."""
        mapped = self.location_map(name)
        if mapped is not None and mapped.prices_include_tax is not None:
            return mapped.prices_include_tax
        return self.prices_include_tax

    def with_overrides(self, **changes: Any) -> RunParams:
        """A copy with notebook/CLI overrides applied and validated (``None`` keeps the value).

        A ``period`` replaces the dates; a ``period_start`` or ``period_end`` replaces a
        relative ``period``; both at once is an error.
        """
        data = {k: v for k, v in changes.items() if v is not None and k != "params_file"}
        dates = {"period_start", "period_end"} & set(data)
        if "period" in data and dates:
            raise ParamsError(
                f"give either period or {' and '.join(sorted(dates))}, not both",
                file=self.source,
                key="period",
            )
        if dates:
            data["period"] = None  # explicit dates replace a relative period
        return _validate(replace(self, **_coerce(data, self.source)))

    def in_zone(self, zone: tzinfo) -> RunParams:
        """These params with a relative ``period`` evaluated in ``zone`` (the location's); the
        same params when the period is given by dates."""
        if self.period is None:
            return self
        return _validate(replace(self, period_zone=str(zone)))

    def save(self, path: str | Path) -> Path:
        """Write these params as a params file that loads back to the same values (paths made
        absolute, a relative period kept relative); returns its path."""
        data: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("source", "period_zone"):
                continue
            value = getattr(self, f.name)
            if f.name in ("period_start", "period_end") and self.period is not None:
                continue
            if f.name in ("tax_map_file", "ledger_file", "sandbox_dir") and value:
                value = str(Path(self.resolve(value) or value).resolve())
            data[f.name] = _plain(value)
        path = Path(path)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # tasks of one run may share it
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
        os.replace(tmp, path)
        return path

    def resolve(self, path: str | None) -> Path | None:
        """A path from the params file, relative to the folder of the file that named it."""
        if not path:
            return None
        p = Path(path)
        if p.is_absolute() or self.source == "(defaults)":
            return p
        base = Path(self.source).resolve().parent
        candidate = base / p
        if candidate.exists():
            return candidate
        # params files live in params/; paths in them may be written from the repository root
        # (``output_dir: out`` is the checkout's out/, whether or not it exists yet).
        if (base.parent / p).exists() or base.name == "params":
            return base.parent / p
        return candidate

    def output_path(self) -> Path:
        """The folder of reports and run folders (``output_dir``), resolved as every path of the
        params is: from the params file's folder, never from the working folder."""
        return self.resolve(self.output_dir) or Path(self.output_dir)

    def secret(self, env_name: str) -> str:
        """Read a credential from the environment (never from a params file)."""
        if not is_env_name(env_name):  # never echo what may be the secret itself
            raise ParamsError(
                "a setting that should name an environment variable holds something else (it "
                "may be the secret itself: take it out of the params file and name the variable "
                "that holds it)",
                file=self.source,
            )
        value = os.environ.get(env_name)
        if not value:
            raise ParamsError(
                f"environment variable {env_name} is not set; export it before the run",
                file=self.source,
                key=env_name,
            )
        return value


NEGATIVE_INVOICE_CHOICES = ("hold", "credit_note")
XERO_STATUS_CHOICES = ("DRAFT", "SUBMITTED", "AUTHORISED")
INVOICE_DATE_CHOICES = ("issue", "period")
CONTACT_KEY_CHOICES = ("number", "name", "name_or_email")
# Relative periods: calendar months and quarters of the location's calendar.
PERIODS = ("last-month", "this-month", "month-to-date", "last-quarter")
GRANT_CHOICES = ("client_credentials", "authorization_code")
# Keys a params file must give. Each picks *which* books a run reads and writes, so a silent default
# (the demo's quarter, the demo's location) would reconcile the wrong invoices. ``location`` may be
# left out when a ``locations`` map names every location: ``recon run`` runs each of them, and a
# notebook opened by hand takes the map's first one.
# Every other key may be omitted, because its built-in default decides nothing about the books:
# ``target`` sandbox (the one target that cannot reach real books), ``push``/``apply`` false and
# ``write_back_system_id``/``send_line_amounts``/``dry_run`` false, ``negative_invoices`` hold
# (nothing is written that was not asked for), ``xero_status`` AUTHORISED and ``invoice_date``
# issue (Nexudus' own integration's choices), ``contact_key`` name_or_email (every match recon can
# prove; ambiguous ones are held back, never guessed), ``period``/``period_as_of`` none (the dates
# are the file's), ``sandbox_xero_latency`` xero (how fast the sandbox answers, never what it
# books), ``organisation``/``tax_map_file``/``ledger_file``/
# ``sandbox_dir``/``prices_include_tax`` none (their absence has a meaning of its own, documented
# on ``RunParams``), ``output_dir`` ``out`` (a folder of reports, not of books), and the ``xero``
# and ``nexudus`` sections (the real services' addresses and recon's standard variable names).
# ``period_start``/``period_end`` may be left out when ``period`` gives a relative period.
REQUIRED_KEYS = ("period_start", "period_end", "location")
MISSING_HELP = {
    "period_start": "period_start is the first day of the invoices to reconcile (YYYY-MM-DD), "
    f"or give period: one of {', '.join(PERIODS)}",
    "period_end": "period_end is the last day, inclusive (YYYY-MM-DD)",
    "location": "location is the Nexudus location (business) to reconcile, by name or id",
}
# What an environment variable name looks like (POSIX: upper-case letters, digits and underscores).
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
# A run of 16 or more letters and digits mixing both: a client id, secret or password pasted where a
# variable name was expected (XERO_CLIENT_SECRET has no such run).
_CREDENTIAL_LIKE = re.compile(r"(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{16,}")
# Keys that hold a path: text (a pathlib.Path from a notebook or the CLI is taken as its text).
PATH_KEYS = ("tax_map_file", "output_dir", "ledger_file", "sandbox_dir")
# The answer times ``sandbox_xero_latency`` may name besides "<per_call>,<per_element>" seconds.
SANDBOX_LATENCY_CHOICES = ("xero", "off")
BOOL_KEYS = (
    "push",
    "apply",
    "apply_xero",
    "write_back_system_id",
    "send_line_amounts",
    "prices_include_tax",
    "dry_run",
)


def _plain(value: Any) -> Any:
    """A parameter's value as YAML writes it: sections and map entries as mappings, an instant as
    ISO text."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def period_dates(period: str, today: date) -> tuple[date, date]:
    """First and last day (inclusive) of a relative period (one of ``PERIODS``) seen on ``today``.

    Months and quarters are calendar ones (quarters start in January, April, July, October);
    ``this-month`` runs to the month's last day, ``month-to-date`` to ``today``.
    """
    first_of_month = today.replace(day=1)
    if period == "this-month":
        return first_of_month, _month_end(first_of_month)
    if period == "month-to-date":
        return first_of_month, today
    if period == "last-month":
        last = first_of_month - timedelta(days=1)
        return last.replace(day=1), last
    if period == "last-quarter":
        quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        last = quarter_start - timedelta(days=1)
        return date(last.year, last.month - 2, 1), last
    raise ValueError(f"not a relative period: {period!r} (one of {', '.join(PERIODS)})")


def _month_end(first: date) -> date:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def is_env_name(text: object) -> bool:
    """Whether ``text`` reads as an environment variable's name (and not as a pasted credential)."""
    return (
        isinstance(text, str)
        and ENV_NAME.fullmatch(text) is not None
        and not _CREDENTIAL_LIKE.search(text)
    )


def _type_name(value: object) -> str:
    if value is None:
        return "empty (null)"
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a mapping",
        str: "text",
    }.get(type(value), f"a {type(value).__name__}")


def _contact_pins(raw: Any, source: str) -> dict[int, str]:
    """``contact_pins``: Nexudus coworker id -> Xero ContactID, both checked."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ParamsError(
            "must map Nexudus coworker ids to Xero ContactIDs", file=source, key="contact_pins"
        )
    pins: dict[int, str] = {}
    for coworker, contact in raw.items():
        if not str(coworker).strip().isdigit():
            raise ParamsError(
                f"{coworker!r} is not a Nexudus coworker id (a number)",
                file=source,
                key="contact_pins",
            )
        if not isinstance(contact, str) or len(contact.strip()) != CONTACT_ID_LENGTH:
            raise ParamsError(
                f"the pin of coworker {coworker} is not a Xero ContactID (a GUID)",
                file=source,
                key=f"contact_pins.{coworker}",
            )
        pins[int(str(coworker).strip())] = contact.strip()
    return pins


CONTACT_ID_LENGTH = 36  # a GUID as Xero writes it: 8-4-4-4-12 hex digits


def _coerce(data: dict[str, Any], source: str) -> dict[str, Any]:
    out = dict(data)
    for key in ("period_start", "period_end"):
        if isinstance(out.get(key), datetime):
            raise ParamsError(
                "is a date and time: give the day only (YYYY-MM-DD)", file=source, key=key
            )
        if key in out and not isinstance(out[key], date):
            try:
                out[key] = date.fromisoformat(str(out[key]))
            except ValueError:
                raise ParamsError(
                    f"{out[key]!r} is not a date (use YYYY-MM-DD)", file=source, key=key
                ) from None
    as_of = out.get("period_as_of")
    if as_of is not None and not isinstance(as_of, datetime):
        try:
            out["period_as_of"] = datetime.fromisoformat(str(as_of))
        except ValueError:
            raise ParamsError(
                f"{as_of!r} is not a date and time (YYYY-MM-DDTHH:MM:SS+00:00)",
                file=source,
                key="period_as_of",
            ) from None
    if isinstance(out.get("period_as_of"), datetime) and out["period_as_of"].tzinfo is None:
        out["period_as_of"] = out["period_as_of"].replace(tzinfo=UTC)  # YAML's naive UTC
    # Choices are compared as Xero and recon write them (AUTHORISED, issue), whatever the case.
    if isinstance(out.get("xero_status"), str):
        out["xero_status"] = out["xero_status"].strip().upper()
    for key in ("invoice_date", "period", "contact_key"):
        if isinstance(out.get(key), str):
            out[key] = out[key].strip().lower()
    for key in BOOL_KEYS:
        if key == "prices_include_tax" and out.get(key) is None:
            continue
        if key in out and not isinstance(out[key], bool):
            if not isinstance(out[key], (str, int)) or isinstance(out[key], float):
                raise ParamsError(
                    f"must be true or false, not {_type_name(out[key])}", file=source, key=key
                )
            text = str(out[key]).strip().lower()
            if text not in ("true", "false", "yes", "no", "1", "0"):
                raise ParamsError(f"{out[key]!r} is not true or false", file=source, key=key)
            out[key] = text in ("true", "yes", "1")
    # A Nexudus location may be given by its numeric id, an organisation by a name YAML reads as a
    # number: both are names here.
    for key in ("location", "organisation"):
        if isinstance(out.get(key), int) and not isinstance(out[key], bool):
            out[key] = str(out[key])
    for key in PATH_KEYS:
        if isinstance(out.get(key), os.PathLike):
            out[key] = os.fspath(out[key])
    if "sandbox_xero_latency" in out:
        out["sandbox_xero_latency"] = _sandbox_latency(out["sandbox_xero_latency"], source)
    if "contact_pins" in out:
        out["contact_pins"] = _contact_pins(out["contact_pins"], source)
    if "bindings" in out:
        out["bindings"] = _bindings(out["bindings"], source)
    return out


def _sandbox_latency(raw: Any, source: str) -> str:
    """``sandbox_xero_latency`` as text: "xero", "off" or "<per_call>,<per_element>" seconds (YAML
    reads a bare ``off`` as false; one number is the seconds of every call)."""
    if raw is False:
        return "off"
    number = isinstance(raw, int | float) and not isinstance(raw, bool)
    text = str(raw).strip().lower().replace(" ", "") if number or isinstance(raw, str) else None
    if text in SANDBOX_LATENCY_CHOICES:
        return text
    seconds: list[float] = []
    if text is not None and text.count(",") <= 1:
        try:
            seconds = [float(part) for part in (*text.split(","), "0")[:2]]
        except ValueError:
            seconds = []
    if len(seconds) != 2 or not all(math.isfinite(s) and s >= 0 for s in seconds):
        shown = repr(raw) if isinstance(raw, str) else _type_name(raw)
        raise ParamsError(
            f"{shown} is not an answer time: use xero (as slowly as the real Xero), off (at "
            "once), or '<per_call>,<per_element>' seconds, e.g. '0.3,0.02'",
            file=source,
            key="sandbox_xero_latency",
        )
    return f"{seconds[0]!r},{seconds[1]!r}"


def _bindings(raw: Any, source: str) -> dict[str, OrganisationBinding]:
    """``bindings``: Nexudus location -> {organisation_id, organisation, confirmed_by, rebind}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ParamsError(
            "must map each Nexudus location to {organisation_id, organisation}",
            file=source,
            key="bindings",
        )
    out: dict[str, OrganisationBinding] = {}
    for name, entry in raw.items():
        key = f"bindings.{name}"
        if isinstance(entry, OrganisationBinding):
            out[str(name)] = entry
            continue
        if not isinstance(entry, dict):
            raise ParamsError(
                "needs organisation_id (the Xero tenant id) and organisation (its name)",
                file=source,
                key=key,
            )
        unknown = sorted(set(entry) - {"organisation_id", "organisation", "confirmed_by", "rebind"})
        if unknown:
            raise ParamsError(
                f"unknown setting(s) {', '.join(unknown)}; known: confirmed_by, organisation, "
                "organisation_id, rebind",
                file=source,
                key=f"{key}.{unknown[0]}",
            )
        for setting in ("organisation_id", "organisation"):
            if not isinstance(entry.get(setting), str) or not entry[setting].strip():
                raise ParamsError(
                    f"must be text, not {_type_name(entry.get(setting))}: a binding names both "
                    "the Xero organisation's id and its name",
                    file=source,
                    key=f"{key}.{setting}",
                )
        if len(entry["organisation_id"].strip()) != CONTACT_ID_LENGTH:
            raise ParamsError(
                "is not a Xero tenant id (a GUID, 8-4-4-4-12 hex digits)",
                file=source,
                key=f"{key}.organisation_id",
            )
        who = entry.get("confirmed_by")
        if who is not None and not isinstance(who, str):
            raise ParamsError(
                f"must be text, not {_type_name(who)}", file=source, key=f"{key}.confirmed_by"
            )
        rebind = entry.get("rebind", False)
        if not isinstance(rebind, bool):
            raise ParamsError(
                f"must be true or false, not {_type_name(rebind)}",
                file=source,
                key=f"{key}.rebind",
            )
        out[str(name)] = OrganisationBinding(
            entry["organisation_id"].strip(), entry["organisation"].strip(), who, rebind
        )
    return out


def _check_types(params: RunParams) -> None:
    """Every value has the type its key needs; the error names the key and the type found, never
    the value (it could be a secret in the wrong place)."""
    src = params.source
    texts = {
        "target": False,
        "location": False,
        "negative_invoices": False,
        "contact_key": False,
        "organisation": True,
    }
    texts |= {"xero_status": False, "invoice_date": False, "period": True, "period_zone": True}
    texts |= {key: key != "output_dir" for key in PATH_KEYS} | {"sandbox_xero_latency": False}
    for key, may_be_none in texts.items():
        value = getattr(params, key)
        if not (isinstance(value, str) or (may_be_none and value is None)):
            raise ParamsError(
                f"must be text{' or null' if may_be_none else ''}, not {_type_name(value)}",
                file=src,
                key=key,
            )
    for key in ("period_start", "period_end"):
        value = getattr(params, key)
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ParamsError(
                f"must be a date (YYYY-MM-DD), not {_type_name(value)}", file=src, key=key
            )
    as_of = params.period_as_of
    if as_of is not None and not isinstance(as_of, datetime):
        raise ParamsError(
            f"must be a date and time, not {_type_name(as_of)}", file=src, key="period_as_of"
        )
    for key in BOOL_KEYS:
        value = getattr(params, key)
        if not (isinstance(value, bool) or (key == "prices_include_tax" and value is None)):
            raise ParamsError(f"must be true or false, not {_type_name(value)}", file=src, key=key)
    for section, settings in (("xero", params.xero), ("nexudus", params.nexudus)):
        for f in fields(settings):
            key, value = f"{section}.{f.name}", getattr(settings, f.name)
            if f.name == "per_minute":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ParamsError(
                        f"must be a whole number of calls a minute (1 or more), not "
                        f"{_type_name(value) if not isinstance(value, int) else value}",
                        file=src,
                        key=key,
                    )
            elif f.name.endswith("_env"):
                if not is_env_name(value):
                    example = getattr(type(settings)(), f.name)
                    raise ParamsError(
                        "holds something that is not an environment variable name (upper-case "
                        f"letters, digits and _, e.g. {example}). If it is the secret itself, take "
                        "it out of the file (and change it: it has been written down), export it "
                        "as an environment variable and name that variable here",
                        file=src,
                        key=key,
                    )
            elif not (isinstance(value, str) or (f.name == "redirect_uri" and value is None)):
                raise ParamsError(f"must be text, not {_type_name(value)}", file=src, key=key)
    if params.xero.grant not in GRANT_CHOICES:
        raise ParamsError(
            f"must be one of {', '.join(GRANT_CHOICES)}, not {params.xero.grant!r}",
            file=src,
            key="xero.grant",
        )


def _choice(params: RunParams, key: str, choices: Sequence[str], why: str = "") -> None:
    value = getattr(params, key)
    if value not in choices:
        raise ParamsError(
            f"{key} must be one of {', '.join(choices)}, not {value!r}{why}",
            file=params.source,
            key=key,
        )


def _with_period(params: RunParams) -> RunParams:
    """``params`` with the dates of its relative period, if it has one (module docstring)."""
    if params.period is None:
        return params
    _choice(params, "period", PERIODS, " (or give period_start and period_end)")
    try:
        zone: tzinfo = ZoneInfo(params.period_zone) if params.period_zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise ParamsError(
            f"unknown time zone {params.period_zone!r}", file=params.source, key="period"
        ) from None
    now = params.period_as_of or datetime.now(tz=UTC)
    first, last = period_dates(params.period, now.astimezone(zone).date())
    return replace(params, period_start=first, period_end=last)


def _validate(params: RunParams) -> RunParams:
    src = params.source
    _check_types(params)
    params = _with_period(params)
    if params.dry_run:  # a dry run writes nothing, whatever else asks to
        params = replace(params, push=False, apply=False, apply_xero=False)
    _choice(
        params,
        "xero_status",
        XERO_STATUS_CHOICES,
        " (recon creates invoices as Draft, Awaiting approval or Approved; Xero marks one "
        "paid or voided by a payment or a void, never on creation)",
    )
    _choice(params, "invoice_date", INVOICE_DATE_CHOICES)
    _choice(
        params,
        "contact_key",
        CONTACT_KEY_CHOICES,
        " (how a customer finds its Xero contact: recon's number only, or also by name, or also "
        "by billing e-mail)",
    )
    if params.target not in ("sandbox", "live"):
        raise ParamsError(
            f"target must be 'sandbox' or 'live', not {params.target!r}", file=src, key="target"
        )
    if params.period_end < params.period_start:
        raise ParamsError(
            f"the period is empty: period_end {params.period_end} is before period_start "
            f"{params.period_start}",
            file=src,
            key="period_end",
        )
    if params.negative_invoices not in NEGATIVE_INVOICE_CHOICES:
        raise ParamsError(
            f"negative_invoices must be one of {', '.join(NEGATIVE_INVOICE_CHOICES)}, not "
            f"{params.negative_invoices!r}",
            file=src,
            key="negative_invoices",
        )
    if not str(params.location).strip():
        raise ParamsError(
            "location is empty: name the Nexudus location (business) to reconcile",
            file=src,
            key="location",
        )
    return params


def _locations(raw: Any, source: str) -> dict[str, LocationMap]:
    """Read and check the ``locations`` map; two locations in one organisation need distinct
    tracking options."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ParamsError(
            "must map each Nexudus location to {organisation, tracking_category, tracking_option}",
            file=source,
            key="locations",
        )
    out: dict[str, LocationMap] = {}
    for name, entry in raw.items():
        key = f"locations.{name}"
        if isinstance(entry, str):
            entry = {"organisation": entry}
        if not isinstance(entry, dict) or not entry.get("organisation"):
            raise ParamsError(
                "needs an organisation (Xero tenant name or id)", file=source, key=key
            )
        for setting in ("organisation", "tracking_category", "tracking_option"):
            value = entry.get(setting)
            if value is not None and (not isinstance(value, (str, int)) or isinstance(value, bool)):
                raise ParamsError(
                    f"must be text, not {_type_name(value)}", file=source, key=f"{key}.{setting}"
                )
        settings = {"organisation", "tracking_category", "tracking_option", "prices_include_tax"}
        unknown = sorted(set(entry) - settings)
        if unknown:
            raise ParamsError(
                f"unknown setting(s) {', '.join(unknown)}", file=source, key=f"{key}.{unknown[0]}"
            )
        if bool(entry.get("tracking_category")) != bool(entry.get("tracking_option")):
            raise ParamsError(
                "tracking_category and tracking_option go together", file=source, key=key
            )
        inclusive = entry.get("prices_include_tax")
        if inclusive is not None and not isinstance(inclusive, bool):
            raise ParamsError(
                f"{inclusive!r} is not true or false", file=source, key=f"{key}.prices_include_tax"
            )
        out[str(name)] = LocationMap(
            str(entry["organisation"]),
            None if entry.get("tracking_category") is None else str(entry["tracking_category"]),
            None if entry.get("tracking_option") is None else str(entry["tracking_option"]),
            inclusive,
        )
    by_org: dict[str, list[str]] = {}
    for name, m in out.items():
        by_org.setdefault(m.organisation.casefold(), []).append(name)
    for names in by_org.values():
        if len(names) < 2:
            continue
        options = [(out[n].tracking_category, out[n].tracking_option) for n in names]
        if any(o[1] is None for o in options) or len(set(options)) < len(options):
            raise ParamsError(
                f"locations {', '.join(names)} share Xero organisation "
                f"{out[names[0]].organisation!r}: each needs its own tracking option (e.g. "
                "tracking_category: Location), or its invoices could not be told apart",
                file=source,
                key=f"locations.{names[1]}",
            )
    return out


def _section(cls: type, raw: Any, source: str, key: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ParamsError("must be a mapping of settings", file=source, key=key)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(
            f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
            file=source,
            key=f"{key}.{unknown[0]}",
        )
    for secretish in ("client_secret", "password", "token", "access_token", "refresh_token"):
        if secretish in raw:
            raise ParamsError(
                "secrets never go in a params file: name an environment variable instead",
                file=source,
                key=f"{key}.{secretish}",
            )
    return cls(**raw)


def load_params(path: str | Path, *, required: Sequence[str] = REQUIRED_KEYS) -> RunParams:
    """Read and validate a params YAML; every error names the file and the key.

    ``required``: the keys the file must give (``REQUIRED_KEYS``, see there for
    why the others may be omitted); a command that needs no period or location
    (``recon login``) may ask for fewer.
    """
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise ParamsError("params file not found", file=source) from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: YAML's own date parsing (2026-13-01)
        raise ParamsError(f"not valid YAML: {exc}", file=source) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError("the params file must be a mapping of keys to values", file=source)
    known = {f.name for f in fields(RunParams)} - {"source", "period_zone"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(
            f"unknown key; known keys: {', '.join(sorted(known))}", file=source, key=unknown[0]
        )
    given_dates = [k for k in ("period_start", "period_end") if raw.get(k) is not None]
    if raw.get("period") is not None and given_dates:
        raise ParamsError(
            f"give either period or period_start and period_end, not both (also "
            f"{', '.join(given_dates)} given)",
            file=source,
            key="period",
        )
    missing = [
        key
        for key in required
        if (key not in raw or (key in ("period_start", "period_end") and raw[key] is None))
        and not (key == "location" and isinstance(raw.get("locations"), dict))
        and not (key in ("period_start", "period_end") and raw.get("period") is not None)
    ]
    if missing:
        raise ParamsError(
            f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
            + "; ".join(MISSING_HELP[k] for k in missing if k in MISSING_HELP),
            file=source,
            key=missing[0],
        )
    data = {k: v for k, v in raw.items() if not (k in ("period_start", "period_end") and v is None)}
    if "location" not in raw and isinstance(raw.get("locations"), dict) and raw["locations"]:
        data["location"] = str(next(iter(raw["locations"])))
    data["xero"] = _section(XeroSettings, raw.get("xero"), source, "xero")
    data["nexudus"] = _section(NexudusSettings, raw.get("nexudus"), source, "nexudus")
    locations = _locations(raw.get("locations"), source)
    params = RunParams(
        source=source,
        **_coerce(
            {k: v for k, v in data.items() if k not in ("xero", "nexudus", "locations")}, source
        ),
        xero=data["xero"],
        nexudus=data["nexudus"],
        locations=locations,
    )
    return _validate(params)
