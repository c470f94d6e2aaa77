"""The push checks what Xero booked against the plan, and resends an invoice Xero refused under a
new key once the cause is fixed, over real HTTP against the sandbox.

Both need the books to change between the preview and the push the way a person could change
them: a VAT rate edited in Xero's settings (the sandbox's API only reads tax rates, reference §5,
so the edit goes into its books), a period lock date set and lifted (``set_lock_dates``, the
sandbox's control for Xero's Financial settings, reference §6/§13).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recon.cli import unfinished_writes
from recon.ledger import Ledger
from recon.outcomes import ReconReason, reason_of
from recon.sandbox import Sandbox, jsonutil
from recon.session import Connection
from recon.transfer import TransferOptions, TransferPlan, batch_key, plan_transfer, push
from recon.transfer.push import UNSENT, booked_differences, recover, unfinished_outcomes


# ---- helpers -------------------------------------------------------------------------------------
def _ledger(conn: Connection) -> Ledger:
    return Ledger(conn.ledger_path)


def set_tax_rate(box: Sandbox, tenant: str, tax_type: str, rate: Decimal) -> None:
    """A person changes a tax rate's percentage in Xero (Settings > Tax rates)."""
    books = box.xero.books
    (doc,) = [t for t in books.records(tenant, "TaxRate") if t["TaxType"] == tax_type]
    doc.update(
        EffectiveRate=rate,
        DisplayTaxRate=rate,
        TaxComponents=[{**c, "Rate": rate} for c in doc.get("TaxComponents") or []],
    )
    with books.store.write() as db:
        db.execute(
            "UPDATE records SET doc=? WHERE tenant=? AND kind='TaxRate' AND id=?",
            (jsonutil.dumps(doc), tenant, tax_type),
        )


def _count_in_xero(conn: Connection, number: str) -> int:
    return sum(
        1
        for i in conn.xero.iter_invoices(invoice_numbers=[number])
        if i["Status"] != "DELETED" and i["InvoiceNumber"] == number
    )


def _clean(plan: TransferPlan, conn: Connection, count: int) -> TransferPlan:
    """The plan narrowed to its first ``count`` planted clean invoices whose every line is at 20%
    VAT (OUTPUT2)."""
    clean = set(conn.sandbox.planted["clean_invoices"])
    invoices = plan.eligible[plan.eligible["kind"] == "invoice"]
    numbers = [
        number
        for number, invoice_id in zip(
            invoices["invoice_number"], invoices["nexudus_invoice_id"], strict=True
        )
        if number in clean
        and {line["TaxType"] for line in plan.payloads[int(invoice_id)]["LineItems"]} == {"OUTPUT2"}
    ][:count]
    assert len(numbers) == count
    return plan.only(numbers)


def _one_customer(conn: Connection, ledger: Ledger, count: int) -> TransferPlan:
    """``count`` invoices of one customer whose Xero contact exists already, so the invoices'
    PUT is the push's first write."""
    options = TransferOptions(write_back=False)
    plan = plan_transfer(conn, ledger=ledger, options=options)
    invoices = plan.eligible[plan.eligible["kind"] == "invoice"]
    per_customer = invoices.groupby("contact_number")["invoice_number"].agg(list)
    numbers = next(n for n in per_customer if len(n) > count)
    push(conn, plan.only(numbers[:1]), ledger)  # creates the customer's contact
    narrowed = plan_transfer(conn, ledger=ledger, options=options).only(numbers[1 : count + 1])
    assert narrowed.eligible["xero_contact_id"].notna().all()
    return narrowed


def _transfer(ledger: Ledger, tenant: str, number: str) -> pd.Series:
    rows = ledger.transfers(tenant)
    return rows[rows["invoice_number"] == number].iloc[0]


