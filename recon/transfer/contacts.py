"""Which Xero contact each Nexudus customer's invoices will go to, and why. No writes.

Floor 4 (the transfer): imports the Xero client and the leaves. For every
customer of a transfer it decides, in this order:

1. ``pinned``: the params name a Xero ContactID for the coworker; a pin always wins.
2. ``number``: a contact carries recon's stable key ``NX-<UniqueId>`` as ContactNumber.
3. ``name``: exactly one ACTIVE contact has the customer's name, compared the way
   Xero's Name filter compares (case-, accent- and space-insensitive, xero-api.md §6),
   with or without a ContactNumber, as long as its e-mail does not say it is somebody else.
4. ``email``: exactly one ACTIVE contact has the customer's billing e-mail and a name
   that agrees (the same words once case, punctuation, a trailing "(…)" and legal forms
   such as Ltd / Limited are set aside).
5. ``new``: nothing matches; a contact is created (a name already taken gets a suffix).

``ambiguous`` (several candidates, or one contact claimed by several customers) and
``archived`` (the customer's contact is archived in Xero) carry a ``reason``: the
plan holds those customers' invoices back instead of guessing. A contact that carries
another customer's ``NX-`` number, or is pinned to another customer, is never taken
by name or e-mail, so no run creates a second contact for a customer nor merges two.

Params ``contact_key`` stops the order after step 2 ("number": a customer not yet numbered
gets a new contact) or step 3 ("name", Nexudus' own integration's way, nexudus.md §11); by
default ("name_or_email") every step runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from recon.clients.xero import XeroClient

__all__ = [
    "CONTACT_KEYS",
    "CONTACT_NUMBER_PREFIX",
    "CUSTOMER_COLUMNS",
    "MATCH_COLUMNS",
    "MAX_CONTACT_NAME",
    "NEW_CONTACT_COLUMNS",
    "PINS_PARAMETER",
    "ContactPlan",
    "customers_frame",
    "fetch_xero_contacts",
    "match_contacts",
    "name_key",
]

CONTACT_NUMBER_PREFIX = "NX-"
MAX_CONTACT_NAME = 255  # xero-api.md §6: Name ≤255
PINS_PARAMETER = "contact_pins"  # the params entry a reason tells the bookkeeper to set
# How far the order goes (params ``contact_key``; recon.params lists the same three).
CONTACT_KEYS = ("number", "name", "name_or_email")
USABLE_STATUS = "ACTIVE"  # ARCHIVED and GDPRREQUEST contacts take no invoices (§13)

CUSTOMER_COLUMNS = ["coworker_id", "contact_number", "contact_name", "email"]
MATCH_COLUMNS = [
    "coworker_id",
    "contact_number",
    "contact_name",
    "email",
    "xero_contact_id",
    "match",
    "candidates",
    "reason",
    "note",
]
NEW_CONTACT_COLUMNS = ["coworker_id", "contact_number", "name", "email"]
XERO_CONTACT_COLUMNS = ["ContactID", "Name", "ContactNumber", "ContactStatus", "EmailAddress"]

# Legal forms set aside when an e-mail match checks that the names agree.
_LEGAL_FORMS = (
    r"\b(?:ltd|limited|llp|llc|lp|inc|incorporated|plc|gmbh|corp|corporation|co|company|pte|"
    r"aps|bv|sa|sarl|srl|ag|pty)\b"
)


@dataclass(frozen=True)
class ContactPlan:
    """Each customer's Xero contact (``contacts``) and the contacts a push must create."""

    contacts: pd.DataFrame
    new_contacts: pd.DataFrame

    @property
    def held_back(self) -> pd.DataFrame:
        """Customers whose invoices cannot go: ambiguous, archived or a broken pin."""
        return self.contacts[self.contacts["reason"] != ""].reset_index(drop=True)

    def for_invoices(self, coworker_ids: pd.Series) -> pd.DataFrame:
        """The decision per invoice row (same index as ``coworker_ids``): xero_contact_id,
        contact_number, match and reason."""
        table = self.contacts.set_index("coworker_id")
        out = pd.DataFrame(index=coworker_ids.index)
        for column in ("xero_contact_id", "contact_number", "match", "reason"):
            out[column] = coworker_ids.map(table[column]).astype("object")
        out["reason"] = out["reason"].where(
            out["match"].notna(), "customer missing from the contact preview"
        )
        return out

    def __repr__(self) -> str:
        counts = self.contacts["match"].value_counts().to_dict()
        return f"<ContactPlan {counts} new={len(self.new_contacts)}>"


