"""Marking paid in Nexudus when Nexudus fails it, over real HTTP with the sandbox's faults.

Four invoices are transferred and then paid in full in Xero (on a date that is not the sandbox's
today, so a PaidOn left at the moment of the call shows). Each test breaks one Nexudus call of
``apply_paid`` (the first read, the payment's POST refused or dropped, the read that confirms it,
the PUT that moves PaidOn) and checks the applied table, the ledger's payments and what Nexudus
holds; then the next apply, which must settle everything with each invoice paid exactly once.
Outcomes and ledger states are compared as their string values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from support import fast_retry

from recon.clients.nexudus import NexudusClient
from recon.clients.nexudus_limits import NexudusLimits
from recon.ledger import Ledger
from recon.session import Connection
from recon.status import StatusDiff, apply_paid, sync_status
from recon.transfer import plan_transfer, push

PAID_IN_XERO = "2026-11-20"


class NotXerosDate(AssertionError):
    """The invoice's PaidOn is not Xero's payment date."""


@dataclass
class Paid:
    """Four transferred invoices, paid in full in Xero on PAID_IN_XERO, and the diff saying so."""

    conn: Connection
    ledger: Ledger
    diff: StatusDiff
    numbers: list[str]  # in the order apply_paid takes them
    ids: dict[str, int]  # invoice number -> Nexudus invoice id


@pytest.fixture
def paid(fresh_conn: Connection) -> Iterator[Paid]:
    conn = fresh_conn
    ledger = Ledger(conn.ledger_path)
    planted = conn.sandbox.planted
    unpaid = set(planted["clean_invoices"]) - set(planted["paid_in_nexudus_invoices"])
    plan = plan_transfer(conn, ledger=ledger)
    invoices = plan.eligible[plan.eligible["kind"] == "invoice"]
    chosen = [n for n in invoices["invoice_number"] if n in unpaid][:4]
    push(conn, plan.only(chosen), ledger)
    sync_status(conn, ledger)  # the baseline, just after the transfer
    xero_ids = ledger.transfers(conn.xero.tenant_id).set_index("invoice_number")["xero_id"]
    bank = conn.xero.fetch_accounts().query("Type == 'BANK'").iloc[0]["Code"]
    conn.xero.create_payments(
        [
            {
                "Invoice": {"InvoiceID": xero_ids[n]},
                "Account": {"Code": bank},
                "Amount": conn.xero.get_invoice(xero_ids[n])["AmountDue"],
                "Date": PAID_IN_XERO,
            }
            for n in chosen
        ]
    )
    diff = sync_status(conn, ledger)
    todo = diff.paid_in_xero
    assert set(todo["invoice_number"]) == set(chosen)
    assert set(todo["xero_paid_on"]) == {PAID_IN_XERO}
    assert conn.sandbox.clock.now().date().isoformat() != PAID_IN_XERO
    ids = {
        str(n): int(i)
        for n, i in zip(todo["invoice_number"], todo["nexudus_invoice_id"], strict=True)
    }
    yield Paid(conn, ledger, diff, [str(n) for n in todo["invoice_number"]], ids)
    ledger.close()


def _outcomes(applied: pd.DataFrame) -> dict[str, str]:
    return {
        str(n): str(o) for n, o in zip(applied["invoice_number"], applied["outcome"], strict=True)
    }


def _payment_states(p: Paid) -> dict[str, str]:
    rows = p.ledger.payments(p.conn.xero.tenant_id)
    return {str(n): str(s) for n, s in zip(rows["invoice_number"], rows["state"], strict=True)}


def _entries(p: Paid, number: str) -> list[dict[str, Any]]:
    """The Nexudus ledger entries (payments) recorded against the invoice."""
    return list(
        p.conn.nexudus.iter_records(
            "billing/coworkerledgerentries", {"CoworkerLedgerEntry_CoworkerInvoice": p.ids[number]}
        )
    )


def _assert_paid_once(p: Paid, number: str) -> dict[str, Any]:
    invoice = p.conn.nexudus.get_invoice(p.ids[number])
    assert invoice["Paid"] is True
    assert invoice["PaidAmount"] == invoice["TotalAmount"]
    assert len(_entries(p, number)) == 1
    return invoice


def _paid_on(invoice: dict[str, Any]) -> str:
    return pd.Timestamp(invoice["PaidOn"]).tz_convert("Europe/London").date().isoformat()


def _assert_unpaid(p: Paid, number: str) -> None:
    invoice = p.conn.nexudus.get_invoice(p.ids[number])
    assert not invoice["Paid"] and invoice["PaidAmount"] == Decimal("0.00")
    assert _entries(p, number) == []


# ---- a payment Nexudus refuses -------------------------------------------------------------------
def test_a_payment_nexudus_refuses_is_recorded_failed_and_the_next_apply_pays_it_once(
    paid: Paid,
) -> None:
    p = paid
    refused, *others = p.numbers
    p.conn.sandbox.nexudus.faults.unsuccessful_next(1, method="POST")  # 200, WasSuccessful false
    first = apply_paid(p.conn, p.ledger, p.diff)
    assert _outcomes(first) == {refused: "failed", **dict.fromkeys(others, "applied")}
    row = first.set_index("invoice_number").loc[refused]
    assert row["message"] == "There was a problem while running this action."
    assert _payment_states(p) == {refused: "failed", **dict.fromkeys(others, "applied")}
    failed = p.ledger.payments(p.conn.xero.tenant_id).set_index("invoice_number").loc[refused]
    assert "There was a problem while running this action." in failed["messages"]
    _assert_unpaid(p, refused)

    again = apply_paid(p.conn, p.ledger, p.diff)
    assert _outcomes(again) == {refused: "applied", **dict.fromkeys(others, "skipped")}
    assert set(_payment_states(p).values()) == {"applied"}
    for number in p.numbers:
        assert _paid_on(_assert_paid_once(p, number)) == PAID_IN_XERO


# ---- a payment whose outcome is unknown ----------------------------------------------------------
def test_a_dropped_payment_is_unknown_and_the_next_apply_reads_the_invoice_then_pays_it_once(
    paid: Paid,
) -> None:
    p = paid
    dropped, *others = p.numbers
    p.conn.sandbox.nexudus.faults.drop_next(1, method="POST")
    first = apply_paid(p.conn, p.ledger, p.diff)
    assert _outcomes(first) == {dropped: "unknown", **dict.fromkeys(others, "applied")}
    assert (
        "check before sending it again" in first.set_index("invoice_number").loc[dropped, "message"]
    )
    # The intent stays open: the ledger does not know whether Nexudus took it.
    assert _payment_states(p) == {dropped: "sending", **dict.fromkeys(others, "applied")}
    _assert_unpaid(p, dropped)  # the sandbox drops a request before doing it

    again = apply_paid(p.conn, p.ledger, p.diff)
    assert _outcomes(again) == {dropped: "applied", **dict.fromkeys(others, "skipped")}
    assert set(_payment_states(p).values()) == {"applied"}
    assert _paid_on(_assert_paid_once(p, dropped)) == PAID_IN_XERO


class _LoseConfirmation(httpx.HTTPTransport):
    """Real HTTP; once the first payment's POST is answered, Nexudus fails the reads after it
    (a 500 burst longer than the client's retries): the payment is taken, its check is lost."""

    def __init__(self, box: Any, attempts: int) -> None:
        super().__init__()
        self.box = box
        self.attempts = attempts
        self.armed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if (
            not self.armed
            and request.method == "POST"
            and request.url.path.endswith("/billing/coworkerledgerentries")
        ):
            self.armed = True
            self.box.nexudus.faults.error_burst(self.attempts, method="GET")
        return response


def _losing_confirmation(p: Paid) -> Connection:
    """The same connection, its Nexudus client talking through ``_LoseConfirmation``."""
    box = p.conn.sandbox
    retry = fast_retry()
    client = NexudusClient(
        box.nexudus_api_url,
        box.nexudus_username,
        box.nexudus_password,
        retry=retry,
        limits=NexudusLimits(minute_seconds=box.nexudus_minute_seconds),
        transport=_LoseConfirmation(box, retry.attempts),
    )
    client.use_location(p.conn.business)
    return dataclasses.replace(p.conn, nexudus=client)


def test_a_payment_taken_but_whose_confirmation_was_lost_is_settled_by_reading_not_paid_twice(
    paid: Paid,
) -> None:
    p = paid
    taken, *others = p.numbers
    conn = _losing_confirmation(p)
    try:
        first = apply_paid(conn, p.ledger, p.diff)
    finally:
        conn.nexudus.close()
    assert _outcomes(first) == {taken: "unknown", **dict.fromkeys(others, "applied")}
    assert _payment_states(p) == {taken: "sending", **dict.fromkeys(others, "applied")}
    _assert_paid_once(p, taken)  # Nexudus took it; recon could not confirm it

    again = apply_paid(p.conn, p.ledger, p.diff)
    assert _outcomes(again) == {taken: "already paid", **dict.fromkeys(others, "skipped")}
    settled = p.ledger.payments(p.conn.xero.tenant_id).set_index("invoice_number").loc[taken]
    assert settled["state"] == "applied"
    # recon's own payment, found by reading: PaidOn moved to Xero's date (nexudus.md §8)
    assert "paid by recon's earlier run" in settled["messages"]
    _assert_paid_once(p, taken)  # still one payment


def test_a_payment_settled_after_a_lost_confirmation_still_carries_xeros_payment_date(
    paid: Paid,
) -> None:
    p = paid
    taken = p.numbers[0]
    conn = _losing_confirmation(p)
    try:
        apply_paid(conn, p.ledger, p.diff)
    finally:
        conn.nexudus.close()
    again = apply_paid(p.conn, p.ledger, p.diff)
    assert _outcomes(again)[taken] == "already paid"
    paid_on = _paid_on(_assert_paid_once(p, taken))
    if paid_on != PAID_IN_XERO:
        raise NotXerosDate(f"PaidOn {paid_on}, Xero's payment date {PAID_IN_XERO}")


def test_a_lost_confirmation_whose_paid_on_cannot_be_moved_is_settled_and_says_so(
    paid: Paid,
) -> None:
    """The payment stands (one entry); the refused PUT is reported, nothing is paid twice."""
    p = paid
    taken = p.numbers[0]
    conn = _losing_confirmation(p)
    try:
        apply_paid(conn, p.ledger, p.diff)
    finally:
        conn.nexudus.close()
    assert p.conn.sandbox is not None
    p.conn.sandbox.nexudus.faults.fail_next(1, status=400, method="PUT")
    again = apply_paid(p.conn, p.ledger, p.diff)
    row = again[again["invoice_number"] == taken].iloc[0]
    assert row["outcome"] == "already paid"
    notes = " ".join(str(v) for v in row.to_numpy())
    assert "PaidOn not moved" in notes
    _assert_paid_once(p, taken)


def test_an_invoice_nexudus_cannot_read_fails_before_any_payment_and_the_next_apply_pays_it(
    paid: Paid,
) -> None:
    p = paid
    unread, *others = p.numbers
    p.conn.sandbox.nexudus.faults.error_burst(p.conn.nexudus.retry.attempts, method="GET")
    first = apply_paid(p.conn, p.ledger, p.diff)
    assert _outcomes(first) == {unread: "failed", **dict.fromkeys(others, "applied")}
    assert "HTTP 500" in first.set_index("invoice_number").loc[unread, "message"]
    assert unread not in _payment_states(p)  # no intent: nothing was sent
    _assert_unpaid(p, unread)

    again = apply_paid(p.conn, p.ledger, p.diff)
    assert _outcomes(again)[unread] == "applied"
    assert _paid_on(_assert_paid_once(p, unread)) == PAID_IN_XERO


def test_a_payment_whose_paid_on_nexudus_would_not_move_is_applied_with_the_problem_noted(
    paid: Paid,
) -> None:
    p = paid
    first_number, *others = p.numbers
    p.conn.sandbox.nexudus.faults.unsuccessful_next(1, method="PUT")  # the PaidOn PUT
    applied = apply_paid(p.conn, p.ledger, p.diff).set_index("invoice_number")
    assert set(applied["outcome"]) == {"applied"}
    assert applied.loc[first_number, "message"].startswith(f"PaidOn not moved to {PAID_IN_XERO}")
    assert all(applied.loc[n, "message"] == "" for n in others)
    payments = p.ledger.payments(p.conn.xero.tenant_id).set_index("invoice_number")
    assert "PaidOn not moved" in payments.loc[first_number, "messages"]
    invoice = _assert_paid_once(p, first_number)
    assert _paid_on(invoice) == p.conn.sandbox.clock.now().date().isoformat()  # the call's day
    assert all(_paid_on(_assert_paid_once(p, n)) == PAID_IN_XERO for n in others)
    assert set(apply_paid(p.conn, p.ledger, p.diff)["outcome"]) == {"skipped"}


# ---- nothing transferred yet ---------------------------------------------------------------------
def test_a_sync_with_nothing_transferred_finds_no_differences_without_asking_nexudus(
    fresh_conn: Connection, tmp_path: Path
) -> None:
    with Ledger(fresh_conn.ledger_path) as ledger:
        diff = sync_status(fresh_conn, ledger)
        assert apply_paid(fresh_conn, ledger, diff).empty
        assert ledger.payments(fresh_conn.xero.tenant_id).empty
    assert diff.differences.empty and diff.unpaid.empty
    assert diff.calls["nexudus"] == 0
    assert diff.counts() == {}
    assert diff.ageing(today=date(2026, 11, 25)).empty
    assert str(diff).startswith("Status sync: no differences")
    assert repr(diff) == "<StatusDiff 0 differences>"
    assert "no differences" in diff._repr_html_()
    saved = pd.read_csv(diff.save(tmp_path))
    assert saved.empty and "difference" in saved.columns


# ---- an intent never stays 'sending' -------------------------------------------------------------
def _without_differences(diff: StatusDiff) -> StatusDiff:
    """The diff of a later sync that no longer lists the invoices (paid since, or changed)."""
    return dataclasses.replace(diff, differences=diff.differences.iloc[0:0])


def test_a_lost_payment_of_an_invoice_that_left_the_diff_is_settled_by_reading_it_not_left_sending(
    paid: Paid,
) -> None:
    """nexudus.md §8 "Confirm by re-reading the invoice": the next apply reads each invoice whose
    payment is still 'sending', also when its diff no longer lists it."""
    p = paid
    taken = p.numbers[0]
    conn = _losing_confirmation(p)
    try:
        first = apply_paid(conn, p.ledger, p.diff)
    finally:
        conn.nexudus.close()
    assert _outcomes(first)[taken] == "unknown"
    assert _payment_states(p)[taken] == "sending"

    later = apply_paid(p.conn, p.ledger, _without_differences(p.diff))
    assert _outcomes(later) == {taken: "already paid"}
    assert _payment_states(p) == dict.fromkeys(p.numbers, "applied")
    assert _paid_on(_assert_paid_once(p, taken)) == PAID_IN_XERO  # PaidOn moved, one payment


def test_a_dropped_payment_of_an_invoice_that_left_the_diff_is_settled_failed_not_sent_again(
    paid: Paid,
) -> None:
    p = paid
    dropped = p.numbers[0]
    p.conn.sandbox.nexudus.faults.drop_next(1, method="POST")
    apply_paid(p.conn, p.ledger, p.diff)
    assert _payment_states(p)[dropped] == "sending"
    later = apply_paid(p.conn, p.ledger, _without_differences(p.diff))
    assert _outcomes(later) == {dropped: "failed"}
    assert "not kept by Nexudus" in later["message"].iloc[0]
    assert _payment_states(p)[dropped] == "failed"
    _assert_unpaid(p, dropped)


def test_a_sign_in_refused_mid_apply_stops_it_cleanly_with_every_invoice_reported(
    paid: Paid,
) -> None:
    """nexudus.md §4: a 401 is not retried past a new token; the rest are not sent, each says
    why, and the next apply marks them once."""
    p = paid
    rest = p.numbers[1:]
    p.conn.nexudus.retry = dataclasses.replace(p.conn.nexudus.retry, attempts=2)
    p.conn.sandbox.nexudus.faults.fail_next(10, status=401, method="GET")
    applied = apply_paid(p.conn, p.ledger, p.diff)  # must not raise
    assert set(applied["invoice_number"]) == set(p.numbers)
    assert set(applied["outcome"]) == {"failed"}
    assert applied["message"].str.contains("not sent: ").sum() >= len(rest)
    assert p.ledger.payments(p.conn.xero.tenant_id).empty  # nothing sent, nothing recorded
    p.conn.sandbox.nexudus.faults.clear()
    again = apply_paid(p.conn, p.ledger, p.diff)
    assert set(again["outcome"]) == {"applied"}
    for number in p.numbers:
        _assert_paid_once(p, number)