# ---- booked with other figures than planned ------------------------------------------------------
def test_an_invoice_xero_books_with_other_figures_than_planned_fails_with_both_and_its_xero_id(
    fresh_conn: Connection, tmp_path: Path
) -> None:
    """The VAT rate is changed in Xero after the preview: Xero books 17.5% where recon planned 20%.
    Each invoice is reported failed (never created) with Xero's and the plan's figures, the
    ledger keeps it failed with its Xero id, and the next run sends nothing twice."""
    conn = fresh_conn
    tenant = str(conn.xero.tenant_id)
    with _ledger(conn) as ledger:
        plan = _clean(plan_transfer(conn, ledger=ledger), conn, 3)
        set_tax_rate(conn.sandbox, tenant, "OUTPUT2", Decimal("17.5"))
        result = push(conn, plan, ledger)
        assert set(result.outcomes["outcome"]) == {"failed"}
        assert len(result.unfinished) == 3
        planned = plan.eligible.set_index("invoice_number")
        in_xero = {
            str(i["InvoiceNumber"]): i
            for i in conn.xero.iter_invoices(invoice_numbers=list(planned.index))
        }
        for row in result.outcomes.itertuples():
            booked = in_xero[row.invoice_number]
            want = planned.loc[row.invoice_number]
            subtotal = Decimal(want["xero_subtotal"])
            tax = (subtotal * Decimal("0.175")).quantize(Decimal("0.01"), "ROUND_HALF_UP")
            assert (booked["SubTotal"], booked["TotalTax"]) == (subtotal, tax)
            assert row.messages.startswith(
                f"Xero booked total {booked['Total']}, recon planned {want['xero_total']} "
                f"(subtotal {subtotal} booked, {want['xero_subtotal']} planned; tax {tax} booked, "
                f"{want['xero_tax']} planned)"
            ), row.messages
            assert "a person must check it" in row.messages
            assert row.xero_id == booked["InvoiceID"]
            assert row.xero_total == booked["Total"]
            assert row.difference == Decimal(want["nexudus_total"]) - booked["Total"]
            assert "void or correct it" in row.fix
            state = _transfer(ledger, tenant, row.invoice_number)
            assert (state["state"], state["xero_id"]) == ("failed", booked["InvoiceID"])
            assert state["xero_total"] == booked["Total"]
            assert "Xero booked total" in state["messages"]
        assert not ledger.transferred_ids(tenant)

        # The next run: Xero holds the numbers, so nothing is sent again.
        set_tax_rate(conn.sandbox, tenant, "OUTPUT2", Decimal("20"))
        replan = plan_transfer(conn, ledger=ledger)
        assert not set(replan.eligible["invoice_number"]) & set(planned.index)
        reasons = replan.excluded.set_index("invoice_number")["reason"]
        for number in planned.index:
            # recon's own copy, not another customer's clash: said so, with its Xero id, and
            # still a write that is not done (recon run exits 3 on it).
            xero_id = in_xero[number]["InvoiceID"]
            assert reasons[number].startswith(
                f"Xero holds it (id {xero_id}) from an earlier push by recon, booked differently: "
                f"{number} is already used in Xero by "
            ), reasons[number]
            assert reasons[number].endswith("Void or correct it in Xero, then run the status sync")
            assert reason_of(reasons[number]) is ReconReason.BOOKED_DIFFERENTLY
        folder = tmp_path / "run"
        replan.save(folder)
        lines = unfinished_writes(folder)
        assert sorted(line.split(":")[0] for line in lines) == sorted(
            f"transfer {n}" for n in planned.index
        )
        assert all(": held back: Xero holds it (id " in line for line in lines)
        # Even the stale plan pushed again creates no second copy.
        again = push(conn, plan, ledger)
        assert set(again.outcomes["outcome"]) == {"failed"}
        assert (ledger.transfers(tenant)["xero_id"].notna()).all()
    assert all(_count_in_xero(conn, n) == 1 for n in planned.index)