# ---- reading -------------------------------------------------------------------------------
def fetch_xero_contacts(xero: XeroClient) -> pd.DataFrame:
    """Every Xero contact, archived ones included, in as few paged reads as there are 1,000s."""
    rows = [
        {c: contact.get(c) for c in XERO_CONTACT_COLUMNS}
        for contact in xero.iter_contacts(include_archived=True)
    ]
    return pd.DataFrame(rows, columns=XERO_CONTACT_COLUMNS).astype("object")


def customers_frame(
    coworker_ids: pd.Series, contact_names: pd.Series, coworkers: pd.DataFrame
) -> pd.DataFrame:
    """One row per customer of these invoices: coworker_id, contact_number (``NX-<UniqueId>``,
    ``NX-<Id>`` without one), contact_name (the first invoice's) and billing e-mail.

    ``coworkers`` is Nexudus' coworker list (``Id``, ``UniqueId``, ``BillingEmail``), as a
    column or as its index.
    """
    people = coworkers if "Id" not in coworkers.columns else coworkers.set_index("Id")
    first = pd.DataFrame(
        {"coworker_id": coworker_ids.to_numpy(), "contact_name": contact_names.to_numpy()}
    ).drop_duplicates("coworker_id")
    ids = first["coworker_id"]
    unique = ids.map(people["UniqueId"]) if "UniqueId" in people.columns else None
    key = ids.astype(str)
    if unique is not None:
        key = _text(unique).where(_text(unique) != "", key)
    email = _text(ids.map(people["BillingEmail"])) if "BillingEmail" in people.columns else None
    return pd.DataFrame(
        {
            "coworker_id": ids.to_numpy(),
            "contact_number": (CONTACT_NUMBER_PREFIX + key).to_numpy(),
            "contact_name": _text(first["contact_name"]).to_numpy(),
            "email": (email if email is not None else pd.Series("", index=ids.index)).to_numpy(),
        }
    )


# ---- matching ------------------------------------------------------------------------------
def match_contacts(
    customers: pd.DataFrame,
    xero_contacts: pd.DataFrame,
    pins: Mapping[int, str] | None = None,
    key: str = "name_or_email",
) -> ContactPlan:
    """Decide every customer's Xero contact (see the module docstring for the order).

    ``customers`` has ``CUSTOMER_COLUMNS`` (one row per coworker; repeats are dropped);
    ``xero_contacts`` is ``fetch_xero_contacts``' frame; ``pins`` maps a coworker id to the
    Xero ContactID its invoices must use. ``key`` (params ``contact_key``) stops the order
    early: "number" after the ContactNumber step, "name" after the name step,
    "name_or_email" runs every step.
    """
    if key not in CONTACT_KEYS:
        raise ValueError(f"contact_key must be one of {', '.join(CONTACT_KEYS)}, not {key!r}")
    cust = _customers(customers)
    xc = _xero(xero_contacts)
    pins = {int(k): str(v).strip() for k, v in (pins or {}).items()}
    result = cust[CUSTOMER_COLUMNS].copy()
    for column in ("xero_contact_id", "match", "candidates", "reason", "note"):
        result[column] = None if column == "xero_contact_id" else ""
    result = result.astype({"xero_contact_id": "object"})

    _match_pins(result, xc, pins)
    _match_numbers(result, xc)
    pinned_ids = {p.lower() for p in pins.values()}
    spoken_for = xc["number"].str.upper().str.startswith(CONTACT_NUMBER_PREFIX.upper()) | xc[
        "id_key"
    ].isin(pinned_ids)
    pool = xc[xc["active"] & ~spoken_for]
    if key != "number":
        _match_names(result, cust, pool)
    if key == "name_or_email":
        _match_emails(result, cust, pool)
    _refuse_shared_claims(result)
    new_contacts = _name_new_contacts(result, xc)
    return ContactPlan(result[MATCH_COLUMNS].reset_index(drop=True), new_contacts)


