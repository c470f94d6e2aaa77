"""Credit notes allocated to their original invoices in Xero, over real HTTP against the sandbox.

The demo's one Shoreditch credit note reverses a clean, unpaid invoice (``planted["credit_note"]``
and ``planted["credit_note_original"]``): in Nexudus it is a separate invoice with a negative
TotalAmount, CreditNote true and OriginalInvoiceGuid = the original's UniqueId (nexudus.md §7.1).
Each test transfers what it needs with the ordinary ``plan_transfer``/``push``, then plans and
allocates (Xero's ``PUT /CreditNotes/{CreditNoteID}/Allocations``, spec operation
createCreditNoteAllocation), and checks what Xero, the ledger and the result say.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from recon.cells import unescape
from recon.ledger import Ledger
from recon.session import Connection
from recon.transfer import plan_transfer, push
from recon.transfer.allocate import (
    PLAN_COLUMNS,
    RESULT_COLUMNS,
    AllocationPlan,
    AllocationResult,
    allocate,
    allocation_key,
    plan_allocations,
)

PAID_ON = "2026-03-20"


# ---- helpers ----
def _numbers(conn: Connection) -> tuple[str, str]:
    """The demo's credit note and its original, by Nexudus invoice number."""
    planted = conn.sandbox.planted  # type: ignore[union-attr]
    return str(planted["credit_note"]), str(planted["credit_note_original"])


def _transfer(conn: Connection, ledger: Ledger, numbers: list[str]) -> dict[str, str]:
    """Push just these invoices and credit notes; returns number -> Xero id."""
    plan = plan_transfer(conn, ledger=ledger)
    assert set(numbers) <= set(plan.eligible["invoice_number"])
    result = push(conn, plan.only(numbers), ledger)
    assert set(result.outcomes["outcome"]) == {"created"}
    rows = ledger.transfers(str(conn.xero.tenant_id)).set_index("invoice_number")["xero_id"]
    return {n: str(rows[n]) for n in numbers}


def _credit_note(conn: Connection, credit_note_id: str, number: str) -> dict[str, Any]:
    (note,) = [
        n
        for n in conn.xero.iter_credit_notes(numbers=[number])
        if n["CreditNoteID"] == credit_note_id
    ]
    return note


def _live(note: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in note.get("Allocations") or [] if not a.get("IsDeleted")]


def _pay(conn: Connection, invoice_id: str, amount: Decimal) -> None:
    """The accountant records a payment against the invoice in Xero."""
    accounts = conn.xero.fetch_accounts()
    bank = accounts[(accounts["Type"] == "BANK") & (accounts["Status"] == "ACTIVE")].iloc[0]["Code"]
    (paid,) = conn.xero.create_payments(
        [
            {
                "Invoice": {"InvoiceID": invoice_id},
                "Account": {"Code": bank},
                "Amount": amount,
                "Date": PAID_ON,
            }
        ]
    )
    assert not paid.get("ValidationErrors"), paid


def _only_row(plan: AllocationPlan) -> dict[str, Any]:
    assert len(plan.rows) == 1, plan.rows
    return dict(plan.rows.iloc[0])