def test_what_xero_booked_is_compared_figure_by_figure_and_by_currency() -> None:
    row: dict[str, Any] = {
        "kind": "invoice",
        "currency": "GBP",
        "xero_subtotal": Decimal("100.00"),
        "xero_tax": Decimal("20.00"),
        "xero_total": Decimal("120.00"),
    }
    booked = {
        "SubTotal": Decimal("100.00"),
        "TotalTax": Decimal("20.00"),
        "Total": Decimal("120.00"),
        "CurrencyCode": "GBP",
    }
    assert booked_differences(row, booked) == []
    assert booked_differences(
        row, {**booked, "TotalTax": Decimal("20.01"), "Total": Decimal("120.01")}
    ) == [
        "Xero booked total 120.01, recon planned 120.00 (subtotal 100.00 booked, 100.00 "
        "planned; tax 20.01 booked, 20.00 planned)"
    ]
    # A subtotal and tax swapped at the same total is still a difference.
    assert booked_differences(
        row, {**booked, "SubTotal": Decimal("99.00"), "TotalTax": Decimal("21.00")}
    )
    assert booked_differences(row, {**booked, "CurrencyCode": "EUR"}) == [
        "Xero booked it in EUR, recon planned GBP"
    ]
    # A plan without subtotal and tax is checked on its total; Nexudus' negative credit note
    # against Xero's positive one.
    note = {"kind": "credit_note", "currency": "GBP", "xero_total": Decimal("-120.00")}
    assert booked_differences(note, booked) == []
    assert booked_differences(note, {**booked, "Total": Decimal("119.99")}) == [
        "Xero booked total 119.99, recon planned 120.00 (subtotal 100.00 booked, not planned "
        "planned; tax 20.00 booked, not planned planned)"
    ]


def test_the_rows_still_to_do_are_failures_waiting_ones_and_those_a_stopped_run_did_not_send() -> (
    None
):
    outcomes = pd.DataFrame(
        {
            "invoice_number": list("ABCDEFGH"),
            "outcome": [
                "created",
                "adopted",
                "skipped",
                "skipped",
                "deferred",
                "failed",
                "refused",
                "unknown",
            ],
            "messages": [
                "",
                "",
                "already transferred (ledger)",
                "not sent: Xero's minute limit was still hit",
                "deferred: ...",
                "Account code '9999' is not a valid code",
                "refused: ...",
                "unknown: ...",
            ],
        }
    )
    assert list(unfinished_outcomes(outcomes)["invoice_number"]) == list("DEFGH")
    assert unfinished_outcomes(outcomes.iloc[:3]).empty


# ---- a refusal fixed, then the next run -------------------------------------------------------
def test_an_invoice_xero_refused_is_sent_again_after_the_fix_under_a_new_key_and_created_once(
    fresh_conn: Connection,
) -> None:
    """A period lock date refuses the invoice; the adviser lifts it; the next run (within Xero's
    six idempotency minutes, reference §7) sends it as attempt 2 under a new key and Xero creates
    it once. Under the first key Xero still replays its cached refusal: had the key been reused,
    the fix would not have helped."""
    conn = fresh_conn
    tenant = str(conn.xero.tenant_id)
    books = conn.sandbox.xero.books
    with _ledger(conn) as ledger:
        plan = _clean(plan_transfer(conn, ledger=ledger), conn, 1)
        (number,) = plan.eligible["invoice_number"]
        invoice_id = int(plan.eligible["nexudus_invoice_id"].iloc[0])
        day = date.fromisoformat(plan.payloads[invoice_id]["Date"])
        books.set_lock_dates(tenant, period=day)
        first = push(conn, plan, ledger)
        (message,) = first.outcomes["messages"]
        assert list(first.outcomes["outcome"]) == ["failed"]
        assert "lock date" in message
        before = _transfer(ledger, tenant, number)
        assert (before["state"], before["attempts"]) == ("failed", 1)
        assert _count_in_xero(conn, number) == 0

        books.set_lock_dates(tenant, period=None)  # the adviser lifts it
        replan = plan_transfer(conn, ledger=ledger)
        assert number in set(replan.eligible["invoice_number"])
        second = push(conn, replan.only([number]), ledger)
        assert list(second.outcomes["outcome"]) == ["created"], second.outcomes["messages"]
        after = _transfer(ledger, tenant, number)
        assert (after["state"], after["attempts"]) == ("created", 2)
        assert after["batch_key"] != before["batch_key"]
        contact_id = next(
            c["xero_contact_id"]
            for c in ledger.contacts(tenant).values()
            if c["contact_number"] == replan.eligible["contact_number"].iloc[0]
        )
    assert _count_in_xero(conn, number) == 1

    # The same body under the first key: Xero answers with the refusal it cached.
    body = dict(plan.payloads[invoice_id], Contact={"ContactID": contact_id})
    assert batch_key(tenant, [body]) == before["batch_key"]
    (replayed,) = conn.xero.create_invoices([body], idempotency_key=before["batch_key"])
    assert replayed["StatusAttributeString"] == "ERROR"
    assert replayed["ValidationErrors"][0]["Message"] == message
    assert _count_in_xero(conn, number) == 1


