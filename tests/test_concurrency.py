"""Two runs at once on one location and ledger (a scheduled run while an accountant clicks), over
real HTTP against a sandbox of their own: one writer at a time, every state change a
compare-and-set, so nothing is recorded twice or recorded failed when it succeeded.

Each run has its own ``Ledger`` handle on the one ledger file and its own connection, as two
processes would; the lock itself is also checked across a real second process. nexudus.md §8
("Not idempotent: a second POST records a second payment ... re-read the invoice") is why a
payment must never be sent by two runs; xero-api.md §7 (idempotency keys) is why a resend of a
transfer keeps its key.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recon.errors import StepError
from recon.ledger import Ledger
from recon.session import Connection, connect
from recon.status import StatusDiff, apply_paid, sync_status
from recon.transfer import plan_transfer, push

TENANT = "tenant-1"


def _both(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads started at the same moment; their results in order (an exception
    is re-raised here)."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            start.wait(30)
            results[i] = call()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]
    return results


# ---- the lock itself ----------------------------------------------------------------------------
_HOLDER = textwrap.dedent(
    """
    import sys, time
    from recon.ledger import Ledger
    with Ledger(sys.argv[1]) as ledger, ledger.writer(sys.argv[2], "a scheduled run"):
        print("held", flush=True)
        sys.stdin.readline()
    """
)


@pytest.fixture
def held_elsewhere(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process holding the writer lock of ``ledger.sqlite`` for TENANT until released."""
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), TENANT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    yield path, holder
    if holder.poll() is None:
        holder.communicate("\n", timeout=30)