# ---- a full allocation, then nothing more ----
def test_a_transferred_credit_note_is_allocated_to_its_original_and_a_second_run_sends_nothing(
    fresh_conn: Connection, tmp_path: Path
) -> None:
    conn = fresh_conn
    note_no, original_no = _numbers(conn)
    tenant = str(conn.xero.tenant_id)
    with Ledger(conn.ledger_path) as ledger:
        ids = _transfer(conn, ledger, [original_no, note_no])
        original_before = conn.xero.get_invoice(ids[original_no])
        total = Decimal(str(original_before["Total"]))
        assert Decimal(str(original_before["AmountDue"])) == total > 0

        calls_before = conn.xero.calls
        plan = plan_allocations(conn, ledger)
        # One read for the credit notes, one for the originals (IDs=), nothing per credit note.
        assert conn.xero.calls - calls_before == 2 == plan.context["xero_calls"]
        assert list(plan.rows.columns) == PLAN_COLUMNS
        row = _only_row(plan)
        assert (row["credit_note_number"], row["original_number"]) == (note_no, original_no)
        assert row["credit"] == row["original_due"] == row["amount"] == total
        assert (row["part"], row["reason"]) == (False, "")
        assert (row["credit_note_id"], row["original_id"]) == (ids[note_no], ids[original_no])
        assert repr(plan) == "<AllocationPlan 1 to allocate, 0 not allocated>"
        assert plan.describe() == f"Allocate 1 credit notes (GBP {total:,.2f})"
        html = plan._repr_html_()
        assert note_no in html and original_no in html and f"{total:,.2f}" in html
        assert ids[note_no] not in html  # ids stay in rows, out of the table a person reads
        assert ledger.allocations(tenant).empty  # planning writes nothing

        result = allocate(conn, plan, ledger)
        assert result.counts() == {"allocated": 1}
        assert result.failed.empty
        assert repr(result) == "<AllocationResult {'allocated': 1}>"
        assert note_no in result._repr_html_()
        saved = pd.read_csv(result.save(tmp_path))
        assert saved["outcome"].tolist() == ["allocated"]

        # Xero: the original is fully credited and paid off; the credit note has no credit left.
        original = conn.xero.get_invoice(ids[original_no])
        assert Decimal(str(original["AmountCredited"])) == total
        assert Decimal(str(original["AmountDue"])) == 0
        assert original["Status"] == "PAID"
        note = _credit_note(conn, ids[note_no], note_no)
        assert Decimal(str(note["RemainingCredit"])) == 0
        assert note["Status"] == "PAID"
        (allocation,) = _live(note)
        assert allocation["Invoice"]["InvoiceID"] == ids[original_no]
        assert Decimal(str(allocation["Amount"])) == total

        # The ledger: one allocation, made, under the key of its first attempt.
        rows = ledger.allocations(tenant)
        assert rows["state"].tolist() == ["allocated"]
        assert rows["amount"].tolist() == [total]
        assert rows["idempotency_key"].tolist() == [
            allocation_key(tenant, ids[note_no], ids[original_no], total, 1)
        ]
        assert ledger.unfinished_allocations(tenant).empty

        # The same (stale) plan again: nothing sent, not even a read.
        calls_before = conn.xero.calls
        again = allocate(conn, plan, ledger)
        assert conn.xero.calls == calls_before
        assert again.counts() == {"skipped": 1}
        assert "already allocated" in again.outcomes["messages"].iloc[0]
        # A new plan: the ledger knows the credit is used up, so Xero is not even asked.
        replan = plan_allocations(conn, ledger)
        assert replan.rows.empty and replan.context["fully_allocated"] == 1
        assert replan.context["xero_calls"] == 0
        assert allocate(conn, replan, ledger).outcomes.empty
    assert len(_live(_credit_note(conn, ids[note_no], note_no))) == 1


