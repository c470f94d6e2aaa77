"""Open the two connections a run needs, from params alone.

Floor 2. ``connect(params)`` returns a ``Connection`` with a ``XeroClient`` for
the location's organisation and a ``NexudusClient``. With ``target: sandbox``
it starts (or reuses, in this process) the embedded sandbox and takes its demo
credentials; with ``target: live`` it reads credentials from the environment
variables the params name. Either way no secret is returned, printed or put in
a notebook: they go straight into the clients. The sandbox honours the keys a
live target honours: ``organisation`` and ``locations`` choose the organisation
there too (the sandbox's own wiring applies only when they name none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recon.clients.nexudus import NexudusClient
from recon.clients.nexudus_limits import NexudusLimits
from recon.clients.tokens import TokenStore
from recon.clients.xero import XeroClient, XeroConfig
from recon.errors import ParamsError, WrongOrganisation
from recon.params import LocationMap, RunParams, load_params

if TYPE_CHECKING:
    # The sandbox is a twin reached through its launcher and HTTP only: it is imported
    # when a run targets it, never by ``import recon`` (tests/test_layers.py checks).
    from recon.sandbox import Sandbox

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
    # (tracking category, option) every line of this location carries, when its organisation is
    # shared.
    tracking: tuple[str, str] | None = None

    @property
    def location(self) -> str:
        """The Nexudus location's name."""
        return str(self.business["Name"])

    def close(self) -> None:
        """Close both clients."""
        self.xero.close()
        self.nexudus.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Connection location={self.location!r} "
            f"organisation={self.organisation.get('Name')!r} target={self.params.target}>"
        )


def register_sandbox(box: Sandbox) -> None:
    """Let ``connect`` reuse an already running sandbox for its state folder (tests, notebooks)."""
    _SANDBOXES[str(box.state_dir)] = box


def sandbox_for(params: RunParams) -> Sandbox:
    """The embedded sandbox for these params, started once per process and state folder.

    Its Xero answers as ``sandbox_xero_latency`` says when this call starts it (an already
    running or registered sandbox keeps its own); ``RECON_SANDBOX_XERO_LATENCY``, when set, wins
    (recon.sandbox.start).
    """
    key = str(params.resolve(params.sandbox_dir) or "")
    if key not in _SANDBOXES:
        # only when a run targets it
        from recon.sandbox import parse_latency
        from recon.sandbox import start as start_sandbox

        _SANDBOXES[key] = start_sandbox(
            params.resolve(params.sandbox_dir),
            xero_latency=parse_latency(params.sandbox_xero_latency),
        )
    return _SANDBOXES[key]


def _find_business(nexudus: NexudusClient, params: RunParams) -> dict[str, Any]:
    businesses = nexudus.fetch_businesses()
    wanted = str(params.location).strip()
    match = businesses[
        (businesses["Id"].astype(str) == wanted)
        | (businesses["Name"].astype(str).str.casefold() == wanted.casefold())
    ]
    if len(match) != 1:
        known = ", ".join(f"{r.Name} ({r.Id})" for r in businesses.itertuples()) or "none"
        raise ParamsError(
            f"no Nexudus location {wanted!r}; known: {known}", file=params.source, key="location"
        )
    return {str(k): v for k, v in match.iloc[0].items()}


def connect(params: RunParams | str | Path, **overrides: Any) -> Connection:
    """Connect to Xero and Nexudus as the params say (overrides as in a notebook's parameters)."""
    if not isinstance(params, RunParams):
        params = load_params(params)
    if overrides:
        params = params.with_overrides(**overrides)
    box: Sandbox | None = None
    if params.target == "sandbox":
        box = sandbox_for(params)
        nexudus = NexudusClient(
            box.nexudus_api_url,
            box.nexudus_username,
            box.nexudus_password,
            # The sandbox may run a shorter "minute" (tests): pace to its own clock.
            limits=NexudusLimits(minute_seconds=box.nexudus_minute_seconds),
        )
    else:
        nexudus = NexudusClient(
            params.nexudus.api_url,
            params.secret(params.nexudus.username_env),
            params.secret(params.nexudus.password_env),
            token_store=TokenStore(),
        )
    business = _find_business(nexudus, params)
    # Every Nexudus date is read in the location's own zone from here on (nexudus.md §6).
    nexudus.use_location(business)
    # A relative period (last-month...) is evaluated here, in the location's own time zone.
    params = params.in_zone(nexudus.zone)
    mapped = params.location_map(str(business["Name"]))
    if params.locations and mapped is None:
        raise ParamsError(
            f"location {business['Name']!r} is not in the params' locations map; add it with its "
            "Xero organisation",
            file=params.source,
            key="locations",
        )
    xero = XeroClient(_xero_config(params, box, business, mapped))
    map_key = f"locations.{business['Name']}.organisation" if mapped else "organisation"
    try:
        xero.select_tenant()
    except WrongOrganisation as exc:
        wanted = mapped.organisation if mapped else params.organisation
        prefix = (
            f"{business['Name']} books into {wanted!r}, which this Xero app cannot reach. "
            if wanted
            else ""
        )
        raise ParamsError(prefix + str(exc), file=params.source, key=map_key) from exc
    organisation = xero.fetch_organisation()
    wiring = mapped
    sandbox_wiring = (
        box.location_tracking.get(int(business["Id"]))
        # Only in the organisation the sandbox wires the location to; params may point elsewhere.
        if box is not None and box.locations.get(int(business["Id"])) == xero.tenant_id
        else None
    )
    if wiring is None and sandbox_wiring is not None:
        # The sandbox's own wiring: its shared-organisation locations carry their Location option.
        category, option = sandbox_wiring
        wiring = LocationMap(str(organisation_name(xero)), category, option)
    tracking = _check_tracking(xero, wiring, params, str(business["Name"]))
    ledger = params.resolve(params.ledger_file) or (
        (box.state_dir if box else params.output_path()) / "ledger.sqlite"
    )
    return Connection(
        params=params,
        xero=xero,
        nexudus=nexudus,
        business=business,
        organisation=organisation,
        ledger_path=Path(ledger),
        sandbox=box,
        tracking=tracking,
    )


