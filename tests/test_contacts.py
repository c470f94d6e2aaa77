"""The contact preview: which Xero contact each Nexudus customer will use, against the sandbox.

Contract: shared/reference/xero-api.md §6 (Contacts: ContactNumber is the API's external
key; the Name filter is case- and accent-insensitive; Name "may no longer be unique", so
key on ContactID; ARCHIVED is left out unless asked) and §3.2 (an unknown Name on an
invoice creates a new contact: no de-duplication), §13 (archived contacts take nothing).
"""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pytest

from recon.session import Connection
from recon.transfer.contacts import (
    NEW_CONTACT_COLUMNS,
    customers_frame,
    fetch_xero_contacts,
    match_contacts,
)

MERIDIAN = ("Meridian Legal LLP", "finance@meridian-legal.example")  # seeded, no ContactNumber
BRIGHTLINE = "Brightline Analytics Ltd"  # seeded: an unrelated customer with the same name


# ---- helpers ---------------------------------------------------------------------------------
def _tag() -> str:
    return uuid.uuid4().hex[:6].upper()


def _contact(
    conn: Connection, name: str, *, number: str | None = None, email: str | None = None
) -> str:
    element: dict[str, Any] = {"Name": name}
    if number:
        element["ContactNumber"] = number
    if email:
        element["EmailAddress"] = email
    (made,) = conn.xero.create_contacts([element])
    assert not made.get("HasValidationErrors"), made
    return str(made["ContactID"])


def _archive(conn: Connection, contact_id: str) -> None:
    response = conn.xero.request(
        "POST",
        f"{conn.xero.config.api_url}/Contacts",
        json_body={"Contacts": [{"ContactID": contact_id, "ContactStatus": "ARCHIVED"}]},
    )
    (saved,) = conn.xero.parse(response)["Contacts"]
    assert saved["ContactStatus"] == "ARCHIVED"


def _seeded_id(conn: Connection, name: str) -> str:
    (found,) = list(conn.xero.iter_contacts(where=f'Name=="{name}"'))
    return str(found["ContactID"])