def name_key(names: pd.Series) -> pd.Series:
    """Names as Xero's Name filter compares them: accents, case and runs of spaces ignored."""
    text = _text(names).str.normalize("NFKD").str.replace(r"[\u0300-\u036f]", "", regex=True)
    return text.str.casefold().str.split().str.join(" ").fillna("")


def _loose_key(names: pd.Series) -> pd.Series:
    """A name reduced to its words: no trailing "(…)", punctuation or legal form."""
    text = name_key(names).str.replace(r"\s*\([^()]*\)$", "", regex=True)
    text = text.str.replace(_LEGAL_FORMS, " ", regex=True)
    return text.str.replace(r"[\W_]+", "", regex=True)


def _text(values: pd.Series) -> pd.Series:
    """Cells as stripped text; blanks (None, NaN) as ""."""
    return values.astype("object").where(values.notna(), "").astype(str).str.strip()


def _customers(customers: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in CUSTOMER_COLUMNS if c not in customers.columns]
    if missing:
        raise ValueError(f"customers frame lacks {missing}; expected {CUSTOMER_COLUMNS}")
    cust = customers.drop_duplicates("coworker_id").reset_index(drop=True).copy()
    for column in ("contact_number", "contact_name", "email"):
        cust[column] = _text(cust[column])
    cust["name_key"] = name_key(cust["contact_name"])
    cust["email_key"] = cust["email"].str.casefold()
    cust["loose_key"] = _loose_key(cust["contact_name"])
    return cust


def _xero(contacts: pd.DataFrame) -> pd.DataFrame:
    xc = pd.DataFrame(index=contacts.index)
    for column in XERO_CONTACT_COLUMNS:
        xc[column] = _text(contacts[column]) if column in contacts.columns else ""
    xc["id_key"] = xc["ContactID"].str.lower()
    xc["number"] = xc["ContactNumber"]
    xc["active"] = xc["ContactStatus"].str.upper() == USABLE_STATUS
    xc["name_key"] = name_key(xc["Name"])
    xc["email_key"] = xc["EmailAddress"].str.casefold()
    xc["loose_key"] = _loose_key(xc["Name"])
    return xc.reset_index(drop=True)


def _describe(frame: pd.DataFrame, with_email: bool = False) -> pd.Series:
    """ "'Name' (ContactID)" per contact row, e-mail added when asked."""
    text = "'" + frame["Name"] + "' (" + frame["ContactID"]
    if with_email:
        text = text + ", " + frame["EmailAddress"].where(frame["EmailAddress"] != "", "no e-mail")
    return text + ")"


def _undecided(result: pd.DataFrame) -> pd.Series:
    return result["match"] == ""


def _match_pins(result: pd.DataFrame, xc: pd.DataFrame, pins: dict[int, str]) -> None:
    if not pins:
        return
    pinned = result["coworker_id"].map(lambda cid: pins.get(int(cid))).astype("object")
    has_pin = pinned.notna()
    by_id = xc.drop_duplicates("id_key").set_index("id_key")
    key = pinned.where(has_pin, "").astype(str).str.lower()
    found = has_pin & key.isin(by_id.index)
    status = key.map(by_id["ContactStatus"]).fillna("")
    name = key.map(by_id["Name"]).fillna("")
    active = found & (status.str.upper() == USABLE_STATUS)
    result.loc[has_pin, "match"] = "pinned"
    result.loc[found, "xero_contact_id"] = key[found].map(by_id["ContactID"])
    result.loc[has_pin & ~found, "reason"] = (
        "pinned to Xero ContactID "
        + pinned[has_pin & ~found].astype(str)
        + f", which Xero does not have: correct {PINS_PARAMETER} for coworker "
        + result.loc[has_pin & ~found, "coworker_id"].astype(str)
    )
    archived = found & ~active
    result.loc[archived, "match"] = "archived"
    result.loc[archived, "reason"] = (
        "pinned to Xero contact '"
        + name[archived]
        + "' ("
        + pinned[archived].astype(str)
        + "), which is "
        + status[archived].str.upper()
        + " in Xero: restore it in Xero or pin an active contact"
    )