# ---- interrupted runs ----
def test_a_crash_between_intent_and_outcome_is_resolved_from_xero_and_never_allocated_twice(
    fresh_conn: Connection,
) -> None:
    """The intent is in the ledger and Xero saved the allocation, but the run died before the
    outcome was written: the next run finds it among the credit note's Allocations."""
    conn = fresh_conn
    note_no, original_no = _numbers(conn)
    tenant = str(conn.xero.tenant_id)
    with Ledger(conn.ledger_path) as ledger:
        ids = _transfer(conn, ledger, [original_no, note_no])
        plan = plan_allocations(conn, ledger)
        row = _only_row(plan)
        key = allocation_key(tenant, ids[note_no], ids[original_no], row["amount"], 1)
        ledger.record_allocation_intent(
            tenant,
            key,
            credit_note_id=ids[note_no],
            invoice_id=ids[original_no],
            amount=row["amount"],
            attempt=1,
            credit_note_number=note_no,
            invoice_number=original_no,
        )
        conn.xero.allocate_credit_note(
            ids[note_no],
            [
                {
                    "Invoice": {"InvoiceID": ids[original_no]},
                    "Amount": row["amount"],
                    "Date": row["date"],
                }
            ],
            idempotency_key=key,
        )
        # ... the process dies here. The next run, with the plan it had:
        assert ledger.unfinished_allocations(tenant)["idempotency_key"].tolist() == [key]
        result = allocate(conn, plan, ledger)
        assert result.counts() == {"skipped": 1}
        assert ledger.unfinished_allocations(tenant).empty
        rows = ledger.allocations(tenant)
        assert rows["state"].tolist() == ["allocated"]
        assert "recovered: found in Xero" in rows["messages"].iloc[0]
        events = ledger.events()
        assert events[events["action"] == "recover allocation"]["outcome"].tolist() == ["allocated"]
        assert plan_allocations(conn, ledger).rows.empty
    assert len(_live(_credit_note(conn, ids[note_no], note_no))) == 1
    assert conn.xero.get_invoice(ids[original_no])["Status"] == "PAID"


