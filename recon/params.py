"""Typed run parameters, read from ``params/*.yaml``.

A leaf: imports only recon.errors. One set of names serves the YAML files,
the notebooks' ``parameters`` cells and the step functions (a test keeps them
in step). Connection settings name environment variables for secrets; a
params file never holds a secret, and ``recon run`` never passes one to a
notebook.

``target: sandbox`` points every client at the embedded sandbox (URLs and demo
credentials come from it); ``target: live`` uses the ``xero`` and ``nexudus``
sections.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from recon.errors import ParamsError

__all__ = [
    "LocationMap",
    "NexudusSettings",
    "RunParams",
    "XeroSettings",
    "load_params",
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
    push: bool = False
    apply: bool = False
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
    # A non-credit invoice whose total is below zero: "hold" it back (Xero refuses to approve
    # one), or send it to Xero as a "credit_note".
    negative_invoices: str = "hold"
    xero: XeroSettings = field(default_factory=XeroSettings)
    nexudus: NexudusSettings = field(default_factory=NexudusSettings)
    # Nexudus location name -> where it books. Empty: the run's one location books into
    # ``organisation`` (or, on the sandbox, the organisation the sandbox wires it to).
    locations: dict[str, LocationMap] = field(default_factory=dict)

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
        """A copy with notebook/CLI overrides applied and validated (``None`` keeps the value)."""
        data = {k: v for k, v in changes.items() if v is not None and k != "params_file"}
        return _validate(replace(self, **_coerce(data, self.source)))

    def resolve(self, path: str | None) -> Path | None:
        """A path from the params file, relative to the folder of the file that named it."""
        if not path:
            return None
        p = Path(path)
        if p.is_absolute() or self.source == "(defaults)":
            return p
        base = Path(self.source).resolve().parent
        candidate = base / p
        # params files live in params/; paths in them may be written from the repository root.
        return (
            candidate if candidate.exists() or not (base.parent / p).exists() else base.parent / p
        )

    def secret(self, env_name: str) -> str:
        """Read a credential from the environment (never from a params file)."""
        value = os.environ.get(env_name)
        if not value:
            raise ParamsError(
                f"environment variable {env_name} is not set; export it before the run",
                file=self.source,
                key=env_name,
            )
        return value


NEGATIVE_INVOICE_CHOICES = ("hold", "credit_note")


def _coerce(data: dict[str, Any], source: str) -> dict[str, Any]:
    out = dict(data)
    for key in ("period_start", "period_end"):
        if key in out and not isinstance(out[key], date):
            try:
                out[key] = date.fromisoformat(str(out[key]))
            except ValueError:
                raise ParamsError(
                    f"{out[key]!r} is not a date (use YYYY-MM-DD)", file=source, key=key
                ) from None
    for key in ("push", "apply", "write_back_system_id", "send_line_amounts", "prices_include_tax"):
        if key == "prices_include_tax" and out.get(key) is None:
            continue
        if key in out and not isinstance(out[key], bool):
            text = str(out[key]).strip().lower()
            if text not in ("true", "false", "yes", "no", "1", "0"):
                raise ParamsError(f"{out[key]!r} is not true or false", file=source, key=key)
            out[key] = text in ("true", "yes", "1")
    if "location" in out and out["location"] is not None:
        out["location"] = str(out["location"])
    return out


def _validate(params: RunParams) -> RunParams:
    src = params.source
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
            entry.get("tracking_category"),
            entry.get("tracking_option"),
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


def load_params(path: str | Path) -> RunParams:
    """Read and validate a params YAML; every error names the file and the key."""
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
    known = {f.name for f in fields(RunParams)} - {"source"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(
            f"unknown key; known keys: {', '.join(sorted(known))}", file=source, key=unknown[0]
        )
    data = dict(raw)
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