def test_a_batch_xero_never_answered_is_sent_again_as_the_same_attempt_under_the_same_key(
    fresh_conn: Connection,
) -> None:
    """Every try of the PUT is lost before Xero's books and the look-up finds nothing: no answer
    Xero could replay, so the next run resends attempt 1 with its key (a timeout is not a
    refusal)."""
    conn = fresh_conn
    tenant = str(conn.xero.tenant_id)
    faults = conn.sandbox.xero.faults
    with _ledger(conn) as ledger:
        plan = _one_customer(conn, ledger, 2)
        numbers = list(plan.eligible["invoice_number"])
        faults.drop_next(conn.xero.retry.attempts, after_commit=False)
        first = push(conn, plan, ledger)
        assert set(first.outcomes["outcome"]) == {"failed"}
        assert first.outcomes["messages"].str.contains("could not be reached").all()
        rows = ledger.transfers(tenant).set_index("invoice_number").loc[numbers]
        assert set(rows["state"]) == {UNSENT} and set(rows["attempts"]) == {1}
        (key,) = set(rows["batch_key"])

        rerun = push(conn, plan_transfer(conn, ledger=ledger).only(numbers), ledger)
        assert set(rerun.outcomes["outcome"]) == {"created"}
        rows = ledger.transfers(tenant).set_index("invoice_number").loc[numbers]
        assert set(rows["state"]) == {"created"} and set(rows["attempts"]) == {1}
        assert set(rows["batch_key"]) == {key}
        events = ledger.events()
        sent = events[(events["action"] == "create invoices") & (events["outcome"] == "sending")]
        assert list(sent["subject"]).count(key) == 2
    assert all(_count_in_xero(conn, n) == 1 for n in numbers)


def test_after_a_crash_the_resend_keeps_the_attempt_and_key_of_the_lost_batch(
    fresh_conn: Connection,
) -> None:
    """The PUT never reached Xero and Xero could not be asked: the intents stay open; the next
    run looks them up, finds nothing and resends the same attempt under the same key."""
    conn = fresh_conn
    tenant = str(conn.xero.tenant_id)
    faults = conn.sandbox.xero.faults
    attempts = conn.xero.retry.attempts
    with _ledger(conn) as ledger:
        plan = _one_customer(conn, ledger, 2)
        numbers = list(plan.eligible["invoice_number"])
        faults.drop_next(attempts, after_commit=False)
        faults.fail_next(attempts, status=503)
        first = push(conn, plan, ledger)
        assert set(first.outcomes["outcome"]) == {"unknown"}
        (key,) = set(ledger.unfinished(tenant)["batch_key"])
    with _ledger(conn) as ledger:  # the next run: a new process
        rerun = push(conn, plan_transfer(conn, ledger=ledger).only(numbers), ledger)
        assert set(rerun.outcomes["outcome"]) == {"created"}
        rows = ledger.transfers(tenant).set_index("invoice_number").loc[numbers]
        assert set(rows["attempts"]) == {1} and set(rows["batch_key"]) == {key}
        assert ledger.unfinished(tenant).empty
    assert all(_count_in_xero(conn, n) == 1 for n in numbers)