def _match_numbers(result: pd.DataFrame, xc: pd.DataFrame) -> None:
    numbered = xc[xc["number"] != ""].sort_values("active", ascending=False, kind="stable")
    by_number = numbered.drop_duplicates("number").set_index("number")
    todo = _undecided(result) & result["contact_number"].isin(by_number.index)
    if not todo.any():
        return
    numbers = result.loc[todo, "contact_number"]
    active = numbers.map(by_number["active"]).astype(bool)
    result.loc[todo, "xero_contact_id"] = numbers.map(by_number["ContactID"])
    result.loc[todo, "match"] = active.map({True: "number", False: "archived"})
    gone = active[~active].index
    result.loc[gone, "reason"] = (
        "Xero contact '"
        + numbers[gone].map(by_number["Name"])
        + "' ("
        + numbers[gone].map(by_number["ContactID"])
        + ") with this customer's number "
        + numbers[gone]
        + " is "
        + numbers[gone].map(by_number["ContactStatus"]).str.upper()
        + ": restore it in Xero (Contacts > Archived > Restore), or pin another contact ("
        + PINS_PARAMETER
        + ")"
    )


def _candidates(
    result: pd.DataFrame, cust: pd.DataFrame, pool: pd.DataFrame, on: str
) -> pd.DataFrame:
    """(customer row, contact) pairs that share ``on`` for undecided customers."""
    todo = cust[_undecided(result).to_numpy() & (cust[on] != "").to_numpy()]
    left = todo[["name_key", "email_key", "loose_key"]].rename_axis("row").reset_index()
    right = pool[pool[on] != ""][
        ["ContactID", "Name", "EmailAddress", "name_key", "email_key", "loose_key"]
    ]
    return left.merge(right, on=on, suffixes=("", "_xero"))


def _match_names(result: pd.DataFrame, cust: pd.DataFrame, pool: pd.DataFrame) -> None:
    pairs = _candidates(result, cust, pool, "name_key")
    if pairs.empty:
        return
    both = (pairs["email_key"] != "") & (pairs["email_key_xero"] != "")
    pairs["confirmed"] = both & (pairs["email_key"] == pairs["email_key_xero"])
    pairs["contradicts"] = both & ~pairs["confirmed"]
    # Xero keeps contact names unique in an organisation (xero-api.md §6: a PUT of an existing
    # Name errors), so one ACTIVE contact of that name is this customer as far as the books go,
    # whatever its e-mail: a second "Name (e-mail)" contact would split the receivable. An
    # e-mail that differs is said in the preview; several same-named contacts are ambiguous
    # unless exactly one has the customer's e-mail.
    agree = pairs
    counts = agree.groupby("row").agg(
        n=("ContactID", "size"), confirmed=("confirmed", "sum"), first=("ContactID", "first")
    )
    confirmed_id = agree[agree["confirmed"]].groupby("row")["ContactID"].first()
    single = counts.index[counts["n"] == 1]
    by_email = counts.index[(counts["n"] > 1) & (counts["confirmed"] == 1)]
    result.loc[single, "xero_contact_id"] = counts.loc[single, "first"]
    result.loc[by_email, "xero_contact_id"] = confirmed_id.reindex(by_email)
    result.loc[single.union(by_email), "match"] = "name"
    many = counts.index[(counts["n"] > 1) & (counts["confirmed"] != 1)]
    if len(many):
        listed = (
            _describe(agree[agree["row"].isin(many)], with_email=True)
            .groupby(agree["row"])
            .agg("; ".join)
        )
        result.loc[many, "match"] = "ambiguous"
        result.loc[many, "candidates"] = listed.reindex(many)
        result.loc[many, "reason"] = (
            counts.loc[many, "n"].astype(str)
            + " active Xero contacts have the name '"
            + result.loc[many, "contact_name"]
            + "': "
            + listed.reindex(many)
            + f": pin the one to use ({PINS_PARAMETER}: coworker "
            + result.loc[many, "coworker_id"].astype(str)
            + " → its ContactID), or archive or rename the others in Xero"
        )
    differs = pairs[pairs["contradicts"] & pairs["row"].isin(single)]
    if len(differs):
        listed = _describe(differs, with_email=True).groupby(differs["row"]).agg("; ".join)
        result.loc[listed.index, "note"] = (
            "matched by name to " + listed + ", whose e-mail differs from Nexudus' billing "
            "e-mail: pin another contact if this is not the customer"
        )


