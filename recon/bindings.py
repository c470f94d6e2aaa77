"""Which Xero organisation a Nexudus location books into: a binding a person confirms once.

Floor 2: imports only the leaves; the transfer (``recon.transfer.plan``) joins it to the
connection and the ledger. A location's binding names the organisation by id, name and base
currency. A person confirms it once, in the params (``bindings``: the location, the
organisation's id and its name), and the ledger records it (who, when, how). Then:

- until it is confirmed, every invoice of the location is held back, the preview saying
  "Hive Shoreditch → Hive Coworking UK Ltd (GBP): not confirmed; confirm with …";
- once recorded, a write for the location to any other organisation is refused before any
  call, with the params change that re-binds it on purpose (``rebind: true``);
- a location whose currency is neither the organisation's base currency nor one it has
  enabled is refused (xero-api.md §3.2: Xero refuses a document in such a currency).

``check_binding`` decides, from what the connection reaches, what the params confirm and
what the ledger recorded; it reads and writes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from recon.params import OrganisationBinding, RunParams

__all__ = [
    "Binding",
    "BindingCheck",
    "BindingState",
    "binding_of",
    "check_binding",
    "params_entry",
]


class BindingState(StrEnum):
    """Where a location stands with the organisation a run would write to."""

    # The ledger records this very organisation for the location.
    CONFIRMED = "confirmed"
    # The params confirm it and the ledger has none yet: recorded before the first write.
    CONFIRMED_IN_PARAMS = "confirmed in params"
    # The params move the location to this organisation on purpose (``rebind: true``).
    REBIND = "re-bound in params"
    # Nobody confirmed it: every invoice is held back.
    NOT_CONFIRMED = "not confirmed"
    # The ledger records another organisation for the location: refused.
    BOUND_ELSEWHERE = "bound to another organisation"
    # The params confirm another organisation than the one this run reaches: refused.
    PARAMS_DIFFER = "params name another organisation"
    # The location bills in a currency the organisation cannot book: refused.
    CURRENCY_REFUSED = "currency not in the organisation"


CONFIRMED_STATES = (
    BindingState.CONFIRMED,
    BindingState.CONFIRMED_IN_PARAMS,
    BindingState.REBIND,
)


@dataclass(frozen=True)
class Binding:
    """One location and the organisation it books into (as recorded, or as a run would bind)."""

    location: str
    business_id: int
    organisation_id: str
    organisation_name: str
    base_currency: str | None
    confirmed_by: str | None = None
    confirmed_at: str | None = None
    source: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Binding:
        """A binding from a ledger row (``Ledger.BINDING_COLUMNS``)."""
        return cls(
            location=str(row["location"]),
            business_id=int(row["business_id"]),
            organisation_id=str(row["tenant_id"]),
            organisation_name=str(row["organisation_name"]),
            base_currency=None if row.get("base_currency") is None else str(row["base_currency"]),
            confirmed_by=row.get("confirmed_by"),
            confirmed_at=row.get("confirmed_at"),
            source=row.get("source"),
        )

    def is_same_organisation(self, organisation_id: str) -> bool:
        """Whether ``organisation_id`` is this binding's organisation (ids compared as GUIDs)."""
        return self.organisation_id.strip().lower() == str(organisation_id).strip().lower()

    def describe(self) -> str:
        """'Hive Shoreditch → Hive Coworking UK Ltd (GBP)'."""
        return f"{self.location} → {self.organisation_name} ({self.base_currency or '?'})"

    def __str__(self) -> str:
        return self.describe()


def binding_of(business: Mapping[str, Any], organisation: Mapping[str, Any]) -> Binding:
    """The binding a run would make: a Nexudus business (location) and ``GET /Organisation``."""
    return Binding(
        location=str(business["Name"]),
        business_id=int(business["Id"]),
        organisation_id=str(organisation.get("OrganisationID") or ""),
        organisation_name=str(organisation.get("Name") or ""),
        base_currency=(
            None if not organisation.get("BaseCurrency") else str(organisation["BaseCurrency"])
        ),
    )


@dataclass(frozen=True)
class BindingCheck:
    """The verdict on a location's binding, with the message a bookkeeper acts on."""

    state: BindingState
    target: Binding  # the organisation this run reaches, as a binding
    recorded: Binding | None  # what the ledger records, if anything
    message: str
    fix: str = ""
    confirmed_by: str | None = None  # who confirms it in the params (to record)

    @property
    def is_confirmed(self) -> bool:
        """Whether invoices of the location may be written to the target organisation."""
        return self.state in CONFIRMED_STATES

    @property
    def needs_recording(self) -> bool:
        """Whether the ledger must record the target binding before the first write."""
        return self.state in (BindingState.CONFIRMED_IN_PARAMS, BindingState.REBIND)

    @property
    def reason(self) -> str:
        """The message and the fix, as one held-back reason."""
        return f"{self.message}; {self.fix}" if self.fix else self.message

    def to_dict(self) -> dict[str, Any]:
        """A plain summary (a plan's context, a report)."""
        return {
            "state": self.state.value,
            "location": self.target.location,
            "business_id": self.target.business_id,
            "organisation_id": self.target.organisation_id,
            "organisation": self.target.organisation_name,
            "base_currency": self.target.base_currency,
            "confirmed": self.is_confirmed,
            "recorded_organisation_id": self.recorded.organisation_id if self.recorded else None,
            "recorded_organisation": self.recorded.organisation_name if self.recorded else None,
            "message": self.reason,
        }

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"<BindingCheck {self.target.describe()!r}: {self.state.value}>"