def test_after_a_crash_a_suppliers_bill_with_the_same_number_is_not_taken_for_the_invoice(
    fresh_conn: Connection,
) -> None:
    """xero-api.md §3.2 Type: ACCREC numbers are unique among sales invoices, but a supplier's
    bill (ACCPAY) may carry any number. The recovery looks up sales documents only, so the lost
    invoice is sent, not recorded as found "booked differently"."""
    conn = fresh_conn
    faults = conn.sandbox.xero.faults
    attempts = conn.xero.retry.attempts
    with _ledger(conn) as ledger:
        plan = _one_customer(conn, ledger, 2)
        numbers = list(plan.eligible["invoice_number"])
        faults.drop_next(attempts, after_commit=False)
        faults.fail_next(attempts, status=503)
        assert set(push(conn, plan, ledger).outcomes["outcome"]) == {"unknown"}
    (supplier,) = conn.xero.create_contacts([{"Name": "Paper Supplies Ltd"}])
    (bill,) = conn.xero.create_invoices(
        [
            {
                "Type": "ACCPAY",
                "InvoiceNumber": numbers[0],
                "Contact": {"ContactID": supplier["ContactID"]},
                "Date": "2026-09-01",
                "DueDate": "2026-09-30",
                "Status": "AUTHORISED",
                "LineAmountTypes": "NoTax",
                "LineItems": [
                    {"Description": "Paper", "Quantity": 1, "UnitAmount": 3, "AccountCode": "4000"}
                ],
            }
        ]
    )
    assert bill.get("StatusAttributeString") != "ERROR", bill
    with _ledger(conn) as ledger:  # the next run: a new process
        resolved = recover(conn, ledger)
        assert set(resolved["resolution"]) == {"not in Xero: will be sent"}
        rerun = push(conn, plan_transfer(conn, ledger=ledger).only(numbers), ledger)
        assert set(rerun.outcomes["outcome"]) == {"created"}
    sales = Counter(
        str(i["InvoiceNumber"])
        for i in conn.xero.iter_invoices(invoice_numbers=numbers, where='Type=="ACCREC"')
        if i["Status"] != "DELETED"
    )
    assert sales == Counter(numbers)
    assert conn.xero.get_invoice(str(bill["InvoiceID"]))["Type"] == "ACCPAY"  # left alone


class Crash(Exception):
    """Stands for the process dying."""


def test_an_invoice_found_after_a_crash_with_other_figures_is_recorded_failed_with_its_id(
    fresh_conn: Connection,
) -> None:
    """Xero booked the batch at the changed VAT rate, then the process died before the ledger
    heard: the next run finds the invoices by number and does not call them created."""
    conn = fresh_conn
    tenant = str(conn.xero.tenant_id)

    def die(size: int, elements: list[dict[str, Any]]) -> None:
        raise Crash("killed after Xero answered, before the ledger heard")

    with _ledger(conn) as ledger:
        plan = _clean(plan_transfer(conn, ledger=ledger), conn, 2)
        set_tax_rate(conn.sandbox, tenant, "OUTPUT2", Decimal("17.5"))
        with pytest.raises(Crash):
            push(conn, plan, ledger, after_batch=die)
        assert len(ledger.unfinished(tenant)) == 2
    with _ledger(conn) as ledger:  # the next run: a new process
        resolved = recover(conn, ledger)
        assert set(resolved["resolution"]) == {"found in Xero, booked differently"}
        rows = ledger.transfers(tenant).set_index("invoice_number")
    held = {
        str(i["InvoiceNumber"]): i
        for i in conn.xero.iter_invoices(invoice_numbers=list(plan.eligible["invoice_number"]))
    }
    for number in plan.eligible["invoice_number"]:
        assert rows.loc[number, "state"] == "failed"
        assert rows.loc[number, "xero_id"] == held[number]["InvoiceID"]
        assert rows.loc[number, "messages"].startswith('["Xero booked total ')
        assert _count_in_xero(conn, number) == 1