def organisation_name(xero: XeroClient) -> str:
    return str(xero.fetch_organisation().get("Name", xero.tenant_id))


def _check_tracking(
    xero: XeroClient, mapped: LocationMap | None, params: RunParams, location: str
) -> tuple[str, str] | None:
    """The location's (category, option) after checking both exist and are ACTIVE in the
    organisation."""
    if mapped is None or not mapped.tracking_category:
        return None
    key = f"locations.{location}.tracking_option"
    categories = xero.fetch_tracking_categories()
    category = next(
        (
            c
            for c in categories
            if str(c.get("Name", "")).casefold() == str(mapped.tracking_category).casefold()
            and c.get("Status") == "ACTIVE"
        ),
        None,
    )
    if category is None:
        known = ", ".join(str(c.get("Name")) for c in categories) or "none"
        raise ParamsError(
            f"Xero organisation {xero.tenant_id} has no active tracking category "
            f"{mapped.tracking_category!r} (it has: {known})",
            file=params.source,
            key=f"locations.{location}.tracking_category",
        )
    option = next(
        (
            o
            for o in category.get("Options") or []
            if str(o.get("Name", "")).casefold() == str(mapped.tracking_option).casefold()
            and o.get("Status") == "ACTIVE"
        ),
        None,
    )
    if option is None:
        known = ", ".join(str(o.get("Name")) for o in category.get("Options") or []) or "none"
        raise ParamsError(
            f"tracking category {category['Name']!r} has no active option "
            f"{mapped.tracking_option!r} (it has: {known}); add it in Xero or fix the params",
            file=params.source,
            key=key,
        )
    return str(category["Name"]), str(option["Name"])


def xero_config_for(params: RunParams) -> XeroConfig:
    """The Xero client settings of a live params file (credentials from the environment)."""
    return _xero_config(params, None, {})


def _xero_config(
    params: RunParams,
    box: Sandbox | None,
    business: dict[str, Any],
    mapped: LocationMap | None = None,
) -> XeroConfig:
    xs = params.xero
    organisation = mapped.organisation if mapped else params.organisation
    if box is None:
        return XeroConfig(
            client_id=params.secret(xs.client_id_env),
            client_secret=params.secret(xs.client_secret_env)
            if xs.grant == "client_credentials"
            else None,
            grant=xs.grant,
            api_url=xs.api_url,
            identity_url=xs.identity_url,
            token_url=xs.token_url,
            authorize_url=xs.authorize_url,
            redirect_uri=xs.redirect_uri,
            scopes=xs.scopes,
            tenant_id=_tenant_id(organisation),
            tenant_name=None if _tenant_id(organisation) else organisation,
            per_minute=xs.per_minute,
        )
    tenant = box.locations.get(int(business["Id"]))
    if organisation:
        # The params' map (or ``organisation``) wins over the sandbox's own wiring, as it decides
        # on a live target: the sandbox honours every key a live target honours.
        wanted = organisation.casefold()
        tenant = next(
            (
                t
                for t, name in box.organisations.items()
                if t.lower() == wanted or name.casefold() == wanted
            ),
            organisation,
        )
    if tenant is None:
        raise ParamsError(
            f"the sandbox wires no Xero organisation to location {business['Name']!r}",
            file=params.source,
            key="location",
        )
    # The demo's Custom Connection for that organisation.
    app = next(
        (
            a
            for a in box.xero_apps.values()
            if a["grant"] == "client_credentials" and tenant in a["tenant_ids"]
        ),
        next(a for a in box.xero_apps.values() if a["grant"] == "client_credentials"),
    )
    return XeroConfig(
        client_id=app["client_id"],
        client_secret=app["client_secret"],
        api_url=box.xero_api_url,
        identity_url=box.xero_identity_url,
        token_url=box.xero_token_url,
        authorize_url=box.xero_authorize_url,
        tenant_id=tenant,
        minute_seconds=box.xero_limits.minute_seconds,
        per_minute=box.xero_limits.per_minute,
    )


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
