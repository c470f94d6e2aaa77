"""A status sync costs what changed, and gives what a whole sync gives: after the baseline, a sync
reads from the ledger only the invoices the last sync listed and those written since, and its
differences, unpaid invoices and counts are row for row those of a whole sync of the same ledger.

Changes are made over real HTTP as people make them: in Xero, payments in full and in part, a
void and an edit (xero-api.md, Payments and Invoices); in Nexudus, at the sandbox's desk
(nexudus.md §9: VOID_INVOICE, COWORKER_INVOICE_CANCEL for a credit note, COWORKER_INVOICE_DELETE)
or through the API (§8: a part payment is a ledger entry with a Credit).
"""

from __future__ import annotations

import sqlite3
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd

from recon.demo import act_as_accountant
from recon.ledger import Ledger
from recon.session import Connection
from recon.status import Difference, StatusDiff, apply_paid, sync_scope, sync_status
from recon.transfer import plan_transfer, push


def _whole_sync_of_a_copy(conn: Connection, ledger: Ledger, folder: Path) -> StatusDiff:
    """A whole sync of the same ledger: a copy that forgets what the last sync listed."""
    copy = folder / f"whole-{len(list(folder.glob('whole-*')))}.sqlite"
    source, target = sqlite3.connect(ledger.path), sqlite3.connect(copy)
    source.backup(target)
    source.close()
    with target:
        target.execute("DELETE FROM status_syncs")
    target.close()
    with Ledger(copy) as again:
        return sync_status(conn, again)


def _kept_blob(ledger: Ledger) -> bytes:
    """The kept rows of the ledger's one location as stored, and where (rowid)."""
    with sqlite3.connect(ledger.path) as db:
        rows = db.execute("SELECT rowid, columns FROM status_kept").fetchall()
    assert len(rows) == 1
    return bytes(str(rows[0][0]), "ascii") + bytes(rows[0][1])


def _same(incremental: StatusDiff, whole: StatusDiff) -> None:
    pd.testing.assert_frame_equal(incremental.differences, whole.differences)
    pd.testing.assert_frame_equal(incremental.unpaid, whole.unpaid)
    assert incremental.context["transferred"] == whole.context["transferred"]
    assert incremental.counts() == whole.counts()


def test_an_incremental_sync_after_changes_gives_the_rows_of_a_whole_sync(
    fresh_conn: Connection, tmp_path: Path
) -> None:
    conn = fresh_conn
    tenant, business_id = str(conn.xero.tenant_id), int(conn.business["Id"])
    desk = conn.sandbox.nexudus.desk
    with Ledger(conn.ledger_path) as ledger:
        planted = conn.sandbox.planted
        unpaid = set(planted["clean_invoices"]) - set(planted["paid_in_nexudus_invoices"])
        plan = plan_transfer(conn, ledger=ledger)
        invoices = plan.eligible[plan.eligible["kind"] == "invoice"]
        push(conn, plan.only(list(invoices["invoice_number"][:40])), ledger)
        baseline = sync_status(conn, ledger)
        transferred = baseline.context["transferred"]
        assert transferred >= 30
        rows = ledger.transfers(tenant).set_index("invoice_number")
        owing = [n for n in baseline.unpaid["invoice_number"] if n in unpaid]
        ids = [int(rows.at[n, "nexudus_invoice_id"]) for n in owing]
        assert len(ids) >= 4

        # Round 1: both sides change a few invoices; nothing is deleted, so Nexudus is read
        # by what changed only, and the sync diffs what changed and what it listed before.
        paid = act_as_accountant(conn, fully=4, partly=1, void=1, edit=1, seed=3)
        assert len(paid) == 7
        desk.void(ids[-1])
        desk.credit(ids[-3], "10.00")
        conn.nexudus.record_payment(
            ids[-4], Decimal("5.00"), date(2026, 11, 18), "Part payment", code="BANK"
        )
        first = sync_status(conn, ledger)
        assert not first.context["nexudus_whole_read"] and not first.context["full"]
        assert first.counts() != baseline.counts()
        _same(first, _whole_sync_of_a_copy(conn, ledger, tmp_path))

        # Nothing changed since: nothing is read again by key; the invoices the sync listed are
        # compared again from the rows it kept of them, one for each.
        listed, _ = ledger.status_listed(tenant, business_id)
        scope = sync_scope(ledger, tenant, business_id, whole=False)
        assert not scope.whole and scope.nexudus_invoice_ids == frozenset()
        assert scope.kept is not None
        assert sorted(scope.kept["nexudus_invoice_id"]) == sorted(listed)
        assert 0 < len(listed) < transferred

        # Round 2: recon marks paid in Nexudus what Xero has paid, an invoice is deleted in
        # Nexudus (the location is read whole, so the sync diffs all).
        apply_paid(conn, ledger, first)
        desk.delete(ids[-2])
        second = sync_status(conn, ledger)
        assert second.context["nexudus_whole_read"]
        _same(second, _whole_sync_of_a_copy(conn, ledger, tmp_path))

        # Round 3: more payments in Xero, after a whole sync: incremental again.
        act_as_accountant(conn, fully=3, partly=1, void=0, edit=0, seed=5)
        third = sync_status(conn, ledger)
        assert not third.context["nexudus_whole_read"]
        assert third.counts() != second.counts()
        _same(third, _whole_sync_of_a_copy(conn, ledger, tmp_path))
        kept = _kept_blob(ledger)
        touched = ledger.last_change_ids()[0]
        quiet = sync_status(conn, ledger)  # nothing changed: the same rows again
        _same(quiet, third)
        # Read again as they were, the invoices of Nexudus' last second are not written again;
        # so the sync compared only the rows it kept, which stand as they were.
        assert ledger.last_change_ids()[0] == touched
        assert _kept_blob(ledger) == kept

        # Round 4: an invoice recon created under an earlier Xero app, that the ledger holds as
        # recon's while no transfer row names it (the push's record of it was lost), changes;
        # Xero no longer lists it as this app's. The ledger keeps it as recon's, so the
        # incremental sync must not take the flag its refresh wrote for the stored one: it
        # reports the invoice unknown to the ledger, as a whole sync of the same ledger does.
        stranger = str(
            third.unpaid.merge(ledger.transfers(tenant), on="invoice_number")["xero_id"].iloc[0]
        )
        with conn.sandbox.xero.books.store.write() as books:
            books.execute("UPDATE records SET created_by='an-earlier-app' WHERE id=?", (stranger,))
        with sqlite3.connect(ledger.path) as db:
            db.execute("DELETE FROM transfers WHERE xero_id=?", (stranger,))
        conn.xero.update_invoice(stranger, {"Status": "VOIDED"})
        fourth = sync_status(conn, ledger)
        assert not fourth.context["full"] and fourth.context["xero_changed"] == 1
        assert ledger.xero_state(tenant, xero_ids=[stranger])["created_by_recon"].tolist() == [1]
        unknown = fourth.differences[fourth.differences["xero_id"] == stranger]
        assert unknown["difference"].tolist() == [Difference.UNKNOWN_TO_LEDGER.value]
        assert unknown["xero_status"].tolist() == ["VOIDED"]
        _same(fourth, _whole_sync_of_a_copy(conn, ledger, tmp_path))