def _match_emails(result: pd.DataFrame, cust: pd.DataFrame, pool: pd.DataFrame) -> None:
    pairs = _candidates(result, cust, pool, "email_key")
    pairs = pairs[(pairs["loose_key"] != "") & (pairs["loose_key"] == pairs["loose_key_xero"])]
    if pairs.empty:
        return
    counts = pairs.groupby("row").agg(n=("ContactID", "size"), first=("ContactID", "first"))
    single = counts.index[counts["n"] == 1]
    result.loc[single, "xero_contact_id"] = counts.loc[single, "first"]
    result.loc[single, "match"] = "email"
    result.loc[single, "candidates"] = ""
    result.loc[single, "note"] = ""
    many = counts.index[counts["n"] > 1]
    if len(many):
        listed = _describe(pairs[pairs["row"].isin(many)]).groupby(pairs["row"]).agg("; ".join)
        result.loc[many, "match"] = "ambiguous"
        result.loc[many, "candidates"] = listed.reindex(many)
        result.loc[many, "reason"] = (
            counts.loc[many, "n"].astype(str)
            + " active Xero contacts have the e-mail "
            + result.loc[many, "email"]
            + " and a name like '"
            + result.loc[many, "contact_name"]
            + "': "
            + listed.reindex(many)
            + f": pin the one to use ({PINS_PARAMETER}: coworker "
            + result.loc[many, "coworker_id"].astype(str)
            + " → its ContactID), or archive the others in Xero"
        )


def _refuse_shared_claims(result: pd.DataFrame) -> None:
    """One contact found by name or e-mail for several customers belongs to none of them."""
    loose = result["match"].isin(["name", "email"])
    ids = result["xero_contact_id"].where(loose)
    shared = loose & ids.map(ids.value_counts()).fillna(0).gt(1)
    if not shared.any():
        return
    who = (
        (result["contact_number"] + " '" + result["contact_name"] + "'")[shared]
        .groupby(ids[shared])
        .agg(", ".join)
    )
    result.loc[shared, "candidates"] = ids[shared]
    result.loc[shared, "reason"] = (
        "Xero contact "
        + ids[shared]
        + " matches several Nexudus customers by name or e-mail ("
        + ids[shared].map(who)
        + f"): pin each customer to its own contact ({PINS_PARAMETER})"
    )
    result.loc[shared, "match"] = "ambiguous"
    result.loc[shared, "xero_contact_id"] = None


def _name_new_contacts(result: pd.DataFrame, xc: pd.DataFrame) -> pd.DataFrame:
    """Mark the rest ``new`` and name their contacts; a taken name gets a distinguishing
    suffix (the billing e-mail, else the Nexudus id)."""
    new = _undecided(result)
    result.loc[new, "match"] = "new"
    todo = result[new]
    if todo.empty:
        return pd.DataFrame(columns=NEW_CONTACT_COLUMNS)
    taken = set(xc.loc[xc["active"], "name_key"])
    by_email = " (" + todo["email"] + ")"
    by_id = " (Nexudus " + todo["coworker_id"].astype(str) + ")"
    first = todo["contact_name"]
    key = name_key(first)
    clash = key.isin(taken) | key.duplicated()
    names = first.where(~clash, _suffixed(first, by_email.where(todo["email"] != "", by_id)))
    key = name_key(names)
    clash = key.isin(taken) | key.duplicated()
    names = names.where(~clash, _suffixed(first, by_id))
    result.loc[new, "note"] = (
        (result.loc[new, "note"] + "; ").where(result.loc[new, "note"] != "", "")
        + "a Xero contact '"
        + names
        + "' will be created with number "
        + todo["contact_number"]
    )
    new_contacts = pd.DataFrame(
        {
            "coworker_id": todo["coworker_id"].to_numpy(),
            "contact_number": todo["contact_number"].to_numpy(),
            "name": names.to_numpy(),
        }
    )
    # An object column, so a missing e-mail stays None (pandas would store text's NaN).
    new_contacts["email"] = pd.Series([e or None for e in todo["email"]], dtype="object")
    return new_contacts


def _suffixed(names: pd.Series, suffixes: pd.Series) -> pd.Series:
    """``name + suffix`` with the name cut so the whole fits Xero's 255 characters."""
    cut: list[Any] = [
        str(n)[: MAX_CONTACT_NAME - len(str(s))] + str(s)
        for n, s in zip(names.fillna(""), suffixes.fillna(""), strict=True)
    ]
    return pd.Series(cut, index=names.index, dtype="object")