def test_an_allocation_whose_answer_was_lost_is_found_in_xero_and_not_sent_again(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    note_no, original_no = _numbers(conn)
    tenant = str(conn.xero.tenant_id)
    faults = conn.sandbox.xero.faults  # type: ignore[union-attr]
    with Ledger(conn.ledger_path) as ledger:
        ids = _transfer(conn, ledger, [original_no, note_no])
        plan = plan_allocations(conn, ledger)
        # Xero saves the allocation, and every answer (each keyed retry's too) is dropped.
        faults.drop_next(conn.xero.retry.attempts, after_commit=True)
        result = allocate(conn, plan, ledger)
        assert result.counts() == {"allocated": 1}
        assert "found in Xero after a lost answer" in result.outcomes["messages"].iloc[0]
        assert ledger.allocations(tenant)["state"].tolist() == ["allocated"]
        assert allocate(conn, plan_allocations(conn, ledger), ledger).outcomes.empty
    assert len(_live(_credit_note(conn, ids[note_no], note_no))) == 1


def test_a_lost_answer_xero_could_not_be_asked_about_stays_open_until_the_next_run_resolves_it(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    note_no, original_no = _numbers(conn)
    tenant = str(conn.xero.tenant_id)
    faults = conn.sandbox.xero.faults  # type: ignore[union-attr]
    attempts = conn.xero.retry.attempts
    with Ledger(conn.ledger_path) as ledger:
        ids = _transfer(conn, ledger, [original_no, note_no])
        plan = plan_allocations(conn, ledger)
        faults.drop_next(attempts, after_commit=True)  # saved, every answer dropped
        faults.fail_next(attempts, status=503)  # and the look-up is never answered
        first = allocate(conn, plan, ledger)
        assert first.counts() == {"unknown": 1}
        assert first.outcomes["messages"].iloc[0].startswith("unknown: Xero did not answer")
        assert len(ledger.unfinished_allocations(tenant)) == 1

    with Ledger(conn.ledger_path) as ledger:  # the next run, a new process
        rerun = allocate(conn, plan_allocations(conn, ledger), ledger)
        assert rerun.outcomes.empty  # recovered before planning was even needed
        assert ledger.unfinished_allocations(tenant).empty
        assert ledger.allocations(tenant)["state"].tolist() == ["allocated"]
    assert len(_live(_credit_note(conn, ids[note_no], note_no))) == 1


def test_an_allocation_never_saved_before_a_crash_is_sent_again_under_a_new_key(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    note_no, original_no = _numbers(conn)
    tenant = str(conn.xero.tenant_id)
    faults = conn.sandbox.xero.faults  # type: ignore[union-attr]
    attempts = conn.xero.retry.attempts
    with Ledger(conn.ledger_path) as ledger:
        ids = _transfer(conn, ledger, [original_no, note_no])
        plan = plan_allocations(conn, ledger)
        faults.drop_next(attempts, after_commit=False)  # never reaches Xero's books
        faults.fail_next(attempts, status=503)
        assert allocate(conn, plan, ledger).counts() == {"unknown": 1}
        assert _live(_credit_note(conn, ids[note_no], note_no)) == []

        rerun = allocate(conn, plan_allocations(conn, ledger), ledger)
        assert rerun.counts() == {"allocated": 1}
        rows = ledger.allocations(tenant)
        assert rows["state"].tolist() == ["failed", "allocated"]
        assert rows["attempt"].tolist() == [1, 2]
        assert rows["idempotency_key"].nunique() == 2
    assert len(_live(_credit_note(conn, ids[note_no], note_no))) == 1


# ---- part allocations, reasons, refusals ----
def test_a_credit_larger_than_what_the_original_still_owes_is_a_part_allocation(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    note_no, original_no = _numbers(conn)
    with Ledger(conn.ledger_path) as ledger:
        ids = _transfer(conn, ledger, [original_no, note_no])
        total = Decimal(str(conn.xero.get_invoice(ids[original_no])["Total"]))
        due = Decimal("40.00")
        assert total > due
        _pay(conn, ids[original_no], total - due)  # the customer paid all but 40.00

        row = _only_row(plan_allocations(conn, ledger))
        assert (row["credit"], row["original_due"], row["amount"]) == (total, due, due)
        assert bool(row["part"])
        left = total - due
        assert row["reason"] == f"part: {due:,.2f} of {total:,.2f}; {left:,.2f} stays as credit"

        result = allocate(conn, plan_allocations(conn, ledger), ledger)
        assert result.counts() == {"allocated": 1}
        assert ledger.allocated_amounts(str(conn.xero.tenant_id)) == {ids[note_no]: due}
        # The credit left stays a credit: planned again, it has nowhere to go and says why.
        again = _only_row(plan_allocations(conn, ledger))
        assert (again["credit"], again["original_due"]) == (left, 0)
        assert pd.isna(again["amount"])
        assert again["reason"] == f"original paid in Xero: nothing due on {original_no}"
    original = conn.xero.get_invoice(ids[original_no])
    assert (original["Status"], Decimal(str(original["AmountDue"]))) == ("PAID", 0)
    assert Decimal(str(original["AmountCredited"])) == due
    note = _credit_note(conn, ids[note_no], note_no)
    assert Decimal(str(note["RemainingCredit"])) == left
    assert note["Status"] == "AUTHORISED"


def test_a_credit_note_whose_original_was_never_transferred_is_not_allocated_and_says_why(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    note_no, original_no = _numbers(conn)
    with Ledger(conn.ledger_path) as ledger:
        ids = _transfer(conn, ledger, [note_no])
        plan = plan_allocations(conn, ledger)
        row = _only_row(plan)
        assert row["original_number"] == original_no
        assert pd.isna(row["amount"])
        assert row["reason"].startswith(f"original not transferred: {original_no}")
        assert repr(plan) == "<AllocationPlan 0 to allocate, 1 not allocated>"
        calls_before = conn.xero.calls
        result = allocate(conn, plan, ledger)
        assert conn.xero.calls == calls_before  # nothing sent
        assert result.counts() == {"not allocated": 1}
        assert result.outcomes["messages"].iloc[0] == row["reason"]
        assert ledger.allocations(str(conn.xero.tenant_id)).empty
    note = _credit_note(conn, ids[note_no], note_no)
    assert _live(note) == [] and Decimal(str(note["RemainingCredit"])) == Decimal(
        str(note["Total"])
    )


def test_an_original_paid_after_the_plan_is_refused_by_xero_in_its_own_words(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    note_no, original_no = _numbers(conn)
    tenant = str(conn.xero.tenant_id)
    with Ledger(conn.ledger_path) as ledger:
        ids = _transfer(conn, ledger, [original_no, note_no])
        plan = plan_allocations(conn, ledger)
        due = Decimal(str(conn.xero.get_invoice(ids[original_no])["AmountDue"]))
        _pay(conn, ids[original_no], due)  # paid in Xero between the preview and the click
        result = allocate(conn, plan, ledger)
        assert result.counts() == {"failed": 1}
        message = "The invoice you are trying to allocate to has already been paid off"
        assert message in result.failed["messages"].iloc[0]
        rows = ledger.allocations(tenant)
        assert rows["state"].tolist() == ["failed"]
        assert message in rows["messages"].iloc[0]
        # Planned again, the reason is recon's own and nothing is proposed.
        row = _only_row(plan_allocations(conn, ledger))
        assert pd.isna(row["amount"])
        assert row["reason"] == f"original paid in Xero: nothing due on {original_no}"
    assert _live(_credit_note(conn, ids[note_no], note_no)) == []


def test_a_plan_for_another_organisation_is_refused_without_a_call(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    note_no, original_no = _numbers(conn)
    with Ledger(conn.ledger_path) as ledger:
        _transfer(conn, ledger, [original_no, note_no])
        plan = plan_allocations(conn, ledger)
        elsewhere = AllocationPlan(plan.rows, "another-tenant", plan.context)
        calls_before = conn.xero.calls
        result = allocate(conn, elsewhere, ledger)
        assert conn.xero.calls == calls_before
        assert result.counts() == {"refused": 1}
        assert ledger.allocations(str(conn.xero.tenant_id)).empty


def test_an_allocation_xero_refuses_keeps_its_words_and_does_not_stop_the_next(
    fresh_conn: Connection,
) -> None:
    """Two allocations in one plan: the first names an invoice Xero does not have (refused with
    a validation message, spec createCreditNoteAllocation x-hasAccountingValidationError), the
    second is the real one and is still made."""
    conn = fresh_conn
    note_no, original_no = _numbers(conn)
    tenant = str(conn.xero.tenant_id)
    with Ledger(conn.ledger_path) as ledger:
        ids = _transfer(conn, ledger, [original_no, note_no])
        plan = plan_allocations(conn, ledger)
        good = plan.rows.iloc[0]
        missing = "00000000-0000-0000-0000-000000000001"
        bad = good.copy()
        bad["original_id"], bad["original_number"] = missing, "NOWHERE-1"
        both = AllocationPlan(pd.DataFrame([bad, good]), plan.tenant_id, plan.context)
        result = allocate(conn, both, ledger)
        assert result.outcomes["outcome"].tolist() == ["failed", "allocated"]
        refused = result.failed.iloc[0]
        assert refused["original_number"] == "NOWHERE-1"
        assert "Invoice could not be found" in refused["messages"]
        rows = ledger.allocations(tenant).set_index("invoice_id")
        assert rows.loc[missing, "state"] == "failed"
        assert "Invoice could not be found" in rows.loc[missing, "messages"]
        assert rows.loc[ids[original_no], "state"] == "allocated"
    assert conn.xero.get_invoice(ids[original_no])["Status"] == "PAID"


def test_the_outcomes_csv_makes_formula_like_text_inert_and_keeps_money_a_number(
    tmp_path: Path,
) -> None:
    """A Xero refusal echoes text a customer typed; in allocation_outcomes.csv it is text behind a
    quote (recon.cells.csv_safe), and reads back exactly through ``unescape``."""
    hostile = '=HYPERLINK("http://x","y")'
    outcomes = pd.DataFrame(
        [["CN-1", "SHO-1", "GBP", Decimal("-12.50"), "failed", hostile, "c1", "i1"]],
        columns=RESULT_COLUMNS,
    )
    path = AllocationResult(outcomes, {"xero": 1}, 0.0).save(tmp_path)
    with path.open(newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["messages"] == "'" + hostile and unescape(row["messages"]) == hostile
    assert row["amount"] == "-12.50"
