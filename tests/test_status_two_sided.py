"""The status sync both ways, over real HTTP: invoices changed in Nexudus after transfer (voided,
re-totalled, part-paid, deleted, credited, paid twice) each show with their difference, action and
actor; one settled by credit in Xero is never marked paid; void and credit in Xero happen only when
confirmed, exactly once.

Nexudus changes are made as a person makes them, at the sandbox's desk (nexudus.md §9:
VOID_INVOICE, COWORKER_INVOICE_CANCEL, COWORKER_INVOICE_DELETE; §7.1 re-totalling) or through the
API (§8: a part payment is a ledger entry with a Credit).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from recon import status_xero
from recon.errors import StepError
from recon.ledger import Ledger
from recon.session import Connection
from recon.status import Difference, StatusDiff, apply_paid, sync_status
from recon.status_xero import apply_xero_changes, proposed_xero_changes
from recon.transfer import AllocationPlan, plan_allocations, plan_transfer, push

ROLES = (
    "void",
    "retotal",
    "part_pay",
    "delete",
    "credit",
    "void_paid_in_xero",
    "paid_twice",
    "credited_in_xero",
    "untouched",
)


@dataclass
class Transferred:
    """Invoices transferred to Xero, one per role, and the baseline sync done."""

    conn: Connection
    ledger: Ledger
    number: dict[str, str]  # role -> invoice number
    nexudus_id: dict[str, int]  # role -> Nexudus invoice id
    xero_id: dict[str, str]  # role -> Xero InvoiceID

    @property
    def desk(self) -> Any:
        assert self.conn.sandbox is not None
        return self.conn.sandbox.nexudus.desk

    def pay_in_xero(self, role: str, amount: Decimal | None = None) -> None:
        xero = self.conn.xero
        bank = xero.fetch_accounts().query("Type == 'BANK'").iloc[0]["Code"]
        due = xero.get_invoice(self.xero_id[role])["AmountDue"]
        made = xero.create_payments(
            [
                {
                    "Invoice": {"InvoiceID": self.xero_id[role]},
                    "Account": {"Code": bank},
                    "Amount": amount if amount is not None else due,
                    "Date": "2026-11-20",
                }
            ]
        )
        assert made[0]["StatusAttributeString"] == "OK"

    def xero_invoice(self, role: str) -> dict[str, Any]:
        return self.conn.xero.get_invoice(self.xero_id[role])


@pytest.fixture
def moved(fresh_conn: Connection) -> Iterator[Transferred]:
    conn = fresh_conn
    ledger = Ledger(conn.ledger_path)
    planted = conn.sandbox.planted
    unpaid = set(planted["clean_invoices"]) - set(planted["paid_in_nexudus_invoices"])
    plan = plan_transfer(conn, ledger=ledger)
    invoices = plan.eligible[plan.eligible["kind"] == "invoice"]
    chosen = [n for n in invoices["invoice_number"] if n in unpaid][: len(ROLES)]
    assert len(chosen) == len(ROLES)
    push(conn, plan.only(chosen), ledger)
    sync_status(conn, ledger)  # the baseline: both sides as just after the transfer
    rows = ledger.transfers(conn.xero.tenant_id).set_index("invoice_number")
    number = dict(zip(ROLES, chosen, strict=True))
    yield Transferred(
        conn,
        ledger,
        number,
        {r: int(rows.at[n, "nexudus_invoice_id"]) for r, n in number.items()},
        {r: str(rows.at[n, "xero_id"]) for r, n in number.items()},
    )
    ledger.close()


def _kinds(diff: StatusDiff, number: str) -> set[str]:
    rows = diff.differences
    return set(rows[rows["invoice_number"] == number]["difference"])


def _row(diff: StatusDiff, number: str, kind: Difference) -> pd.Series:
    rows = diff.differences
    found = rows[(rows["invoice_number"] == number) & (rows["difference"] == kind.value)]
    assert len(found) == 1, f"{number}: {kind.value} not in {_kinds(diff, number)}"
    return found.iloc[0]


def _change_in_nexudus(t: Transferred) -> None:
    """What people did to the transferred invoices after the transfer."""
    t.desk.void(t.nexudus_id["void"])
    t.desk.retotal(t.nexudus_id["retotal"], [{"UnitPrice": Decimal("999.00")}])
    t.conn.nexudus.record_payment(
        t.nexudus_id["part_pay"], Decimal("10.00"), date(2026, 11, 18), "Part payment", code="BANK"
    )
    t.desk.delete(t.nexudus_id["delete"])
    t.desk.credit(t.nexudus_id["credit"], "10.00")
    t.pay_in_xero("void_paid_in_xero")
    t.desk.void(t.nexudus_id["void_paid_in_xero"])
    total = t.conn.nexudus.get_invoice(t.nexudus_id["paid_twice"])["TotalAmount"]
    t.desk.part_pay(t.nexudus_id["paid_twice"], total)  # the card payment Nexudus took
    t.desk.part_pay(t.nexudus_id["paid_twice"], "5.00")  # and a second one on top
    t.pay_in_xero("paid_twice")  # the customer also paid by bank transfer


def test_each_change_made_in_nexudus_after_transfer_shows_with_its_action_and_actor(
    moved: Transferred,
) -> None:
    t = moved
    before = {r: t.xero_invoice(r)["Total"] for r in ROLES}
    _change_in_nexudus(t)
    diff = sync_status(t.conn, t.ledger)
    n = t.number

    void = _row(diff, n["void"], Difference.VOIDED_IN_NEXUDUS)
    assert void["actor"] == "recon" and void["nexudus_status"] == "void"
    assert void["xero_status"] == "AUTHORISED" and "Void in Xero" in void["action"]

    retotal = _row(diff, n["retotal"], Difference.TOTAL_CHANGED_IN_NEXUDUS)
    now = t.conn.nexudus.get_invoice(t.nexudus_id["retotal"])["TotalAmount"]
    assert retotal["actor"] == "person"
    assert retotal["nexudus_total"] == now != retotal["nexudus_total_at_transfer"]
    assert retotal["xero_total"] == before["retotal"] == retotal["nexudus_total_at_transfer"]

    part = _row(diff, n["part_pay"], Difference.PART_PAID_IN_NEXUDUS)
    assert part["actor"] == "person" and part["nexudus_status"] == "part-paid"
    assert part["nexudus_paid_amount"] == Decimal("10.00") and part["xero_amount_paid"] == 0

    deleted = _row(diff, n["delete"], Difference.DELETED_IN_NEXUDUS)
    assert deleted["actor"] == "person" and deleted["nexudus_status"] == "deleted"
    assert deleted["xero_status"] == "AUTHORISED"

    credit = _row(diff, n["credit"], Difference.CREDIT_NOTE_IN_NEXUDUS)
    assert credit["actor"] == "recon" and credit["nexudus_status"] == "part-credited"
    assert credit["nexudus_credited"] == Decimal("10.00") and credit["xero_amount_credited"] == 0
    assert credit["nexudus_due"] == credit["nexudus_total"] - Decimal("10.00")

    money = _row(diff, n["void_paid_in_xero"], Difference.VOIDED_IN_NEXUDUS_WITH_MONEY)
    assert money["actor"] == "person" and money["xero_status"] == "PAID"

    twice = _row(diff, n["paid_twice"], Difference.PAID_TWICE)
    assert twice["actor"] == "person"
    assert twice["nexudus_paid_amount"] == twice["xero_amount_paid"] + Decimal("5.00")

    # Each shows as that difference only, and what nobody touched shows nothing.
    assert _kinds(diff, n["void"]) == {Difference.VOIDED_IN_NEXUDUS.value}
    assert _kinds(diff, n["retotal"]) == {Difference.TOTAL_CHANGED_IN_NEXUDUS.value}
    assert _kinds(diff, n["part_pay"]) == {Difference.PART_PAID_IN_NEXUDUS.value}
    assert _kinds(diff, n["delete"]) == {Difference.DELETED_IN_NEXUDUS.value}
    assert _kinds(diff, n["credit"]) == {Difference.CREDIT_NOTE_IN_NEXUDUS.value}
    assert _kinds(diff, n["untouched"]) == set()
    # Nothing recon cannot do is given to recon.
    assert set(diff.differences["actor"]) <= {"recon", "person"}
    assert diff.paid_in_xero.empty  # the one paid in Xero was voided or paid twice in Nexudus


def test_a_deleted_invoice_is_found_by_a_count_then_one_whole_read_and_one_get(
    moved: Transferred,
) -> None:
    """§3 TotalItems tells the count changed; only the missing invoice is asked for by id (§4 a
    404 is "Not found")."""
    t = moved
    quiet = sync_status(t.conn, t.ledger)
    assert quiet.calls["nexudus"] == 2 and not quiet.context["nexudus_whole_read"]
    t.desk.delete(t.nexudus_id["delete"])
    remaining = t.conn.nexudus.count_invoices(int(t.conn.business["Id"]))
    assert remaining is not None
    diff = sync_status(t.conn, t.ledger)
    pages = math.ceil(remaining / 1000)
    # changed since the watermark (nothing), the count, the whole read, one GET answering 404
    assert diff.calls["nexudus"] == 2 + pages + 1
    assert diff.context["nexudus_whole_read"]
    assert _kinds(diff, t.number["delete"]) == {Difference.DELETED_IN_NEXUDUS.value}
    again = sync_status(t.conn, t.ledger)  # kept in the ledger: no whole read, still reported
    assert again.calls["nexudus"] == 2 and not again.context["nexudus_whole_read"]
    assert _kinds(again, t.number["delete"]) == {Difference.DELETED_IN_NEXUDUS.value}


def test_void_in_xero_happens_only_when_confirmed_and_voids_exactly_those_invoices_once(
    moved: Transferred,
) -> None:
    t = moved
    _change_in_nexudus(t)
    diff = sync_status(t.conn, t.ledger)
    preview = proposed_xero_changes(diff).set_index("invoice_number")
    assert set(preview.index) == {t.number["void"], t.number["delete"], t.number["credit"]}
    assert preview.at[t.number["void"], "change"] == "void"

    with pytest.raises(StepError, match="confirm=True"):
        apply_xero_changes(t.conn, t.ledger, diff, confirm=False)
    assert {t.xero_invoice(r)["Status"] for r in ("void", "delete")} == {"AUTHORISED"}

    applied = apply_xero_changes(t.conn, t.ledger, diff, confirm=True).set_index("invoice_number")
    assert applied.at[t.number["void"], "outcome"] == "voided"
    assert applied.at[t.number["delete"], "outcome"] == "voided"
    # the credit note raised in Nexudus has not been transferred yet: it waits for the transfer
    assert applied.at[t.number["credit"], "outcome"] == "waiting"
    assert applied.at[t.number["credit"], "message"].endswith(
        "is not in Xero yet: run the transfer, then apply again"
    )
    voided = {r for r in ROLES if t.xero_invoice(r)["Status"] == "VOIDED"}
    assert voided == {"void", "delete"}  # the one paid in Xero is left for a person

    stamps = {r: t.xero_invoice(r)["UpdatedDateUTC"] for r in ("void", "delete")}
    second = apply_xero_changes(t.conn, t.ledger, diff, confirm=True).set_index("invoice_number")
    assert second.at[t.number["void"], "outcome"] == "already done"
    assert second.at[t.number["delete"], "outcome"] == "already done"
    assert {r: t.xero_invoice(r)["UpdatedDateUTC"] for r in ("void", "delete")} == stamps
    events = t.ledger.events()
    sent = events[(events["action"] == "void invoice") & (events["outcome"] == "sending")]
    assert len(sent) == 2  # one write each, ever

    after = sync_status(t.conn, t.ledger)
    assert _kinds(after, t.number["void"]) == set()
    assert _kinds(after, t.number["delete"]) == set()
    assert proposed_xero_changes(after)["invoice_number"].tolist() == [t.number["credit"]]


def _credit_in_xero(t: Transferred, role: str) -> None:
    """In Xero the accountant raises a credit note for the whole amount and allocates it."""
    invoice = t.xero_invoice(role)
    notes = t.conn.xero.create_credit_notes(
        [
            {
                "Type": "ACCRECCREDIT",
                "Contact": {"ContactID": invoice["Contact"]["ContactID"]},
                "Date": "2026-11-20",
                "Status": "AUTHORISED",
                "LineAmountTypes": "Inclusive",
                "CurrencyCode": invoice["CurrencyCode"],
                "LineItems": [
                    {
                        "Description": "Goodwill credit",
                        "Quantity": 1,
                        "UnitAmount": invoice["AmountDue"],
                        "AccountCode": "4000",
                        "TaxType": "OUTPUT2",
                    }
                ],
            }
        ]
    )
    assert notes[0]["StatusAttributeString"] == "OK", notes[0]
    xero = t.conn.xero
    xero.request(
        "PUT",
        f"{xero.config.api_url}/CreditNotes/{notes[0]['CreditNoteID']}/Allocations",
        json_body={
            "Allocations": [
                {
                    "Invoice": {"InvoiceID": t.xero_id[role]},
                    "Amount": invoice["AmountDue"],
                    "Date": "2026-11-20",
                }
            ]
        },
    )


def test_an_invoice_settled_by_credit_in_xero_is_credited_and_never_marked_paid(
    moved: Transferred,
) -> None:
    t = moved
    _credit_in_xero(t, "credited_in_xero")
    settled = t.xero_invoice("credited_in_xero")
    assert settled["Status"] == "PAID" and settled["AmountPaid"] == 0
    diff = sync_status(t.conn, t.ledger)
    number = t.number["credited_in_xero"]
    row = _row(diff, number, Difference.CREDITED_IN_XERO)
    assert row["actor"] == "person" and row["xero_amount_credited"] == settled["Total"]
    assert _kinds(diff, number) == {Difference.CREDITED_IN_XERO.value}
    assert number not in set(diff.paid_in_xero["invoice_number"])
    assert apply_paid(t.conn, t.ledger, diff).empty

    # Even a diff that calls it paid (stale, or edited by hand) does not get it paid.
    forged = dataclasses.replace(
        diff,
        differences=diff.differences.assign(
            difference=diff.differences["difference"].where(
                diff.differences["invoice_number"] != number, Difference.PAID_IN_XERO.value
            )
        ),
    )
    result = apply_paid(t.conn, t.ledger, forged).set_index("invoice_number")
    assert result.at[number, "outcome"] == "skipped"
    assert "credit note" in result.at[number, "message"]
    invoice = t.conn.nexudus.get_invoice(t.nexudus_id["credited_in_xero"])
    assert not invoice["Paid"] and invoice["PaidAmount"] == 0
    assert t.ledger.payments(t.conn.xero.tenant_id).empty


def _credit_and_transfer(t: Transferred, amount: str) -> tuple[StatusDiff, dict[str, Any]]:
    """Nexudus staff raise a credit note of ``amount`` against the "credit" invoice (§9
    COWORKER_INVOICE_CANCEL); the sync finds it; then the transfer step sends the credit note
    (raised today, so a period of today). Returns the diff made before the transfer and the note."""
    note = t.desk.credit(t.nexudus_id["credit"], amount)
    diff = sync_status(t.conn, t.ledger)
    assert _kinds(diff, t.number["credit"]) == {Difference.CREDIT_NOTE_IN_NEXUDUS.value}
    day = pd.Timestamp(note["CreatedOn"]).tz_convert(str(t.conn.nexudus.zone)).date()
    today = dataclasses.replace(
        t.conn, params=t.conn.params.with_overrides(period_start=day, period_end=day)
    )
    plan = plan_transfer(today, ledger=t.ledger)
    assert note["InvoiceNumber"] in set(plan.eligible["invoice_number"]), plan.excluded
    push(today, plan.only([note["InvoiceNumber"]]), t.ledger)
    return diff, note


def test_a_credit_note_raised_in_nexudus_is_allocated_in_xero_once_transferred_and_confirmed(
    moved: Transferred,
) -> None:
    t = moved
    tenant = str(t.conn.xero.tenant_id)
    diff, note = _credit_and_transfer(t, "10.00")

    # The preview shows what the allocation plan would allocate, now the credit note is in Xero.
    preview = proposed_xero_changes(diff, plan_allocations(t.conn, t.ledger))
    assert preview["change"].tolist() == ["allocate credit"]
    assert preview["amount"].tolist() == [Decimal("10.00")]
    assert preview["note"].tolist() == [f"credit note {note['InvoiceNumber']}: in full"]
    assert t.ledger.allocations(tenant).empty  # previewing writes nothing

    applied = apply_xero_changes(t.conn, t.ledger, diff, confirm=True)
    assert applied["outcome"].tolist() == ["allocated"]
    assert applied["amount"].tolist() == [Decimal("10.00")]
    invoice = t.xero_invoice("credit")
    assert invoice["AmountCredited"] == Decimal("10.00")
    assert invoice["AmountDue"] == invoice["Total"] - Decimal("10.00")
    # Written by the transfer's allocation writer: one row in the ledger's allocations table, and
    # none of the status sync's own bookkeeping in the events table.
    made = t.ledger.allocations(tenant)
    assert made[["credit_note_number", "invoice_id", "state", "amount"]].values.tolist() == [
        [note["InvoiceNumber"], t.xero_id["credit"], "allocated", Decimal("10.00")]
    ]
    events = t.ledger.events()
    writes = events[events["action"] == "allocate credit note"]
    assert set(writes["subject"]) == {f"{note['InvoiceNumber']} -> {t.number['credit']}"}

    after = sync_status(t.conn, t.ledger)
    assert _kinds(after, t.number["credit"]) == set()
    again = apply_xero_changes(t.conn, t.ledger, diff, confirm=True)
    assert again["outcome"].tolist() == ["already done"]
    assert t.xero_invoice("credit")["AmountCredited"] == Decimal("10.00")
    assert len(t.ledger.allocations(tenant)) == 1  # nothing sent a second time


def test_a_credit_larger_than_what_xero_still_shows_owing_is_previewed_and_allocated_in_part(
    moved: Transferred,
) -> None:
    """The customer paid all but 4.00 in Xero after the sync: the plan allocates 4.00 of the
    10.00 credit and says the rest stays as credit."""
    t = moved
    diff, note = _credit_and_transfer(t, "10.00")
    due = Decimal(str(t.xero_invoice("credit")["AmountDue"]))
    t.pay_in_xero("credit", due - Decimal("4.00"))

    part = "part: 4.00 of 10.00; 6.00 stays as credit"
    preview = proposed_xero_changes(diff, plan_allocations(t.conn, t.ledger))
    assert preview["amount"].tolist() == [Decimal("4.00")]
    assert preview["note"].tolist() == [f"credit note {note['InvoiceNumber']}: {part}"]
    assert proposed_xero_changes(diff)["amount"].tolist() == [Decimal("10.00")]  # no plan: diff's

    applied = apply_xero_changes(t.conn, t.ledger, diff, confirm=True)
    assert applied["outcome"].tolist() == ["allocated"]
    assert applied["amount"].tolist() == [Decimal("4.00")]
    assert applied["message"].tolist() == [
        f"credit note {note['InvoiceNumber']} allocated ({part})"
    ]
    invoice = t.xero_invoice("credit")
    assert (invoice["Status"], invoice["AmountCredited"]) == ("PAID", Decimal("4.00"))


def test_an_allocation_xero_refuses_is_shown_refused_in_xeros_own_words(
    moved: Transferred, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The invoice is paid in full in Xero between the allocation plan and its write: Xero
    refuses the allocation (spec createCreditNoteAllocation, a validation error) and the row
    keeps its words."""
    t = moved
    diff, note = _credit_and_transfer(t, "10.00")

    def plan_then_paid_in_xero(conn: Connection, ledger: Ledger) -> AllocationPlan:
        plan = plan_allocations(conn, ledger)
        t.pay_in_xero("credit")
        return plan

    monkeypatch.setattr(status_xero, "plan_allocations", plan_then_paid_in_xero)
    applied = apply_xero_changes(t.conn, t.ledger, diff, confirm=True)
    assert applied["outcome"].tolist() == ["refused"]
    words = "The invoice you are trying to allocate to has already been paid off"
    (message,) = applied["message"]
    assert message.startswith(f"credit note {note['InvoiceNumber']}: ") and words in message
    assert t.ledger.allocations(str(t.conn.xero.tenant_id))["state"].tolist() == ["failed"]
    assert t.xero_invoice("credit")["AmountCredited"] == 0


def test_the_status_panel_changes_xero_only_after_its_preview_and_confirmation(
    moved: Transferred,
) -> None:
    from recon.widgets import StatusPanel

    t = moved
    t.desk.void(t.nexudus_id["void"])
    diff = sync_status(t.conn, t.ledger)
    panel = StatusPanel(t.conn, t.ledger, diff)
    assert panel.xero_button.description == "Change 1 invoices in Xero"
    preview = panel.request_xero()
    assert panel.is_confirming_xero and t.number["void"] in panel.xero_preview.value
    assert preview["change"].tolist() == ["void"]
    assert t.xero_invoice("void")["Status"] == "AUTHORISED"
    panel.cancel_xero()
    assert not panel.is_confirming_xero
    with pytest.raises(StepError):
        panel.confirm_xero()
    panel.request_xero()
    result = panel.confirm_xero()
    assert result["outcome"].tolist() == ["voided"]
    assert t.xero_invoice("void")["Status"] == "VOIDED"
    assert panel.confirm_xero() is result and panel.xero_button.disabled
    assert "1 to change in Xero, done" in repr(panel)
