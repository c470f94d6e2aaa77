"""What Nexudus' own settings and integration mean for a transfer (nexudus.md §7.2, §7.4, §11).

* Invoices Nexudus' own Xero integration already sent (``XeroInvoiceTransfered``) are never
  sent again; a location whose automatic transfer is on is warned about before any push.
* "Prices typed in the back-end include tax" is no API field (§7.4, §13): recon takes it as
  a parameter and checks it against each invoice's own totals (§7.2: Σ SubTotal = TotalAmount
  means gross amounts), holding back an invoice that disagrees, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recon.display import transfer_plan_html
from recon.ledger import Ledger
from recon.params import load_params
from recon.sandbox import Sandbox
from recon.session import Connection, connect
from recon.transfer import TransferPlan, plan_transfer

ROOT = Path(__file__).resolve().parent.parent


def _plan(sandbox: Sandbox, tmp_path: Path, location: str, **overrides: object) -> TransferPlan:
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(sandbox.state_dir),
        location=location,
        ledger_file=str(tmp_path / "ledger.sqlite"),
        **overrides,
    )
    with connect(params) as conn:
        return plan_transfer(conn, ledger=Ledger(conn.ledger_path))


@pytest.fixture
def shoreditch(sandbox: Sandbox, tmp_path: Path) -> Iterator[Connection]:
    with connect(
        ROOT / "params" / "demo.yaml",
        sandbox_dir=str(sandbox.state_dir),
        ledger_file=str(tmp_path / "ledger.sqlite"),
    ) as conn:
        yield conn


def test_invoices_nexudus_already_sent_to_xero_are_never_sent_again(
    sandbox: Sandbox, shoreditch: Connection
) -> None:
    """§11: "recon must skip invoices already flagged" (XeroInvoiceTransfered)."""
    plan = plan_transfer(shoreditch, ledger=Ledger(shoreditch.ledger_path))
    sent = set(sandbox.planted["already_sent_by_nexudus"])
    assert sent and not sent & set(plan.eligible["invoice_number"])
    reasons = plan.excluded.set_index("invoice_number")["reason"]
    assert all("already sent to Xero by Nexudus" in reasons[n] for n in sent)


def test_a_location_with_nexudus_automatic_transfer_on_is_warned_about_before_any_push(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """§11: "If Nexudus' automatic mode is on for a location ... warn when the mode is on"."""
    leeds = _plan(sandbox, tmp_path, "Hive Leeds Wellington Place")
    shoreditch = _plan(sandbox, tmp_path, "Hive Shoreditch")
    assert len(leeds.context["warnings"]) == 1
    assert "automatic transfer" in leeds.context["warnings"][0]
    assert "Warning:" in transfer_plan_html(leeds)
    assert shoreditch.context["warnings"] == []


def test_dublins_prices_are_read_as_including_tax_from_its_own_totals(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """§7.2: with no setting, each invoice's totals decide; Dublin's amounts are gross."""
    plan = _plan(sandbox, tmp_path, "Hive Dublin Docklands")
    taxed = set(sandbox.planted["tax_inclusive_invoices"]) & set(plan.eligible["invoice_number"])
    assert len(taxed) > 10
    ids = plan.eligible.set_index("invoice_number")["nexudus_invoice_id"]
    kinds = {plan.payloads[int(ids[n])]["LineAmountTypes"] for n in taxed}
    assert kinds == {"Inclusive"}


@pytest.mark.parametrize(
    ("location", "setting"), [("Hive Dublin Docklands", False), ("Hive Shoreditch", True)]
)
def test_a_wrong_prices_include_tax_setting_holds_the_invoices_back_with_the_reason(
    sandbox: Sandbox, tmp_path: Path, location: str, setting: bool
) -> None:
    """§7.2, §13: the parameter is checked against each invoice's totals, before any call."""
    right = _plan(sandbox, tmp_path, location)
    wrong = _plan(sandbox, tmp_path, location, prices_include_tax=setting)
    flagged = wrong.excluded[wrong.excluded["reason"].str.contains("prices_include_tax")]
    assert len(flagged) > 10
    # The right setting lets them through the price check (a few may then wait on a later
    # guard, e.g. the demo's ambiguous contact).
    assert not right.excluded["reason"].str.contains("prices_include_tax").any()
    assert len(set(flagged["invoice_number"]) - set(right.eligible["invoice_number"])) <= 3
    assert f"prices_include_tax is {str(setting).lower()}" in flagged.iloc[0]["reason"]


def test_the_right_prices_include_tax_setting_changes_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    decided = _plan(sandbox, tmp_path, "Hive Dublin Docklands")
    stated = _plan(sandbox, tmp_path, "Hive Dublin Docklands", prices_include_tax=True)
    assert list(stated.eligible["invoice_number"]) == list(decided.eligible["invoice_number"])
