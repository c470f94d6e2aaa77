"""Nexudus dates are read in the location's own zone (nexudus.md §6), end to end.

Nexudus stores a date-like field as the UTC instant of the location's local midnight: a
London period from 1 April reads ``…-03-31T23:00:00Z``, a Singapore one ``…-03-31T16:00:00Z``.
Taking the UTC date would put every invoice of a location ahead of UTC a day early. The
demo seeds one invoice per zone whose period starts on 1 April 2026 and which was issued at
local 01:30 that day (in Singapore, 17:30 UTC on 31 March).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from recon import Ledger, plan_transfer, push
from recon.params import load_params
from recon.sandbox import Sandbox
from recon.session import Connection, connect
from recon.transfer import TransferOptions

ROOT = Path(__file__).resolve().parent.parent
LOCATIONS = ["Hive Shoreditch", "Hive Singapore Raffles", "Hive New York Flatiron"]


def _april(sandbox: Sandbox, location: str, tmp_path: Path) -> Connection:
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(sandbox.state_dir),
        location=location,
        period_start=date(2026, 4, 1),
        period_end=date(2026, 4, 30),
        ledger_file=str(tmp_path / f"{location}.sqlite"),
        prices_include_tax=None,
    )
    return connect(params)


@pytest.fixture
def april(sandbox: Sandbox, tmp_path: Path) -> Iterator[dict[str, Connection]]:
    conns = {name: _april(sandbox, name, tmp_path) for name in LOCATIONS}
    yield conns
    for conn in conns.values():
        conn.close()


@pytest.mark.parametrize("location", LOCATIONS)
def test_the_april_invoice_of_each_zone_is_in_the_april_period_with_april_dates(
    sandbox: Sandbox, april: dict[str, Connection], location: str
) -> None:
    conn = april[location]
    number = sandbox.planted["april_period"][location]
    # As drafts: Xero lets a draft sit in a locked period (the demo locks New York's books
    # through 1 August), and the dates are the same whatever the status.
    plan = plan_transfer(
        conn, options=TransferOptions(status="DRAFT"), ledger=Ledger(conn.ledger_path)
    )
    assert number in set(plan.eligible["invoice_number"]), plan.excluded
    invoice_id = int(plan.eligible.set_index("invoice_number").at[number, "nexudus_invoice_id"])
    assert plan.payloads[invoice_id]["Date"] == "2026-04-01"  # the issue date, local
    period = plan_transfer(
        conn,
        options=TransferOptions(invoice_date="period", status="DRAFT"),
        ledger=Ledger(conn.ledger_path),
    )
    assert period.payloads[invoice_id]["Date"] == "2026-04-01"  # the period's first day
    # The due date too is a local calendar date, not the UTC one.
    due = conn.nexudus.get_invoice(invoice_id)["DueDate"]
    assert not str(due).startswith(_local(due, conn.nexudus.zone)) or location.endswith("Flatiron")
    zone = conn.nexudus.zone
    assert str(plan.payloads[invoice_id]["DueDate"]) == _local(due, zone)


def _local(instant: str, zone: object) -> str:
    import pandas as pd

    return str(pd.Timestamp(instant).tz_convert(zone).date())  # type: ignore[arg-type]


def test_a_singapore_invoice_issued_after_local_midnight_is_not_in_march(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """In UTC the Singapore invoice was created on 31 March; its location says 1 April."""
    number = sandbox.planted["april_period"]["Hive Singapore Raffles"]
    march = connect(
        load_params(ROOT / "params" / "demo.yaml").with_overrides(
            sandbox_dir=str(sandbox.state_dir),
            location="Hive Singapore Raffles",
            period_start=date(2026, 3, 1),
            period_end=date(2026, 3, 31),
            ledger_file=str(tmp_path / "march.sqlite"),
        )
    )
    with march:
        created = march.nexudus.fetch_invoices(
            business_id=int(march.business["Id"]),
            start=march.params.period_start,
            end=march.params.period_end,
        )
    assert number not in set(created["InvoiceNumber"])


@pytest.mark.parametrize("location", LOCATIONS)
def test_each_april_invoice_lands_in_april_in_xero(
    fresh_sandbox: Sandbox, tmp_path: Path, location: str
) -> None:
    number = fresh_sandbox.planted["april_period"][location]
    locked = fresh_sandbox.planted["period_lock_org"]
    for tenant, name in fresh_sandbox.organisations.items():
        if name == locked:  # the demo locks New York's books through 1 August: unlock them
            fresh_sandbox.set_lock_dates(tenant)
    with _april(fresh_sandbox, location, tmp_path) as conn:
        ledger = Ledger(conn.ledger_path)
        plan = plan_transfer(conn, ledger=ledger)
        result = push(conn, plan.only([number]), ledger)
        assert list(result.outcomes["outcome"]) == ["created"]
        in_xero = conn.xero.get_invoice(str(result.outcomes.iloc[0]["xero_id"]))
    assert str(in_xero["DateString"]).startswith("2026-04-01")
