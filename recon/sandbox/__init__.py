"""The embedded sandbox: local Xero and Nexudus servers on 127.0.0.1.

Floor 0: imports nothing of recon outside ``recon.sandbox``, so it can be
lifted out whole. ``start()`` runs both servers in background threads of
this process (a notebook's, a test's); ``python -m recon.sandbox`` runs them in
the foreground and prints one JSON line with everything a client needs.

State lives in SQLite files under ``state_dir`` (default: the user state
folder, or ``RECON_SANDBOX_DIR``), so one run's writes are seen by the next.
The demo data is generated on first start only. Client secrets and the
Nexudus password are made at first start and kept in that folder (never in the
repository); ``Sandbox.__repr__`` does not show them. Xero answers as slowly as the
real service unless told otherwise (``start(xero_latency=...)``, ``RECON_SANDBOX_XERO_LATENCY``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from recon.sandbox.clock import Clock
from recon.sandbox.http import Server
from recon.sandbox.nexudus_ratelimit import NexudusLimits
from recon.sandbox.xero_app import API, XeroApp
from recon.sandbox.xero_ratelimit import (
    LATENCY_ENV,
    NO_LATENCY,
    XERO_LATENCY,
    Latency,
    RateLimits,
    parse_latency,
)

__all__ = [
    "LATENCY_ENV",
    "NO_LATENCY",
    "XERO_LATENCY",
    "Latency",
    "NexudusLimits",
    "RateLimits",
    "Sandbox",
    "default_state_dir",
    "parse_latency",
    "start",
]

CREDENTIALS_FILE = "credentials.json"
SEED_FILE = "seed.json"
# Bump when the demo data changes shape (new locations, new planted cases): older state folders are
# reseeded.
SEED_VERSION = 4


def default_state_dir() -> Path:
    """The sandbox's state folder: ``RECON_SANDBOX_DIR`` if set, else ``<user state>/sandbox``."""
    env = os.environ.get("RECON_SANDBOX_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_state_dir("recon")) / "sandbox"


@dataclass
class Sandbox:
    """A running sandbox: where to reach it, the demo credentials, and its controls."""

    state_dir: Path
    xero_url: str
    nexudus_url: str
    xero_client_id: str
    xero_client_secret: str = field(repr=False)
    xero_tenant_id: str
    xero_apps: dict[str, dict[str, Any]] = field(repr=False)
    nexudus_username: str
    nexudus_password: str = field(repr=False)
    locations: dict[int, str]
    planted: dict[str, Any] = field(repr=False)
    xero: XeroApp = field(repr=False)
    nexudus: Any = field(repr=False)
    clock: Clock = field(repr=False)
    # Nexudus business id -> (tracking category, option) where locations share one organisation.
    location_tracking: dict[int, tuple[str, str] | None] = field(default_factory=dict)
    _servers: list[Server] = field(repr=False, default_factory=list)

    @property
    def organisations(self) -> dict[str, str]:
        """Xero tenant id -> organisation name, for every organisation of the demo."""
        books = self.xero.books
        return {t: str((books.org(t) or {}).get("Name", "")) for t in books.tenants()}

    @property
    def xero_limits(self) -> RateLimits:
        """The rate limits the Xero server enforces now (clients pace to them)."""
        limits: RateLimits = self.xero.limits
        return limits

    @property
    def nexudus_minute_seconds(self) -> float:
        """How long a "minute" of the Nexudus limits lasts (60 s unless a test shrank it)."""
        return float(self.nexudus.limits.minute_seconds)

    @property
    def xero_api_url(self) -> str:
        """The accounting base URL (ends in ``/api.xro/2.0``)."""
        return self.xero_url + API

    @property
    def xero_identity_url(self) -> str:
        """Base of ``/connections``."""
        return self.xero_url

    @property
    def xero_token_url(self) -> str:
        """The OAuth2 token endpoint (``/connect/token``)."""
        return self.xero_url + "/connect/token"

    @property
    def xero_authorize_url(self) -> str:
        """The OAuth2 authorize page (``/identity/connect/authorize``)."""
        return self.xero_url + "/identity/connect/authorize"

    @property
    def nexudus_api_url(self) -> str:
        """The Nexudus API base URL (ends in ``/api``)."""
        return self.nexudus_url + "/api"

    def connection_info(self) -> dict[str, Any]:
        """Everything another client needs, as the one JSON line ``python -m recon.sandbox``
        prints."""
        return {
            "xero": {
                "api_url": self.xero_api_url,
                "identity_url": self.xero_identity_url,
                "token_url": self.xero_token_url,
                "authorize_url": self.xero_authorize_url,
                "client_id": self.xero_client_id,
                "client_secret": self.xero_client_secret,
                "tenant_id": self.xero_tenant_id,
                "apps": self.xero_apps,
            },
            "nexudus": {
                "api_url": self.nexudus_api_url,
                "username": self.nexudus_username,
                "password": self.nexudus_password,
            },
            "locations": {str(k): v for k, v in self.locations.items()},
            "location_tracking": {
                str(k): list(v) if v else None for k, v in self.location_tracking.items()
            },
            "state_dir": str(self.state_dir),
        }

    def set_lock_dates(
        self,
        tenant_id: str,
        *,
        period: date | None = None,
        end_of_year: date | None = None,
    ) -> None:
        """Set or clear (None) an organisation's PeriodLockDate and EndOfYearLockDate, as an
        adviser does in Xero's Financial settings; ``GET /Organisation`` then shows them and
        approved documents, payments and allocations dated on or before them are refused."""
        self.xero.books.set_lock_dates(tenant_id, period=period, end_of_year=end_of_year)

    def stop(self) -> None:
        """Stop the sandbox's servers."""
        for server in self._servers:
            server.stop()
        self._servers.clear()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _credentials(state_dir: Path) -> dict[str, str]:
    path = state_dir / CREDENTIALS_FILE
    if path.exists():
        saved: dict[str, str] = json.loads(path.read_text("utf-8"))
        return saved
    creds = {"nexudus_password": secrets.token_urlsafe(18)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(creds, fh)
    return creds


def start(
    state_dir: str | Path | None = None,
    *,
    seed: int = 2026,
    invoices: int | None = None,
    limits: RateLimits | None = None,
    nexudus_limits: NexudusLimits | None = None,
    xero_latency: Latency | None = None,
    fresh: bool = False,
    xero_port: int = 0,
    nexudus_port: int = 0,
) -> Sandbox:
    """Start both sandbox servers on free loopback ports and return how to reach them.

    ``fresh=True`` wipes the state folder first. ``invoices`` scales the demo
    business (only on a new state folder). ``limits`` sets Xero's rate limits
    (e.g. a one-second "minute" for tests). ``nexudus_limits`` sets Nexudus'
    (default: the real ones, with the "minute" of ``limits`` when given).

    ``xero_latency`` is how long Xero takes to answer (``NO_LATENCY``: at once). Which one
    applies, first to last: ``RECON_SANDBOX_XERO_LATENCY`` when set and not empty (``off``,
    ``xero`` or ``<per_call>,<per_element>`` seconds: the operator's override), then
    ``xero_latency``, then ``XERO_LATENCY``, the real service's. It stays settable while the
    sandbox runs (``sandbox.xero.latency``, ``POST /_sandbox/settings``).
    """
    from recon.sandbox.nexudus_app import NexudusApp
    from recon.sandbox.seed import generate

    folder = Path(state_dir) if state_dir else default_state_dir()
    stamp = {"seed_version": SEED_VERSION, "seed": seed, "invoices": invoices}
    if folder.exists() and not fresh and any(folder.glob("*.sqlite")):
        try:
            previous = json.loads((folder / SEED_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            previous = None
        if previous != stamp:
            # Demo data from another recon version (or another seed/size): start over rather than
            # mix them.
            print(
                f"recon sandbox: {folder} holds other demo data ({previous}); reseeding it as "
                f"{stamp}",
                file=sys.stderr,
            )
            fresh = True
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    creds = _credentials(folder)
    # Written whole (rename) before any database exists: another process starting on this folder
    # never reads half of it.
    tmp = folder / f".{SEED_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(stamp), "utf-8")
    os.replace(tmp, folder / SEED_FILE)
    clock = Clock()
    data = generate(seed=seed, invoices=invoices)
    xero = XeroApp(str(folder / "xero.sqlite"), clock=clock, limits=limits, latency=xero_latency)
    app_secrets = xero.load_seed(data.xero_orgs, data.xero_apps)
    if nexudus_limits is None and limits is not None:
        nexudus_limits = NexudusLimits(minute_seconds=limits.minute_seconds)
    nexudus = NexudusApp(
        folder / "nexudus.sqlite",
        username=data.nexudus.username,
        password=creds["nexudus_password"],
        clock=clock,
        limits=nexudus_limits,
    )
    nexudus.load_seed(data.nexudus)
    servers = [Server(xero, port=xero_port).start(), Server(nexudus, port=nexudus_port).start()]
    default_app = next(a for a in data.xero_apps if a.grant == "client_credentials")
    apps = {
        a.name: {
            "client_id": a.client_id,
            "client_secret": app_secrets[a.client_id],
            "grant": a.grant,
            "tenant_ids": a.tenant_ids,
            "redirect_uris": a.redirect_uris,
        }
        for a in data.xero_apps
    }
    return Sandbox(
        state_dir=folder,
        xero_url=servers[0].url,
        nexudus_url=servers[1].url,
        xero_client_id=default_app.client_id,
        xero_client_secret=app_secrets[default_app.client_id],
        xero_tenant_id=default_app.tenant_ids[0],
        xero_apps=apps,
        nexudus_username=data.nexudus.username,
        nexudus_password=creds["nexudus_password"],
        locations=dict(data.locations),
        planted=data.planted,
        location_tracking=dict(data.location_tracking),
        xero=xero,
        nexudus=nexudus,
        clock=clock,
        _servers=servers,
    )