def _customers(*rows: tuple[int, str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["coworker_id", "contact_number", "contact_name", "email"])


def _row(frame: pd.DataFrame, coworker_id: int) -> dict[str, Any]:
    (row,) = frame[frame["coworker_id"] == coworker_id].to_dict("records")
    return {str(k): v for k, v in row.items()}


# ---- tests -------------------------------------------------------------------------------------
def test_all_contacts_archived_ones_included_come_in_one_paged_read(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    gone = _contact(conn, f"Gone {_tag()} Ltd")
    _archive(conn, gone)
    before = conn.xero.calls

    contacts = fetch_xero_contacts(conn.xero)

    assert conn.xero.calls - before == 1
    assert contacts.set_index("ContactID").at[gone, "ContactStatus"] == "ARCHIVED"
    assert MERIDIAN[0] in set(contacts["Name"])


def test_a_same_name_contact_without_a_number_is_used_and_never_duplicated(
    fresh_conn: Connection,
) -> None:
    """The bug this fixes: a customer whose Xero contact was made in Xero's UI (no
    ContactNumber) got a second contact 'Name (email)'. Names compare as Xero's filter does."""
    conn = fresh_conn
    meridian = _seeded_id(conn, MERIDIAN[0])
    customers = _customers((501, "NX-m501", "meridian  LEGAL llp", MERIDIAN[1].upper()))

    plan = match_contacts(customers, fetch_xero_contacts(conn.xero))

    row = _row(plan.contacts, 501)
    assert (row["match"], row["xero_contact_id"], row["reason"]) == ("name", meridian, "")
    assert plan.new_contacts.empty and list(plan.new_contacts.columns) == NEW_CONTACT_COLUMNS
    # Next run: still the same contact, still nothing to create.
    again = match_contacts(customers, fetch_xero_contacts(conn.xero))
    assert _row(again.contacts, 501)["xero_contact_id"] == meridian
    assert again.new_contacts.empty


def test_two_contacts_named_alike_hold_the_customer_back_as_ambiguous(
    fresh_conn: Connection,
) -> None:
    """§6: Xero's Name filter ignores case and accents, so 'Café Nova Ltd' and 'Cafe Nova Ltd'
    both answer to the customer's name; recon does not guess."""
    conn = fresh_conn
    tag = _tag()
    accented = _contact(conn, f"Café Nova {tag} Ltd")
    plain = _contact(conn, f"Cafe Nova {tag} Ltd")
    customers = _customers((502, "NX-c502", f"CAFE NOVA {tag} LTD", "hello@cafenova.example"))

    plan = match_contacts(customers, fetch_xero_contacts(conn.xero))

    row = _row(plan.contacts, 502)
    assert row["match"] == "ambiguous" and row["xero_contact_id"] is None
    assert accented in row["candidates"] and plain in row["candidates"]
    assert row["reason"].startswith(f"2 active Xero contacts have the name 'CAFE NOVA {tag} LTD'")
    assert f"'Café Nova {tag} Ltd' ({accented}, no e-mail)" in row["reason"]
    assert "pin the one to use (contact_pins: coworker 502 → its ContactID)" in row["reason"]
    assert plan.new_contacts.empty
    assert list(plan.held_back["coworker_id"]) == [502]


def test_a_pin_wins_over_number_and_name_and_a_broken_pin_holds_back(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    tag = _tag()
    by_number = _contact(conn, f"Pinned {tag} Ltd", number=f"NX-p{tag}")
    wanted = _contact(conn, f"Pinned {tag} Trading")
    archived = _contact(conn, f"Old {tag} Ltd")
    _archive(conn, archived)
    customers = _customers(
        (503, f"NX-p{tag}", f"Pinned {tag} Ltd", ""),
        (504, f"NX-q{tag}", f"Someone {tag}", ""),
        (505, f"NX-r{tag}", f"Else {tag}", ""),
    )
    pins = {503: wanted.upper(), 504: "00000000-0000-0000-0000-000000000000", 505: archived}

    plan = match_contacts(customers, fetch_xero_contacts(conn.xero), pins)

    pinned = _row(plan.contacts, 503)
    assert (pinned["match"], pinned["xero_contact_id"], pinned["reason"]) == (
        "pinned",
        wanted,
        "",
    )
    assert by_number != wanted
    broken = _row(plan.contacts, 504)
    assert broken["match"] == "pinned" and broken["reason"] == (
        "pinned to Xero ContactID 00000000-0000-0000-0000-000000000000, which Xero does not "
        "have: correct contact_pins for coworker 504"
    )
    old = _row(plan.contacts, 505)
    assert old["match"] == "archived" and "which is ARCHIVED in Xero" in old["reason"]
    assert plan.new_contacts.empty
    # Without the pin, the number decides.
    unpinned = match_contacts(customers.iloc[:1], fetch_xero_contacts(conn.xero))
    assert _row(unpinned.contacts, 503)["xero_contact_id"] == by_number
    assert _row(unpinned.contacts, 503)["match"] == "number"


def test_a_new_customer_is_new_and_a_taken_name_gets_a_suffix(fresh_conn: Connection) -> None:
    conn = fresh_conn
    tag = _tag()
    brightline = _seeded_id(conn, BRIGHTLINE)
    customers = _customers(
        (506, f"NX-n{tag}", f"Wholly New {tag} Co", f"new{tag}@example.com"),
        # The seeded contact of this name has another e-mail: still this customer's contact (Xero
        # keeps names unique), matched by name and the differing e-mail said.
        (507, f"NX-b{tag}", BRIGHTLINE, "accounts@brightline-analytics.example"),
        # Two new customers with one name: the second is told apart.
        (508, f"NX-a{tag}", f"Alex {tag}", "alex@mail.example"),
        (509, f"NX-A{tag}", f"Alex {tag}", ""),
    )

    plan = match_contacts(customers, fetch_xero_contacts(conn.xero))

    assert list(plan.contacts["match"]) == ["new", "name", "new", "new"]
    assert plan.contacts["xero_contact_id"].isna().sum() == 3
    assert _row(plan.contacts, 507)["xero_contact_id"] == brightline
    assert (plan.contacts["reason"] == "").all()
    new = plan.new_contacts.set_index("coworker_id")
    assert new.loc[506].to_dict() == {
        "contact_number": f"NX-n{tag}",
        "name": f"Wholly New {tag} Co",
        "email": f"new{tag}@example.com",
    }
    assert 507 not in new.index
    assert "e-mail differs" in _row(plan.contacts, 507)["note"]
    assert new.at[508, "name"] == f"Alex {tag}"
    assert new.at[509, "name"] == f"Alex {tag} (Nexudus 509)" and new.at[509, "email"] is None


def test_an_archived_contact_matched_by_number_is_reported_not_replaced(
    fresh_conn: Connection,
) -> None:
    """§13: an ARCHIVED contact takes no invoices; a new one would reuse its number."""
    conn = fresh_conn
    tag = _tag()
    archived = _contact(conn, f"Closed {tag} Ltd", number=f"NX-x{tag}")
    _archive(conn, archived)
    customers = _customers((510, f"NX-x{tag}", f"Closed {tag} Ltd", ""))

    plan = match_contacts(customers, fetch_xero_contacts(conn.xero))

    row = _row(plan.contacts, 510)
    assert (row["match"], row["xero_contact_id"]) == ("archived", archived)
    assert row["reason"] == (
        f"Xero contact 'Closed {tag} Ltd' ({archived}) with this customer's number NX-x{tag} "
        "is ARCHIVED: restore it in Xero (Contacts > Archived > Restore), or pin another "
        "contact (contact_pins)"
    )
    assert plan.new_contacts.empty


def test_an_email_match_needs_one_contact_whose_name_agrees(fresh_conn: Connection) -> None:
    conn = fresh_conn
    tag = _tag()
    northwind = _contact(conn, f"Northwind {tag} Limited", email=f"ap@northwind{tag}.example")
    _contact(conn, f"Twin {tag} Ltd", email=f"ap@twin{tag}.example")
    _contact(conn, f"Twin {tag} Limited (old)", email=f"ap@twin{tag}.example")
    customers = _customers(
        (511, f"NX-w{tag}", f"Northwind {tag} Ltd.", f"AP@northwind{tag}.example"),
        # Same e-mail, a name that does not agree: a shared inbox, not this customer.
        (512, f"NX-s{tag}", f"Southwind {tag}", f"ap@northwind{tag}.example"),
        (513, f"NX-t{tag}", f"Twin {tag}", f"ap@twin{tag}.example"),
    )

    plan = match_contacts(customers, fetch_xero_contacts(conn.xero))

    assert _row(plan.contacts, 511)["match"] == "email"
    assert _row(plan.contacts, 511)["xero_contact_id"] == northwind
    assert _row(plan.contacts, 512)["match"] == "new"
    twin = _row(plan.contacts, 513)
    assert twin["match"] == "ambiguous"
    assert twin["reason"].startswith(
        f"2 active Xero contacts have the e-mail ap@twin{tag}.example and a name like 'Twin {tag}'"
    )
    assert list(plan.new_contacts["coworker_id"]) == [512]


def test_one_contact_claimed_by_two_customers_belongs_to_neither(fresh_conn: Connection) -> None:
    conn = fresh_conn
    tag = _tag()
    shared = _contact(conn, f"Sam {tag} Reed")
    customers = _customers(
        (514, f"NX-1{tag}", f"Sam {tag} Reed", "sam@one.example"),
        (515, f"NX-2{tag}", f"Sam {tag} Reed", "sam@two.example"),
    )

    plan = match_contacts(customers, fetch_xero_contacts(conn.xero))

    assert list(plan.contacts["match"]) == ["ambiguous", "ambiguous"]
    reason = _row(plan.contacts, 515)["reason"]
    assert reason.startswith(f"Xero contact {shared} matches several Nexudus customers")
    assert f"NX-1{tag} 'Sam {tag} Reed', NX-2{tag} 'Sam {tag} Reed'" in reason
    assert plan.new_contacts.empty


def test_a_contact_keyed_to_another_customer_is_never_taken_by_name(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    tag = _tag()
    first = _contact(conn, f"Jordan {tag} Lee", number=f"NX-j1{tag}")
    customers = _customers(
        (516, f"NX-j1{tag}", f"Jordan {tag} Lee", ""),
        (517, f"NX-j2{tag}", f"Jordan {tag} Lee", ""),
    )

    plan = match_contacts(customers, fetch_xero_contacts(conn.xero))

    assert _row(plan.contacts, 516)["xero_contact_id"] == first
    assert _row(plan.contacts, 517)["match"] == "new"
    assert list(plan.new_contacts["name"]) == [f"Jordan {tag} Lee (Nexudus 517)"]


def test_a_second_run_after_creating_the_new_contacts_creates_none(
    fresh_conn: Connection,
) -> None:
    """The guarantee: whatever the first run matched or created, the next run finds it."""
    conn = fresh_conn
    tag = _tag()
    meridian = _seeded_id(conn, MERIDIAN[0])
    coworkers = pd.DataFrame(
        {
            "Id": [520, 521, 522],
            "UniqueId": [f"u{tag}a", f"u{tag}b", None],
            "BillingEmail": [MERIDIAN[1], "accounts@brightline-analytics.example", None],
        }
    )
    invoice_coworkers = pd.Series([520, 521, 521, 522])
    names = pd.Series([MERIDIAN[0], BRIGHTLINE, BRIGHTLINE, f"Quinn {tag}"])
    customers = customers_frame(invoice_coworkers, names, coworkers)
    assert list(customers["contact_number"]) == [f"NX-u{tag}a", f"NX-u{tag}b", "NX-522"]

    first = match_contacts(customers, fetch_xero_contacts(conn.xero))
    assert list(first.contacts["match"]) == ["name", "name", "new"]
    # What push does with the new ones (ContactNumber, Name, EmailAddress).
    made = conn.xero.create_contacts(
        [
            {"ContactNumber": r.contact_number, "Name": r.name}
            | ({"EmailAddress": r.email} if r.email else {})
            for r in first.new_contacts.itertuples()
        ]
    )
    assert all(not m.get("HasValidationErrors") for m in made)

    second = match_contacts(customers, fetch_xero_contacts(conn.xero))

    assert list(second.contacts["match"]) == ["name", "name", "number"]
    assert second.new_contacts.empty
    assert _row(second.contacts, 520)["xero_contact_id"] == meridian
    assert _row(second.contacts, 521)["xero_contact_id"] == _seeded_id(conn, BRIGHTLINE)
    assert set(second.contacts["xero_contact_id"][2:]) == {m["ContactID"] for m in made}
    per_invoice = second.for_invoices(invoice_coworkers)
    assert list(per_invoice["match"]) == ["name", "name", "name", "number"]
    assert (per_invoice["reason"] == "").all()


@pytest.mark.parametrize(
    ("key", "by_name", "by_email"),
    [("name_or_email", "name", "email"), ("name", "name", "new"), ("number", "new", "new")],
)
def test_contact_key_stops_the_matching_order_where_params_say(
    fresh_conn: Connection, key: str, by_name: str, by_email: str
) -> None:
    """params ``contact_key``: "name" is Nexudus' own way (the billing name, nexudus.md §11);
    "number" takes only recon's ContactNumber and creates the rest; a numbered contact is
    found by every key."""
    conn = fresh_conn
    tag = _tag()
    numbered = _contact(conn, f"Numbered {tag} Ltd", number=f"NX-k{tag}")
    named = _contact(conn, f"Named {tag} Ltd")
    mailed = _contact(conn, f"Mailed {tag} Limited", email=f"ap@mailed{tag}.example")
    customers = _customers(
        (521, f"NX-k{tag}", f"Renamed {tag}", ""),
        (522, f"NX-l{tag}", f"named {tag} LTD", ""),
        (523, f"NX-m{tag}", f"Mailed {tag} Ltd", f"ap@mailed{tag}.example"),
    )

    plan = match_contacts(customers, fetch_xero_contacts(conn.xero), key=key)

    assert (_row(plan.contacts, 521)["match"], _row(plan.contacts, 521)["xero_contact_id"]) == (
        "number",
        numbered,
    )
    assert _row(plan.contacts, 522)["match"] == by_name
    assert _row(plan.contacts, 522)["xero_contact_id"] == (named if by_name == "name" else None)
    assert _row(plan.contacts, 523)["match"] == by_email
    assert _row(plan.contacts, 523)["xero_contact_id"] == (mailed if by_email == "email" else None)
    created = sorted(plan.new_contacts["coworker_id"])
    assert created == sorted(c for c, m in ((522, by_name), (523, by_email)) if m == "new")