def test_a_second_process_waits_then_is_refused_with_who_holds_the_lock(
    held_elsewhere: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, holder = held_elsewhere
    with Ledger(path) as ledger:
        with (
            pytest.raises(StepError) as refused,
            ledger.writer(TENANT, "a click in the notebook", wait=0.3),
        ):
            pytest.fail("the lock was taken while another process held it")
        message = str(refused.value)
        assert "a scheduled run" in message and f"process {holder.pid}" in message
        assert "Nothing was sent" in message
        # another organisation's lock on the same ledger is free
        with ledger.writer("another-tenant", "other organisation", wait=0):
            pass
        holder.communicate("\n", timeout=30)
        with ledger.writer(TENANT, "a click in the notebook", wait=30):
            pass  # released when the holder finished


def test_the_lock_is_one_per_thread_re_entrant_and_shared_by_ledger_handles(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    refused: list[str] = []

    def other_thread(ledger: Ledger) -> None:
        try:
            with ledger.writer(TENANT, "other thread", wait=0.2):
                refused.append("taken")
        except StepError as exc:
            refused.append(str(exc))

    with (
        Ledger(path) as first,
        Ledger(path) as second,
        first.writer(TENANT, "outer"),
        second.writer(TENANT, "inner, same thread", wait=0),
    ):
        t = threading.Thread(target=other_thread, args=(second,))
        t.start()
        t.join(30)
    assert len(refused) == 1 and "outer" in refused[0]


# ---- compare-and-set on ledger states ----------------------------------------------------------
def test_a_transfer_is_claimed_once_and_an_outcome_lands_only_on_its_own_intent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    invoice = {"nexudus_invoice_id": 7, "invoice_number": "INV-7", "attempt": 1}
    with Ledger(path) as one, Ledger(path) as two:
        assert one.claim_transfers(TENANT, "key-1", [invoice]) == {7}
        assert two.claim_transfers(TENANT, "key-1", [invoice]) == set(), "being sent: not twice"
        assert one.record_outcome(TENANT, 7, "created", xero_id="x-7", expected="sending")
        # a late 'failed' from another run never overwrites the invoice Xero created
        assert not two.record_outcome(TENANT, 7, "failed", messages=["late"], expected="sending")
        assert two.claim_transfers(TENANT, "key-2", [invoice]) == set(), "created: not again"
        row = two.transfers(TENANT).iloc[0]
        assert (row["state"], row["xero_id"]) == ("created", "x-7")


def test_a_payment_is_claimed_once_and_never_recorded_failed_after_it_was_applied(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as one, Ledger(path) as two:
        claim = {"amount": Decimal("12.00"), "paid_on": "2026-11-20"}
        assert one.claim_payment(TENANT, 9, "INV-9", **claim)
        assert not two.claim_payment(TENANT, 9, "INV-9", **claim), "in flight: never a second"
        assert one.record_payment(TENANT, 9, "INV-9", "applied", expected="sending")
        assert not two.record_payment(TENANT, 9, "INV-9", "failed", expected="sending")
        assert not two.claim_payment(TENANT, 9, "INV-9", **claim), "applied: never again"
        assert two.payment_state(TENANT, 9) == "applied"


# ---- two applies at once ------------------------------------------------------------------------
def _paid_in_xero(conn: Connection, ledger: Ledger, count: int) -> StatusDiff:
    """``count`` transferred invoices paid in full in Xero, and the diff saying so."""
    planted = conn.sandbox.planted
    unpaid = set(planted["clean_invoices"]) - set(planted["paid_in_nexudus_invoices"])
    plan = plan_transfer(conn, ledger=ledger)
    invoices = plan.eligible[plan.eligible["kind"] == "invoice"]
    chosen = [n for n in invoices["invoice_number"] if n in unpaid][:count]
    push(conn, plan.only(chosen), ledger)
    sync_status(conn, ledger)
    xero_ids = ledger.transfers(conn.xero.tenant_id).set_index("invoice_number")["xero_id"]
    bank = conn.xero.fetch_accounts().query("Type == 'BANK'").iloc[0]["Code"]
    conn.xero.create_payments(
        [
            {
                "Invoice": {"InvoiceID": xero_ids[n]},
                "Account": {"Code": bank},
                "Amount": conn.xero.get_invoice(xero_ids[n])["AmountDue"],
                "Date": "2026-11-20",
            }
            for n in chosen
        ]
    )
    diff = sync_status(conn, ledger)
    assert set(diff.paid_in_xero["invoice_number"]) == set(chosen)
    return diff


def test_two_applies_started_at_once_record_each_payment_once_and_none_as_failed(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with Ledger(conn.ledger_path) as ledger:
        diff = _paid_in_xero(conn, ledger, 6)
    numbers = set(diff.paid_in_xero["invoice_number"])
    with (
        connect(conn.params) as scheduled,
        connect(conn.params) as clicked,
        Ledger(conn.ledger_path) as first,
        Ledger(conn.ledger_path) as second,
    ):
        one, two = _both(
            lambda: apply_paid(scheduled, first, diff), lambda: apply_paid(clicked, second, diff)
        )
        states = first.payments(conn.xero.tenant_id)
    outcomes = pd.concat([one, two])
    assert "failed" not in set(outcomes["outcome"]) and "unknown" not in set(outcomes["outcome"])
    applied = Counter(outcomes[outcomes["outcome"] == "applied"]["invoice_number"])
    assert applied == Counter(dict.fromkeys(numbers, 1)), "each payment sent by one run only"
    assert set(states["state"]) == {"applied"} and len(states) == len(numbers)
    todo = diff.paid_in_xero
    ids = dict(zip(todo["invoice_number"], todo["nexudus_invoice_id"], strict=True))
    for number in numbers:
        entries = list(
            conn.nexudus.iter_records(
                "billing/coworkerledgerentries",
                {"CoworkerLedgerEntry_CoworkerInvoice": int(ids[number])},
            )
        )
        assert len(entries) == 1, f"{number} paid {len(entries)} times in Nexudus"


def test_an_apply_that_finds_another_run_writing_reports_every_invoice_not_done_and_sends_nothing(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with Ledger(conn.ledger_path) as ledger:
        diff = _paid_in_xero(conn, ledger, 2)
        tenant = str(conn.xero.tenant_id)
        held, release = threading.Event(), threading.Event()

        def scheduled_run() -> None:
            with Ledger(conn.ledger_path) as other, other.writer(tenant, "the nightly run"):
                held.set()
                release.wait(60)

        t = threading.Thread(target=scheduled_run)
        t.start()
        try:
            assert held.wait(30)
            calls = conn.nexudus.calls
            result = apply_paid(conn, ledger, diff, lock_wait=0.2)
            assert conn.nexudus.calls == calls
        finally:
            release.set()
            t.join(30)
        assert set(result["outcome"]) == {"failed"}
        assert result["message"].str.contains("the nightly run").all()
        assert ledger.payments(tenant).empty
        again = apply_paid(conn, ledger, diff)
    assert set(again["outcome"]) == {"applied"}


# ---- two pushes at once -------------------------------------------------------------------------
def test_two_pushes_started_at_once_create_each_invoice_once(fresh_conn: Connection) -> None:
    conn = fresh_conn
    with Ledger(conn.ledger_path) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
    numbers = list(plan.eligible["invoice_number"].head(60))
    narrowed = plan.only(numbers)
    with (
        connect(conn.params) as scheduled,
        connect(conn.params) as clicked,
        Ledger(conn.ledger_path) as first,
        Ledger(conn.ledger_path) as second,
    ):
        one, two = _both(
            lambda: push(scheduled, narrowed, first), lambda: push(clicked, narrowed, second)
        )
        rows = first.transfers(plan.tenant_id)
    outcomes = pd.concat([one.outcomes, two.outcomes])
    created = Counter(outcomes[outcomes["outcome"] == "created"]["invoice_number"])
    assert created == Counter(dict.fromkeys(numbers, 1))
    others = outcomes[outcomes["outcome"] != "created"]
    assert set(others["outcome"]) == {"skipped"}
    assert set(others["messages"]) == {"already transferred (ledger)"}
    assert sorted(rows["invoice_number"]) == sorted(numbers)
    assert set(rows["state"]) == {"created"}
    held = Counter(
        str(i["InvoiceNumber"]) for i in conn.xero.iter_invoices() if i["Status"] != "DELETED"
    )
    held.update(str(n["CreditNoteNumber"]) for n in conn.xero.iter_credit_notes())
    assert all(held[n] == 1 for n in numbers)


def test_a_push_that_finds_another_run_writing_defers_every_invoice_and_sends_nothing(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with Ledger(conn.ledger_path) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        plan = plan.only(plan.eligible["invoice_number"].head(5))
        held, release = threading.Event(), threading.Event()

        def accountant() -> None:
            with Ledger(conn.ledger_path) as other, other.writer(plan.tenant_id, "a click"):
                held.set()
                release.wait(60)

        t = threading.Thread(target=accountant)
        t.start()
        try:
            assert held.wait(30)
            result = push(conn, plan, ledger, lock_wait=0.2)
        finally:
            release.set()
            t.join(30)
        assert set(result.outcomes["outcome"]) == {"deferred"}
        assert result.outcomes["messages"].str.contains("a click (process", regex=False).all()
        assert result.calls["xero"] == 0
        assert ledger.transfers(plan.tenant_id).empty
        assert len(result.unfinished) == len(plan.eligible)  # exit 3 through the outcomes
        again = push(conn, plan, ledger)
    assert set(again.outcomes["outcome"]) == {"created"}
