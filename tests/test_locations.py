"""Several locations: each invoice lands in its own organisation, with its own tracking option, and
nowhere else."""

from __future__ import annotations

from collections import Counter

from support import ROOT

from recon.demo import act_as_accountant
from recon.ledger import Ledger
from recon.params import load_params
from recon.sandbox import Sandbox
from recon.session import connect
from recon.status import Difference, sync_status
from recon.transfer import plan_transfer, push

LOCATIONS = {
    "Hive Shoreditch": ("Hive Coworking UK Ltd", "SHO", None),
    "Hive Dublin Docklands": ("Hive Coworking Ireland Ltd", "DUB", None),
    "Hive Manchester Ancoats": ("Hive Coworking North Ltd", "MAN", "Manchester"),
    "Hive Leeds Wellington Place": ("Hive Coworking North Ltd", "LEE", "Leeds"),
}


def test_a_run_over_every_location_puts_each_invoice_in_its_organisation_with_its_tracking_option(
    fresh_sandbox: Sandbox, tmp_path
) -> None:
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(fresh_sandbox.state_dir)
    )
    created: dict[str, set[str]] = {}
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        for location in LOCATIONS:
            with connect(params.with_overrides(location=location)) as conn:
                result = push(conn, plan_transfer(conn, ledger=ledger), ledger)
                assert set(result.outcomes["outcome"]) == {"created"}, location
                created[location] = set(result.outcomes["invoice_number"])
        # Each location's binding, confirmed in the demo params, is now the ledger's record.
        bound = ledger.bindings().set_index("location")
        assert {name: bound.at[name, "organisation_name"] for name in LOCATIONS} == {
            name: organisation for name, (organisation, _, _) in LOCATIONS.items()
        }
        assert set(bound["confirmed_by"]) == {"recon demo"}
        seen: dict[str, Counter] = {}
        for location, (organisation, prefix, option) in LOCATIONS.items():
            with connect(params.with_overrides(location=location)) as conn:
                assert conn.organisation["Name"] == organisation
                invoices = list(conn.xero.iter_invoices(created_by_my_app=True))
                seen[organisation] = Counter(i["InvoiceNumber"][:3] for i in invoices)
                mine = [i for i in invoices if i["InvoiceNumber"].startswith(prefix)]
                notes = {n["CreditNoteNumber"] for n in conn.xero.iter_credit_notes()}
                assert {i["InvoiceNumber"] for i in mine} | {
                    n for n in notes if n.startswith(prefix)
                } == {n for n in created[location] if n.startswith(prefix)}
                for invoice in mine:
                    for line in invoice["LineItems"]:
                        options = [t["Option"] for t in line.get("Tracking") or []]
                        assert options == ([option] if option else []), (
                            invoice["InvoiceNumber"],
                            options,
                        )
    assert set(seen["Hive Coworking UK Ltd"]) == {"SHO"}
    assert set(seen["Hive Coworking Ireland Ltd"]) == {"DUB"}
    assert set(seen["Hive Coworking North Ltd"]) == {"MAN", "LEE"}


def test_locations_sharing_an_organisation_each_see_only_their_own_status_differences(
    fresh_sandbox: Sandbox, tmp_path
) -> None:
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(fresh_sandbox.state_dir)
    )
    north = ["Hive Manchester Ancoats", "Hive Leeds Wellington Place"]
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        for location in north:
            with connect(params.with_overrides(location=location)) as conn:
                push(conn, plan_transfer(conn, ledger=ledger), ledger)
                sync_status(conn, ledger)
        with connect(params.with_overrides(location=north[0])) as conn:
            acted = act_as_accountant(conn, fully=6, partly=0, void=0, edit=0)
        paid = set(acted["invoice_number"])
        for location, prefix in zip(north, ("MAN", "LEE"), strict=True):
            with connect(params.with_overrides(location=location)) as conn:
                diff = sync_status(conn, ledger).differences
                numbers = set(diff["invoice_number"])
                assert all(n.startswith(prefix) for n in numbers), location
                found = set(
                    diff[diff["difference"] == Difference.PAID_IN_XERO.value]["invoice_number"]
                )
                assert found == {n for n in paid if n.startswith(prefix)} - set(
                    fresh_sandbox.planted["shared_org_paid_in_nexudus_invoices"]
                )