# Characters that make a YAML plain scalar mean something else (in flow style, as printed).
_YAML_SPECIAL = re.compile(r"[:{}\[\],#&*!|>'\"%@`]|^\s|\s$|^$")


def _yaml_text(text: str) -> str:
    return json.dumps(text, ensure_ascii=False) if _YAML_SPECIAL.search(text) else text


def params_entry(target: Binding, *, rebind: bool = False) -> str:
    """The params entry that confirms (or, ``rebind``, moves) a location's binding, one line."""
    settings = (
        f"organisation_id: {target.organisation_id}, "
        f"organisation: {_yaml_text(target.organisation_name)}"
    )
    if rebind:
        settings += ", rebind: true"
    return f"bindings: {{{_yaml_text(target.location)}: {{{settings}}}}}"


def _named(entry: OrganisationBinding, target: Binding) -> bool:
    """Whether a params entry names the target organisation by both its id and its name."""
    return (
        target.is_same_organisation(entry.organisation_id)
        and entry.organisation.strip().casefold() == target.organisation_name.strip().casefold()
    )


def _currency_problem(
    target: Binding, location_currency: str | None, enabled: Iterable[str] | None
) -> str:
    """Why the organisation cannot book the location's currency ("" when it can or is unknown)."""
    code = str(location_currency or "").strip().upper()
    if not code or enabled is None:
        return ""
    base = str(target.base_currency or "").upper()
    allowed = {str(c).upper() for c in enabled} | ({base} if base else set())
    if code in allowed:
        return ""
    return (
        f"{target.location} bills in {code}, which Xero organisation {target.organisation_name} "
        f"(base {base or '?'}; enabled: {', '.join(sorted(allowed)) or 'none'}) cannot book: "
        "refused"
    )


def check_binding(
    target: Binding,
    params: RunParams,
    recorded: Binding | Mapping[str, Any] | None,
    *,
    location_currency: str | None = None,
    enabled_currencies: Iterable[str] | None = None,
) -> BindingCheck:
    """The verdict on writing ``target.location``'s invoices to ``target``'s organisation.

    ``recorded``: the ledger's binding of the location (a row or a ``Binding``), or None.
    ``location_currency`` and ``enabled_currencies`` (``GET /Currencies``): checked when both
    are given (xero-api.md §3.2). Nothing is read or written.
    """
    if recorded is not None and not isinstance(recorded, Binding):
        recorded = Binding.from_row(recorded)
    entry = params.binding_for(target.location)
    where = target.describe()
    if entry is not None and not _named(entry, target):
        return BindingCheck(
            BindingState.PARAMS_DIFFER,
            target,
            recorded,
            f"{target.location}: the params confirm {entry.organisation} "
            f"({entry.organisation_id}), but this run reaches {target.organisation_name} "
            f"({target.organisation_id}): refused",
            "point `locations`/`organisation` at the confirmed organisation, or, if "
            f"{target.organisation_name} is right, set {params_entry(target)} in {params.source}",
        )
    if recorded is not None and not recorded.is_same_organisation(target.organisation_id):
        moving = entry is not None and entry.rebind
        if not moving:
            return BindingCheck(
                BindingState.BOUND_ELSEWHERE,
                target,
                recorded,
                f"{target.location} is bound to {recorded.organisation_name} "
                f"({recorded.organisation_id}, {recorded.base_currency or '?'}; confirmed by "
                f"{recorded.confirmed_by} at {recorded.confirmed_at}), but this run would write "
                f"to {target.organisation_name} ({target.organisation_id}): refused",
                f"if {target.location}'s books really moved, re-bind it on purpose with "
                f"{params_entry(target, rebind=True)} in {params.source}; otherwise point "
                f"`locations`/`organisation` back at {recorded.organisation_name}",
            )
    currency = _currency_problem(target, location_currency, enabled_currencies)
    if currency:
        return BindingCheck(
            BindingState.CURRENCY_REFUSED,
            target,
            recorded,
            currency,
            f"enable {str(location_currency).upper()} in Xero (Settings > Currencies) or bind "
            f"{target.location} to an organisation that books it",
        )
    if recorded is not None and recorded.is_same_organisation(target.organisation_id):
        return BindingCheck(
            BindingState.CONFIRMED,
            target,
            recorded,
            f"{where}: confirmed by {recorded.confirmed_by} at {recorded.confirmed_at}",
        )
    if entry is None:
        return BindingCheck(
            BindingState.NOT_CONFIRMED,
            target,
            recorded,
            f"{where}: not confirmed",
            f"confirm with {params_entry(target)} in {params.source} (check the organisation "
            "id in Xero first: every invoice of the location will be booked there)",
        )
    who = entry.confirmed_by or f"params file {params.source}"
    state = BindingState.REBIND if recorded is not None else BindingState.CONFIRMED_IN_PARAMS
    return BindingCheck(
        state,
        target,
        recorded,
        f"{where}: {state.value} by {who}",
        confirmed_by=who,
    )
