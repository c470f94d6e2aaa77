"""Open the two connections a run needs, from params alone.

Floor 2. ``connect(params)`` returns a ``Connection`` with a ``XeroClient`` for
the location's organisation and a ``NexudusClient``. With ``target: sandbox``
it starts (or reuses, in this process) the embedded sandbox and takes its demo
credentials; with ``target: live`` it reads credentials from the environment
variables the params name. Either way no secret is returned, printed or put in
a notebook: they go straight into the clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recon.clients.nexudus import NexudusClient
from recon.clients.xero import XeroClient, XeroConfig
from recon.errors import ParamsError
from recon.params import RunParams, load_params
from recon.sandbox import Sandbox
from recon.sandbox import start as start_sandbox

__all__ = ["Connection", "connect"]

_SANDBOXES: dict[str, Sandbox] = {}


@dataclass
class Connection:
    """Clients for one location and its Xero organisation, plus where the ledger lives."""

    params: RunParams
    xero: XeroClient
    nexudus: NexudusClient
    business: dict[str, Any]
    organisation: dict[str, Any]
    ledger_path: Path
    sandbox: Sandbox | None = field(default=None, repr=False)

    @property
    def location(self) -> str:
        return str(self.business["Name"])

    def close(self) -> None:
        self.xero.close()
        self.nexudus.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Connection location={self.location!r} organisation={self.organisation.get('Name')!r} "
                f"target={self.params.target}>")


def register_sandbox(box: Sandbox) -> None:
    """Let ``connect`` reuse an already running sandbox for its state folder (tests, notebooks)."""
    _SANDBOXES[str(box.state_dir)] = box


def sandbox_for(params: RunParams) -> Sandbox:
    """The embedded sandbox for these params, started once per process and state folder."""
    key = str(params.resolve(params.sandbox_dir) or "")
    if key not in _SANDBOXES:
        _SANDBOXES[key] = start_sandbox(params.resolve(params.sandbox_dir))
    return _SANDBOXES[key]


def _find_business(nexudus: NexudusClient, params: RunParams) -> dict[str, Any]:
    businesses = nexudus.fetch_businesses()
    wanted = str(params.location).strip()
    match = businesses[(businesses["Id"].astype(str) == wanted) | (businesses["Name"].astype(str).str.casefold() == wanted.casefold())]
    if len(match) != 1:
        known = ", ".join(f"{r.Name} ({r.Id})" for r in businesses.itertuples()) or "none"
        raise ParamsError(f"no Nexudus location {wanted!r}; known: {known}", file=params.source, key="location")
    return match.iloc[0].to_dict()


def connect(params: RunParams | str | Path, **overrides: Any) -> Connection:
    """Connect to Xero and Nexudus as the params say (overrides as in a notebook's parameters)."""
    if not isinstance(params, RunParams):
        params = load_params(params)
    if overrides:
        params = params.with_overrides(**overrides)
    box: Sandbox | None = None
    if params.target == "sandbox":
        box = sandbox_for(params)
        nexudus = NexudusClient(box.nexudus_api_url, box.nexudus_username, box.nexudus_password)
    else:
        nexudus = NexudusClient(params.nexudus.api_url, params.secret(params.nexudus.username_env),
                                params.secret(params.nexudus.password_env))
    business = _find_business(nexudus, params)
    xero = XeroClient(_xero_config(params, box, business))
    xero.select_tenant()
    organisation = xero.fetch_organisation()
    ledger = params.resolve(params.ledger_file) or ((box.state_dir if box else Path(params.output_dir)) / "ledger.sqlite")
    return Connection(params=params, xero=xero, nexudus=nexudus, business=business, organisation=organisation,
                      ledger_path=Path(ledger), sandbox=box)


def xero_config_for(params: RunParams) -> XeroConfig:
    """The Xero client settings of a live params file (credentials from the environment)."""
    return _xero_config(params, None, {})


def _xero_config(params: RunParams, box: Sandbox | None, business: dict[str, Any]) -> XeroConfig:
    xs = params.xero
    if box is None:
        return XeroConfig(
            client_id=params.secret(xs.client_id_env),
            client_secret=params.secret(xs.client_secret_env) if xs.grant == "client_credentials" else None,
            grant=xs.grant, api_url=xs.api_url, identity_url=xs.identity_url, token_url=xs.token_url,
            authorize_url=xs.authorize_url, redirect_uri=xs.redirect_uri, scopes=xs.scopes,
            tenant_id=_tenant_id(params.organisation), tenant_name=None if _tenant_id(params.organisation) else params.organisation,
            per_minute=xs.per_minute)
    tenant = box.locations.get(int(business["Id"]))
    if tenant is None:
        raise ParamsError(f"the sandbox wires no Xero organisation to location {business['Name']!r}", file=params.source, key="location")
    # The demo's Custom Connection for that organisation.
    app = next(a for a in box.xero_apps.values() if a["grant"] == "client_credentials" and tenant in a["tenant_ids"])
    return XeroConfig(client_id=app["client_id"], client_secret=app["client_secret"], api_url=box.xero_api_url,
                      identity_url=box.xero_identity_url, token_url=box.xero_token_url, authorize_url=box.xero_authorize_url,
                      tenant_id=tenant, minute_seconds=box.xero.limits.minute_seconds,
                      per_minute=box.xero.limits.per_minute)


def _tenant_id(organisation: str | None) -> str | None:
    """The organisation param if it is a tenant id (a uuid), else None (it is a name)."""
    import uuid

    if not organisation:
        return None
    try:
        uuid.UUID(str(organisation))
    except ValueError:
        return None
    return str(organisation)

